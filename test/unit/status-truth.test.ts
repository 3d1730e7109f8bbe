/**
 * Status and repair that tell the truth (issue 9, items 7-9), on the pure modules:
 * unrepairable chunks leave the repair queue with their reason, an ETA comes only from a
 * real rate, no reply number can break serialization, suspect nodes are avoided at once,
 * and df counts a shared file system once with lines that add up.
 */
import t from 'tap';
import { emptyHealingSummary, planHealing, type HealChunk, type HealNode, type HealingInput } from '../../src/master/lifecycle/heal-plan';
import { repairEtaMs } from '../../src/master/lifecycle/healer';
import { accountSpace } from '../../src/master/lifecycle/space';
import { boundedReply } from '../../src/master/reply-bounds';
import { NodeRegistry, type ReplicaView } from '../../src/master/registry';
import { limits } from '../../src/common/limits';
import { StatusResponse, type HeartbeatRequest } from '../../gen/gfs';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

const node = (id: string, extra: Partial<HealNode> = {}): HealNode =>
  ({ id, zone: 'z', capacityBytes: 100 * GiB, freeBytes: 50 * GiB, openWrites: 0, usable: true, ...extra });
const rep = (nodeId: string): ReplicaView => ({ nodeId, version: 1, length: 8 * MiB, corrupt: false, usable: true });
const chunk = (handle: number, extra: Partial<HealChunk> = {}): HealChunk =>
  ({ handle, version: 1, length: 8 * MiB, goal: 3, committed: true, ...extra });

function input(chunks: HealChunk[], replicas: Record<number, ReplicaView[]>, nodes: HealNode[]): HealingInput {
  return {
    chunks, replicasOf: (h) => replicas[h] ?? [], nodes, inflight: [], deletingOf: () => new Set(),
    budget: { clonesMax: 100, bytesMax: Infinity, sourcesPerNodeMax: 4, targetsPerNodeMax: 4, fillCapRatio: 0.95 },
    random: () => 0.5,
  };
}

t.test('repair: a goal above the node count is not queued; its reason is reported', async (t) => {
  const nodes = [node('a'), node('b'), node('c')];
  const plan = planHealing(input([chunk(1, { goal: 5 })], { 1: [rep('a'), rep('b'), rep('c')] }, nodes));
  t.equal(plan.clones.length, 0);
  t.equal(plan.summary.underReplicated, 1, 'still under its goal');
  t.equal(plan.summary.queuedChunks, 0, 'but not in the repair queue');
  t.equal(plan.summary.queuedBytes, 0);
  t.equal(plan.summary.unrepairable.get(1), 'goal 5, only 3 nodes');
  // A node joins: planned again at once, and the reason goes.
  const more = planHealing(input([chunk(1, { goal: 5 })], { 1: [rep('a'), rep('b'), rep('c')] }, [...nodes, node('d'), node('e')]));
  t.equal(more.clones.length, 2, 'a node joining makes it repairable');
  t.notOk(more.summary.unrepairable.has(1));
});

t.test('repair: no healthy replica, or only suspect sources: reported, not queued', async (t) => {
  const nodes = [node('a'), node('b', { suspect: true }), node('c'), node('d')];
  const plan = planHealing(input([chunk(1), chunk(2)], { 1: [], 2: [rep('b')] }, nodes));
  t.equal(plan.summary.unrepairable.get(1), 'no healthy replica');
  t.match(plan.summary.unrepairable.get(2), /no healthy replica reachable/);
  t.equal(plan.clones.length, 0, 'a suspect node is no clone source');
  t.equal(plan.summary.queuedChunks, 0);
});

t.test('repair: a suspect node is no clone target', async (t) => {
  const nodes = [node('a'), node('b'), node('c', { suspect: true }), node('d')];
  const plan = planHealing(input([chunk(1)], { 1: [rep('a'), rep('b')] }, nodes));
  t.same(plan.clones.map((c) => c.targetNodeId), ['d']);
});

t.test('repair: a trashed chunk below its goal is not counted as under-replicated', async (t) => {
  const plan = planHealing(input([chunk(1, { trashed: true })], { 1: [rep('a')] }, [node('a'), node('b'), node('c')]));
  t.equal(plan.summary.underReplicated, 0);
});

