/**
 * The chunk lifecycle behind one object: healing, balancing, GC, safe mode and the
 * command outbox, decided from the metadata, the chunkserver registry and the clock the
 * master passes in. No timers and no I/O: the master calls tick(now) on its schedule
 * and asks commandsFor(node) when a heartbeat arrives, so the simulation drives the same
 * object with a virtual clock and in-memory chunkservers.
 *
 * Invariants:
 * - Nothing is issued unless the master leads and safe mode is off (`active`); a master
 *   that stops leading forgets every command, grace clock and safe-mode exit, so a new
 *   term decides afresh from its own observations.
 * - Every command is confirmed twice: when a plan queues it, and again when it leaves in
 *   a heartbeat reply (checkCommand). A DELETE of a referenced chunk's replica leaves at
 *   least one healthy replica elsewhere; a DELETE of an unreferenced replica is for a
 *   handle no file references and that was allocated already.
 * - A clone's source is a healthy (or retiring) replica and its target holds no copy.
 */
import assert from 'node:assert/strict';
import type { ChunkCommand, MetaOp } from '../../../gen/gfs';
import type { Clock } from '../../common/clock';
import { limits } from '../../common/limits';
import type { Logger } from '../../common/log';
import { Collector } from '../../gc';
import type { ApplyResult, MetaState } from '../meta-state';
import type { NodeRegistry, ReplicaView } from '../registry';
import { Balancer } from './balancer';
import { CommandOutbox, type PendingClone, type PendingCommand } from './chunk-commands';
import { assessChunk, readableReplicas, replicaVerdict, type ChunkHealth, type HealChunk } from './heal-plan';
import { Healer } from './healer';
import { SafeMode } from './safe-mode';

/** What the lifecycle needs from the master process. */
export interface LifecycleHost {
  /** The metadata as applied now (a new object after a checkpoint install). */
  state: () => MetaState;
  registry: NodeRegistry;
  /** Proposes an op and resolves once it is committed and applied. */
  commit: (kind: string, op: MetaOp) => Promise<ApplyResult>;
  /** Resolves once every op applied so far is durable. */
  durable: () => Promise<unknown>;
  /** This master leads and serves (the election's answer). */
  isLeader: () => boolean;
  clock: Clock;
  random: () => number;
  log: Logger;
  /** A clone completed (cluster events). */
  onCloned?: (c: PendingClone) => void;
}

export interface LifecycleOptions {
  safeModeMinMs: number;
  /** Safe mode ends by this long after a term starts even if reports are missing (dead-after). */
  safeModeMaxMs: number;
  safeModeFraction: number;
  trashPeriodMs: number;
  orphanGraceMs: number;
  pendingTimeoutMs: number;
  repairBytesPerSec: number;
  repairClonesMax: number;
  fillCapRatio: number;
  balanceThresholdRatio: number;
  balanceIntervalMs: number;
}

/** The defaults from limits for whatever the caller leaves out. */
export function lifecycleOptions(o: Partial<LifecycleOptions> & { safeModeMaxMs: number }): LifecycleOptions {
  return {
    safeModeMinMs: o.safeModeMinMs ?? limits.safeModeMinMs,
    safeModeMaxMs: o.safeModeMaxMs,
    safeModeFraction: o.safeModeFraction ?? limits.safeModeChunkFraction,
    trashPeriodMs: o.trashPeriodMs ?? limits.trashPeriodMs,
    orphanGraceMs: o.orphanGraceMs ?? limits.orphanGraceMs,
    pendingTimeoutMs: o.pendingTimeoutMs ?? limits.pendingFileTimeoutMs,
    repairBytesPerSec: o.repairBytesPerSec ?? limits.repairBytesPerSec,
    repairClonesMax: o.repairClonesMax ?? limits.repairClonesMax,
    fillCapRatio: o.fillCapRatio ?? limits.fillCapRatio,
    balanceThresholdRatio: o.balanceThresholdRatio ?? limits.balanceThresholdRatio,
    balanceIntervalMs: o.balanceIntervalMs ?? limits.balanceIntervalMs,
  };
}

export class Lifecycle {
  readonly outbox = new CommandOutbox(limits.chunkCommandTimeoutMs);
  readonly safeMode: SafeMode;
  readonly healer: Healer;
  readonly balancer: Balancer;
  readonly collector: Collector;
  /** Some chunkserver serves clients (leader's view, each tick): copies everywhere yield. */
  clusterBusy = false;
  private stopped = false;

