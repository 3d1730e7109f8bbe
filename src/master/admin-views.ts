/**
 * The operator's views of the cluster (gfsctl status, nodes, fsck, gc, df, balance,
 * decommission, and the admin HTTP /status): read from the metadata, the registry and
 * the lifecycle, and computed with the same assessment healing uses, so a view never
 * disagrees with what the lifecycle will do.
 *
 * Invariants:
 * - A view changes nothing, except where the operator asks for an action (gc and balance
 *   without dry-run, decommission), and then only through the lifecycle's usual checks
 *   or a committed op: nothing is forced.
 * - Views answer on any master; actions that change state need the leader.
 * - No number in a reply can fail to serialize: every reply passes boundedReply (finite,
 *   non-negative, at most Number.MAX_SAFE_INTEGER) on its way out.
 */
import {
  MetaOp,
  type StatusResponse, type NodesResponse, type FsckResponse, type GcResponse, type GcItem, type DfResponse,
  type BalanceResponse, type DecommissionResponse, type MasterStatus,
} from '../../gen/gfs';
import { GfsError } from '../common/errors';
import { limits } from '../common/limits';
import type { Logger } from '../common/log';
import type { Clock } from '../common/clock';
import { normalizePath } from '../common/paths';
import { formatBytes } from '../common/units';
import type { ApplyResult, FileNode, MetaState } from './meta-state';
import type { NodeEntry, NodeRegistry } from './registry';
import type { Lifecycle } from './lifecycle/lifecycle';
import { assessChunk, chooseTrim, planHealing, readableReplicas, type ChunkHealth } from './lifecycle/heal-plan';
import { accountSpace, spaceClass, type SpaceNode, type SpaceSplit } from './lifecycle/space';
import { boundedReply } from './reply-bounds';
import { buildFsck } from './fsck';

/** What the views read from the master process. */
export interface AdminHost {
  state: () => MetaState;
  registry: NodeRegistry;
  lifecycle: () => Lifecycle;
  commit: (kind: string, op: MetaOp) => Promise<ApplyResult>;
  isLeader: () => boolean;
  requireLeader: () => void;
  /** This master's own line in status. */
  masterInfo: () => MasterStatus;
  clock: Clock;
  log: Logger;
  /** Streams: the sealed segments retention will drop (due now, or later with when). */
  retention?: (nowMs: number) => GcItem[];
  /** Streams: run a roll and retention pass now (gc without --dry-run). */
  retentionNow?: () => Promise<void>;
}

/** How much of a draining node still lacks a full set of replicas elsewhere. */
export interface DrainProgress { chunksLeft: number; bytesLeft: number; removable: boolean; detail: string }

export class AdminViews {
  constructor(private readonly host: AdminHost) {}

  private get lc(): Lifecycle { return this.host.lifecycle(); }

  /** Why the lifecycle holds back ('' when it acts). */
  private blockedReason(): string {
    return !this.host.isLeader() ? 'not the leader' : this.lc.safeMode.on ? `safe mode: ${this.lc.safeMode.reason}` : '';
  }

  status(): StatusResponse {
    // The healer's last round (at most a lifecycle tick old) has the counts.
    const summary = this.lc.healer.lastSummary;
    const nodes = [...this.host.registry.nodes.values()];
    const alive = nodes.filter((n) => n.alive);
    const counts = this.host.state().counts();
    const space = accountSpace(this.spaceNodes(), () => [], () => 'live');
    return this.bounded('status', {
      masters: [this.host.masterInfo()],
      nodesAlive: alive.length,
      nodesDead: nodes.length - alive.length,
      files: counts.files,
      chunks: counts.chunks,
      underReplicated: summary.underReplicated,
      missing: summary.missing,
      // Each file system once, used = capacity - free: the numbers add up however nodes share disks.
      capacityBytes: space.capacityBytes,
      usedBytes: space.usedBytes,
      safeMode: this.lc.safeMode.on,
      safeModeReason: this.lc.safeMode.reason,
      repair: this.lc.healer.progress(),
      balance: this.lc.balancer.progress(),
    });
  }

  /** Clamps what cannot be serialized (and logs it): a view must never break its RPC. */
  private bounded<T extends object>(what: string, reply: T): T {
    return boundedReply(reply, (path, value) => this.host.log.error({ view: what, field: path, value: String(value) }, 'reply number out of range: clamped'));
  }

  private spaceNodes(): SpaceNode[] {
    return [...this.host.registry.nodes.values()].map((n) => ({
      id: n.id, addr: n.addr, state: n.alive ? 'alive' : 'dead', capacityBytes: n.capacityBytes, usedBytes: n.usedBytes,
      freeBytes: n.freeBytes, counted: n.alive, fsId: n.fsId,
    }));
  }

