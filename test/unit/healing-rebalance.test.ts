/** Rebalancing decisions (src/master/rebalance.ts) and the trim that finishes a move. */
import t from 'tap';
import { planRebalance, type BalanceInput, type BalanceNode } from '../../src/master/rebalance';
import { planHealing, type HealChunk } from '../../src/master/healing';
import type { ReplicaView } from '../../src/master/registry';

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
