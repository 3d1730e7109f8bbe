/**
 * Chunkserver registry and replica locations. Soft state: rebuilt from heartbeats,
 * never written to the WAL.
 *
 * Invariants:
 * - A node is alive iff it heartbeated within deadAfterMs; a dead node's replicas are
 *   never handed to readers or writers.
 * - locations(handle) only holds nodes whose last report (or acknowledged write) has
 *   the chunk.
 * - A replica reported corrupt stays listed (so healing knows to delete it once it is
 *   replaced) but is never handed to a reader and never used as a clone source; only
 *   the node's full report or the replica's removal clears the mark.
 * - A node that came back (or is new to this master) is `reported` only once its full
 *   report arrived: until then what we remember of its chunks may be wrong, so its
 *   replicas count neither as healthy nor as deletable.
 * - A node is suspect from the moment a client or chunkserver reports it unreachable
 *   until its next heartbeat: placement and cloning avoid it at once, while it is still
 *   declared dead only after deadAfterMs of silence (a suspect node stays alive).
 */
import { limits } from '../common/limits';
import type { HeartbeatRequest, NodeInfo } from '../../gen/gfs';
import { IoRate } from '../common/io-rate';


export interface ReplicaState { version: number; length: number }

export interface NodeEntry {
  id: string;
  addr: string;
  adminAddr: string;
  zone: string;
  tier: string;
  capacityBytes: number;
  usedBytes: number;
  freeBytes: number;
  openWrites: number;
  lastHeartbeatMonoMs: number;
  lastHeartbeatWallMs: number;
  alive: boolean;
  /** A full report arrived since this node was (re)registered. */
  reported: boolean;
  chunks: Map<number, ReplicaState>;
  /** Handles of replicas here reported corrupt. */
  corrupt: Set<number>;
  /** REPLICATE commands the node has queued or running, as it last said. */
  replicating: number;
  /** Recent disk reads and writes, bytes/s, as it last said (0 when it does not say). */
  readBytesPerSec: number;
  writeBytesPerSec: number;
  /** Bytes/s the node is copying in by REPLICATE now (from its heartbeats' byte counter). */
  replicateRate: IoRate;
  replicatedBytesLast: number;
  /** Served client reads or chain writes within the last second, as it last said. */
  foregroundBusy: boolean;
  /** Why it is suspect ('' = not): reported unreachable since its last heartbeat. */
  suspect: string;
  /** The file system of its data dir, as it last said ('' = unknown). */
  fsId: string;
}

/** One replica as the lifecycle planners see it (pure data, no registry references). */
export interface ReplicaView {
  nodeId: string;
  version: number;
  length: number;
  corrupt: boolean;
  /** The node is alive and has sent its full report. */
  usable: boolean;
}

/** Who hears of a node coming, going or reporting a corrupt replica (cluster events). */
export interface RegistryListener {
  nodeUp(node: NodeEntry, revived: boolean): void;
  nodeDown(node: NodeEntry): void;
  replicaCorrupt(handle: number, nodeId: string): void;
}

export class NodeRegistry {
  readonly nodes = new Map<string, NodeEntry>();
  private readonly locations = new Map<number, Set<string>>();
  listener: RegistryListener | undefined;

  constructor(private readonly deadAfterMs: number) {}

