/**
 * The replica's rules one input at a time, with storage and time driven by hand.
 * (The whole protocol under faults is in test/sim/.)
 */
import t from 'tap';
import { Replica, type DurableState, type Effect, type Message, type NodeId } from '../../src/master/replication';

const EMPTY: DurableState = { promisedEpoch: 0, checkpoint: null, entries: [] };
const payload = (s: string): Uint8Array => Buffer.from(s);

function harness(id: NodeId, members: NodeId[], durable: DurableState = EMPTY) {
  const effects: Effect[] = [];
  const clock = { nowMs: 0, monoMs(): number { return this.nowMs; } };
  const replica = new Replica({
    id, members, clock, durable, effects: (e) => effects.push(e), heartbeatIntervalMs: 10, leaseSafetyMarginMs: 5,
  });
  return {
    replica,
    clock,
    /** Removes and returns the effects emitted so far. */
    take(): Effect[] {
      return effects.splice(0);
    },
    /** Completes every storage operation issued so far. */
    syncAll(): void {
      const tokens = effects.filter((e) => e.kind === 'persist').map((e) => (e as { token: number }).token);
      if (tokens.length > 0) replica.storageDone(Math.max(...tokens));
    },
  };
}

function sends(effects: Effect[]): Message[] {
  return effects.flatMap((e) => (e.kind === 'send' ? [e.msg] : []));
}

t.test('replication: a promise is answered only once it is durable', async (t) => {
  const h = harness('b', ['a', 'b', 'c']);
  h.replica.receive('a', { kind: 'prepare', epoch: 5 });
  const effects = h.take();
  t.same(effects.filter((e) => e.kind === 'persist').map((e) => e.kind === 'persist' && e.op), [{ kind: 'promise', epoch: 5 }]);
  t.same(sends(effects), [], 'no answer before the promise is on disk');
  h.replica.storageDone(1);
  t.same(sends(h.take()), [{ kind: 'prepareOk', epoch: 5, lastIndex: 0, lastEpoch: 0, commitIndex: 0 }]);
});

t.test('replication: a replica refuses an older epoch and names the newer one', async (t) => {
  const h = harness('b', ['a', 'b', 'c']);
  h.replica.receive('a', { kind: 'prepare', epoch: 5 });
  h.syncAll();
  h.take();
  h.replica.receive('c', { kind: 'append', epoch: 3, prevIndex: 0, prevEpoch: 0, entries: [{ epoch: 3, index: 1, type: 1, payload: payload('x') }], commitIndex: 0 });
  const effects = h.take();
  t.same(sends(effects), [{ kind: 'staleEpoch', epoch: 5 }]);
  t.equal(effects.filter((e) => e.kind === 'persist').length, 0, 'nothing of the older epoch is written');
  t.equal(h.replica.lastIndex, 0);
});

t.test('replication: a follower acks entries only once they are durable, and commits only what it matched', async (t) => {
  const h = harness('b', ['a', 'b', 'c']);
  const entries = [1, 2, 3].map((index) => ({ epoch: 2, index, type: 1, payload: payload(`e${index}`) }));
  h.replica.receive('a', { kind: 'append', epoch: 2, prevIndex: 0, prevEpoch: 0, entries, commitIndex: 0 });
  t.same(sends(h.take()), [], 'no ack while the entries are being written');
  h.replica.storageDone(2); // the promise of epoch 2, then the entries
  t.same(sends(h.take()), [{ kind: 'appendOk', epoch: 2, matchIndex: 3 }]);
  // A heartbeat that proves only index 2 equal does not commit index 3, whatever the leader's commit.
  h.replica.receive('a', { kind: 'append', epoch: 2, prevIndex: 2, prevEpoch: 2, entries: [], commitIndex: 3 });
  t.equal(h.replica.commitIndex, 2);
  const applied = h.take().flatMap((e) => (e.kind === 'apply' ? [e.entry.index] : []));
  t.same(applied, [1, 2], 'committed entries are applied in order');
});

t.test('replication: a follower refuses proposals and points to the leader', async (t) => {
  const h = harness('b', ['a', 'b', 'c']);
  h.replica.receive('a', { kind: 'prepare', epoch: 5 });
  t.same(h.replica.propose(1, payload('x')), { accepted: false, reason: 'NOT_LEADER', leaderHint: 'a' });
});

t.test('replication: a leadership of an epoch already seen is ignored', async (t) => {
  const h = harness('b', ['a', 'b', 'c']);
  h.replica.receive('a', { kind: 'prepare', epoch: 5 });
  t.equal(h.replica.becomeLeader(5, 1_000), false);
  t.equal(h.replica.becomeLeader(4, 1_000), false);
  t.equal(h.replica.role, 'follower');
  t.equal(h.replica.becomeLeader(6, 1_000), true);
  t.equal(h.replica.role, 'leader');
});