  nodes(): NodesResponse {
    const inflight = this.lc.outbox.inflightClones();
    return this.bounded('nodes', {
      nodes: [...this.host.registry.nodes.values()].map((n) => {
        const info = {
          ...this.host.registry.toInfo(n),
          repairsIn: inflight.filter((c) => c.targetNodeId === n.id).length,
          repairsOut: inflight.filter((c) => c.sourceNodeId === n.id).length,
        };
        if (this.lc.isDraining(n.id)) {
          const d = this.drainProgress(n);
          if (n.alive) info.state = d.removable ? 'decommissioned' : 'draining';
          info.drainingDetail = d.detail;
        }
        return info;
      }),
    });
  }

  /** Plans (dryRun) or runs one rebalance round now. */
  balance(dryRun: boolean, thresholdRatio: number): BalanceResponse {
    const balancer = this.lc.balancer;
    const threshold = thresholdRatio > 0 ? thresholdRatio : balancer.opts.thresholdRatio || limits.balanceThresholdRatio;
    const active = this.lc.active;
    const plan = balancer.round(threshold, dryRun || !active);
    return {
      nodes: plan.nodes.map((n) => ({ nodeId: n.id, fillRatio: n.fillRatio, role: n.role })),
      planned: plan.moves.map((m) => ({ handle: m.handle, sourceNodeId: m.sourceNodeId, targetNodeId: m.targetNodeId, bytes: m.length })),
      progress: balancer.progress(),
      ran: !dryRun && active,
      blockedReason: this.blockedReason(),
    };
  }

  /**
   * Starts (or cancels) draining a node: it takes no new chunk, its replicas stop
   * counting toward goals so healing copies them elsewhere (with the usual limits), and
   * reads keep using it until it is removed. Nothing on it is deleted by the drain.
   */
  async decommission(name: string, cancel: boolean): Promise<DecommissionResponse> {
    this.host.requireLeader();
    const node = this.host.registry.find(name);
    if (!node) throw new GfsError('INVALID_ARGUMENT', `no chunkserver "${name}" (give its id, a unique prefix, or its address)`);
    const draining = this.lc.isDraining(node.id);
    if (cancel) {
      if (draining) {
        await this.host.commit('decommission', MetaOp.fromPartial({ decommission: { nodeId: node.id, cancel: true, mtimeMs: this.host.clock.nowMs() } }));
        this.host.log.info({ node: node.id }, 'decommission cancelled');
      }
      return { nodeId: node.id, state: node.alive ? 'alive' : 'dead', chunksLeft: 0, bytesLeft: 0, removable: false, detail: 'decommission cancelled' };
    }
    if (!draining) {
      await this.host.commit('decommission', MetaOp.fromPartial({ decommission: { nodeId: node.id, cancel: false, mtimeMs: this.host.clock.nowMs() } }));
      this.host.log.info({ node: node.id, addr: node.addr, chunks: node.chunks.size }, 'decommission started: draining');
    }
    const d = this.drainProgress(node);
    return { nodeId: node.id, state: d.removable ? 'decommissioned' : 'draining', chunksLeft: d.chunksLeft, bytesLeft: d.bytesLeft, removable: d.removable, detail: d.detail };
  }

  drainProgress(node: NodeEntry): DrainProgress {
    let chunksLeft = 0;
    let bytesLeft = 0;
    const stuck = new Map<string, number>();
    for (const handle of node.chunks.keys()) {
      const owner = this.host.state().chunkOwner(handle);
      if (!owner) continue; // an orphan: GC's, not needed elsewhere
      const c = this.lc.healChunkOf(owner.ref, owner.inode);
      if (c.committed && c.length === 0) continue;
      if (!c.committed || this.lc.chunkHealth(c).healthy.length < c.goal) {
        chunksLeft++;
        bytesLeft += c.length;
        const why = this.lc.healer.unrepairableReason(handle);
        if (why !== '') stuck.set(why, (stuck.get(why) ?? 0) + 1);
      }
    }
    const blocked = [...stuck].map(([why, n]) => `${n} cannot be copied now: ${why}`).join('; ');
    // Until its full report arrives (say, after a master restart) the node's chunks are unknown.
    const removable = node.reported && chunksLeft === 0 && node.openWrites === 0;
    const detail = removable
      ? 'removable: every chunk here has its goal on other nodes'
      : !node.reported ? 'draining: waiting for the node\'s chunk report'
      : `draining: ${chunksLeft} chunks (${formatBytes(bytesLeft)}) still below their goal without this node${node.openWrites ? `, ${node.openWrites} writes open` : ''}${blocked ? ` (${blocked})` : ''}`;
    return { chunksLeft, bytesLeft, removable, detail };
  }

