/**
 * The master process: metadata in memory (MetaState), kept by a replicated WAL
 * (replication/), served over gRPC; the chunkserver registry from heartbeats; placement
 * of new chunks; the chunk lifecycle (healing, balance, GC) while it leads.
 *
 * Invariants:
 * - The state only changes by applying committed log entries, in log order, on every
 *   master alike; an operation is acknowledged once its entry is committed (durable on a
 *   majority) and applied here. A storage failure stops the process.
 * - Only the serving leader proposes, and each proposal gets its own inode or handle id
 *   (reserved above everything applied or handed out), so ids never collide.
 * - Replica locations are soft state and never logged.
 * - A checkpoint is the state at exactly the applied index it is taken at.
 * - Chunk lifecycle (healing, GC) acts only while this master is leader and out of safe
 *   mode; every DELETE is checked again when it is handed to a heartbeat, and a DELETE
 *   of an unreferenced replica asserts that no file references the chunk.
 */
import * as grpc from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { Counter, Gauge, Histogram } from 'prom-client';
import {
  MasterService, MetaOp, FileState,
  type MasterServer, type FileInfo, type ChunkInfo, type HeartbeatRequest, type HeartbeatResponse,
  type StatusResponse, type NodesResponse, type FsckResponse, type GcResponse, type GcItem, type DfResponse,
  type BalanceResponse, type DecommissionResponse,
} from '../../gen/gfs';
import { GfsError, toGrpcError } from '../common/errors';
import { limits } from '../common/limits';
import type { Logger } from '../common/log';
import { systemClock, type Clock } from '../common/clock';
import { normalizeFilePath, normalizePath } from '../common/paths';
import { bindServer, unaryHandler } from '../common/grpc';
import { startAdminServer, newRegistry, totalCounter, type AdminServer } from '../common/admin-http';
import { Wal } from '../wal';
import { ReplicatedLog, loadDurableState } from './replication/replicated-log';
import { ReplicationService, replicationService } from './replication/transport';
import { ENTRY_TYPE_NOOP, type Entry } from './replication/types';
import { Election } from './election';
import { MetaState, type ApplyResult, type FileNode } from './meta-state';
import { NodeRegistry, type NodeEntry } from './registry';
import { choosePlacement } from './placement';
import { CommandOutbox, type PendingCommand } from './lifecycle/chunk-commands';
import { Healer } from './lifecycle/healer';
import { Balancer } from './lifecycle/balancer';
import { SafeMode } from './lifecycle/safe-mode';
import { assessChunk, chooseTrim, planHealing, readableReplicas, replicaVerdict, type ChunkHealth, type HealChunk } from './lifecycle/heal-plan';
import { buildFsck } from './fsck';
import { Collector } from '../gc/collector';
import { accountSpace, spaceClass, type SpaceSplit } from './lifecycle/space';
import { formatBytes } from '../common/units';

/** WAL record type for a protobuf-encoded MetaOp. */
export const WAL_TYPE_META_OP = 1;

export interface MasterOptions {
  id: string;
  dataDir: string;
  listen: string;
  advertise?: string;
  adminListen: string;
  deadAfterMs: number;
  replicationDefault?: number;
  checkpointEveryRecords?: number;
  /** WAL segment size (tests use small ones so checkpoints can drop segments). */
  walSegmentBytes?: number;
  /** Safe mode lasts at least this long after start (default limits.safeModeMinMs). */
  safeModeMinMs?: number;
  /** ...and until this fraction of chunks has a reported replica, at most dead-after. */
  safeModeFraction?: number;
  trashPeriodMs?: number;
  orphanGraceMs?: number;
  /** A pending write whose writer is silent this long is aborted. */
  pendingTimeoutMs?: number;
  /** Cluster-wide re-replication bandwidth. */
  repairBytesPerSec?: number;
  repairClonesMax?: number;
  /** Nodes are never filled past this fraction by placement, healing or balancing. */
  fillCapRatio?: number;
  /** Automatic rebalancing above this fill spread from the mean; 0 = only on demand. */
  balanceThresholdRatio?: number;
  /** Automatic rebalance rounds this often (default limits.balanceIntervalMs). */
  balanceIntervalMs?: number;
  /**
   * The master group: every member's id → its gRPC address (this one included). Empty
   * or absent: a standalone master, leader by itself.
   */
  peers?: ReadonlyMap<string, string>;
  /** etcd endpoints for the election (required with peers). */
  etcd?: string[];
  /** Election lease TTL. */
  electionTtlMs?: number;
  /** Election prefix: one per gfs cluster sharing an etcd. */
  cluster?: string;
  log: Logger;
  clock?: Clock;
  random?: () => number;
}