t.test('replication: a leader refuses proposals until its no-op is committed', async (t) => {
  const h = harness('a', ['a', 'b', 'c']);
  h.replica.becomeLeader(7, 1_000);
  t.same(sends(h.take()).map((m) => m.kind), ['prepare', 'prepare']);
  t.same(h.replica.propose(1, payload('x')), { accepted: false, reason: 'RECOVERING', leaderHint: 'a' });
  h.replica.storageDone(1);
  h.replica.receive('b', { kind: 'prepareOk', epoch: 7, lastIndex: 0, lastEpoch: 0, commitIndex: 0 });
  t.equal(h.replica.leaderPhase, 'committing', 'a majority promised; the no-op is out');
  h.syncAll();
  h.replica.receive('b', { kind: 'appendOk', epoch: 7, matchIndex: 1 });
  t.equal(h.replica.leaderPhase, 'serving');
  t.equal(h.replica.commitIndex, 1);
  t.equal(h.replica.propose(1, payload('x')).accepted, true);
});

t.test('replication: a leader whose lease runs out steps down and abandons its proposals', async (t) => {
  const h = harness('a', ['a']);
  h.replica.becomeLeader(1, 100);
  h.syncAll();
  h.syncAll();
  t.ok(h.replica.serving, 'a group of one commits its no-op alone');
  const p = h.replica.propose(1, payload('x'));
  t.equal(p.accepted, true);
  h.take();
  h.clock.nowMs = 95; // lease until 100, safety margin 5
  t.same(h.replica.propose(1, payload('y')), { accepted: false, reason: 'LEASE_EXPIRED', leaderHint: null });
  t.equal(h.replica.role, 'follower');
  t.same(h.take().filter((e) => e.kind === 'reject'), [{ kind: 'reject', proposalId: p.accepted ? p.proposalId : -1, reason: 'LEADERSHIP_LOST' }]);
});

t.test('replication: a batch of proposals is one write and one Append per follower, and one ack from each commits all of them', async (t) => {
  const h = harness('a', ['a', 'b', 'c']);
  h.replica.becomeLeader(7, 1_000);
  h.replica.storageDone(1);
  h.replica.receive('b', { kind: 'prepareOk', epoch: 7, lastIndex: 0, lastEpoch: 0, commitIndex: 0 });
  h.replica.receive('c', { kind: 'prepareOk', epoch: 7, lastIndex: 0, lastEpoch: 0, commitIndex: 0 });
  h.syncAll();
  h.replica.receive('b', { kind: 'appendOk', epoch: 7, matchIndex: 1 });
  h.replica.receive('c', { kind: 'appendOk', epoch: 7, matchIndex: 1 });
  t.equal(h.replica.leaderPhase, 'serving');
  h.take();
  const results = h.replica.proposeMany([1, 2, 3, 4].map((i) => ({ type: 1, payload: payload(`p${i}`) })));
  t.same(results.map((r) => r.accepted && r.index), [2, 3, 4, 5], 'consecutive indexes, in call order');
  const effects = h.take();
  const persists = effects.filter((e) => e.kind === 'persist');
  t.equal(persists.length, 1, 'one storage operation for the whole batch');
  t.same(persists[0]!.kind === 'persist' && persists[0]!.op.kind === 'append' && persists[0]!.op.entries.map((e) => e.index), [2, 3, 4, 5]);
  const appends = effects.filter((e) => e.kind === 'send' && e.msg.kind === 'append');
  t.same(appends.map((e) => e.kind === 'send' && e.to).sort(), ['b', 'c'], 'one Append per follower');
  t.ok(appends.every((e) => e.kind === 'send' && e.msg.kind === 'append' && e.msg.entries.length === 4), 'each carries the whole batch');
  h.replica.storageDone(persists[0]!.kind === 'persist' ? persists[0]!.token : -1);
  h.replica.receive('b', { kind: 'appendOk', epoch: 7, matchIndex: 5 });
  t.equal(h.replica.commitIndex, 5, 'the leader and one follower hold the batch durably: all of it commits');
  t.same(h.take().filter((e) => e.kind === 'ack').map((e) => e.kind === 'ack' && e.index), [2, 3, 4, 5], 'each proposal acked once, in order');

  // A refused batch is refused whole, for one reason.
  const f = harness('b', ['a', 'b', 'c']);
  t.same(f.replica.proposeMany([{ type: 1, payload: payload('x') }, { type: 1, payload: payload('y') }]).map((r) => !r.accepted && r.reason), ['NOT_LEADER', 'NOT_LEADER']);
});