  /** fsck of one file or every file under a directory (visible files only). */
  fsck(path: string): FsckResponse {
    const state = this.host.state();
    const p = normalizePath(path === '' ? '/' : path);
    const node = state.stat(p);
    const files = node.kind === 'file'
      ? [node]
      : state.list(p, { recursive: true, limit: 0, startAfter: '', filesOnly: true }).entries as FileNode[];
    const repairing = new Set(this.lc.outbox.inflightClones().map((c) => c.handle));
    return this.bounded('fsck', buildFsck(
      files.map((f) => ({ path: f.path, inode: f.inode, size: f.size, chunks: f.chunks.map((c) => this.lc.healChunkOf(c, f.inode)) })),
      (c) => this.lc.chunkHealth(c),
      (h) => repairing.has(h),
      (h) => this.lc.healer.unrepairableReason(h),
      { filesMax: limits.fsckFilesMax, safeMode: this.lc.safeMode.on },
    ));
  }

  /**
   * What GC and healing would reclaim, and why. Without dryRun, a collection pass and a
   * healing round run first (with every usual check: nothing is forced).
   */
  async gc(dryRun: boolean): Promise<GcResponse> {
    const active = this.lc.active;
    let ran = false;
    if (!dryRun && active) {
      await this.lc.collectNow();
      await this.host.retentionNow?.();
      ran = true;
    }
    const items = [...this.lc.collector.report(active), ...this.healingItems(active), ...(this.host.retention?.(this.host.clock.nowMs()) ?? [])];
    let dueBytes = 0;
    let waitingBytes = 0;
    for (const i of items) {
      if (i.due) dueBytes += i.bytes;
      else waitingBytes += i.bytes;
    }
    return {
      items: items.slice(0, limits.gcItemsMax), safeMode: this.lc.safeMode.on, leader: this.host.isLeader(), dueBytes, waitingBytes,
      ran, truncated: items.length > limits.gcItemsMax, blockedReason: this.blockedReason(),
    };
  }

  /** The deletes a healing round would issue now, without starting any clone. */
  private plannedDeletes(): Map<string, { detail: string }> {
    const { registry } = this.host;
    const plan = planHealing({
      chunks: this.lc.healChunks(),
      replicasOf: (h) => this.lc.replicaViews(h),
      nodes: [...registry.nodes.values()].map((n) => ({ id: n.id, zone: n.zone, capacityBytes: n.capacityBytes, freeBytes: n.freeBytes, openWrites: n.openWrites, usable: n.alive && n.reported })),
      inflight: this.lc.outbox.inflightClones().map((c) => ({ handle: c.handle, sourceNodeId: c.sourceNodeId, targetNodeId: c.targetNodeId, bytes: c.length })),
      deletingOf: (h) => this.lc.outbox.deletingOf(h),
      budget: { clonesMax: 0, bytesMax: 0, sourcesPerNodeMax: 0, targetsPerNodeMax: 0, fillCapRatio: this.lc.fillCapRatio() },
      random: () => 0.5,
    });
    return new Map(plan.deletes.map((d) => [`${d.handle}/${d.nodeId}`, d]));
  }

  /** Stale, corrupt and extra replicas of referenced chunks, with what will happen to each. */
  private healingItems(active: boolean): GcItem[] {
    const items: GcItem[] = [];
    const pending = new Map<string, string>();
    for (const d of this.lc.outbox.allDeletes()) if (d.reason !== 'orphan') pending.set(`${d.handle}/${d.nodeId}`, d.detail);
    const planned = this.plannedDeletes();
    for (const c of this.lc.healChunks()) {
      if (!c.committed) continue;
      const replicas = this.lc.replicaViews(c.handle);
      const health = assessChunk(c, replicas, new Set());
      const lengthOn = (id: string) => replicas.find((r) => r.nodeId === id)?.length ?? 0;
      for (const [nodeId, kind] of this.removalCandidates(health)) {
        const key = `${c.handle}/${nodeId}`;
        const { reason, due } = removalReason(pending.get(key), planned.get(key)?.detail, active, kind, readableReplicas(health).length);
        items.push({ kind, handle: c.handle, nodeId, path: '', inode: 0, bytes: lengthOn(nodeId), due, dueInMs: 0, reason });
      }
    }
    return items;
  }

