/**
 * Rebalancing decisions (src/master/rebalance.ts), with the load (recent disk I/O) that
 * orders and postpones moves, and the trim that finishes a move. Replay a property
 * failure with GFS_SEED=<seed>.
 */
import t from 'tap';
import { planRebalance, type BalanceInput, type BalanceNode } from '../../src/master/lifecycle/balance-plan';
import { planHealing, type HealChunk } from '../../src/master/lifecycle/heal-plan';
import type { ReplicaView } from '../../src/master/registry';
import { ioReference, isIoHot } from '../../src/master/placement';
import { prng } from './prng';

const MiB = 1024 * 1024;
const cap = 1000 * MiB;

function node(id: string, usedMiB: number, zone = 'z', extra: Partial<BalanceNode> = {}): BalanceNode {
  return { id, zone, capacityBytes: cap, freeBytes: cap - usedMiB * MiB, openWrites: 0, usable: true, ...extra };
}

function world(nodes: BalanceNode[], placement: Record<number, string[]>, extra: Partial<BalanceInput> = {}, chunkExtra: Partial<HealChunk> = {}): BalanceInput {
  const chunks: HealChunk[] = Object.keys(placement).map((h) => ({ handle: Number(h), version: 1, length: 10 * MiB, goal: 3, committed: true, ...chunkExtra }));
  return {
    nodes,
    chunks,
    replicasOf: (h) => (placement[h] ?? []).map((id): ReplicaView => ({ nodeId: id, version: 1, length: 10 * MiB, corrupt: false, usable: true })),
    deletingOf: () => new Set(),
    inflight: [],
    finishing: [],
    ...extra,
  };
}

const opts = { thresholdRatio: 0.1, fillCapRatio: 0.95, movesMax: 100, perNodeMax: 100 };

function skewed(): Record<number, string[]> {
  const p: Record<number, string[]> = {};
  for (let h = 1; h <= 30; h++) p[h] = ['a', h % 2 ? 'b' : 'c', h % 2 ? 'c' : 'b'];
  return p;
}

t.test('rebalance: replicas move from the fullest node to the emptiest, until it is within the threshold', async (t) => {
  const nodes = [node('a', 600), node('b', 300), node('c', 300), node('d', 0)];
  const plan = planRebalance(world(nodes, skewed()), opts);
  t.ok(plan.moves.length > 0);
  t.ok(plan.moves.every((m) => m.sourceNodeId === 'a' && m.targetNodeId === 'd'), 'a (60%) gives to d (0%)');
  t.equal(Math.round(plan.meanFillRatio * 100), 30);
  const movedMiB = plan.moves.length * 10;
  t.ok(600 - movedMiB <= 400, 'a ends within mean + threshold');
  t.ok(movedMiB <= 350, 'd never passes mean + threshold / 2');
  t.same(plan.nodes.find((n) => n.id === 'a')!.role, 'source');
  t.same(new Set(plan.moves.map((m) => m.handle)).size, plan.moves.length, 'one move per chunk');
});

t.test('rebalance: a balanced cluster, or one with a single eligible node, moves nothing', async (t) => {
  t.same(planRebalance(world([node('a', 300), node('b', 320), node('c', 290)], { 1: ['a', 'b', 'c'] }), opts).moves, []);
  t.same(planRebalance(world([node('a', 900), node('b', 0, 'z', { usable: false })], { 1: ['a'] }), opts).moves, []);
});

t.test('rebalance: never a target past the fill cap, never a draining node, and zones are kept', async (t) => {
  const nodes = [node('a', 900, 'z1'), node('b', 100, 'z2'), node('c', 100, 'z3'), node('d', 0, 'z2', { draining: true }), node('e', 0, 'z2')];
  const placement: Record<number, string[]> = {};
  for (let h = 1; h <= 10; h++) placement[h] = ['a', 'b', 'c'];
  const plan = planRebalance(world(nodes, placement), opts);
  t.notOk(plan.moves.some((m) => m.targetNodeId === 'd'), 'draining nodes take nothing');
  t.same(plan.moves, [], 'e is in z2, which already holds a replica of each chunk: moving there would lose zone z1');
  const capped = planRebalance(world([node('a', 990), node('b', 940)], { 1: ['a'], 2: ['a'] }), { ...opts, thresholdRatio: 0.01 });
  t.same(capped.moves, [], 'b would pass the 95% fill cap');
});

