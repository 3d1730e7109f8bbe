/**
 * Hand-written failover scenarios for the master group's replication, each named after
 * the bug it prevents. They run in the simulated world (world.ts), whose checkers watch
 * every step; each also asserts its own point. GFS_SIM_TRACE=1 prints every message.
 */
import t from 'tap';
import { commit, isAcked, propose, scenarioWorld, serveAt } from './scenario';

t.test('replication: a leader elected with a stale log recovers the committed entries from the majority', async (t) => {
  const world = scenarioWorld(3);
  serveAt(world, 'm0');
  commit(world, 'm0', 'before');
  world.partition([['m2']]);
  const whileAway = ['a1', 'a2', 'a3', 'a4', 'a5'].map((name) => commit(world, 'm0', name));
  const m2 = world.node('m2');
  t.ok(m2.replica!.lastIndex < whileAway.at(-1)!.index, 'm2 missed the entries committed while it was away');

  world.crash('m0');
  world.healPartition();
  serveAt(world, 'm2'); // the service picks the stale master; its lease waits out m0's
  t.ok((world.stats.coverage.get('message fetch') ?? 0) > 0, 'm2 fetched the entries it lacked from m1');
  for (const p of whileAway) t.ok(m2.machine.hasApplied(p.opId), `${p.opId}, acknowledged by m0, is applied on the new leader`);

  commit(world, 'm2', 'after');
  world.restart('m0');
  world.finalCheck(3_000);
});

t.test('replication: an old leader cut off from the election service cannot commit after a new epoch promised', async (t) => {
  const world = scenarioWorld(3);
  const oldEpoch = serveAt(world, 'm0');
  commit(world, 'm0', 'before');
  // m0's clock now crawls, so its own lease check keeps saying yes long after the
  // service's lease ran out: only the promises can stop it.
  world.setClockRate('m0', 0.05);
  world.setElectionConnected('m0', false);
  world.partition([['m0']]);
  const stranded = propose(world, 'm0', 'stranded');

  // m1 gets the new epoch and m2 promises it, but m1's entries do not reach m2 yet: m2's
  // log still agrees with m0's, so only m2's promise stands between m0 and a majority.
  const newEpoch = world.elect('m1');
  const m2 = world.node('m2');
  t.ok(world.runUntilTrue(() => m2.replica!.promisedEpoch === newEpoch, 1_000), 'm2 promised the new epoch');
  world.blockLink('m1', 'm2');
  world.runFor(20);
  world.healPartition();
  world.blockLink('m1', 'm2');
  world.blockLink('m1', 'm0'); // m0 and m1 do not hear each other: m0 must learn of the
  world.blockLink('m0', 'm1'); // new epoch from m2's refusal
  world.runFor(2_000); // m0 retransmits the stranded entry to m2 every (slow) heartbeat

  const m0 = world.node('m0').replica!;
  t.notOk(isAcked(world, 'stranded'), 'the stranded proposal was not acknowledged');
  t.equal(m0.role, 'follower', 'the old leader stepped down on m2\'s refusal');
  t.ok(m0.promisedEpoch >= newEpoch, 'and adopted the newer epoch');

  world.unblockLinks();
  t.ok(world.runUntilTrue(() => world.node('m1').replica!.serving, 1_000), 'the new leader serves');
  commit(world, 'm1', 'after');
  t.not(world.committedEntry(stranded.index)?.epoch, oldEpoch, 'nothing of the old epoch was committed at its index');
  t.notOk(isAcked(world, 'stranded'));
  world.finalCheck(3_000);
});

