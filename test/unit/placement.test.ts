/**
 * Replica placement (src/master/placement.ts): zones first, then free space, then recent
 * load (open writes, disk I/O), never past the fill cap; plus the registry carrying each
 * node's I/O from its heartbeat to the placement inputs. Replay a property failure with
 * GFS_SEED=<seed>.
 */
import t from 'tap';
import { prng } from './prng';
import {
  choosePlacement, ioPenalty, ioReference, isIoHot,
  type PlacementCandidate,
} from '../../src/master/placement';
import { NodeRegistry } from '../../src/master/registry';
import { limits } from '../../src/common/limits';
import type { HeartbeatRequest } from '../../gen/gfs';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const capacity = 100 * GiB;

function node(id: string, freeRatio: number, ioMiBPerSec = 0, extra: Partial<PlacementCandidate> = {}): PlacementCandidate {
  return {
    id, zone: 'z', capacityBytes: capacity, freeBytes: Math.round(capacity * freeRatio), openWrites: 0,
    readBytesPerSec: (ioMiBPerSec / 2) * MiB, writeBytesPerSec: (ioMiBPerSec / 2) * MiB, ...extra,
  };
}

/** Hands out the given numbers in order (then the last one): jitter chosen by the test. */
function sequence(...values: number[]): () => number {
  let i = 0;
  return () => values[Math.min(i++, values.length - 1)]!;
}

const ids = (nodes: readonly PlacementCandidate[]) => nodes.map((n) => n.id);

t.test('placement: between nodes equal in free space, the one with hot disk I/O is not chosen', async (t) => {
  // The hot node draws the largest jitter and still loses: its penalty outweighs it.
  const [one] = choosePlacement([node('hot', 0.5, 200), node('idle', 0.5)], 1, { random: sequence(0.999, 0) });
  t.equal(one!.id, 'idle');
  const three = choosePlacement([node('a', 0.5, 200), node('b', 0.5), node('c', 0.5, 5), node('d', 0.5)], 3, { random: sequence(0.999, 0) });
  t.same(ids(three).sort(), ['b', 'c', 'd'], 'of four equal nodes, the hot one is left out');
});

t.test('placement: a large difference in free space outweighs any I/O', async (t) => {
  const [one] = choosePlacement([node('hot-empty', 0.8, 1000), node('idle-full', 0.2)], 1, { random: () => 0 });
  t.equal(one!.id, 'hot-empty', '60 points of free space beat the busiest disk');
  const [near] = choosePlacement([node('hot', 0.5 + limits.ioPenaltyMax + 0.01, 1000), node('idle', 0.5)], 1, { random: () => 0 });
  t.equal(near!.id, 'hot', 'the I/O penalty never exceeds limits.ioPenaltyMax');
});

t.test('placement: I/O is relative: equally busy nodes are ranked by free space, light I/O barely counts', async (t) => {
  const [busy] = choosePlacement([node('a', 0.52, 300), node('b', 0.5, 300)], 1, { random: () => 0 });
  t.equal(busy!.id, 'a', 'both at 300 MiB/s: the emptier one');
  const ref = ioReference([node('a', 0.5, 2), node('b', 0.5)]);
  t.ok(ioPenalty(node('a', 0.5, 2), ref) < 0.01, 'a few MiB/s, below the floor, costs less than a point of free space');
  t.notOk(isIoHot(node('a', 0.5, 2), ref), 'and never makes a node hot');
  const hotRef = ioReference([node('a', 0.5, 200), node('b', 0.5), node('c', 0.5)]);
  t.ok(isIoHot(node('a', 0.5, 200), hotRef), '200 MiB/s against a mean of 67 is hot');
  t.notOk(isIoHot(node('x', 0.5, 300), ioReference([node('x', 0.5, 300), node('y', 0.5, 300)])), 'equal load is never hot');
});

t.test('placement: load never fills a node past the fill cap, and zones still come first', async (t) => {
  const nearlyFull = node('idle-full', 0.05 + 32 * MiB / capacity);
  const [one] = choosePlacement([nearlyFull, node('hot', 0.5, 500)], 1, { random: () => 0, fillCapRatio: 0.95 });
  t.equal(one!.id, 'hot', 'an idle node with no room under the cap is not eligible at all');
  t.same(choosePlacement([nearlyFull], 1, { random: () => 0, fillCapRatio: 0.95 }), [], 'and is not chosen when it is the only one');
  const zones = choosePlacement([node('a', 0.5, 0, { zone: 'z1' }), node('b', 0.5, 0, { zone: 'z1' }), node('c', 0.5, 500, { zone: 'z2' })], 2, { random: () => 0 });
  t.ok(ids(zones).includes('c'), 'the only node in z2 is chosen however busy: failure domains first');
});