  /** Applies a heartbeat; returns whether the master needs a full report from this node. */
  heartbeat(req: HeartbeatRequest, monoMs: number, wallMs: number): { needFullReport: boolean; revived: boolean } {
    let node = this.nodes.get(req.nodeId);
    const known = node !== undefined;
    if (!node) {
      node = {
        id: req.nodeId, addr: req.addr, adminAddr: req.adminAddr, zone: req.zone, tier: req.tier,
        capacityBytes: 0, usedBytes: 0, freeBytes: 0, openWrites: 0,
        lastHeartbeatMonoMs: monoMs, lastHeartbeatWallMs: wallMs, alive: true, reported: false, chunks: new Map(),
        corrupt: new Set(), replicating: 0, readBytesPerSec: 0, writeBytesPerSec: 0,
        replicateRate: new IoRate(limits.replicateRateWindowMs), replicatedBytesLast: 0, foregroundBusy: false,
        suspect: '', fsId: '',
      };
      this.nodes.set(node.id, node);
    }
    const revived = !node.alive;
    Object.assign(node, {
      addr: req.addr, adminAddr: req.adminAddr, zone: req.zone, tier: req.tier,
      capacityBytes: req.capacityBytes, usedBytes: req.usedBytes, freeBytes: req.freeBytes, openWrites: req.openWrites,
      lastHeartbeatMonoMs: monoMs, lastHeartbeatWallMs: wallMs, alive: true, replicating: req.replicating ?? 0,
      readBytesPerSec: req.readBytesPerSec ?? 0, writeBytesPerSec: req.writeBytesPerSec ?? 0,
      foregroundBusy: req.foregroundBusy ?? false, suspect: '', fsId: req.fsId ?? '',
    });
    if (!known || revived) this.listener?.nodeUp(node, revived);
    if (req.replicatedBytesTotal !== undefined) {
      // A counter that went back means the process restarted: start the rate afresh.
      if (revived || req.replicatedBytesTotal < node.replicatedBytesLast) node.replicateRate = new IoRate(limits.replicateRateWindowMs);
      node.replicatedBytesLast = req.replicatedBytesTotal;
      node.replicateRate.sample(req.replicatedBytesTotal, monoMs);
    }
    // A replica's durable length only grows for a version: a report built before the
    // last sync (and delivered after the write was recorded) must not shrink it.
    const before = node.chunks;
    if (req.fullReport) {
      for (const handle of node.chunks.keys()) this.unlink(handle, node.id);
      node.chunks = new Map();
      node.corrupt.clear();
      node.reported = true;
    } else if (!known || revived || !node.reported) {
      // We know nothing reliable about its chunks: ask for everything.
      node.reported = false;
      return { needFullReport: true, revived };
    }
    for (const c of req.chunks) {
      const prev = before.get(c.handle);
      const length = prev !== undefined && prev.version === c.version ? Math.max(prev.length, c.length) : c.length;
      node.chunks.set(c.handle, { version: c.version, length });
      this.link(c.handle, node.id);
    }
    for (const handle of req.removed) {
      node.chunks.delete(handle);
      node.corrupt.delete(handle);
      this.unlink(handle, node.id);
    }
    // A corrupt report for a chunk the node no longer lists means nothing.
    for (const handle of req.corrupt) this.markCorrupt(handle, node.id);
    return { needFullReport: false, revived };
  }

  /**
   * A client or chunkserver could not reach the node: avoid it for placement and cloning
   * until it heartbeats again. Returns whether it was not suspect before.
   */
  markSuspect(nodeId: string, why: string): boolean {
    const node = this.nodes.get(nodeId);
    if (!node || !node.alive || node.suspect !== '') return false;
    node.suspect = why;
    return true;
  }

  /** Alive and not suspect: may receive a new chunk or a clone. */
  placeable(): NodeEntry[] {
    return [...this.nodes.values()].filter((n) => n.alive && n.suspect === '');
  }

  /** Marks silent nodes dead; returns the ids that just died. */
  tick(monoMs: number): string[] {
    const died: string[] = [];
    for (const n of this.nodes.values()) {
      if (n.alive && monoMs - n.lastHeartbeatMonoMs > this.deadAfterMs) {
        n.alive = false;
        n.suspect = '';
        died.push(n.id);
        this.listener?.nodeDown(n);
      }
    }
    return died;
  }

  /** Records replicas that acknowledged a write, before their next report arrives. */
  recordWrite(handle: number, version: number, length: number, nodeIds: readonly string[]): void {
    for (const id of nodeIds) {
      const node = this.nodes.get(id);
      if (!node) continue;
      const prev = node.chunks.get(handle);
      if (!prev || prev.version < version || prev.length < length) node.chunks.set(handle, { version, length });
      this.link(handle, id);
    }
  }

  dropReplica(handle: number, nodeId: string): void {
    this.nodes.get(nodeId)?.chunks.delete(handle);
    this.nodes.get(nodeId)?.corrupt.delete(handle);
    this.unlink(handle, nodeId);
  }