t.test('replication: a torn write on the last entry is not acknowledged and does not diverge', async (t) => {
  const world = scenarioWorld(3);
  serveAt(world, 'm0');
  commit(world, 'm0', 'before');
  world.partition([['m0', 'm1'], ['m2']]);
  world.node('m0').diskSlowMs = 10_000; // m0's own write of the next entry stays unsynced
  const torn = propose(world, 'm0', 'torn');
  const m1 = world.node('m1');
  world.runUntilTrue(() => m1.disk.durableLastIndex >= torn.index, 100);
  world.runFor(20); // m1's ack reaches m0; with m0's copy unsynced, one copy is not a majority
  t.notOk(isAcked(world, 'torn'), 'not acknowledged while only m1 has it durable');

  world.crash('m0', { walOpsKept: 0, promiseOpsKept: 0, tear: true });
  t.equal(world.stats.coverage.get('crash tore a write'), 1, 'the crash tore m0\'s write of the entry');
  world.node('m0').diskSlowMs = 0;
  world.restart('m0');
  t.equal(world.node('m0').replica!.lastIndex, torn.index - 1, 'recovery cut the torn record');

  world.healPartition();
  serveAt(world, 'm1'); // m1 holds the entry durably and has the best log: recovery keeps it
  commit(world, 'm1', 'after');
  world.finalCheck(3_000);
  t.notOk(isAcked(world, 'torn'), 'the torn entry was never acknowledged');
  const committed = world.committedEntry(torn.index);
  t.ok(committed && Buffer.from(committed.payload).toString().startsWith('torn '), 'the new leader committed m1\'s intact copy');
  t.ok(world.node('m0').machine.hasApplied('torn'), 'm0 got the intact copy back from the leader');
});

t.test('replication: an entry of an older epoch commits only with one of the leader\'s own (Raft figure 8)', async (t) => {
  // One entry per message, so a follower can hold the old entry without the new no-op.
  const world = scenarioWorld(5, { replica: { heartbeatIntervalMs: 20, leaseSafetyMarginMs: 30, entriesPerMessageMax: 1 } });
  serveAt(world, 'm0');
  commit(world, 'm0', 'base');
  world.runFor(50);

  // Epoch A (m0): entry b reaches m1 only.
  world.partition([['m0', 'm1'], ['m2', 'm3', 'm4']]);
  const b = propose(world, 'm0', 'b');
  world.runFor(30);

  // Epoch B (m4): promised by m2, m3; its no-op at b's index stays on m4 alone.
  world.elect('m4');
  const m4 = world.node('m4');
  t.ok(world.runUntilTrue(() => m4.replica!.leaderPhase === 'committing', 1_000), 'm4 recovered its log');
  world.partition([['m0', 'm1'], ['m2', 'm3'], ['m4']]);
  t.equal(m4.replica!.lastIndex, b.index, 'm4 wrote its own no-op at b\'s index');
  world.runFor(30);

  // Epoch C (m0): promised by m1, m2; m2 gets b (an entry of epoch A) but not C's no-op.
  world.partition([['m0', 'm1', 'm2'], ['m3'], ['m4']]);
  const epochC = world.elect('m0');
  const m2 = world.node('m2');
  t.ok(world.runUntilTrue(() => m2.replica!.promisedEpoch === epochC && m2.replica!.lastIndex === b.index && m2.replica!.epochAt(b.index) === b.epoch, 1_000),
    'm2 promised epoch C and holds b');
  world.blockLink('m0', 'm2');
  world.runFor(50);
  const m0 = world.node('m0');
  t.equal(m0.replica!.commitIndex, b.index - 1, 'm0 does not commit b although a majority (m0, m1, m2) holds it: b is not of epoch C');

  // Epoch D (m4): promised by m2, m3; m4's log (its no-op of epoch B) is the best one.
  world.crash('m0');
  world.partition([['m2', 'm3', 'm4'], ['m0'], ['m1']]);
  serveAt(world, 'm4');
  t.not(world.committedEntry(b.index)?.epoch, b.epoch, 'b was overwritten, which is fine: it was never committed');

  world.healPartition();
  world.restart('m0');
  commit(world, 'm4', 'after');
  world.finalCheck(3_000);
});

t.test('replication: a follower that missed compacted entries catches up from the leader\'s checkpoint', async (t) => {
  const world = scenarioWorld(3, { checkpointEveryEntries: 5 });
  serveAt(world, 'm0');
  commit(world, 'm0', 'first');
  world.crash('m2');
  for (let i = 0; i < 20; i++) commit(world, 'm0', `while-down-${i}`);
  t.ok(world.node('m0').replica!.snapshotIndex > world.node('m2').disk.durableLastIndex, 'm0 compacted entries m2 needs');
  world.restart('m2');
  world.finalCheck(3_000);
  t.ok((world.stats.coverage.get('snapshot restored') ?? 0) >= 1, 'm2 installed the leader\'s checkpoint');
  t.ok(world.node('m2').machine.hasApplied('while-down-19'));
});
