/**
 * Healing decisions (src/master/healing.ts), safe mode, the command outbox and the
 * token bucket: pure, so every rule is checked directly, plus a seeded property test
 * over random cluster states. Replay a failure with GFS_SEED=<seed>.
 */
import t from 'tap';
import { prng } from './prng';
import { assessChunk, chooseTrim, chunkProblem, planHealing, type HealChunk, type HealNode, type HealingInput, type InflightClone } from '../../src/master/lifecycle/heal-plan';
import type { ReplicaView } from '../../src/master/registry';
import { SafeMode } from '../../src/master/lifecycle/safe-mode';
import { CommandOutbox } from '../../src/master/lifecycle/chunk-commands';
import { TokenBucket } from '../../src/common/token-bucket';
import { ChunkCommand_Kind } from '../../gen/gfs';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

function node(id: string, zone = 'z', freeBytes = 50 * GiB, extra: Partial<HealNode> = {}): HealNode {
  return { id, zone, capacityBytes: 100 * GiB, freeBytes, openWrites: 0, usable: true, ...extra };
}

function rep(nodeId: string, extra: Partial<ReplicaView> = {}): ReplicaView {
  return { nodeId, version: 1, length: 8 * MiB, corrupt: false, usable: true, ...extra };
}

function chunk(handle: number, extra: Partial<HealChunk> = {}): HealChunk {
  return { handle, version: 1, length: 8 * MiB, goal: 3, committed: true, ...extra };
}

function input(chunks: HealChunk[], replicas: Record<number, ReplicaView[]>, nodes: HealNode[], extra: Partial<HealingInput> = {}): HealingInput {
  return {
    chunks,
    replicasOf: (h) => replicas[h] ?? [],
    nodes,
    inflight: [],
    deletingOf: () => new Set(),
    budget: { clonesMax: 100, bytesMax: Infinity, sourcesPerNodeMax: 4, targetsPerNodeMax: 4, fillCapRatio: 0.95 },
    random: () => 0.5,
    ...extra,
  };
}

const fourNodes = [node('a'), node('b'), node('c'), node('d')];

t.test('healing: a replica is healthy only when usable, not corrupt, current and complete', async (t) => {
  const c = chunk(1, { version: 3, length: 100 });
  const h = assessChunk(c, [
    rep('ok', { version: 3, length: 100 }),
    rep('newer', { version: 4, length: 100 }),
    rep('old', { version: 2, length: 100 }),
    rep('short', { version: 3, length: 99 }),
    rep('bad', { version: 3, length: 100, corrupt: true }),
    rep('down', { version: 3, length: 100, usable: false }),
    rep('going', { version: 3, length: 100 }),
  ], new Set(['going']));
  t.same(h.healthy, ['ok', 'newer']);
  t.same(h.stale, ['old', 'short']);
  t.same(h.corrupt, ['bad']);
  t.same(h.unavailable, ['down']);
  t.same(h.deleting, ['going']);
  t.equal(chunkProblem(h), 'under-replicated');
  t.equal(chunkProblem(assessChunk(c, [rep('x', { version: 2, length: 100 })])), 'missing', 'only stale copies: missing');
  t.equal(chunkProblem(assessChunk(chunk(2, { length: 0, goal: 3 }), [])), '', 'an empty chunk has nothing to lose');
});

t.test('healing: the most endangered chunk is cloned first when the budget allows one clone', async (t) => {
  const plan = planHealing(input([chunk(1), chunk(2), chunk(3)], {
    1: [rep('a'), rep('b')],
    2: [rep('a')],
    3: [rep('a'), rep('b'), rep('c')],
  }, fourNodes, { budget: { clonesMax: 1, bytesMax: Infinity, sourcesPerNodeMax: 4, targetsPerNodeMax: 4, fillCapRatio: 0.95 } }));
  t.equal(plan.clones.length, 1);
  t.equal(plan.clones[0]!.handle, 2, 'one healthy replica beats two');
  t.equal(plan.summary.underReplicated, 2);
  t.equal(plan.summary.queuedChunks, 2, 'chunk 1 waits, chunk 2 still needs a second clone');
  t.equal(plan.summary.queuedBytes, 2 * 8 * MiB);
});

