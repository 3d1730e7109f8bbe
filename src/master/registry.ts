/**
 * Chunkserver registry and replica locations. Soft state: rebuilt from heartbeats,
 * never written to the WAL.
 *
 * Invariants:
 * - A node is alive iff it heartbeated within deadAfterMs; a dead node's replicas are
 *   never handed to readers or writers.
 * - locations(handle) only holds nodes whose last report (or acknowledged write) has
 *   the chunk.
 */
import type { HeartbeatRequest, NodeInfo } from '../../gen/gfs';

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
  chunks: Map<number, ReplicaState>;
}

export class NodeRegistry {
  readonly nodes = new Map<string, NodeEntry>();
  private readonly locations = new Map<number, Set<string>>();

  constructor(private readonly deadAfterMs: number) {}

  /** Applies a heartbeat; returns whether the master needs a full report from this node. */
  heartbeat(req: HeartbeatRequest, monoMs: number, wallMs: number): { needFullReport: boolean; revived: boolean } {
    let node = this.nodes.get(req.nodeId);
    const known = node !== undefined;
    if (!node) {
      node = {
        id: req.nodeId, addr: req.addr, adminAddr: req.adminAddr, zone: req.zone, tier: req.tier,
        capacityBytes: 0, usedBytes: 0, freeBytes: 0, openWrites: 0,
        lastHeartbeatMonoMs: monoMs, lastHeartbeatWallMs: wallMs, alive: true, chunks: new Map(),
      };
      this.nodes.set(node.id, node);
    }
    const revived = !node.alive;
    Object.assign(node, {
      addr: req.addr, adminAddr: req.adminAddr, zone: req.zone, tier: req.tier,
      capacityBytes: req.capacityBytes, usedBytes: req.usedBytes, freeBytes: req.freeBytes, openWrites: req.openWrites,
      lastHeartbeatMonoMs: monoMs, lastHeartbeatWallMs: wallMs, alive: true,
    });
    if (req.fullReport) {
      for (const handle of node.chunks.keys()) this.unlink(handle, node.id);
      node.chunks.clear();
    } else if (!known || revived) {
      // We know nothing reliable about its chunks: ask for everything.
      return { needFullReport: true, revived };
    }
    for (const c of req.chunks) {
      node.chunks.set(c.handle, { version: c.version, length: c.length });
      this.link(c.handle, node.id);
    }
    for (const handle of req.removed) {
      node.chunks.delete(handle);
      this.unlink(handle, node.id);
    }
    return { needFullReport: false, revived };
  }

  /** Marks silent nodes dead; returns the ids that just died. */
  tick(monoMs: number): string[] {
    const died: string[] = [];
    for (const n of this.nodes.values()) {
      if (n.alive && monoMs - n.lastHeartbeatMonoMs > this.deadAfterMs) {
        n.alive = false;
        died.push(n.id);
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
    this.unlink(handle, nodeId);
  }

  /** Live replicas holding at least `version` with at least `length` bytes. */
  replicas(handle: number, version: number, length: number): NodeEntry[] {
    const out: NodeEntry[] = [];
    for (const id of this.locations.get(handle) ?? []) {
      const node = this.nodes.get(id);
      const r = node?.chunks.get(handle);
      if (node && node.alive && r && r.version >= version && r.length >= length) out.push(node);
    }
    return out;
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

  toInfo(n: NodeEntry): NodeInfo {
    return {
      id: n.id, addr: n.addr, zone: n.zone, tier: n.tier, capacityBytes: n.capacityBytes, usedBytes: n.usedBytes,
      freeBytes: n.freeBytes, chunkCount: n.chunks.size, state: n.alive ? 'alive' : 'dead',
      lastHeartbeatMs: n.lastHeartbeatWallMs, adminAddr: n.adminAddr, openWrites: n.openWrites,
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
