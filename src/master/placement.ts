/**
 * Replica placement: a pure function of the live nodes, so it is unit-tested and the
 * same inputs (free space, open writes, recent disk I/O) drive the rebalancer.
 *
 * Order of preference (DESIGN §4): distinct nodes always; distinct failure domains
 * (zones) first; then more free space; then recent load: fewer open writes and less
 * disk I/O. A small random jitter among near-equal nodes spreads load and rotates the
 * head of the write chain.
 *
 * Invariants:
 * - A node is never filled past `fillCapRatio` of its capacity: eligibility is decided
 *   before any score, so no load figure can make an ineligible node win.
 * - The I/O penalty is bounded (at most limits.ioPenaltyMax of free-space ratio): it breaks
 *   near-ties and steers away from a clearly hot node, but a large difference in free
 *   space always wins.
 */
import assert from 'node:assert/strict';
import { limits } from '../common/limits';

/** What a node is busy with now, as its heartbeats say. */
export interface NodeLoad {
  openWrites: number;
  /** Recent disk reads and writes, bytes/s (about a 10 s average); absent = idle. */
  readBytesPerSec?: number;
  writeBytesPerSec?: number;
}

export interface PlacementCandidate extends NodeLoad {
  id: string;
  zone: string;
  capacityBytes: number;
  freeBytes: number;
}

export interface PlacementOptions {
  exclude?: ReadonlySet<string>;
  /** Returns a number in [0, 1); injected so tests and the simulation are deterministic. */
  random: () => number;
  fillCapRatio?: number;
  chunkBytes?: number;
  /** Zones that already hold a replica (healing adds to an existing set): prefer others. */
  avoidZones?: ReadonlySet<string>;
}

/** The cluster figures a node's I/O is compared with. */
export interface IoReference {
  busiestBytesPerSec: number;
  meanBytesPerSec: number;
}

/** Reads and writes weigh the same: either keeps the disk busy. */
export function ioBytesPerSec(n: NodeLoad): number {
  return Math.max(0, n.readBytesPerSec ?? 0) + Math.max(0, n.writeBytesPerSec ?? 0);
}

export function ioReference(nodes: readonly NodeLoad[]): IoReference {
  let busiest = 0;
  let total = 0;
  for (const n of nodes) {
    const io = ioBytesPerSec(n);
    busiest = Math.max(busiest, io);
    total += io;
  }
  return { busiestBytesPerSec: busiest, meanBytesPerSec: nodes.length > 0 ? total / nodes.length : 0 };
}

/**
 * In [0, limits.ioPenaltyMax]: proportional to the node's I/O relative to the busiest node's
 * (or to the floor, while every node is quieter than that), so the busiest node pays the
 * most and equally busy nodes pay the same.
 */
export function ioPenalty(n: NodeLoad, ref: IoReference): number {
  return limits.ioPenaltyMax * Math.min(1, ioBytesPerSec(n) / Math.max(ref.busiestBytesPerSec, limits.ioFloorBytesPerSec));
}

/** Far above the cluster's mean I/O: the rebalancer postpones moves that involve it. */
export function isIoHot(n: NodeLoad, ref: IoReference): boolean {
  const io = ioBytesPerSec(n);
  return io >= limits.ioFloorBytesPerSec && io >= limits.ioHotRatio * ref.meanBytesPerSec;
}

/** Each open write is a stream about to land on the disk. */
export function openWritesPenalty(n: NodeLoad): number {
  return Math.min(limits.placementOpenWritesPenaltyMax, n.openWrites * limits.placementOpenWritePenalty);
}

/**
 * Picks up to `count` distinct nodes; fewer only when fewer are eligible. I/O is
 * compared across every candidate given, excluded ones included.
 */
export function choosePlacement(
  candidates: readonly PlacementCandidate[], count: number, opts: PlacementOptions,
): PlacementCandidate[] {
  const fillCap = opts.fillCapRatio ?? limits.fillCapRatio;
  const chunkBytes = opts.chunkBytes ?? limits.chunkBytesMax;
  const ref = ioReference(candidates);
  const eligible = candidates.filter((n) => {
    if (opts.exclude?.has(n.id)) return false;
    const usedAfter = n.capacityBytes - n.freeBytes + chunkBytes;
    return n.freeBytes >= chunkBytes && usedAfter <= n.capacityBytes * fillCap;
  });
  const scored = eligible.map((n) => ({ n, score: score(n, ref) + opts.random() * limits.placementJitterRatio }));
  const chosen: PlacementCandidate[] = [];
  const usedZones = new Set<string>(opts.avoidZones ?? []);
  while (chosen.length < count && scored.length > 0) {
    // Prefer a zone not used yet; fall back to any zone once all are used.
    // (With avoidZones, "used" includes the zones of replicas that already exist.)
    let pool = scored.filter((s) => !usedZones.has(s.n.zone));
    if (pool.length === 0) pool = scored;
    let best = pool[0]!;
    for (const s of pool) if (s.score > best.score) best = s;
    chosen.push(best.n);
    usedZones.add(best.n.zone);
    scored.splice(scored.indexOf(best), 1);
  }
  // Postconditions: distinct nodes, none excluded, none past the fill cap with this chunk.
  assert.equal(new Set(chosen.map((n) => n.id)).size, chosen.length, 'placement chose a node twice');
  for (const n of chosen) {
    assert.ok(!opts.exclude?.has(n.id), `placement chose excluded node ${n.id}`);
    assert.ok(n.capacityBytes - n.freeBytes + chunkBytes <= n.capacityBytes * fillCap, `placement would fill ${n.id} past the cap`);
  }
  return chosen;
}

/** Higher is better: mostly free-space ratio, minus the open-writes and I/O penalties. */
function score(n: PlacementCandidate, ref: IoReference): number {
  const freeRatio = n.capacityBytes > 0 ? n.freeBytes / n.capacityBytes : 0;
  return freeRatio - openWritesPenalty(n) - ioPenalty(n, ref);
}