t.test('healing: a clone reads from a healthy replica and writes to a node without any copy, in a new zone first', async (t) => {
  const nodes = [node('a', 'z1'), node('b', 'z1'), node('c', 'z2'), node('d', 'z1'), node('e', 'z3', 40 * GiB)];
  const plan = planHealing(input([chunk(1)], { 1: [rep('a'), rep('b', { corrupt: true }), rep('c', { version: 0 })] }, nodes));
  t.equal(plan.clones.length, 2, 'one healthy of three: two clones');
  for (const c of plan.clones) {
    t.equal(c.sourceNodeId, 'a', 'only the healthy replica is a source (never the corrupt or stale one)');
    t.notOk(['a', 'b', 'c'].includes(c.targetNodeId), 'targets hold no copy');
  }
  t.same(plan.clones.map((c) => c.targetNodeId).sort(), ['d', 'e'], 'd and e are the only nodes without a copy');
  t.equal(plan.clones[0]!.targetNodeId, 'e', 'the first clone goes to a zone with no healthy replica');
  t.ok(plan.deletes.some((d) => d.nodeId === 'c' && d.reason === 'stale'), 'the stale replica is deleted (a healthy one exists)');
  t.notOk(plan.deletes.some((d) => d.nodeId === 'b'), 'the corrupt replica is kept until the chunk is back at its goal');
});

t.test('healing: between targets equal in zone and free space, a clone goes to the one whose disk is not hot', async (t) => {
  const hot = { readBytesPerSec: 300 * MiB, writeBytesPerSec: 100 * MiB };
  const nodes = [node('a'), node('b'), node('c', 'z', 50 * GiB, hot), node('d')];
  const plan = planHealing(input([chunk(1)], { 1: [rep('a'), rep('b')] }, nodes));
  t.same(plan.clones.map((c) => c.targetNodeId), ['d'], 'c sorts first and has as much room, but its disk is busy');
  const roomier = planHealing(input([chunk(1)], { 1: [rep('a'), rep('b')] }, [node('a'), node('b'), node('c', 'z', 90 * GiB, hot), node('d')]));
  t.same(roomier.clones.map((c) => c.targetNodeId), ['c'], '40 points more free space still win over the load');
});

t.test('healing: a corrupt replica is deleted once the chunk has its goal in healthy replicas', async (t) => {
  const plan = planHealing(input([chunk(1)], { 1: [rep('a'), rep('b'), rep('c'), rep('d', { corrupt: true })] }, fourNodes));
  t.same(plan.deletes.map((d) => [d.nodeId, d.reason]), [['d', 'corrupt']]);
  t.equal(plan.clones.length, 0);
});

t.test('healing: with no other node, a corrupt replica is deleted first to make room, never the last healthy copy', async (t) => {
  const three = [node('a'), node('b'), node('c')];
  const plan = planHealing(input([chunk(1)], { 1: [rep('a'), rep('b'), rep('c', { corrupt: true })] }, three));
  t.same(plan.deletes.map((d) => [d.nodeId, d.reason]), [['c', 'corrupt']]);
  t.equal(plan.summary.unplaceable, 1);
  const onlyCorrupt = planHealing(input([chunk(1)], { 1: [rep('a', { corrupt: true }), rep('b', { version: 0 })] }, three));
  t.same(onlyCorrupt.deletes, [], 'no healthy replica: every copy is kept, it may be all that is left');
  t.equal(onlyCorrupt.summary.missing, 1);
});

