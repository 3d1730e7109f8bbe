/**
 * Rebalancing decisions: which replicas to move from fuller nodes to emptier ones. Pure,
 * like healing.ts: the master turns a move into a clone to the target, and once the
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
  const eligible = input.nodes.filter((n) => n.usable && !n.draining && n.capacityBytes > 0);
  const used = new Map<string, number>(eligible.map((n) => [n.id, n.capacityBytes - n.freeBytes]));
  const busy = new Map<string, number>();
  const touch = (id: string, d: number) => busy.set(id, (busy.get(id) ?? 0) + d);
  const pendingHandles = new Set<number>();
  for (const c of input.inflight) {
    if (used.has(c.targetNodeId)) used.set(c.targetNodeId, used.get(c.targetNodeId)! + c.bytes);
    touch(c.sourceNodeId, 1);
    touch(c.targetNodeId, 1);
    pendingHandles.add(c.handle);
  }
  for (const m of input.finishing) {
    // The source replica is about to go.
    if (used.has(m.sourceNodeId)) used.set(m.sourceNodeId, used.get(m.sourceNodeId)! - m.length);
    pendingHandles.add(m.handle);
  }
  const capacity = new Map(eligible.map((n) => [n.id, n.capacityBytes]));
  const fill = (id: string) => used.get(id)! / capacity.get(id)!;
  const totalUsed = [...used.values()].reduce((s, v) => s + v, 0);
  const totalCapacity = eligible.reduce((s, n) => s + n.capacityBytes, 0);
  const mean = totalCapacity > 0 ? totalUsed / totalCapacity : 0;
  const high = mean + opts.thresholdRatio;
  const io = ioReference(eligible);
  const hot = new Set(eligible.filter((n) => isIoHot(n, io)).map((n) => n.id));
  const penalty = new Map(eligible.map((n) => [n.id, ioPenalty(n, io)]));

  const report = (): BalanceNodeReport[] => input.nodes.map((n) => {
    if (!used.has(n.id)) return { id: n.id, fillRatio: n.capacityBytes > 0 ? 1 - n.freeBytes / n.capacityBytes : 0, role: 'excluded', hot: false };
    const f = fill(n.id);
    return { id: n.id, fillRatio: f, role: f > high ? 'source' : f < mean - opts.thresholdRatio ? 'target' : 'balanced', hot: hot.has(n.id) };
  });
  let bytesToMove = 0;
  for (const n of eligible) bytesToMove += Math.max(0, Math.round(used.get(n.id)! - high * n.capacityBytes));
  const nodesNow = report();
  const postponedNodeIds = eligible.filter((n) => hot.has(n.id) && (fill(n.id) > high || fill(n.id) < mean)).map((n) => n.id);

  const moves: BalanceMove[] = [];
  if (eligible.length < 2) return { moves, meanFillRatio: mean, nodes: nodesNow, bytesToMove, postponedNodeIds };

  // Which healthy chunks each source could give away: committed, at goal, nothing pending.
  const byNode = new Map<string, { chunk: HealChunk; replicas: readonly ReplicaView[] }[]>();
  const nodeOf = new Map(input.nodes.map((n) => [n.id, n]));
  for (const chunk of input.chunks) {
    if (!chunk.committed || chunk.length === 0 || pendingHandles.has(chunk.handle)) continue;
    const deleting = input.deletingOf(chunk.handle);
    if (deleting.size > 0) continue;
    const replicas = input.replicasOf(chunk.handle);
    const health = assessChunk(chunk, replicas, deleting, (id) => nodeOf.get(id)?.draining === true);
    if (health.healthy.length < chunk.goal || health.corrupt.length + health.stale.length > 0) continue;
    for (const id of health.healthy) {
      if (!used.has(id) || fill(id) <= high || hot.has(id)) continue;
      const list = byNode.get(id) ?? [];
      list.push({ chunk, replicas });
      byNode.set(id, list);
    }
  }
  for (const list of byNode.values()) list.sort((a, b) => b.chunk.length - a.chunk.length || a.chunk.handle - b.chunk.handle);

  const targetKey = (n: BalanceNode) => fill(n.id) + n.openWrites * 0.01 + penalty.get(n.id)!;
  const moved = new Set<number>();
  for (;;) {
    if (moves.length >= opts.movesMax) break;
    // Fullest first; a busier disk counts as a little less full (it gives later).
    const sources = eligible.filter((n) => fill(n.id) > high && (busy.get(n.id) ?? 0) < opts.perNodeMax && (byNode.get(n.id)?.length ?? 0) > 0)
      .sort((a, b) => (fill(b.id) - penalty.get(b.id)!) - (fill(a.id) - penalty.get(a.id)!) || (a.id < b.id ? -1 : 1));
    const source = sources[0];
    if (!source) break;
    const candidates = byNode.get(source.id)!;
    let planned: BalanceMove | undefined;
    while (candidates.length > 0 && !planned) {
      const { chunk, replicas } = candidates.shift()!;
      if (moved.has(chunk.handle)) continue;
      const holders = new Set(replicas.map((r) => r.nodeId));
      const otherZones = new Set(replicas.filter((r) => r.nodeId !== source.id).map((r) => nodeOf.get(r.nodeId)?.zone));
      const target = eligible
        .filter((n) => !holders.has(n.id) && !hot.has(n.id) && (busy.get(n.id) ?? 0) < opts.perNodeMax &&
          (n.zone === source.zone || !otherZones.has(n.zone)))
        .filter((n) => {
          const after = (used.get(n.id)! + chunk.length) / n.capacityBytes;
          return fill(n.id) < mean && after <= Math.min(mean + opts.thresholdRatio / 2, opts.fillCapRatio) &&
            after < (used.get(source.id)! - chunk.length) / source.capacityBytes + opts.thresholdRatio / 2 &&
            n.freeBytes - chunk.length > 0;
        })
        // Emptiest first; open writes and recent I/O (the work a node already does) count against it.
        .sort((a, b) => targetKey(a) - targetKey(b) || (a.id < b.id ? -1 : 1))[0];
      if (!target) continue;
      planned = { handle: chunk.handle, version: chunk.version, length: chunk.length, sourceNodeId: source.id, targetNodeId: target.id };
    }
    if (!planned) {
      byNode.delete(source.id);
      continue;
    }
    moves.push(planned);
    moved.add(planned.handle);
    used.set(planned.targetNodeId, used.get(planned.targetNodeId)! + planned.length);
    used.set(planned.sourceNodeId, used.get(planned.sourceNodeId)! - planned.length);
    touch(planned.sourceNodeId, 1);
    touch(planned.targetNodeId, 1);
  }
  return { moves, meanFillRatio: mean, nodes: nodesNow, bytesToMove, postponedNodeIds };
}
