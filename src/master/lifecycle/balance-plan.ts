/**
 * Rebalancing decisions: which replicas to move from fuller nodes to emptier ones. Pure,
 * like heal-plan.ts: the master turns a move into a clone to the target, and once the
 * clone is in, healing's over-replication trim removes the source replica first
 * (planHealing's `trimFirst`), so a move never lowers a chunk's replica count.
 *
 * Fill is used / capacity, projected with moves in flight. A node is a source while its
 * fill is above mean + threshold, a target while below the mean; a move must leave the
 * target below both the mean + threshold / 2 and the fill cap, and below the source, so
 * moves never oscillate and never push a node past the cap.
 *
 * Load comes after fill (DESIGN §4, the inputs placement uses): a node whose recent disk
 * I/O is far above the cluster's mean (placement's isIoHot) is neither a source nor a
 * target this round: its moves are postponed until it cools down, so balancing never
 * adds clone traffic to a disk that is already the cluster's bottleneck. Among the other
 * nodes, sources are taken fullest first and targets emptiest first, each with the
 * bounded I/O penalty placement uses (so load only breaks near-ties), and open writes
 * count against a target.
 *
 * Invariants:
 * - Only healthy replicas of committed chunks at (or above) their goal move: healing
 *   comes first, and a move never starts on a chunk with a clone or delete pending.
 * - A target holds no copy of the chunk, and the move keeps zone spread: the target is
 *   in the source's zone or in a zone no other replica of the chunk uses.
 * - Draining and unusable nodes are neither sources nor targets (decommission drains
 *   through healing, not through the balancer).
 * - A node with hot I/O is neither a source nor a target; load never overrides the fill
 *   rules above (it only orders the nodes they allow).
 */
import assert from 'node:assert/strict';
import { limits } from '../../common/limits';
import type { ReplicaView } from '../registry';
import { assessChunk, type HealChunk } from './heal-plan';
import { ioPenalty, ioReference, isIoHot, type NodeLoad } from '../placement';

export interface BalanceNode extends NodeLoad {
  id: string;
  zone: string;
  capacityBytes: number;
  freeBytes: number;
  usable: boolean;
  draining?: boolean;
}

export interface BalanceMove {
  handle: number;
  version: number;
  length: number;
  sourceNodeId: string;
  targetNodeId: string;
}

export interface BalanceOptions {
  /** Fill difference from the mean that counts as unbalanced, e.g. 0.1 = 10 points. */
  thresholdRatio: number;
  fillCapRatio: number;
  /** Moves that may start now, cluster-wide. */
  movesMax: number;
  /** Moves one node may be part of (as source or target) at once, counting those in flight. */
  perNodeMax: number;
}

export interface BalanceInput {
  nodes: readonly BalanceNode[];
  chunks: Iterable<HealChunk>;
  replicasOf: (handle: number) => readonly ReplicaView[];
  deletingOf: (handle: number) => ReadonlySet<string>;
  /** Every clone in flight (healing or balancing): their bytes are already on their way. */
  inflight: readonly { handle: number; sourceNodeId: string; targetNodeId: string; bytes: number }[];
  /** Moves whose clone is done but whose source replica is not trimmed yet. */
  finishing: readonly BalanceMove[];
}

export interface BalanceNodeReport {
  id: string;
  fillRatio: number;
  role: 'source' | 'target' | 'balanced' | 'excluded';
  /** Its I/O is far above the cluster's mean: no move involves it this round. */
  hot: boolean;
}

export interface BalancePlan {
  moves: BalanceMove[];
  meanFillRatio: number;
  nodes: BalanceNodeReport[];
  /** Bytes that would still have to move (sources down to mean + threshold). */
  bytesToMove: number;
  /** Sources and targets (by fill) whose moves wait because their I/O is hot. */
  postponedNodeIds: string[];
}