t.test('healing: an over-replicated chunk is trimmed from its crowded zone and fullest node, never below goal', async (t) => {
  const nodes = [node('a', 'z1', 10 * GiB), node('b', 'z1', 60 * GiB), node('c', 'z2', 5 * GiB), node('d', 'z3', 50 * GiB), node('e', 'z2', 70 * GiB)];
  const plan = planHealing(input([chunk(1)], { 1: ['a', 'b', 'c', 'd', 'e'].map((id) => rep(id)) }, nodes));
  t.same(plan.deletes.map((d) => d.nodeId).sort(), ['a', 'c'], 'one from each doubled zone, the fuller one');
  t.ok(plan.deletes.every((d) => d.reason === 'over-replicated'));
  t.equal(plan.summary.overReplicated, 1);
  const busy = planHealing(input([chunk(1)], { 1: ['a', 'b', 'c', 'd'].map((id) => rep(id)) }, nodes, {
    inflight: [{ handle: 1, sourceNodeId: 'a', targetNodeId: 'e', bytes: 8 * MiB }],
  }));
  t.same(busy.deletes, [], 'no trim while a clone of the chunk runs');
  const deleting = planHealing(input([chunk(1)], { 1: ['a', 'b', 'c', 'd'].map((id) => rep(id)) }, nodes, { deletingOf: () => new Set(['a']) }));
  t.same(deleting.deletes, [], 'a pending delete already brings it to its goal: no second trim');
  t.same(chooseTrim(assessChunk(chunk(1, { goal: 2 }), ['a', 'b', 'c'].map((id) => rep(id))), new Map(nodes.map((n) => [n.id, n])), 5), ['a'], 'never below goal');
});

t.test('healing: chunks being written and empty chunks are left alone', async (t) => {
  const plan = planHealing(input([chunk(1, { committed: false, length: 0 }), chunk(2, { length: 0 })], { 1: [rep('a', { length: 5 })], 2: [] }, fourNodes));
  t.same(plan.clones, []);
  t.same(plan.deletes, []);
  t.equal(plan.summary.chunks, 0);
});

t.test('healing: per-node and cluster limits bound the clones', async (t) => {
  const chunks = Array.from({ length: 20 }, (_, i) => chunk(i + 1));
  const replicas: Record<number, ReplicaView[]> = {};
  for (const c of chunks) replicas[c.handle] = [rep('a'), rep('b')];
  const limited = planHealing(input(chunks, replicas, [node('a'), node('b'), node('c'), node('d')], {
    budget: { clonesMax: 100, bytesMax: Infinity, sourcesPerNodeMax: 2, targetsPerNodeMax: 3, fillCapRatio: 0.95 },
  }));
  t.equal(limited.clones.length, 4, 'sources a and b serve 2 each');
  const perTarget = new Map<string, number>();
  for (const c of limited.clones) perTarget.set(c.targetNodeId, (perTarget.get(c.targetNodeId) ?? 0) + 1);
  t.ok([...perTarget.values()].every((n) => n <= 3));
  const bytes = planHealing(input(chunks, replicas, fourNodes, {
    budget: { clonesMax: 100, bytesMax: 20 * MiB, sourcesPerNodeMax: 100, targetsPerNodeMax: 100, fillCapRatio: 0.95 },
  }));
  t.equal(bytes.clones.length, 3, 'a clone starts while budget is left: 20 MiB covers three 8 MiB clones (the last one in debt)');
  const cluster = planHealing(input(chunks, replicas, fourNodes, {
    budget: { clonesMax: 5, bytesMax: Infinity, sourcesPerNodeMax: 100, targetsPerNodeMax: 100, fillCapRatio: 0.95 },
  }));
  t.equal(cluster.clones.length, 5);
  t.equal(cluster.summary.queuedChunks, 15);
});

t.test('healing: a full node is never a target', async (t) => {
  const nodes = [node('a'), node('b'), node('c', 'z', 4 * GiB), node('d', 'z', 7 * MiB)];
  const plan = planHealing(input([chunk(1, { goal: 4 })], { 1: [rep('a'), rep('b')] }, nodes));
  t.same(plan.clones, [], 'c is past the fill cap, d has no room');
  t.equal(plan.summary.unplaceable, 1);
});