t.test('rebalance: chunks below goal, being written, or with work pending are not moved', async (t) => {
  const nodes = [node('a', 600), node('b', 300), node('c', 300), node('d', 0)];
  t.same(planRebalance(world(nodes, { 1: ['a', 'b'] }), opts).moves, [], 'under-replicated: healing first');
  t.same(planRebalance(world(nodes, { 1: ['a', 'b', 'c'] }, {}, { committed: false }), opts).moves, [], 'being written');
  t.same(planRebalance(world(nodes, { 1: ['a', 'b', 'c'] }, { deletingOf: () => new Set(['b']) }), opts).moves, [], 'a delete pending');
  t.same(planRebalance(world(nodes, { 1: ['a', 'b', 'c'] }, { inflight: [{ handle: 1, sourceNodeId: 'b', targetNodeId: 'd', bytes: 1 }] }), opts).moves, [], 'a clone running');
});

t.test('rebalance: per-node and cluster move limits hold', async (t) => {
  const nodes = [node('a', 600), node('b', 300), node('c', 300), node('d', 0)];
  t.equal(planRebalance(world(nodes, skewed()), { ...opts, movesMax: 3 }).moves.length, 3);
  t.equal(planRebalance(world(nodes, skewed()), { ...opts, perNodeMax: 2 }).moves.length, 2);
  t.equal(planRebalance(world(nodes, skewed(), { inflight: [{ handle: 99, sourceNodeId: 'a', targetNodeId: 'd', bytes: MiB }] }), { ...opts, perNodeMax: 2 }).moves.length, 1, 'moves in flight count');
});

t.test('rebalance: once the clone is in, healing trims the move\'s source, not another replica', async (t) => {
  const chunk: HealChunk = { handle: 1, version: 1, length: 10 * MiB, goal: 3, committed: true };
  const replicas = ['a', 'b', 'c', 'd'].map((id): ReplicaView => ({ nodeId: id, version: 1, length: 10 * MiB, corrupt: false, usable: true }));
  const nodes = [node('a', 500), node('b', 900), node('c', 300), node('d', 100)].map((n) => ({ ...n, usable: true }));
  const base = {
    chunks: [chunk], replicasOf: () => replicas, nodes, inflight: [], deletingOf: () => new Set<string>(),
    budget: { clonesMax: 0, bytesMax: 0, sourcesPerNodeMax: 1, targetsPerNodeMax: 1, fillCapRatio: 0.95 }, random: () => 0.5,
  };
  t.same(planHealing(base).deletes.map((d) => d.nodeId), ['b'], 'without a move: the fullest node');
  t.same(planHealing({ ...base, trimFirst: () => new Set(['a']) }).deletes.map((d) => d.nodeId), ['a'], 'with a move from a: a');
});

// ---------------------------------------------------------------- load: recent disk I/O

const busyIo = (mibPerSec: number): Partial<BalanceNode> => ({ readBytesPerSec: mibPerSec * MiB, writeBytesPerSec: 0 });

t.test('rebalance: a move whose target has hot disk I/O is postponed; an idle target of the same fill takes it', async (t) => {
  const hot = [node('a', 600), node('b', 300), node('c', 300), node('d', 0, 'z', busyIo(400))];
  const plan = planRebalance(world(hot, skewed()), opts);
  t.same(plan.moves, [], 'd is the only node below the mean, and its disk is hot');
  t.same(plan.postponedNodeIds, ['d']);
  t.same(plan.nodes.find((n) => n.id === 'd'), { id: 'd', fillRatio: 0, role: 'target', hot: true }, 'still reported as a target by fill');

  const withIdle = [...hot, node('e', 0)];
  const moves = planRebalance(world(withIdle, skewed()), opts).moves;
  t.ok(moves.length > 0);
  t.ok(moves.every((m) => m.targetNodeId === 'e'), 'every move goes to the idle e, none to the hot d (d sorts first by id)');
});

t.test('rebalance: a source with hot disk I/O gives nothing this round', async (t) => {
  const nodes = [node('a', 600, 'z', busyIo(400)), node('b', 300), node('c', 300), node('d', 0)];
  const plan = planRebalance(world(nodes, skewed()), opts);
  t.same(plan.moves, []);
  t.same(plan.postponedNodeIds, ['a']);
  t.equal(plan.nodes.find((n) => n.id === 'a')!.role, 'source');
  t.ok(plan.bytesToMove > 0, 'the imbalance is still counted: the moves wait, they are not forgotten');
  const cooled = planRebalance(world([node('a', 600, 'z', busyIo(20)), node('b', 300), node('c', 300), node('d', 0)], skewed()), opts);
  t.ok(cooled.moves.length > 0, 'below the floor, I/O never postpones anything');
});