  constructor(private readonly host: LifecycleHost, readonly opts: LifecycleOptions) {
    const { registry, clock, log } = host;
    this.safeMode = new SafeMode({ minMs: opts.safeModeMinMs, maxMs: opts.safeModeMaxMs, fraction: opts.safeModeFraction }, clock.monoMs());
    const chunks = () => this.healChunks();
    const healthyOn = (handle: number, nodeId: string) => this.healthyOn(handle, nodeId);
    const draining = (id: string) => this.isDraining(id);
    const replicasOf = (handle: number) => this.replicaViews(handle);
    this.healer = new Healer({
      registry, replicasOf, outbox: this.outbox, chunks, draining, healthyOn, trimFirst: (handle) => this.balancer.trimFirst(handle),
      clock, random: host.random, log: log.child({ component: 'healer' }), onCloned: host.onCloned,
    }, {
      repairBytesPerSec: opts.repairBytesPerSec, repairClonesMax: opts.repairClonesMax,
      sourcesPerNodeMax: limits.repairSourcesPerNodeMax, targetsPerNodeMax: limits.repairTargetsPerNodeMax,
      fillCapRatio: this.fillCapRatio(),
    });
    this.balancer = new Balancer({
      registry, replicasOf, outbox: this.outbox, chunks, healthyOn, draining, clock, log: log.child({ component: 'balancer' }),
    }, {
      thresholdRatio: opts.balanceThresholdRatio, intervalMs: opts.balanceIntervalMs,
      movesMax: limits.balanceMovesMax, perNodeMax: limits.balanceMovesPerNodeMax, fillCapRatio: this.fillCapRatio(),
    });
    this.collector = new Collector({
      state: host.state, registry, outbox: this.outbox, commit: host.commit, durable: host.durable,
      isActive: () => this.active, clock, log: log.child({ component: 'gc' }),
    }, { trashPeriodMs: opts.trashPeriodMs, orphanGraceMs: opts.orphanGraceMs, pendingTimeoutMs: opts.pendingTimeoutMs });
  }

  /** Healing and GC may issue commands and ops. */
  get active(): boolean {
    return !this.stopped && this.host.isLeader() && !this.safeMode.on;
  }

  /** No more rounds or commands (the master is stopping). */
  stop(): void {
    this.stopped = true;
  }

  /**
   * One lifecycle round at monotonic time nowMs. Resolves when its GC pass is over (the
   * master does not wait; the simulation does, to stay deterministic).
   */
  tick(nowMs: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (!this.host.isLeader()) {
      // A leader that stepped down forgets what it issued and every grace clock it ran:
      // if it leads again, it decides anew from its own observations.
      this.outbox.clear();
      this.collector.orphans.clear();
      this.safeMode.restart(nowMs);
      return Promise.resolve();
    }
    const wasOn = this.safeMode.on;
    this.clusterBusy = this.host.registry.alive().some((n) => n.foregroundBusy);
    const summary = this.healer.tick(this.active, nowMs);
    this.balancer.tick(this.active, summary.underReplicated === 0 && summary.missing === 0 && summary.queuedChunks === 0, nowMs);
    if (!this.safeMode.update(nowMs, summary.available, summary.chunks) && wasOn) {
      this.host.log.info({ chunks: summary.chunks, available: summary.available, missing: summary.missing, underReplicated: summary.underReplicated }, 'leaving safe mode: healing and GC are active');
    }
    return this.collector.tick();
  }

  /** A healing round and a GC pass now (gfsctl gc), with every usual check. */
  async collectNow(): Promise<void> {
    if (!this.active) return;
    this.healer.tick(true, this.host.clock.monoMs());
    await this.collector.tick();
  }

  /**
   * The commands a heartbeat reply carries to this node, each confirmed once more
   * against the state now; a command that no longer holds is dropped, never sent.
   */
  commandsFor(nodeId: string): ChunkCommand[] {
    const commands = this.outbox.deliver(nodeId, (cmd) => this.checkCommand(cmd), (id) => this.host.registry.nodes.get(id)?.addr);
    assert.ok(commands.length === 0 || this.active, 'commands only leave while leading and out of safe mode');
    return commands;
  }

  /** The node reported REPLICATEs that failed. */
  clonesFailed(nodeId: string, handles: readonly number[]): void {
    for (const handle of handles) {
      const c = this.healer.cloneFailed(nodeId, handle);
      // The usual cause is a source that went away: avoid it until it heartbeats again
      // (at once, not after dead-after). A live source clears this within a heartbeat.
      if (c && this.host.registry.markSuspect(c.sourceNodeId, `clone of chunk ${handle} from it failed on ${nodeId}`)) {
        this.host.log.warn({ node: c.sourceNodeId, handle, target: nodeId }, 'chunkserver suspect: a clone reading from it failed');
      }
    }
  }

  /** A client could not write to these nodes (it asks for a chunk elsewhere): suspect them. */
  unreachableReported(nodeIds: readonly string[], by: string): void {
    for (const id of nodeIds) {
      if (this.host.registry.markSuspect(id, `unreachable by ${by}`)) this.host.log.warn({ node: id, by }, 'chunkserver suspect: reported unreachable');
    }
  }

  /** The registry declared the node dead: what it never received is dropped. */
  nodeDied(nodeId: string): void {
    this.outbox.dropUndelivered(nodeId);
  }