t.test('repair ETA: only from a real rate, never absurd', async (t) => {
  t.equal(repairEtaMs(0, 0), 0, 'nothing left: done');
  t.equal(repairEtaMs(8 * MiB, 0), undefined, 'no rate: unknown');
  t.equal(repairEtaMs(8 * MiB, 2e-9), undefined, 'a decayed rate: unknown, not 69386897599361565000 ms');
  t.equal(repairEtaMs(8 * MiB, limits.repairEtaRateMinBytesPerSec - 1), undefined);
  t.equal(repairEtaMs(100 * MiB, 10 * MiB), 10_000);
  t.equal(repairEtaMs(1e15, limits.repairEtaRateMinBytesPerSec), undefined, 'beyond the horizon: unknown');
  t.same(emptyHealingSummary().unrepairable.size, 0);
});

t.test('reply bounds: a number that cannot be serialized is clamped, and the reply encodes', async (t) => {
  const clamped: string[] = [];
  const reply = StatusResponse.fromPartial({ files: 3, repair: { etaMs: 69386897599361565000, bytesPerSec: 2e-9 }, capacityBytes: NaN });
  t.throws(() => StatusResponse.encode(StatusResponse.fromPartial({ repair: { etaMs: 69386897599361565000 } })), 'the old failure');
  boundedReply(reply, (path) => clamped.push(path));
  t.same(clamped.sort(), ['capacityBytes', 'repair.etaMs']);
  t.equal(reply.files, 3);
  t.equal(reply.repair!.bytesPerSec, 2e-9, 'a small rate is a fine double');
  t.doesNotThrow(() => StatusResponse.encode(reply));
});

const beat = (nodeId: string): HeartbeatRequest => ({
  nodeId, addr: `${nodeId}:1`, zone: 'z', tier: 'hot', capacityBytes: GiB, usedBytes: 0, freeBytes: GiB, openWrites: 0,
  fullReport: true, chunks: [], removed: [], corrupt: [], adminAddr: '', replicateFailed: [], replicating: 0, leases: [],
});

t.test('registry: a node reported unreachable is suspect at once, dead only after dead-after, and clears on its next heartbeat', async (t) => {
  const registry = new NodeRegistry(30_000);
  for (const id of ['a', 'b', 'c']) registry.heartbeat(beat(id), 0, 0);
  t.ok(registry.markSuspect('b', 'unreachable by a client'));
  t.notOk(registry.markSuspect('b', 'again'), 'already suspect');
  t.same(registry.placeable().map((n) => n.id), ['a', 'c'], 'no new chunk goes to it');
  t.equal(registry.toInfo(registry.nodes.get('b')!).state, 'suspect');
  t.ok(registry.toInfo(registry.nodes.get('b')!).suspect);
  t.same(registry.tick(29_000), [], 'not dead before dead-after');
  t.ok(registry.nodes.get('b')!.alive);
  registry.heartbeat(beat('b'), 29_500, 29_500);
  t.equal(registry.toInfo(registry.nodes.get('b')!).state, 'alive', 'its next heartbeat clears it');
  t.equal(registry.placeable().length, 3);
  registry.markSuspect('c', 'unreachable');
  t.same(registry.tick(31_000), ['a', 'c'], 'silent nodes die after dead-after as before');
  t.equal(registry.toInfo(registry.nodes.get('c')!).state, 'dead');
  t.notOk(registry.markSuspect('a', 'x'), 'a dead node is not suspect');
});

t.test('df: a shared file system counts once, and every line adds up', async (t) => {
  const fs1 = { capacityBytes: 1000, freeBytes: 600, fsId: 'dev1' };
  const report = accountSpace([
    { id: 'a', addr: 'x', state: 'alive', usedBytes: 100, counted: true, ...fs1 },
    { id: 'b', addr: 'y', state: 'alive', usedBytes: 50, counted: true, ...fs1 },
    { id: 'c', addr: 'z', state: 'alive', usedBytes: 10, counted: true, capacityBytes: 500, freeBytes: 400, fsId: 'dev2' },
    { id: 'd', addr: 'w', state: 'dead', usedBytes: 10, counted: false, ...fs1 },
  ], () => [], () => 'live');
  t.equal(report.capacityBytes, 1500, 'dev1 once plus dev2');
  t.equal(report.freeBytes, 1000);
  t.equal(report.usedBytes, 500);
  t.equal(report.gfsUsedBytes, 160, 'chunk files are per node');
  t.equal(report.filesystems, 2);
  t.same(report.sharedNotes, ['a, b share one file system (counted once in the totals)']);
  for (const n of report.nodes) t.equal(n.usedBytes + n.freeBytes, n.capacityBytes, `${n.id} adds up`);
  t.same(report.nodes[0]!.sharesFsWith, ['b', 'd']);
  t.equal(report.nodes[0]!.gfsUsedBytes, 100);
});