t.test('placement: property: the choice is never past the fill cap and never loses more free space than the load penalties allow', async (t) => {
  const baseSeed = Number(process.env.GFS_SEED ?? Date.now() % 1_000_000);
  for (let round = 0; round < 500; round++) {
    const seed = baseSeed + round;
    const rand = prng(seed);
    const int = (n: number) => Math.floor(rand() * n);
    const nodes = Array.from({ length: 1 + int(8) }, (_, i) => node(`n${i}`, rand(), int(3) === 0 ? 0 : int(800), { openWrites: int(3) === 0 ? int(4) : 0 }));
    const chunkBytes = limits.chunkBytesMax;
    const fits = (n: PlacementCandidate) => n.freeBytes >= chunkBytes && n.capacityBytes - n.freeBytes + chunkBytes <= n.capacityBytes * 0.95;
    const count = 1 + int(3);
    const chosen = choosePlacement(nodes, count, { random: rand, fillCapRatio: 0.95, chunkBytes });
    const eligible = nodes.filter(fits);
    if (chosen.some((n) => !fits(n))) t.fail(`seed ${seed}: chose a node past the fill cap`);
    if (chosen.length !== Math.min(eligible.length, count)) t.fail(`seed ${seed}: chose ${chosen.length} of ${eligible.length} eligible for ${count}`);
    const first = chosen[0];
    if (first) {
      const best = Math.max(...eligible.map((n) => n.freeBytes / n.capacityBytes));
      const slack = limits.ioPenaltyMax + 0.05 + Math.max(...eligible.map((n) => Math.min(0.5, n.openWrites * 0.02)));
      if (first.freeBytes / first.capacityBytes < best - slack - 1e-9) t.fail(`seed ${seed}: first choice ${first.id} gave up more free space than the penalties allow`);
    }
  }
  t.pass('500 seeded clusters');
});

t.test('registry: a heartbeat\'s I/O rates reach the placement inputs and `gfsctl nodes`, and a node that does not say is idle', async (t) => {
  const registry = new NodeRegistry(30_000);
  const beat = (nodeId: string, extra: Partial<HeartbeatRequest>): HeartbeatRequest => ({
    nodeId, addr: `${nodeId}:1`, zone: 'z', tier: 'hot', capacityBytes: capacity, usedBytes: 0, freeBytes: capacity, openWrites: 0,
    fullReport: true, chunks: [], removed: [], corrupt: [], adminAddr: '', replicateFailed: [], replicating: 0, leases: [], ...extra,
  });
  registry.heartbeat(beat('busy', { readBytesPerSec: 150 * MiB, writeBytesPerSec: 50 * MiB }), 0, 0);
  registry.heartbeat(beat('old', {}), 0, 0);
  const busy = registry.nodes.get('busy')!;
  t.equal(busy.readBytesPerSec, 150 * MiB);
  t.equal(busy.writeBytesPerSec, 50 * MiB);
  t.equal(registry.nodes.get('old')!.readBytesPerSec, 0, 'a chunkserver from before the fields counts as idle');
  const info = registry.toInfo(busy);
  t.equal(info.readBytesPerSec, 150 * MiB);
  t.equal(info.writeBytesPerSec, 50 * MiB);
  const [one] = choosePlacement(registry.alive(), 1, { random: sequence(0.999, 0) });
  t.equal(one!.id, 'old', 'registry entries are placement candidates as they are');
});

t.test('registry: the live repair rate follows the replicated-bytes counter, and starts afresh when a node restarts', async (t) => {
  const registry = new NodeRegistry(30_000);
  const beat = (total: number): HeartbeatRequest => ({
    nodeId: 'n', addr: 'n:1', zone: 'z', tier: 'hot', capacityBytes: capacity, usedBytes: 0, freeBytes: capacity, openWrites: 0,
    fullReport: true, chunks: [], removed: [], corrupt: [], adminAddr: '', replicateFailed: [], replicating: 0, leases: [], replicatedBytesTotal: total,
  });
  registry.heartbeat(beat(0), 0, 0);
  for (let s = 1; s <= 20; s++) registry.heartbeat(beat(s * 100 * MiB), s * 1000, s * 1000); // 100 MiB/s for 20 s
  const rate = registry.nodes.get('n')!.replicateRate.bytesPerSec;
  t.ok(rate > 99 * MiB && rate <= 100 * MiB, `about 100 MiB/s (${(rate / MiB).toFixed(1)})`);
  registry.heartbeat(beat(10 * MiB), 21_000, 21_000); // restarted: the counter went back
  registry.heartbeat(beat(60 * MiB), 22_000, 22_000);
  const after = registry.nodes.get('n')!.replicateRate.bytesPerSec;
  t.ok(Math.abs(after - 50 * MiB) < 0.5 * MiB, `a fresh average from the restart on: 50 MiB/s, not stuck at zero (${(after / MiB).toFixed(1)} MiB/s)`);
});