t.test('rebalance: between equally empty targets the idle one comes first, between equally full sources the idle one gives first', async (t) => {
  // 20 MiB/s is below the floor: not hot, but it orders near-equal nodes.
  const targets = planRebalance(world([node('a', 600), node('b', 300), node('c', 300), node('d', 0, 'z', busyIo(20)), node('e', 0)], skewed()), opts);
  t.equal(targets.moves[0]!.targetNodeId, 'e');
  const p: Record<number, string[]> = {};
  for (let h = 1; h <= 30; h++) p[h] = ['a', 'b', h % 2 ? 'c' : 'd'];
  const sources = planRebalance(world([node('a', 600, 'z', busyIo(20)), node('b', 600), node('c', 150), node('d', 150), node('e', 0), node('f', 0)], p), { ...opts, movesMax: 1 });
  t.same(sources.moves.map((m) => m.sourceNodeId), ['b'], 'a and b are both at 60%: the idle b first');
});

t.test('rebalance: load never overrides fill: a much emptier busy target still wins, and no target passes the cap or mean + threshold / 2', async (t) => {
  // Every node is busy, so d (100 MiB/s) is not hot, only the busiest: it pays the full penalty.
  const nodes = [node('a', 600, 'z', busyIo(100)), node('b', 300, 'z', busyIo(100)), node('c', 300, 'z', busyIo(100)), node('d', 0, 'z', busyIo(100)), node('e', 200)];
  const plan = planRebalance(world(nodes, skewed()), opts);
  t.equal(plan.moves[0]!.targetNodeId, 'd', 'd at 0% beats the idle e at 20%');
  const after = new Map(nodes.map((n) => [n.id, cap - n.freeBytes]));
  for (const m of plan.moves) after.set(m.targetNodeId, after.get(m.targetNodeId)! + m.length);
  for (const m of plan.moves) {
    t.ok(after.get(m.targetNodeId)! / cap <= Math.min(plan.meanFillRatio + opts.thresholdRatio / 2, opts.fillCapRatio) + 1e-9, `${m.targetNodeId} within mean + threshold / 2`);
  }
  const capped = planRebalance(world([node('a', 990), node('b', 940), node('c', 0, 'z', busyIo(500))], { 1: ['a'], 2: ['a'] }), { ...opts, thresholdRatio: 0.01 });
  t.same(capped.moves, [], 'with the emptiest node hot, moves wait rather than push b past the 95% fill cap');
});

t.test('rebalance: property: no move involves a hot node, passes the fill cap, or goes from an emptier node to a fuller one', async (t) => {
  const baseSeed = Number(process.env.GFS_SEED ?? Date.now() % 1_000_000);
  for (let round = 0; round < 300; round++) {
    const seed = baseSeed + round;
    const rand = prng(seed);
    const int = (n: number) => Math.floor(rand() * n);
    const nodes = Array.from({ length: 2 + int(7) }, (_, i) => node(`n${i}`, int(950), `z${int(2)}`, int(2) === 0 ? busyIo(int(600)) : {}));
    const placement: Record<number, string[]> = {};
    for (let h = 1; h <= 40; h++) {
      const holders = nodes.filter(() => int(2) === 0).slice(0, 3).map((n) => n.id);
      if (holders.length === 3) placement[h] = holders;
    }
    const plan = planRebalance(world(nodes, placement), { ...opts, thresholdRatio: 0.02 + rand() * 0.2 });
    const ref = ioReference(nodes);
    const hot = new Set(nodes.filter((n) => isIoHot(n, ref)).map((n) => n.id));
    const used = new Map(nodes.map((n) => [n.id, cap - n.freeBytes]));
    const before = new Map(used);
    for (const m of plan.moves) {
      if (hot.has(m.sourceNodeId) || hot.has(m.targetNodeId)) t.fail(`seed ${seed}: move ${m.sourceNodeId} -> ${m.targetNodeId} involves a hot node`);
      if (before.get(m.sourceNodeId)! <= before.get(m.targetNodeId)!) t.fail(`seed ${seed}: move from ${m.sourceNodeId} to the fuller ${m.targetNodeId}`);
      used.set(m.targetNodeId, used.get(m.targetNodeId)! + m.length);
      used.set(m.sourceNodeId, used.get(m.sourceNodeId)! - m.length);
      if (used.get(m.targetNodeId)! > cap * opts.fillCapRatio) t.fail(`seed ${seed}: ${m.targetNodeId} past the fill cap`);
    }
  }
  t.pass('300 seeded clusters');
});
