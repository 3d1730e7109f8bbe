/**
 * Replica placement: a pure function of the live nodes, so it is unit-tested and the
 * same inputs drive the rebalancer later.
 *
 * Order of preference (DESIGN §4): distinct nodes always; distinct failure domains
 * (zones) first; then more free space; then fewer open writes. A small random jitter
 * among near-equal nodes spreads load and rotates the head of the write chain.
 * A node is never filled past `fillCapRatio` of its capacity.
 */
import { limits } from '../common/limits';

export interface PlacementCandidate {
  id: string;
  zone: string;
  capacityBytes: number;
  freeBytes: number;
  openWrites: number;
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

/** Picks up to `count` distinct nodes; fewer only when fewer are eligible. */
export function choosePlacement(
  candidates: readonly PlacementCandidate[], count: number, opts: PlacementOptions,
): PlacementCandidate[] {
  const fillCap = opts.fillCapRatio ?? 0.95;
  const chunkBytes = opts.chunkBytes ?? limits.chunkBytesMax;
  const eligible = candidates.filter((n) => {
    if (opts.exclude?.has(n.id)) return false;
    const usedAfter = n.capacityBytes - n.freeBytes + chunkBytes;
    return n.freeBytes >= chunkBytes && usedAfter <= n.capacityBytes * fillCap;
  });
  const scored = eligible.map((n) => ({ n, score: score(n) + opts.random() * 0.05 }));
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
  return chosen;
}

/** Higher is better: mostly free-space ratio, minus a penalty per open write. */
function score(n: PlacementCandidate): number {
  const freeRatio = n.capacityBytes > 0 ? n.freeBytes / n.capacityBytes : 0;
  return freeRatio - Math.min(0.5, n.openWrites * 0.02);
}