  private removalCandidates(health: ChunkHealth): [string, 'stale' | 'corrupt' | 'over-replicated'][] {
    return [
      ...health.stale.map((id) => [id, 'stale'] as [string, 'stale']),
      ...health.corrupt.map((id) => [id, 'corrupt'] as [string, 'corrupt']),
      ...this.extraReplicas(health).map((id) => [id, 'over-replicated'] as [string, 'over-replicated']),
    ];
  }

  /** Healthy replicas beyond the goal, in the order healing would trim them. */
  private extraReplicas(health: ChunkHealth): string[] {
    return health.healthy.length > health.goal ? chooseTrim(health, this.host.registry.nodes, health.healthy.length - health.goal) : [];
  }

  /** Used space split into live, trash, orphaned, stale, corrupt, extra and being-written bytes. */
  df(): DfResponse {
    const { registry } = this.host;
    const state = this.host.state();
    const healthMemo = new Map<number, { health: ChunkHealth; extra: Set<string> } | null>();
    const chunkFacts = (handle: number) => {
      let v = healthMemo.get(handle);
      if (v !== undefined) return v;
      const owner = state.chunkOwner(handle);
      if (!owner) { healthMemo.set(handle, null); return null; }
      const health = assessChunk(this.lc.healChunkOf(owner.ref, owner.inode), this.lc.replicaViews(handle), new Set());
      v = { health, extra: new Set(this.extraReplicas(health)) };
      healthMemo.set(handle, v);
      return v;
    };
    const classify = (handle: number, nodeId: string) => {
      const owner = state.chunkOwner(handle);
      const facts = chunkFacts(handle);
      const location = owner ? state.inodeLocation(owner.inode) : undefined;
      const verdict = !facts ? undefined : facts.health.stale.includes(nodeId) ? 'stale' : facts.health.corrupt.includes(nodeId) ? 'corrupt' : 'healthy';
      return spaceClass(owner && location ? { location, committed: owner.ref.committed } : undefined, verdict, facts?.extra.has(nodeId) ?? false);
    };
    const report = accountSpace(
      this.spaceNodes(),
      (nodeId) => [...(registry.nodes.get(nodeId)?.chunks ?? new Map()).entries()].map(([handle, r]) => ({ handle, length: r.length })),
      classify,
    );
    return this.bounded('df', {
      capacityBytes: report.capacityBytes, usedBytes: report.usedBytes, freeBytes: report.freeBytes, ...fromSplit(report.split),
      nodes: report.nodes.map((n) => ({
        nodeId: n.id, addr: n.addr, state: n.state, capacityBytes: n.capacityBytes, usedBytes: n.usedBytes, freeBytes: n.freeBytes,
        ...fromSplit(n.split), fsId: n.fsId ?? '', gfsUsedBytes: n.gfsUsedBytes, sharesFsWith: n.sharesFsWith,
      })),
      safeMode: this.lc.safeMode.on,
      gfsUsedBytes: report.gfsUsedBytes, filesystems: report.filesystems, sharedNotes: report.sharedNotes,
      ...this.retentionDue(),
    });
  }

  /** Replica bytes and segments retention drops at the next stream tick. */
  private retentionDue(): { retentionDueBytes: number; retentionDueSegments: number } {
    const due = (this.host.retention?.(this.host.clock.nowMs()) ?? []).filter((i) => i.due);
    return { retentionDueBytes: due.reduce((n, i) => n + i.bytes, 0), retentionDueSegments: due.length };
  }
}

/** What will happen to a stale, corrupt or extra replica, as gfsctl gc explains it. */
function removalReason(
  sent: string | undefined, next: string | undefined, active: boolean, kind: 'stale' | 'corrupt' | 'over-replicated', readable: number,
): { reason: string; due: boolean } {
  if (sent !== undefined) return { reason: `delete sent: ${sent}`, due: true };
  if (next !== undefined) return { reason: active ? `deleted at the next round: ${next}` : `would be deleted (${next}) once out of safe mode`, due: active };
  if (readable === 0) return { reason: 'kept: no healthy replica exists, this may be the best copy left', due: false };
  if (kind === 'corrupt') return { reason: 'kept until a healthy replacement exists', due: false };
  return { reason: 'kept for now: a clone for this chunk is running', due: false };
}

function fromSplit(split: SpaceSplit) {
  return {
    liveBytes: split.live, trashBytes: split.trash, orphanBytes: split.orphan, staleBytes: split.stale,
    corruptBytes: split.corrupt, overReplicatedBytes: split.overReplicated, writingBytes: split.writing, otherBytes: split.other,
  };
}