export function planRebalance(input: BalanceInput, opts: BalanceOptions): BalancePlan {
  const r = new BalanceRound(input, opts);
  const { eligible, mean, high } = r;
  let bytesToMove = 0;
  for (const n of eligible) bytesToMove += Math.max(0, Math.round(r.used.get(n.id)! - high * n.capacityBytes));
  const nodesNow = r.report();
  const postponedNodeIds = eligible.filter((n) => r.hot.has(n.id) && (r.fill(n.id) > high || r.fill(n.id) < mean)).map((n) => n.id);
  const moves = eligible.length < 2 ? [] : r.planMoves();
  return { moves, meanFillRatio: mean, nodes: nodesNow, bytesToMove, postponedNodeIds };
}

interface Givable { chunk: HealChunk; replicas: readonly ReplicaView[] }

/** One planning round: fills as moves would leave them, and who is busy with what. */
class BalanceRound {
  readonly eligible: BalanceNode[];
  readonly used: Map<string, number>;
  private readonly busy = new Map<string, number>();
  private readonly pendingHandles = new Set<number>();
  private readonly capacity: Map<string, number>;
  readonly mean: number;
  readonly high: number;
  readonly hot: Set<string>;
  private readonly penalty: Map<string, number>;
  private readonly nodeOf: Map<string, BalanceNode>;

  constructor(private readonly input: BalanceInput, private readonly opts: BalanceOptions) {
    this.eligible = input.nodes.filter((n) => n.usable && !n.draining && n.capacityBytes > 0);
    this.used = new Map(this.eligible.map((n) => [n.id, n.capacityBytes - n.freeBytes]));
    for (const c of input.inflight) {
      if (this.used.has(c.targetNodeId)) this.used.set(c.targetNodeId, this.used.get(c.targetNodeId)! + c.bytes);
      this.touch(c.sourceNodeId, 1);
      this.touch(c.targetNodeId, 1);
      this.pendingHandles.add(c.handle);
    }
    for (const m of input.finishing) {
      // The source replica is about to go.
      if (this.used.has(m.sourceNodeId)) this.used.set(m.sourceNodeId, this.used.get(m.sourceNodeId)! - m.length);
      this.pendingHandles.add(m.handle);
    }
    this.capacity = new Map(this.eligible.map((n) => [n.id, n.capacityBytes]));
    const totalUsed = [...this.used.values()].reduce((s, v) => s + v, 0);
    const totalCapacity = this.eligible.reduce((s, n) => s + n.capacityBytes, 0);
    this.mean = totalCapacity > 0 ? totalUsed / totalCapacity : 0;
    this.high = this.mean + opts.thresholdRatio;
    const io = ioReference(this.eligible);
    this.hot = new Set(this.eligible.filter((n) => isIoHot(n, io)).map((n) => n.id));
    this.penalty = new Map(this.eligible.map((n) => [n.id, ioPenalty(n, io)]));
    this.nodeOf = new Map(input.nodes.map((n) => [n.id, n]));
  }

  fill(id: string): number {
    return this.used.get(id)! / this.capacity.get(id)!;
  }

  private touch(id: string, d: number): void {
    this.busy.set(id, (this.busy.get(id) ?? 0) + d);
  }

  report(): BalanceNodeReport[] {
    const { mean, high, opts } = this;
    return this.input.nodes.map((n) => {
      if (!this.used.has(n.id)) return { id: n.id, fillRatio: n.capacityBytes > 0 ? 1 - n.freeBytes / n.capacityBytes : 0, role: 'excluded', hot: false };
      const f = this.fill(n.id);
      return { id: n.id, fillRatio: f, role: f > high ? 'source' : f < mean - opts.thresholdRatio ? 'target' : 'balanced', hot: this.hot.has(n.id) };
    });
  }

  /** Which healthy chunks each source could give away: committed, at goal, nothing pending. */
  private givable(): Map<string, Givable[]> {
    const byNode = new Map<string, Givable[]>();
    for (const chunk of this.input.chunks) {
      if (!chunk.committed || chunk.length === 0 || this.pendingHandles.has(chunk.handle)) continue;
      const deleting = this.input.deletingOf(chunk.handle);
      if (deleting.size > 0) continue;
      const replicas = this.input.replicasOf(chunk.handle);
      const health = assessChunk(chunk, replicas, deleting, (id) => this.nodeOf.get(id)?.draining === true);
      if (health.healthy.length < chunk.goal || health.corrupt.length + health.stale.length > 0) continue;
      for (const id of health.healthy) {
        if (!this.used.has(id) || this.fill(id) <= this.high || this.hot.has(id)) continue;
        const list = byNode.get(id) ?? [];
        list.push({ chunk, replicas });
        byNode.set(id, list);
      }
    }
    for (const list of byNode.values()) list.sort((a, b) => b.chunk.length - a.chunk.length || a.chunk.handle - b.chunk.handle);
    return byNode;
  }