t.test('healing: draining nodes are not targets and their replicas do not count toward the goal', async (t) => {
  const nodes = [node('a'), node('b'), node('c', 'z', 50 * GiB, { draining: true }), node('d')];
  const plan = planHealing(input([chunk(1)], { 1: [rep('a'), rep('b'), rep('c')] }, nodes));
  t.equal(plan.clones.length, 1);
  t.equal(plan.clones[0]!.targetNodeId, 'd');
  t.same(plan.deletes, [], 'the draining replica is not deleted by healing');
});

// ------------------------------------------------------------------ property


t.test('healing: property: plans never lose the last copy, trim below goal, read from a bad replica or clone onto a holder', async (t) => {
  const baseSeed = Number(process.env.GFS_SEED ?? Date.now() % 1_000_000);
  for (let round = 0; round < 300; round++) {
    const seed = baseSeed + round;
    const rand = prng(seed);
    const int = (n: number) => Math.floor(rand() * n);
    const nodes: HealNode[] = Array.from({ length: 2 + int(7) }, (_, i) => node(`n${i}`, `z${int(3)}`, int(4) === 0 ? 1 * MiB : (1 + int(90)) * GiB, {
      usable: int(6) !== 0, draining: int(10) === 0,
    }));
    const chunks: HealChunk[] = Array.from({ length: 1 + int(25) }, (_, i) => chunk(i + 1, { version: 1 + int(3), goal: 1 + int(4), committed: int(8) !== 0, length: int(10) === 0 ? 0 : (1 + int(8)) * MiB }));
    const replicas: Record<number, ReplicaView[]> = {};
    const deleting: Record<number, Set<string>> = {};
    for (const c of chunks) {
      replicas[c.handle] = nodes.filter(() => int(2) === 0).map((n) => rep(n.id, {
        version: Math.max(0, c.version - (int(5) === 0 ? 1 : 0)), length: c.length - (int(8) === 0 ? 1 : 0),
        corrupt: int(6) === 0, usable: n.usable,
      }));
      deleting[c.handle] = new Set(replicas[c.handle]!.filter(() => int(8) === 0).map((r) => r.nodeId));
    }
    const inflight: InflightClone[] = [];
    for (const c of chunks) {
      if (int(6) !== 0) continue;
      const holders = new Set(replicas[c.handle]!.map((r) => r.nodeId));
      const target = nodes.find((n) => !holders.has(n.id));
      const source = replicas[c.handle]![0];
      if (target && source) inflight.push({ handle: c.handle, sourceNodeId: source.nodeId, targetNodeId: target.id, bytes: c.length });
    }
    const budget = { clonesMax: int(30), bytesMax: int(3) === 0 ? Infinity : int(100) * MiB, sourcesPerNodeMax: 1 + int(4), targetsPerNodeMax: 1 + int(4), fillCapRatio: 0.95 };
    const plan = planHealing(input(chunks, replicas, nodes, { inflight, deletingOf: (h) => deleting[h] ?? new Set(), budget, random: rand }));
    const fail = (msg: string) => t.fail(`seed ${seed}: ${msg}`);
    const byNode = new Map(nodes.map((n) => [n.id, n]));
    const draining = (id: string) => byNode.get(id)?.draining === true;
    if (plan.clones.length > budget.clonesMax) fail('more clones than the budget');
    const sources = new Map<string, number>();
    const targets = new Map<string, number>();
    for (const c of inflight) {
      sources.set(c.sourceNodeId, (sources.get(c.sourceNodeId) ?? 0) + 1);
      targets.set(c.targetNodeId, (targets.get(c.targetNodeId) ?? 0) + 1);
    }
    for (const cl of plan.clones) {
      const c = chunks.find((x) => x.handle === cl.handle)!;
      const h = assessChunk(c, replicas[c.handle]!, deleting[c.handle], draining);
      if (![...h.healthy, ...h.retiring].includes(cl.sourceNodeId)) fail(`clone of ${c.handle} reads from ${cl.sourceNodeId}, not a healthy replica`);
      if (replicas[c.handle]!.some((r) => r.nodeId === cl.targetNodeId)) fail(`clone of ${c.handle} targets a holder`);
      if (inflight.some((i) => i.handle === c.handle && i.targetNodeId === cl.targetNodeId)) fail('clone targets an in-flight target');
      const tn = byNode.get(cl.targetNodeId)!;
      if (!tn.usable || tn.draining) fail('clone targets an unusable or draining node');
      sources.set(cl.sourceNodeId, (sources.get(cl.sourceNodeId) ?? 0) + 1);
      targets.set(cl.targetNodeId, (targets.get(cl.targetNodeId) ?? 0) + 1);
    }
    for (const [id, n] of targets) {
      const before = inflight.filter((i) => i.targetNodeId === id).length;
      if (n > Math.max(before, budget.targetsPerNodeMax)) fail(`target ${id} receives ${n} clones`);
    }
    for (const [id, n] of sources) {
      const before = inflight.filter((i) => i.sourceNodeId === id).length;
      if (n > Math.max(before, budget.sourcesPerNodeMax)) fail(`source ${id} serves ${n} clones`);
    }
    for (const c of chunks) {
      const ds = plan.deletes.filter((d) => d.handle === c.handle);
      if (ds.length === 0) continue;
      if (!c.committed || c.length === 0) fail(`deletes for chunk ${c.handle} that is being written or empty`);
      const h = assessChunk(c, replicas[c.handle]!, deleting[c.handle], draining);
      const readableBefore = h.healthy.length + h.retiring.length;
      const gone = new Set(ds.map((d) => d.nodeId));
      const healthyAfter = h.healthy.filter((id) => !gone.has(id)).length;
      const readableAfter = healthyAfter + h.retiring.filter((id) => !gone.has(id)).length;
      if (readableBefore > 0 && readableAfter === 0) fail(`chunk ${c.handle} loses its last readable replica`);
      if (readableBefore === 0) fail(`chunk ${c.handle} with no readable replica has deletes`);
      for (const d of ds) {
        if (h.healthy.includes(d.nodeId) && d.reason !== 'over-replicated') fail(`healthy replica deleted as ${d.reason}`);
        if (h.retiring.includes(d.nodeId) || h.deleting.includes(d.nodeId) || h.unavailable.includes(d.nodeId)) fail(`delete of a ${d.nodeId} replica that is not ours to judge`);
      }
      if (ds.some((d) => d.reason === 'over-replicated') && healthyAfter < c.goal) fail(`trim of ${c.handle} leaves ${healthyAfter} < goal ${c.goal}`);
    }
  }
  t.pass(`300 random states from seed ${baseSeed}`);
});