export class Master {
  private wal!: Wal;
  state!: MetaState;
  readonly registry: NodeRegistry;
  private server: grpc.Server | undefined;
  private admin!: AdminServer;
  private readonly clock: Clock;
  private readonly random: () => number;
  private tickTimer: NodeJS.Timeout | undefined;
  private electionTimer: NodeJS.Timeout | undefined;
  private lifecycleTimer: NodeJS.Timeout | undefined;
  private readonly outbox = new CommandOutbox(limits.chunkCommandTimeoutMs);
  private healer!: Healer;
  private balancer!: Balancer;
  private collector!: Collector;
  private safeMode!: SafeMode;
  private rlog!: ReplicatedLog;
  private election: Election | undefined;
  /** Ids handed to proposals not applied yet: each proposal gets its own, in log order. */
  private inodeReserved = 0;
  private handleReserved = 0;
  private lastDurable: Promise<unknown> = Promise.resolve();
  private stopping = false;
  addr = '';
  private readonly metrics = newRegistry('master');
  private readonly opsTotal = new Counter({ name: 'gfs_master_ops_total', help: 'Metadata operations by kind and outcome', labelNames: ['op', 'outcome'], registers: [this.metrics] });
  private readonly commitSeconds = new Histogram({ name: 'gfs_master_commit_seconds', help: 'Time from proposal to committed (durable on a majority) and applied', buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5], registers: [this.metrics] });

  constructor(private readonly opts: MasterOptions) {
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? Math.random;
    this.registry = new NodeRegistry(opts.deadAfterMs);
    const self = this;
    new Gauge({ name: 'gfs_master_files', help: 'Visible files', registers: [this.metrics], collect() { this.set(self.state?.counts().files ?? 0); } });
    new Gauge({ name: 'gfs_master_chunks', help: 'Chunks referenced by metadata', registers: [this.metrics], collect() { this.set(self.state?.counts().chunks ?? 0); } });
    new Gauge({ name: 'gfs_master_nodes_alive', help: 'Chunkservers alive', registers: [this.metrics], collect() { this.set(self.registry.alive().length); } });
    new Gauge({ name: 'gfs_master_wal_last_index', help: 'Last WAL index', registers: [this.metrics], collect() { this.set(self.wal?.lastIndex ?? 0); } });
    const repair = (name: string, help: string, pick: (p: NonNullable<StatusResponse['repair']>) => number) => new Gauge({
      name, help, registers: [this.metrics], collect() { if (self.healer) this.set(pick(self.healer.progress())); },
    });
    repair('gfs_master_repair_queued_chunks', 'Chunks below their goal with no clone running yet', (p) => p.queuedChunks);
    repair('gfs_master_repair_queued_bytes', 'Bytes still to clone, not started', (p) => p.queuedBytes);
    repair('gfs_master_repair_inflight_chunks', 'Clones running now', (p) => p.inflightChunks);
    repair('gfs_master_repair_bytes_per_second', 'Re-replication bytes per second: copies running now, or completed clones over 10 s', (p) => p.bytesPerSec);
    repair('gfs_master_repair_eta_seconds', 'Estimated time until every chunk is at its goal', (p) => p.etaMs / 1000);
    repair('gfs_master_chunks_under_replicated', 'Chunks with fewer healthy replicas than their goal', (p) => p.underReplicated);
    repair('gfs_master_chunks_missing', 'Chunks with no healthy replica', (p) => p.missingChunks);
    repair('gfs_master_replicas_corrupt', 'Replicas reported corrupt, not yet deleted', (p) => p.corruptReplicas);
    repair('gfs_master_replicas_stale', 'Replicas behind the master version, not yet deleted', (p) => p.staleReplicas);
    totalCounter(this.metrics, 'gfs_master_repair_completed_total', 'Clones completed since start', () => self.healer?.progress().completedTotal);
    totalCounter(this.metrics, 'gfs_master_repair_failed_total', 'Clones failed or timed out since start', () => self.healer?.progress().failedTotal);
    new Gauge({ name: 'gfs_master_safe_mode', help: '1 while in safe mode (no clones, no deletes)', registers: [this.metrics], collect() { this.set(self.safeMode?.on ? 1 : 0); } });
    new Gauge({ name: 'gfs_master_gc_orphans_tracked', help: 'Unreferenced handles waiting out the orphan grace', registers: [this.metrics], collect() { this.set(self.collector?.orphans.size ?? 0); } });
    totalCounter(this.metrics, 'gfs_master_gc_purged_files_total', 'Trashed files purged since start', () => self.collector?.purgedTotal ?? 0);
    totalCounter(this.metrics, 'gfs_master_gc_orphan_deletes_total', 'Orphan replica deletes issued since start', () => self.collector?.orphanDeletesTotal ?? 0);
    totalCounter(this.metrics, 'gfs_master_gc_aborted_writes_total', 'Abandoned writes aborted since start', () => self.collector?.abortedTotal ?? 0);
  }

  get adminAddr(): string { return this.admin.addr; }

  async start(): Promise<void> {
    const { log } = this.opts;
    const t0 = this.clock.monoMs();
    this.wal = await Wal.open({ dir: `${this.opts.dataDir}/wal`, log, segmentBytes: this.opts.walSegmentBytes });
    const durable = await loadDurableState(this.opts.dataDir, this.wal);
    this.state = durable.checkpoint ? MetaState.restore(durable.checkpoint.image) : new MetaState();
    log.info({ checkpointIndex: durable.checkpoint?.index ?? 0, entries: durable.entries.length, promisedEpoch: durable.promisedEpoch, ms: Math.round(this.clock.monoMs() - t0), ...this.state.counts() }, 'metadata loaded; committed entries are applied as the log learns they are committed');
    this.server = new grpc.Server({ 'grpc.max_receive_message_length': 512 * 1024 * 1024 });
    this.server.addService(MasterService, this.handlers());
    this.server.addService(ReplicationService, replicationService((from, msg) => this.rlog?.receive(from, msg)));
    const port = await bindServer(this.server, this.opts.listen);
    const host = this.opts.listen.slice(0, this.opts.listen.lastIndexOf(':'));
    this.addr = this.opts.advertise ?? `${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`;
    const members = this.opts.peers && this.opts.peers.size > 0 ? this.opts.peers : new Map([[this.opts.id, this.addr]]);
    if (!members.has(this.opts.id)) throw new GfsError('INVALID_ARGUMENT', `--peers must include this master (${this.opts.id})`);
    this.rlog = new ReplicatedLog({
      id: this.opts.id, members, dataDir: this.opts.dataDir, wal: this.wal, log: log.child({ component: 'replication' }), clock: this.clock,
      apply: (entry) => this.applyEntry(entry),
      restore: (snap) => {
        this.state = MetaState.restore(snap.image);
        log.info({ index: snap.index, epoch: snap.epoch, bytes: snap.image.length }, 'installed a checkpoint from the leader');
      },
    }, durable);
    this.rlog.start();
    if (members.size > 1) {
      if (!this.opts.etcd || this.opts.etcd.length === 0) throw new GfsError('INVALID_ARGUMENT', 'a master group (--peers) needs --etcd for the election');
      await this.startElection();
    } else {
      // Standalone: leader by itself, with an epoch above anything on disk.
      const epoch = Math.max(durable.promisedEpoch, durable.checkpoint?.epoch ?? 0, durable.entries.at(-1)?.epoch ?? 0) + 1;
      this.rlog.becomeLeader(epoch, Number.MAX_SAFE_INTEGER);
      await this.waitServing(30_000);
    }
    this.admin = await startAdminServer({
      listen: this.opts.adminListen,
      registry: this.metrics,
      log,
      readiness: () => null,
      routes: { '/status': () => this.status() },
    });
    this.tickTimer = setInterval(() => this.tick(), Math.min(1000, Math.max(100, this.opts.deadAfterMs / 4)));
    this.startLifecycle();
    log.info({ id: this.opts.id, addr: this.addr, admin: this.admin.addr }, 'master serving');
  }

  // ------------------------------------------------------------ chunk lifecycle

  private startLifecycle(): void {
    const { log } = this.opts;
    this.safeMode = new SafeMode({
      minMs: this.opts.safeModeMinMs ?? limits.safeModeMinMs,
      maxMs: this.opts.deadAfterMs,
      fraction: this.opts.safeModeFraction ?? limits.safeModeChunkFraction,
    }, this.clock.monoMs());
    this.healer = new Healer({
      registry: this.registry,
      outbox: this.outbox,
      chunks: () => this.healChunks(),
      draining: (id) => this.isDraining(id),
      healthyOn: (handle, nodeId) => this.healthyOn(handle, nodeId),
      trimFirst: (handle) => this.balancer.trimFirst(handle),
      clock: this.clock,
      random: this.random,
      log: log.child({ component: 'healer' }),
    }, {
      repairBytesPerSec: this.opts.repairBytesPerSec ?? limits.repairBytesPerSec,
      repairClonesMax: this.opts.repairClonesMax ?? limits.repairClonesMax,
      sourcesPerNodeMax: limits.repairSourcesPerNodeMax,
      targetsPerNodeMax: limits.repairTargetsPerNodeMax,
      fillCapRatio: this.fillCapRatio,
    });
    this.balancer = new Balancer({
      registry: this.registry,
      outbox: this.outbox,
      chunks: () => this.healChunks(),
      healthyOn: (handle, nodeId) => this.healthyOn(handle, nodeId),
      draining: (id) => this.isDraining(id),
      clock: this.clock,
      log: log.child({ component: 'balancer' }),
    }, {
      thresholdRatio: this.opts.balanceThresholdRatio ?? limits.balanceThresholdRatio,
      intervalMs: this.opts.balanceIntervalMs ?? limits.balanceIntervalMs,
      movesMax: limits.balanceMovesMax,
      perNodeMax: limits.balanceMovesPerNodeMax,
      fillCapRatio: this.fillCapRatio,
    });
    this.collector = new Collector({
      state: () => this.state,
      registry: this.registry,
      outbox: this.outbox,
      commit: (kind, op) => this.commit(kind, op),
      durable: () => this.lastDurable,
      isActive: () => this.lifecycleActive(),
      clock: this.clock,
      log: log.child({ component: 'gc' }),
    }, {
      trashPeriodMs: this.opts.trashPeriodMs ?? limits.trashPeriodMs,
      orphanGraceMs: this.opts.orphanGraceMs ?? limits.orphanGraceMs,
      pendingTimeoutMs: this.opts.pendingTimeoutMs ?? limits.pendingFileTimeoutMs,
    });
    log.info({
      safeModeMinMs: this.opts.safeModeMinMs ?? limits.safeModeMinMs,
      trashPeriodMs: this.collector.opts.trashPeriodMs, orphanGraceMs: this.collector.opts.orphanGraceMs,
      pendingTimeoutMs: this.collector.opts.pendingTimeoutMs, repairBytesPerSec: this.opts.repairBytesPerSec ?? limits.repairBytesPerSec,
    }, 'chunk lifecycle configured; in safe mode until chunkservers report');
    this.scheduleLifecycle(limits.lifecycleTickMs);
  }

  /**
   * Rounds walk the whole chunk table, so on a large one the next round waits ten times
   * as long as the last took: the planner never takes more than ~10% of a core from
   * the metadata path, whatever the table size.
   */
  private scheduleLifecycle(delayMs: number): void {
    this.lifecycleTimer = setTimeout(() => {
      const started = this.clock.monoMs();
      try {
        this.lifecycleTick();
      } finally {
        if (!this.stopping) this.scheduleLifecycle(Math.max(limits.lifecycleTickMs, 10 * (this.clock.monoMs() - started)));
      }
    }, delayMs);
  }

  private get fillCapRatio(): number {
    return this.opts.fillCapRatio ?? limits.fillCapRatio;
  }

  /** Draining is metadata (OpDecommission), so it survives restarts and failovers. */
  /** Some chunkserver serves clients (leader's view, each lifecycle tick): copies everywhere yield. */
  private clusterBusy = false;

  private isDraining(nodeId: string): boolean {
    return this.state.drainingNodes().has(nodeId);
  }

  /** The replica on this node is healthy (or retiring) for the chunk: confirms clones and moves. */
  private healthyOn(handle: number, nodeId: string): boolean {
    const owner = this.state.chunkOwner(handle);
    const view = this.registry.replicaViews(handle).find((r) => r.nodeId === nodeId);
    if (!owner || !view) return false;
    const v = replicaVerdict(this.healChunkOf(owner.ref, owner.inode), view, new Set(), (id) => this.isDraining(id));
    return v === 'healthy' || v === 'retiring';
  }

  /**
   * Standalone mode: this master is always the leader. With a master group this is where
   * the election's answer goes; lifecycle decisions stop the moment it turns false.
   */
  isLeader(): boolean {
    return !this.stopping && this.rlog?.replica.serving === true;
  }

  /** Healing and GC may issue commands and ops. */
  private lifecycleActive(): boolean {
    return this.isLeader() && !this.stopping && this.safeMode !== undefined && !this.safeMode.on;
  }

  private lifecycleTick(): void {
    if (this.stopping) return;
    if (!this.isLeader()) {
      // A leader that stepped down forgets what it issued and every grace clock it ran:
      // if it leads again, it decides anew from its own observations.
      this.outbox.clear();
      this.collector.orphans.clear();
      this.safeMode.restart(this.clock.monoMs());
      return;
    }
    const wasOn = this.safeMode.on;
    this.clusterBusy = this.registry.alive().some((n) => n.foregroundBusy);
    const summary = this.healer.tick(this.lifecycleActive());
    this.balancer.tick(this.lifecycleActive(), summary.underReplicated === 0 && summary.missing === 0 && summary.queuedChunks === 0);
    if (!this.safeMode.update(this.clock.monoMs(), summary.available, summary.chunks) && wasOn) {
      this.opts.log.info({ chunks: summary.chunks, available: summary.available, missing: summary.missing, underReplicated: summary.underReplicated }, 'leaving safe mode: healing and GC are active');
    }
    void this.collector.tick();
  }

  private healChunkOf(ref: { handle: number; version: number; length: number; committed: boolean }, inode: number): HealChunk {
    const file = this.state.fileByInode(inode);
    return { handle: ref.handle, version: ref.version, length: ref.length, committed: ref.committed, goal: file?.replication ?? limits.replicationDefault };
  }

  private *healChunks(): Iterable<HealChunk> {
    for (const c of this.state.lifecycleChunks()) {
      yield { handle: c.handle, version: c.version, length: c.length, goal: c.replication, committed: c.committed };
    }
  }

  /** The chunk's replicas as healing sees them now (pending deletes count as gone). */
  private chunkHealth(c: HealChunk): ChunkHealth {
    return assessChunk(c, this.registry.replicaViews(c.handle), this.outbox.deletingOf(c.handle), (id) => this.isDraining(id));
  }

  /**
   * The second confirmation of a command, at the moment it leaves in a heartbeat reply.
   * Returns false to drop it (the next plan decides again).
   */
  private checkCommand(cmd: PendingCommand): boolean {
    if (!this.lifecycleActive()) return false;
    const owner = this.state.chunkOwner(cmd.handle);
    if (cmd.kind === 'delete' && cmd.reason === 'orphan') {
      assert.equal(owner, undefined, `GC never deletes a chunk that metadata references (handle ${cmd.handle})`);
      assert.ok(cmd.handle < this.state.nextHandle, 'GC never deletes a handle from the future');
      return true;
    }
    // A referenced chunk from here on; if it is gone now, its replicas are GC's to judge.
    if (!owner) return false;
    const chunk = this.healChunkOf(owner.ref, owner.inode);
    if (!chunk.committed) return false;
    const others = new Set(this.outbox.deletingOf(cmd.handle));
    if (cmd.kind === 'delete') others.delete(cmd.nodeId);
    const replicas = this.registry.replicaViews(cmd.handle);
    const health = assessChunk(chunk, replicas, others, (id) => this.isDraining(id));
    if (cmd.kind === 'clone') {
      const source = replicas.find((r) => r.nodeId === cmd.sourceNodeId);
      const target = this.registry.nodes.get(cmd.targetNodeId);
      return source !== undefined && readableReplicas(health).includes(cmd.sourceNodeId) &&
        target !== undefined && target.alive && !replicas.some((r) => r.nodeId === cmd.targetNodeId);
    }
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

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.tickTimer) clearInterval(this.tickTimer);
    if (this.electionTimer) clearInterval(this.electionTimer);
    if (this.lifecycleTimer) clearTimeout(this.lifecycleTimer);
    await new Promise<void>((resolve) => (this.server ? this.server.tryShutdown(() => resolve()) : resolve()));
    this.server?.forceShutdown();
    await this.admin?.close();
    await this.election?.stop();
    this.rlog?.close();
    await this.lastDurable.catch(() => undefined);
    await this.wal?.close();
  }

  private tick(): void {
    this.maybeCheckpoint();
    const died = this.registry.tick(this.clock.monoMs());
    for (const id of died) {
      this.opts.log.warn({ node: id }, 'chunkserver declared dead');
      this.outbox.dropUndelivered(id);
    }
  }

  // ------------------------------------------------------------ the write path

  /**
   * Proposes one operation to the replicated log; resolves with its result once it is
   * committed (durable on a majority of masters) and applied here. Every master applies
   * the same committed entries in the same order, so a refused operation (say, a create
   * that lost a race) is refused identically everywhere and answers its caller with the
   * error. A retried request id answers with the first result without a new entry.
   */
  private async commit(kind: string, op: MetaOp): Promise<ApplyResult> {
    if (this.stopping) throw new GfsError('UNAVAILABLE', 'master is shutting down');
    if (op.requestId) {
      const prior = this.state.seenRequest(op.requestId);
      if (prior !== undefined) {
        this.opsTotal.inc({ op: kind, outcome: 'retry' });
        return prior;
      }
    }
    const started = this.clock.monoMs();
    const done = this.rlog.propose(WAL_TYPE_META_OP, MetaOp.encode(op).finish()) as Promise<ApplyResult>;
    this.lastDurable = done.catch(() => undefined);
    try {
      const result = await done;
      this.commitSeconds.observe((this.clock.monoMs() - started) / 1000);
      this.opsTotal.inc({ op: kind, outcome: 'ok' });
      return result;
    } catch (e) {
      this.opsTotal.inc({ op: kind, outcome: (e as GfsError).code === 'NOT_LEADER' ? 'not_leader' : 'rejected' });
      throw e;
    }
  }

  /** Applies one committed log entry (on every master, leader included). */
  private applyEntry(entry: Entry): ApplyResult | undefined {
    if (entry.type === ENTRY_TYPE_NOOP) return undefined;
    assert.equal(entry.type, WAL_TYPE_META_OP, `unknown log entry type ${entry.type} at index ${entry.index}`);
    return this.state.apply(MetaOp.decode(entry.payload));
  }

  /** Inode and handle ids for proposals: above what is applied and what is already handed out. */
  private reserveInode(): number {
    this.inodeReserved = Math.max(this.inodeReserved, this.state.nextInode);
    return this.inodeReserved++;
  }

  private reserveHandle(): number {
    this.handleReserved = Math.max(this.handleReserved, this.state.nextHandle);
    return this.handleReserved++;
  }

  /** Checkpoints when enough entries were applied since the last one (state is at appliedIndex here). */
  private maybeCheckpoint(): void {
    const r = this.rlog?.replica;
    if (!r || r.appliedIndex - r.snapshotIndex < (this.opts.checkpointEveryRecords ?? limits.checkpointEveryRecords)) return;
    if (this.rlog.takeCheckpoint(this.state.snapshot())) this.opts.log.info({ index: r.appliedIndex }, 'checkpoint taken');
  }

  private async waitServing(timeoutMs: number): Promise<void> {
    const deadline = this.clock.monoMs() + timeoutMs;
    while (!this.rlog.replica.serving) {
      if (this.clock.monoMs() > deadline) throw new GfsError('TIMEOUT', 'the replicated log did not become ready');
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** leader (serving), candidate (leading but still recovering the log) or follower. */
  private roleName(): string {
    const r = this.rlog?.replica;
    if (!r || r.role !== 'leader') return 'follower';
    return r.serving ? 'leader' : 'candidate';
  }

  private currentEpoch(): number {
    return this.rlog?.replica.leaderEpoch ?? this.rlog?.replica.promisedEpoch ?? 0;
  }

  /** Not the leader: the caller should go to the one we know of. */
  private notLeader(): GfsError {
    const hint = this.rlog.replica.leaderHint;
    const leader = hint ? this.opts.peers?.get(hint) : undefined;
    return new GfsError('NOT_LEADER', 'this master is not the leader', { detail: leader ? { leader } : {} });
  }

  private requireLeader(): void {
    if (!this.isLeader()) throw this.notLeader();
  }

  private async startElection(): Promise<void> {
    const election = new Election({
      endpoints: this.opts.etcd!, prefix: `/gfs/${this.opts.cluster ?? 'default'}/election`, memberId: this.opts.id, value: this.addr,
      leaseTtlMs: this.opts.electionTtlMs ?? limits.electionTtlMs, log: this.opts.log.child({ component: 'election' }), clock: this.clock,
    });
    this.election = election;
    election.on('elected', (epoch: number) => {
      this.inodeReserved = 0;
      this.handleReserved = 0;
      const ok = this.rlog.becomeLeader(epoch, election.leaseValidUntilMonoMs);
      this.opts.log.info({ epoch, accepted: ok }, ok ? 'leading: recovering the log' : 'elected with an epoch not newer than one seen; waiting');
    });
    election.on('deposed', () => this.rlog.leaseLost(this.rlog.replica.leaderEpoch ?? 0));
    // Renew the core's view of the lease as etcd keepalives succeed.
    this.electionTimer = setInterval(() => {
      if (!election.isLeader) return;
      const epoch = this.rlog.replica.leaderEpoch;
      if (epoch !== null && election.epoch === epoch) {
        this.rlog.leaseRenewed(epoch, election.leaseValidUntilMonoMs);
      } else if (this.rlog.replica.role !== 'leader' && this.rlog.replica.promisedEpoch >= election.epoch) {
        // Our replication stepped down in this epoch (lease doubt, or a newer epoch seen):
        // it cannot lead in it again, so take a new, larger one.
        this.opts.log.warn({ epoch: election.epoch }, 'leadership in this epoch is over; campaigning for a new one');
        election.recampaign().catch((e: Error) => this.opts.log.warn({ err: e.message }, 'campaigning again failed'));
      }
    }, 100);
    await election.start();
  }

  // ------------------------------------------------------------ handlers

  /**
   * Every call but heartbeats and cluster views needs the leader: a follower's state may
   * lag, so it answers NOT_LEADER with the leader's address and the client goes there.
   */
  private handlers(): MasterServer {
    const handlers = this.leaderHandlers();
    const anyMaster = new Set(['heartbeat', 'status', 'nodes']);
    for (const [name, handler] of Object.entries(handlers)) {
      if (anyMaster.has(name)) continue;
      const inner = handler as grpc.handleUnaryCall<unknown, unknown>;
      (handlers as unknown as Record<string, grpc.handleUnaryCall<unknown, unknown>>)[name] = (call, callback) => {
        if (!this.isLeader()) return callback(toGrpcError(this.notLeader()) as grpc.ServiceError);
        inner(call, callback);
      };
    }
    return handlers;
  }

  private leaderHandlers(): MasterServer {
    const now = () => this.clock.nowMs();
    return {
      createFile: unaryHandler(async (req) => {
        const path = normalizeFilePath(req.path);
        const replication = req.replication || this.opts.replicationDefault || limits.replicationDefault;
        if (replication < 1 || replication > limits.replicationMax) {
          throw new GfsError('INVALID_ARGUMENT', `replication must be 1..${limits.replicationMax}`);
        }
        this.requireLeader();
        const retried = req.requestId ? this.state.seenRequest(req.requestId) : undefined;
        if (retried) return { inode: retried.inode! };
        this.state.checkCreate(path, req.overwrite);
        const inode = this.reserveInode();
        const created = this.commit('create', MetaOp.fromPartial({
          requestId: req.requestId,
          createFile: { inode, path, overwrite: req.overwrite, replication, contentType: req.contentType, metadata: req.metadata, mtimeMs: now() },
        }));
        this.collector.touch(inode);
        if (!req.allocateChunk) {
          await created;
          return { inode };
        }
        // The create and the first chunk are proposed together (one replication round).
        // If no chunk can be placed, the create still stands: the client's own allocate
        // call then fails with the reason and it aborts the file.
        const allocated = this.allocateFor(inode, replication, [], req.requestId ? `${req.requestId}/chunk` : '', []).catch(() => ({ chunk: undefined }));
        const [, { chunk }] = await Promise.all([created, allocated]);
        return { inode, firstChunk: chunk };
      }),

      allocateChunk: unaryHandler(async (req) => this.allocate(req.inode, req.excludeNodes, req.requestId)),

      commitChunk: unaryHandler(async (req) => {
        await this.commitChunk(req);
        return {};
      }),

      abandonChunk: unaryHandler(async (req) => {
        this.collector.touch(req.inode);
        await this.commit('abandonChunk', MetaOp.fromPartial({ abandonChunk: { inode: req.inode, handle: req.handle } }));
        return {};
      }),

      completeFile: unaryHandler(async (req) => {
        // Commit of the last chunk and the completion share one group commit.
        const committed = req.lastChunk ? this.commitChunk(req.lastChunk) : undefined;
        const completed = this.commit('complete', MetaOp.fromPartial({
          requestId: req.requestId, completeFile: { inode: req.inode, size: req.size, checksum: req.checksum, mtimeMs: now() },
        }));
        await Promise.all([committed, completed]);
        const file = this.state.fileByInode(req.inode);
        if (!file) throw new GfsError('NO_SUCH_FILE', `inode ${req.inode} vanished`);
        return this.fileInfo(file);
      }),
      abortFile: unaryHandler(async (req) => {
        await this.commit('abort', MetaOp.fromPartial({ abortFile: { inode: req.inode } }));
        return {};
      }),

      stat: unaryHandler(async (req) => {
        const node = this.state.stat(normalizePath(req.path));
        return node.kind === 'file' ? this.fileInfo(node) : this.dirInfo(node.path, node.mtimeMs);
      }),

      list: unaryHandler(async (req) => {
        const limit = Math.min(req.limit || 10_000, 100_000);
        const { entries, truncated } = this.state.list(normalizePath(req.path), { recursive: req.recursive, limit, startAfter: req.startAfter });
        return {
          entries: entries.map((e) => (e.kind === 'file' ? { ...this.fileInfo(e), chunks: [] } : this.dirInfo(e.path, e.mtimeMs))),
          truncated,
        };
      }),

      mkdir: unaryHandler(async (req) => {
        const path = normalizePath(req.path);
        this.state.checkMkdir(path);
        await this.commit('mkdir', MetaOp.fromPartial({ requestId: req.requestId, mkdir: { path, mtimeMs: now() } }));
        return {};
      }),

      rename: unaryHandler(async (req) => {
        const source = normalizePath(req.source);
        const target = normalizePath(req.target);
        this.state.checkRename(source, target, req.overwrite);
        await this.commit('rename', MetaOp.fromPartial({ requestId: req.requestId, rename: { source, target, overwrite: req.overwrite, mtimeMs: now() } }));
        return {};
      }),

      delete: unaryHandler(async (req) => {
        const path = normalizePath(req.path);
        this.state.checkDelete(path, req.recursive);
        await this.commit('delete', MetaOp.fromPartial({ requestId: req.requestId, delete: { path, recursive: req.recursive, mtimeMs: now() } }));
        return {};
      }),

      reportCorrupt: unaryHandler(async (req) => {
        this.opts.log.error({ handle: req.handle, node: req.nodeId, detail: req.detail }, 'replica reported corrupt');
        this.registry.markCorrupt(req.handle, req.nodeId);
        return {};
      }),

      fsck: unaryHandler(async (req) => this.fsck(req.path)),
      gc: unaryHandler(async (req) => this.gc(req.dryRun)),
      df: unaryHandler(async () => this.df()),
      balance: unaryHandler(async (req) => this.balance(req.dryRun, req.thresholdRatio)),
      decommission: unaryHandler(async (req) => this.decommission(req.node, req.cancel)),

      status: unaryHandler(async () => this.status()),

      nodes: unaryHandler(async (): Promise<NodesResponse> => {
        const inflight = this.outbox.inflightClones();
        return {
          nodes: [...this.registry.nodes.values()].map((n) => {
            const info = {
              ...this.registry.toInfo(n),
              repairsIn: inflight.filter((c) => c.targetNodeId === n.id).length,
              repairsOut: inflight.filter((c) => c.sourceNodeId === n.id).length,
            };
            if (this.isDraining(n.id)) {
              const d = this.drainProgress(n);
              if (n.alive) info.state = d.removable ? 'decommissioned' : 'draining';
              info.drainingDetail = d.detail;
            }
            return info;
          }),
        };
      }),

      heartbeat: unaryHandler(async (req: HeartbeatRequest): Promise<HeartbeatResponse> => {
        if (!req.nodeId) throw new GfsError('INVALID_ARGUMENT', 'heartbeat without a node id');
        const known = this.registry.nodes.get(req.nodeId);
        const wasCorrupt = new Set(known?.corrupt ?? []);
        const { needFullReport, revived } = this.registry.heartbeat(req, this.clock.monoMs(), this.clock.nowMs());
        if (revived) this.opts.log.info({ node: req.nodeId, addr: req.addr }, 'chunkserver back');
        for (const handle of req.corrupt) {
          if (!wasCorrupt.has(handle)) this.opts.log.error({ handle, node: req.nodeId }, 'replica reported corrupt');
        }
        for (const handle of req.replicateFailed ?? []) this.healer.cloneFailed(req.nodeId, handle);
        const commands = needFullReport ? [] : this.outbox.deliver(req.nodeId, (cmd) => this.checkCommand(cmd), (id) => this.registry.nodes.get(id)?.addr);
        return { needFullReport, epoch: this.currentEpoch(), commands, clusterBusy: this.clusterBusy };
      }),
    };
  }

  /**
   * Allocates the next chunk of a file being written. A retried allocate gets the chunk
   * it allocated before; its replicas were never told about it (the client did not get
   * the answer), so a fresh placement is fine.
   */
  private async allocate(inode: number, excludeNodes: string[], requestId: string): Promise<{ chunk: ChunkInfo }> {
    this.requireLeader();
    const file = this.state.checkWritable(inode);
    return this.allocateFor(inode, file.replication, excludeNodes, requestId, file.chunks);
  }

  /** Places and proposes a new chunk for a file (which may still be a proposal itself). */
  private async allocateFor(
    inode: number, replication: number, excludeNodes: string[], requestId: string, earlier: readonly { handle: number; length: number }[],
  ): Promise<{ chunk: ChunkInfo }> {
    this.collector.touch(inode);
    await this.waitForPlaceable(replication);
    const nodes = this.placeChunk({ replication } as FileNode, new Set(excludeNodes));
    const result = await this.commit('allocate', MetaOp.fromPartial({
      requestId, allocateChunk: { inode, handle: this.reserveHandle(), version: 1 },
    }));
    const handle = result.handle!;
    let offset = 0;
    for (const c of result.file?.chunks ?? earlier) { if (c.handle === handle) break; offset += c.length; }
    if (nodes.length < replication) {
      this.opts.log.warn({ handle, replicas: nodes.length, goal: replication }, 'chunk allocated under-replicated: too few chunkservers alive');
    }
    return {
      chunk: {
        handle, version: result.version!, offset, length: 0, goal: replication,
        replicas: nodes.map((n) => ({ nodeId: n.id, addr: n.addr, zone: n.zone })),
      },
    };
  }

  private async commitChunk(req: { inode: number; handle: number; length: number; replicaNodes: string[]; version?: number }): Promise<void> {
    this.collector.touch(req.inode);
    await this.commit('commitChunk', MetaOp.fromPartial({
      commitChunk: { inode: req.inode, handle: req.handle, length: req.length, version: req.version ?? 0 },
    }));
    const owner = this.state.chunkOwner(req.handle);
    this.registry.recordWrite(req.handle, owner?.ref.version ?? 1, req.length, req.replicaNodes);
  }

  /** Alive and not draining: may take a new chunk. */
  private placeable(): NodeEntry[] {
    return this.registry.alive().filter((n) => !this.isDraining(n.id));
  }

  /**
   * Right after a start or failover the chunkservers are still checking in: an allocation
   * then waits for enough of them (a few heartbeats at most) rather than place a chunk
   * short of replicas. Bounded, so a cluster that really is small still gets its chunk.
   */
  private async waitForPlaceable(replication: number): Promise<void> {
    const deadline = this.clock.monoMs() + limits.allocateWaitForNodesMs;
    while (this.safeMode.on && this.placeable().length < replication && this.clock.monoMs() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  private placeChunk(file: FileNode, exclude: Set<string>): NodeEntry[] {
    // A draining node takes no new chunk.
    const alive = this.placeable();
    if (alive.length === 0) throw new GfsError('NO_CHUNKSERVERS', 'no chunkserver is alive (and not being decommissioned)');
    const chosen = choosePlacement(alive, file.replication, { exclude, random: this.random, fillCapRatio: this.fillCapRatio });
    if (chosen.length === 0) {
      throw new GfsError('NO_SPACE', `no chunkserver can take a new chunk (${alive.length} alive, ${exclude.size} excluded, or all full)`);
    }
    return chosen.map((c) => this.registry.nodes.get(c.id)!);
  }

  // ------------------------------------------------------------ views

  private fileInfo(f: FileNode): FileInfo {
    let offset = 0;
    const chunks: ChunkInfo[] = f.chunks.map((c) => {
      // Healthy replicas only: not corrupt, not stale, not about to be deleted.
      const health = this.chunkHealth(this.healChunkOf(c, f.inode));
      const replicas = readableReplicas(health).map((id) => this.registry.nodes.get(id)!).map((n) => ({ nodeId: n.id, addr: n.addr, zone: n.zone }));
      const info: ChunkInfo = { handle: c.handle, version: c.version, offset, length: c.length, replicas, goal: f.replication };
      offset += c.length;
      return info;
    });
    return {
      path: f.path, inode: f.inode, isDir: false, size: f.size, mtimeMs: f.mtimeMs,
      state: f.state === 'sealed' ? FileState.FILE_STATE_SEALED : FileState.FILE_STATE_WRITING,
      chunks, contentType: f.contentType, checksum: f.checksum, replication: f.replication, metadata: f.metadata,
    };
  }

  private dirInfo(path: string, mtimeMs: number): FileInfo {
    return {
      path, inode: 0, isDir: true, size: 0, mtimeMs, state: FileState.FILE_STATE_UNSPECIFIED, chunks: [],
      contentType: '', checksum: '', replication: 0, metadata: {},
    };
  }

  status(): StatusResponse {
    // The healer's last round (at most a lifecycle tick old) has the counts.
    const summary = this.healer.lastSummary;
    const underReplicated = summary.underReplicated;
    const missing = summary.missing;
    const nodes = [...this.registry.nodes.values()];
    return {
      masters: [{
        id: this.opts.id, addr: this.addr, role: this.roleName(), epoch: this.currentEpoch(),
        commitIndex: this.rlog?.replica.commitIndex ?? 0, appliedIndex: this.rlog?.replica.appliedIndex ?? 0,
        // How far this master's durable log is behind what it knows is committed.
        lag: Math.max(0, (this.rlog?.replica.commitIndex ?? 0) - (this.rlog?.replica.appliedIndex ?? 0)),
        pid: process.pid, adminAddr: this.admin?.addr ?? '',
      }],
      nodesAlive: nodes.filter((n) => n.alive).length,
      nodesDead: nodes.filter((n) => !n.alive).length,
      files: this.state.counts().files,
      chunks: this.state.counts().chunks,
      underReplicated,
      missing,
      capacityBytes: nodes.filter((n) => n.alive).reduce((s, n) => s + n.capacityBytes, 0),
      usedBytes: nodes.filter((n) => n.alive).reduce((s, n) => s + n.usedBytes, 0),
      safeMode: this.safeMode.on,
      safeModeReason: this.safeMode.reason,
      repair: this.healer.progress(),
      balance: this.balancer.progress(),
    };
  }

  /** Plans (dryRun) or runs one rebalance round now. */
  balance(dryRun: boolean, thresholdRatio: number): BalanceResponse {
    const threshold = thresholdRatio > 0 ? thresholdRatio : this.balancer.opts.thresholdRatio || limits.balanceThresholdRatio;
    const active = this.lifecycleActive();
    const blockedReason = !this.isLeader() ? 'not the leader' : this.safeMode.on ? `safe mode: ${this.safeMode.reason}` : '';
    const plan = this.balancer.round(threshold, dryRun || !active);
    return {
      nodes: plan.nodes.map((n) => ({ nodeId: n.id, fillRatio: n.fillRatio, role: n.role })),
      planned: plan.moves.map((m) => ({ handle: m.handle, sourceNodeId: m.sourceNodeId, targetNodeId: m.targetNodeId, bytes: m.length })),
      progress: this.balancer.progress(),
      ran: !dryRun && active,
      blockedReason,
    };
  }

  /**
   * Starts (or cancels) draining a node: it takes no new chunk, its replicas stop
   * counting toward goals so healing copies them elsewhere (with the usual limits), and
   * reads keep using it until it is removed. Nothing on it is deleted by the drain.
   */
  async decommission(name: string, cancel: boolean): Promise<DecommissionResponse> {
    this.requireLeader();
    const node = this.registry.find(name);
    if (!node) throw new GfsError('INVALID_ARGUMENT', `no chunkserver "${name}" (give its id, a unique prefix, or its address)`);
    if (cancel) {
      if (this.isDraining(node.id)) {
        await this.commit('decommission', MetaOp.fromPartial({ decommission: { nodeId: node.id, cancel: true, mtimeMs: this.clock.nowMs() } }));
        this.opts.log.info({ node: node.id }, 'decommission cancelled');
      }
      return { nodeId: node.id, state: node.alive ? 'alive' : 'dead', chunksLeft: 0, bytesLeft: 0, removable: false, detail: 'decommission cancelled' };
    }
    if (!this.isDraining(node.id)) {
      await this.commit('decommission', MetaOp.fromPartial({ decommission: { nodeId: node.id, cancel: false, mtimeMs: this.clock.nowMs() } }));
      this.opts.log.info({ node: node.id, addr: node.addr, chunks: node.chunks.size }, 'decommission started: draining');
    }
    const d = this.drainProgress(node);
    return { nodeId: node.id, state: d.removable ? 'decommissioned' : 'draining', chunksLeft: d.chunksLeft, bytesLeft: d.bytesLeft, removable: d.removable, detail: d.detail };
  }

  /** How much of a draining node still lacks a full set of replicas elsewhere. */
  private drainProgress(node: NodeEntry): { chunksLeft: number; bytesLeft: number; removable: boolean; detail: string } {
    let chunksLeft = 0;
    let bytesLeft = 0;
    for (const handle of node.chunks.keys()) {
      const owner = this.state.chunkOwner(handle);
      if (!owner) continue; // an orphan: GC's, not needed elsewhere
      const c = this.healChunkOf(owner.ref, owner.inode);
      if (c.committed && c.length === 0) continue;
      if (!c.committed || this.chunkHealth(c).healthy.length < c.goal) {
        chunksLeft++;
        bytesLeft += c.length;
      }
    }
    // Until its full report arrives (say, after a master restart) the node's chunks are unknown.
    const removable = node.reported && chunksLeft === 0 && node.openWrites === 0;
    const detail = removable
      ? 'removable: every chunk here has its goal on other nodes'
      : !node.reported ? 'draining: waiting for the node\'s chunk report'
      : `draining: ${chunksLeft} chunks (${formatBytes(bytesLeft)}) still below their goal without this node${node.openWrites ? `, ${node.openWrites} writes open` : ''}`;
    return { chunksLeft, bytesLeft, removable, detail };
  }

  /** fsck of one file or every file under a directory (visible files only). */
  fsck(path: string): FsckResponse {
    const p = normalizePath(path === '' ? '/' : path);
    const node = this.state.stat(p);
    const files = node.kind === 'file'
      ? [node]
      : this.state.list(p, { recursive: true, limit: 0, startAfter: '', filesOnly: true }).entries as FileNode[];
    const repairing = new Set(this.outbox.inflightClones().map((c) => c.handle));
    return buildFsck(
      files.map((f) => ({ path: f.path, inode: f.inode, size: f.size, chunks: f.chunks.map((c) => this.healChunkOf(c, f.inode)) })),
      (c) => this.chunkHealth(c),
      (h) => repairing.has(h),
      { filesMax: limits.fsckFilesMax, safeMode: this.safeMode.on },
    );
  }

  /**
   * What GC and healing would reclaim, and why. Without dryRun, a collection pass and a
   * healing round run first (with every usual check: nothing is forced).
   */
  async gc(dryRun: boolean): Promise<GcResponse> {
    const active = this.lifecycleActive();
    let ran = false;
    if (!dryRun && active) {
      this.healer.tick(true);
      await this.collector.tick();
      ran = true;
    }
    const items = [...this.collector.report(active), ...this.healingItems(active)];
    let dueBytes = 0;
    let waitingBytes = 0;
    for (const i of items) {
      if (i.due) dueBytes += i.bytes;
      else waitingBytes += i.bytes;
    }
    const blockedReason = !this.isLeader() ? 'not the leader' : this.safeMode.on ? `safe mode: ${this.safeMode.reason}` : '';
    return {
      items: items.slice(0, limits.gcItemsMax), safeMode: this.safeMode.on, leader: this.isLeader(), dueBytes, waitingBytes,
      ran, truncated: items.length > limits.gcItemsMax, blockedReason,
    };
  }

  /** Stale, corrupt and extra replicas of referenced chunks, with what will happen to each. */
  private healingItems(active: boolean): GcItem[] {
    const items: GcItem[] = [];
    const pending = new Map<string, string>();
    for (const d of this.outbox.allDeletes()) if (d.reason !== 'orphan') pending.set(`${d.handle}/${d.nodeId}`, d.detail);
    // The deletes a round would issue now, without starting any clone.
    const plan = planHealing({
      chunks: this.healChunks(),
      replicasOf: (h) => this.registry.replicaViews(h),
      nodes: [...this.registry.nodes.values()].map((n) => ({ id: n.id, zone: n.zone, capacityBytes: n.capacityBytes, freeBytes: n.freeBytes, openWrites: n.openWrites, usable: n.alive && n.reported })),
      inflight: this.outbox.inflightClones().map((c) => ({ handle: c.handle, sourceNodeId: c.sourceNodeId, targetNodeId: c.targetNodeId, bytes: c.length })),
      deletingOf: (h) => this.outbox.deletingOf(h),
      budget: { clonesMax: 0, bytesMax: 0, sourcesPerNodeMax: 0, targetsPerNodeMax: 0, fillCapRatio: this.fillCapRatio },
      random: () => 0.5,
    });
    const planned = new Map(plan.deletes.map((d) => [`${d.handle}/${d.nodeId}`, d]));
    for (const c of this.healChunks()) {
      if (!c.committed) continue;
      const replicas = this.registry.replicaViews(c.handle);
      const health = assessChunk(c, replicas, new Set());
      const lengthOn = (id: string) => replicas.find((r) => r.nodeId === id)?.length ?? 0;
      const extra = health.healthy.length > c.goal ? new Set(chooseTrim(health, this.registry.nodes, health.healthy.length - c.goal)) : new Set<string>();
      const candidates: [string, 'stale' | 'corrupt' | 'over-replicated'][] = [
        ...health.stale.map((id) => [id, 'stale'] as [string, 'stale']),
        ...health.corrupt.map((id) => [id, 'corrupt'] as [string, 'corrupt']),
        ...[...extra].map((id) => [id, 'over-replicated'] as [string, 'over-replicated']),
      ];
      for (const [nodeId, kind] of candidates) {
        const key = `${c.handle}/${nodeId}`;
        const sent = pending.get(key);
        const next = planned.get(key);
        let reason: string;
        let due = false;
        if (sent !== undefined) { reason = `delete sent: ${sent}`; due = true; }
        else if (next) { reason = active ? `deleted at the next round: ${next.detail}` : `would be deleted (${next.detail}) once out of safe mode`; due = active; }
        else if (readableReplicas(health).length === 0) reason = 'kept: no healthy replica exists, this may be the best copy left';
        else if (kind === 'corrupt') reason = 'kept until a healthy replacement exists';
        else reason = 'kept for now: a clone for this chunk is running';
        items.push({ kind, handle: c.handle, nodeId, path: '', inode: 0, bytes: lengthOn(nodeId), due, dueInMs: 0, reason });
      }
    }
    return items;
  }

  /** Used space split into live, trash, orphaned, stale, corrupt, extra and being-written bytes. */
  df(): DfResponse {
    const healthMemo = new Map<number, { health: ChunkHealth; extra: Set<string> } | null>();
    const chunkFacts = (handle: number) => {
      let v = healthMemo.get(handle);
      if (v !== undefined) return v;
      const owner = this.state.chunkOwner(handle);
      if (!owner) { healthMemo.set(handle, null); return null; }
      const c = this.healChunkOf(owner.ref, owner.inode);
      const health = assessChunk(c, this.registry.replicaViews(handle), new Set());
      const extra = health.healthy.length > c.goal ? new Set(chooseTrim(health, this.registry.nodes, health.healthy.length - c.goal)) : new Set<string>();
      v = { health, extra };
      healthMemo.set(handle, v);
      return v;
    };
    const report = accountSpace(
      [...this.registry.nodes.values()].map((n) => ({
        id: n.id, addr: n.addr, state: n.alive ? 'alive' : 'dead', capacityBytes: n.capacityBytes, usedBytes: n.usedBytes,
        freeBytes: n.freeBytes, counted: n.alive,
      })),
      (nodeId) => [...(this.registry.nodes.get(nodeId)?.chunks ?? new Map()).entries()].map(([handle, r]) => ({ handle, length: r.length })),
      (handle, nodeId) => {
        const owner = this.state.chunkOwner(handle);
        const facts = chunkFacts(handle);
        const location = owner ? this.state.inodeLocation(owner.inode) : undefined;
        const verdictOf = (): 'healthy' | 'stale' | 'corrupt' | 'unavailable' | undefined => {
          if (!facts) return undefined;
          if (facts.health.stale.includes(nodeId)) return 'stale';
          if (facts.health.corrupt.includes(nodeId)) return 'corrupt';
          return 'healthy';
        };
        return spaceClass(owner && location ? { location, committed: owner.ref.committed } : undefined, verdictOf(), facts?.extra.has(nodeId) ?? false);
      },
    );
    const fromSplit = (split: SpaceSplit) => ({
      liveBytes: split.live, trashBytes: split.trash, orphanBytes: split.orphan, staleBytes: split.stale,
      corruptBytes: split.corrupt, overReplicatedBytes: split.overReplicated, writingBytes: split.writing, otherBytes: split.other,
    });
    return {
      capacityBytes: report.capacityBytes, usedBytes: report.usedBytes, freeBytes: report.freeBytes, ...fromSplit(report.split),
      nodes: report.nodes.map((n) => ({
        nodeId: n.id, addr: n.addr, state: n.state, capacityBytes: n.capacityBytes, usedBytes: n.usedBytes, freeBytes: n.freeBytes,
        ...fromSplit(n.split),
      })),
      safeMode: this.safeMode.on,
    };
  }
}