  planMoves(): BalanceMove[] {
    const { opts } = this;
    const byNode = this.givable();
    const moves: BalanceMove[] = [];
    const moved = new Set<number>();
    while (moves.length < opts.movesMax) {
      // Fullest first; a busier disk counts as a little less full (it gives later).
      const source = this.eligible
        .filter((n) => this.fill(n.id) > this.high && (this.busy.get(n.id) ?? 0) < opts.perNodeMax && (byNode.get(n.id)?.length ?? 0) > 0)
        .sort((a, b) => (this.fill(b.id) - this.penalty.get(b.id)!) - (this.fill(a.id) - this.penalty.get(a.id)!) || (a.id < b.id ? -1 : 1))[0];
      if (!source) break;
      const candidates = byNode.get(source.id)!;
      let planned: BalanceMove | undefined;
      while (candidates.length > 0 && !planned) {
        const { chunk, replicas } = candidates.shift()!;
        if (moved.has(chunk.handle)) continue;
        const target = this.chooseTarget(source, chunk, replicas);
        if (target) planned = { handle: chunk.handle, version: chunk.version, length: chunk.length, sourceNodeId: source.id, targetNodeId: target.id };
      }
      if (!planned) {
        byNode.delete(source.id);
        continue;
      }
      moves.push(planned);
      moved.add(planned.handle);
      this.used.set(planned.targetNodeId, this.used.get(planned.targetNodeId)! + planned.length);
      this.used.set(planned.sourceNodeId, this.used.get(planned.sourceNodeId)! - planned.length);
      this.touch(planned.sourceNodeId, 1);
      this.touch(planned.targetNodeId, 1);
    }
    return moves;
  }

  /** The emptiest node that may take this chunk from this source, if any. */
  private chooseTarget(source: BalanceNode, chunk: HealChunk, replicas: readonly ReplicaView[]): BalanceNode | undefined {
    const { opts, mean } = this;
    const holders = new Set(replicas.map((r) => r.nodeId));
    const otherZones = new Set(replicas.filter((r) => r.nodeId !== source.id).map((r) => this.nodeOf.get(r.nodeId)?.zone));
    const targetKey = (n: BalanceNode) => this.fill(n.id) + n.openWrites * limits.balanceOpenWriteWeight + this.penalty.get(n.id)!;
    const target = this.eligible
      .filter((n) => !holders.has(n.id) && !this.hot.has(n.id) && (this.busy.get(n.id) ?? 0) < opts.perNodeMax &&
        (n.zone === source.zone || !otherZones.has(n.zone)))
      .filter((n) => {
        const after = (this.used.get(n.id)! + chunk.length) / n.capacityBytes;
        return this.fill(n.id) < mean && after <= Math.min(mean + opts.thresholdRatio / 2, opts.fillCapRatio) &&
          after < (this.used.get(source.id)! - chunk.length) / source.capacityBytes + opts.thresholdRatio / 2 &&
          n.freeBytes - chunk.length > 0;
      })
      // Emptiest first; open writes and recent I/O (the work a node already does) count against it.
      .sort((a, b) => targetKey(a) - targetKey(b) || (a.id < b.id ? -1 : 1))[0];
    if (target) {
      // A move never fills its target past the cap, and never lands on a copy's holder.
      assert.ok((this.used.get(target.id)! + chunk.length) / target.capacityBytes <= opts.fillCapRatio, `move target ${target.id} would pass the fill cap`);
      assert.ok(!holders.has(target.id) && !target.draining, `move target ${target.id} holds chunk ${chunk.handle} or is draining`);
    }
    return target;
  }
}