// ------------------------------------------------------------------ safe mode, outbox, bucket

t.test('safe mode: holds for the minimum wait, then until enough chunks are reported, at most the maximum', async (t) => {
  const sm = new SafeMode({ minMs: 5000, maxMs: 30_000, fraction: 0.999 }, 0);
  t.ok(sm.update(1000, 100, 100), 'on before the minimum wait even with every chunk reported');
  t.match(sm.reason, /waiting for chunkserver reports/);
  t.ok(sm.update(6000, 90, 100), 'on while 10% of chunks have no reported replica');
  t.match(sm.reason, /90 of 100 chunks/);
  t.notOk(sm.update(31_000, 90, 100), 'off after the maximum: missing nodes are dead nodes now');
  t.notOk(sm.update(31_500, 0, 100), 'and stays off');
  sm.restart(40_000);
  t.ok(sm.on, 'a new term starts in safe mode');
  t.notOk(sm.update(45_000, 1000, 1000), 'off at the minimum once every chunk is reported');
  const empty = new SafeMode({ minMs: 100, maxMs: 1000, fraction: 1 }, 0);
  t.notOk(empty.update(100, 0, 0), 'an empty cluster needs no reports');
});

t.test('command outbox: deletes count as pending until confirmed, are re-checked at delivery, and expire', async (t) => {
  const box = new CommandOutbox(1000);
  t.ok(box.queueDelete({ nodeId: 'a', handle: 7, version: 1, reason: 'stale', detail: '' }, 0));
  t.notOk(box.queueDelete({ nodeId: 'a', handle: 7, version: 1, reason: 'stale', detail: '' }, 0), 'no duplicate');
  t.same([...box.deletingOf(7)], ['a']);
  t.same(box.deliver('a', () => false, () => 'x'), [], 'a command that fails its re-check is not sent');
  t.same([...box.deletingOf(7)], [], '...and forgotten');
  box.queueDelete({ nodeId: 'a', handle: 7, version: 1, reason: 'stale', detail: '' }, 0);
  const cmds = box.deliver('a', () => true, () => 'x');
  t.equal(cmds.length, 1);
  t.equal(cmds[0]!.kind, ChunkCommand_Kind.DELETE);
  let held = true;
  const world = { holds: () => held, healthyOn: () => false, usable: () => true };
  t.same(box.settle(500, world).confirmedDeletes, [], 'not confirmed while the node still lists it');
  held = false;
  t.equal(box.settle(600, world).confirmedDeletes.length, 1, 'confirmed once the node stops listing it');
  box.queueDelete({ nodeId: 'b', handle: 8, version: 1, reason: 'orphan', detail: '' }, 0);
  t.equal(box.settle(1500, { ...world, holds: () => true }).expiredDeletes.length, 1, 'an unconfirmed delete expires');
  t.same([...box.deletingOf(8)], []);
});