  /** The writer of a pending file did something (create, allocate, commit, abandon). */
  touch(inode: number): void {
    this.collector.touch(inode);
  }

  /** Draining is metadata (OpDecommission), so it survives restarts and failovers. */
  isDraining(nodeId: string): boolean {
    return this.host.state().drainingNodes().has(nodeId);
  }

  /** The replicas of a chunk as every lifecycle decision sees them. */
  replicaViews(handle: number): ReplicaView[] {
    return this.host.registry.replicaViews(handle);
  }

  /** Nodes are never filled past this fraction by placement, healing or balancing. */
  fillCapRatio(): number {
    return this.opts.fillCapRatio;
  }

  healChunkOf(ref: { handle: number; version: number; length: number; committed: boolean }, inode: number): HealChunk {
    const file = this.host.state().fileByInode(inode);
    return {
      handle: ref.handle, version: ref.version, length: ref.length, committed: ref.committed, goal: file?.replication ?? limits.replicationDefault,
      trashed: this.host.state().inodeLocation(inode) === 'trash',
    };
  }

  *healChunks(): Iterable<HealChunk> {
    for (const c of this.host.state().lifecycleChunks()) {
      yield { handle: c.handle, version: c.version, length: c.length, goal: c.replication, committed: c.committed, trashed: c.location === 'trash' };
    }
  }

  /** The chunk's replicas as healing sees them now (pending deletes count as gone). */
  chunkHealth(c: HealChunk): ChunkHealth {
    return assessChunk(c, this.replicaViews(c.handle), this.outbox.deletingOf(c.handle), (id) => this.isDraining(id));
  }

  /** The replica on this node is healthy (or retiring) for the chunk: confirms clones and moves. */
  healthyOn(handle: number, nodeId: string): boolean {
    const owner = this.host.state().chunkOwner(handle);
    const view = this.replicaViews(handle).find((r) => r.nodeId === nodeId);
    if (!owner || !view) return false;
    const v = replicaVerdict(this.healChunkOf(owner.ref, owner.inode), view, new Set(), (id) => this.isDraining(id));
    return v === 'healthy' || v === 'retiring';
  }

  /**
   * The second confirmation of a command, at the moment it leaves in a heartbeat reply.
   * Returns false to drop it (the next plan decides again).
   */
  protected checkCommand(cmd: PendingCommand): boolean {
    if (!this.active) return false;
    const state = this.host.state();
    const owner = state.chunkOwner(cmd.handle);
    if (cmd.kind === 'delete' && cmd.reason === 'orphan') {
      assert.equal(owner, undefined, `GC never deletes a chunk that metadata references (handle ${cmd.handle})`);
      assert.ok(cmd.handle < state.nextHandle, 'GC never deletes a handle from the future');
      return true;
    }
    // A referenced chunk from here on; if it is gone now, its replicas are GC's to judge.
    if (!owner) return false;
    const chunk = this.healChunkOf(owner.ref, owner.inode);
    if (!chunk.committed) return false;
    const others = new Set(this.outbox.deletingOf(cmd.handle));
    if (cmd.kind === 'delete') others.delete(cmd.nodeId);
    const replicas = this.replicaViews(cmd.handle);
    const health = assessChunk(chunk, replicas, others, (id) => this.isDraining(id));
    if (cmd.kind === 'clone') return this.cloneHolds(cmd, replicas, health);
    const readableElsewhere = readableReplicas(health).filter((id) => id !== cmd.nodeId).length;
    let ok = false;
    switch (cmd.reason) {
      case 'stale': ok = health.stale.includes(cmd.nodeId) && readableElsewhere >= 1; break;
      case 'corrupt': ok = health.corrupt.includes(cmd.nodeId) && readableElsewhere >= 1; break;
      case 'over-replicated': ok = health.healthy.includes(cmd.nodeId) && health.healthy.length - 1 >= chunk.goal; break;
    }
    if (ok) {
      // Whatever the reason, a referenced chunk keeps a readable replica elsewhere.
      assert.ok(readableElsewhere >= 1, `a delete would leave chunk ${cmd.handle} without a healthy replica`);
    }
    return ok;
  }

  /** A clone still reads from a readable replica and writes to a live node without one. */
  private cloneHolds(cmd: PendingClone, replicas: readonly ReplicaView[], health: ChunkHealth): boolean {
    const source = replicas.find((r) => r.nodeId === cmd.sourceNodeId);
    const target = this.host.registry.nodes.get(cmd.targetNodeId);
    const sourceNode = this.host.registry.nodes.get(cmd.sourceNodeId);
    return source !== undefined && readableReplicas(health).includes(cmd.sourceNodeId) && sourceNode?.suspect === '' &&
      target !== undefined && target.alive && target.suspect === '' && !replicas.some((r) => r.nodeId === cmd.targetNodeId);
  }
}