  /** A replica found corrupt (by a read or the scrubber): kept listed until deleted, never served. */
  markCorrupt(handle: number, nodeId: string): void {
    const node = this.nodes.get(nodeId);
    if (!node?.chunks.has(handle) || node.corrupt.has(handle)) return;
    node.corrupt.add(handle);
    this.listener?.replicaCorrupt(handle, nodeId);
  }

  /** Live replicas holding at least `version` with at least `length` bytes, not corrupt. */
  replicas(handle: number, version: number, length: number): NodeEntry[] {
    const out: NodeEntry[] = [];
    for (const id of this.locations.get(handle) ?? []) {
      const node = this.nodes.get(id);
      const r = node?.chunks.get(handle);
      if (node && node.alive && r && !node.corrupt.has(handle) && r.version >= version && r.length >= length) out.push(node);
    }
    return out;
  }

  /** Every replica of a handle that any node reports, for the lifecycle planners. */
  replicaViews(handle: number): ReplicaView[] {
    const out: ReplicaView[] = [];
    for (const id of this.locations.get(handle) ?? []) {
      const node = this.nodes.get(id);
      const r = node?.chunks.get(handle);
      if (!node || !r) continue;
      out.push({ nodeId: id, version: r.version, length: r.length, corrupt: node.corrupt.has(handle), usable: node.alive && node.reported });
    }
    return out;
  }

  /** Every handle some node reports holding (alive or not). */
  reportedHandles(): IterableIterator<number> {
    return this.locations.keys();
  }

  /** Whether the node lists the handle now (a DELETE is confirmed when it stops). */
  holds(nodeId: string, handle: number): boolean {
    return this.nodes.get(nodeId)?.chunks.has(handle) ?? false;
  }

  /** Every node that reports the handle, alive or not, with what it reports. */
  allReplicas(handle: number): { node: NodeEntry; replica: ReplicaState }[] {
    const out: { node: NodeEntry; replica: ReplicaState }[] = [];
    for (const id of this.locations.get(handle) ?? []) {
      const node = this.nodes.get(id);
      const r = node?.chunks.get(handle);
      if (node && r) out.push({ node, replica: r });
    }
    return out;
  }

  byAddr(addr: string): NodeEntry | undefined {
    for (const n of this.nodes.values()) if (n.addr === addr) return n;
    return undefined;
  }

  alive(): NodeEntry[] {
    return [...this.nodes.values()].filter((n) => n.alive);
  }

  /** A node by id, unique id prefix, or address. */
  find(nameOrAddr: string): NodeEntry | undefined {
    const exact = this.nodes.get(nameOrAddr) ?? this.byAddr(nameOrAddr);
    if (exact) return exact;
    const matches = [...this.nodes.values()].filter((n) => n.id.startsWith(nameOrAddr));
    return matches.length === 1 ? matches[0] : undefined;
  }

  toInfo(n: NodeEntry): NodeInfo {
    return {
      id: n.id, addr: n.addr, zone: n.zone, tier: n.tier, capacityBytes: n.capacityBytes, usedBytes: n.usedBytes,
      freeBytes: n.freeBytes, chunkCount: n.chunks.size, state: !n.alive ? 'dead' : n.suspect !== '' ? 'suspect' : 'alive',
      lastHeartbeatMs: n.lastHeartbeatWallMs, adminAddr: n.adminAddr, openWrites: n.openWrites,
      corruptCount: n.corrupt.size, repairsIn: 0, repairsOut: 0, drainingDetail: '',
      readBytesPerSec: Math.round(n.readBytesPerSec), writeBytesPerSec: Math.round(n.writeBytesPerSec),
      suspect: n.suspect !== '', fsId: n.fsId,
    };
  }

  private link(handle: number, nodeId: string): void {
    let set = this.locations.get(handle);
    if (!set) { set = new Set(); this.locations.set(handle, set); }
    set.add(nodeId);
  }

  private unlink(handle: number, nodeId: string): void {
    const set = this.locations.get(handle);
    if (!set) return;
    set.delete(nodeId);
    if (set.size === 0) this.locations.delete(handle);
  }
}