t.test('command outbox: a clone completes when its target holds a healthy replica, fails on timeout or a dead node', async (t) => {
  const box = new CommandOutbox(1000);
  box.queueClone({ handle: 1, version: 1, length: 10, sourceNodeId: 's', targetNodeId: 't', deadlineMonoMs: 5000 }, 0);
  t.notOk(box.queueClone({ handle: 1, version: 1, length: 10, sourceNodeId: 's2', targetNodeId: 't', deadlineMonoMs: 5000 }, 0), 'one clone per target');
  const [cmd] = box.deliver('t', () => true, (id) => (id === 's' ? '127.0.0.1:1' : undefined));
  t.equal(cmd!.kind, ChunkCommand_Kind.REPLICATE);
  t.equal(cmd!.sourceAddr, '127.0.0.1:1');
  let healthy = false;
  let usable = true;
  const world = { holds: () => true, healthyOn: () => healthy, usable: () => usable };
  t.same(box.settle(100, world).completed, []);
  healthy = true;
  t.equal(box.settle(200, world).completed.length, 1);
  healthy = false;
  box.queueClone({ handle: 2, version: 1, length: 10, sourceNodeId: 's', targetNodeId: 't', deadlineMonoMs: 5000 }, 0);
  usable = false;
  t.equal(box.settle(300, world).failed.length, 1, 'the source died');
  usable = true;
  box.queueClone({ handle: 3, version: 1, length: 10, sourceNodeId: 's', targetNodeId: 't', deadlineMonoMs: 5000 }, 0);
  t.equal(box.settle(6000, world).failed.length, 1, 'past its deadline');
  box.queueClone({ handle: 4, version: 1, length: 10, sourceNodeId: 's', targetNodeId: 't', deadlineMonoMs: 5000 }, 0);
  t.ok(box.cloneFailed('t', 4), 'the target reported a failure');
  t.same(box.inflightClones(), []);
});

t.test('token bucket: a burst, then the rate, with debt for large takes', async (t) => {
  let now = 0;
  const b = new TokenBucket(100, 50, () => now);
  t.equal(b.take(50), 0, 'the burst is free');
  t.equal(b.take(100), 1000, '100 more bytes at 100 B/s: wait 1 s');
  now = 1000;
  t.equal(b.available(), 0, 'the debt is paid after the wait');
  now = 10_000;
  t.equal(b.available(), 50, 'never more than the burst');
});
