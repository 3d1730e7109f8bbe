/**
 * Raft's CheckQuorum in the replica (replica.ts, 4.): the election service cannot see a
 * partition between masters, so a leader that hears from no majority gives up by itself.
 */
import t from 'tap';
import { Replica, type DurableState, type Effect } from '../../src/master/replication';

const EMPTY: DurableState = { promisedEpoch: 0, checkpoint: null, entries: [] };

/** Leader `a` of epoch 7 in a, b, c, serving after b's promise and ack, with a lease that never runs out. */
function servingLeader() {
  const effects: Effect[] = [];
  const clock = { nowMs: 0, monoMs(): number { return this.nowMs; } };
  const replica = new Replica({
    id: 'a', members: ['a', 'b', 'c'], clock, durable: EMPTY, effects: (e) => effects.push(e),
    heartbeatIntervalMs: 10, leaseSafetyMarginMs: 5, quorumTimeoutMs: 100,
  });
  const syncAll = () => {
    const tokens = effects.filter((e) => e.kind === 'persist').map((e) => (e as { token: number }).token);
    if (tokens.length > 0) replica.storageDone(Math.max(...tokens));
  };
  replica.becomeLeader(7, Number.MAX_SAFE_INTEGER);
  syncAll();
  replica.receive('b', { kind: 'prepareOk', epoch: 7, lastIndex: 0, lastEpoch: 0, commitIndex: 0 });
  syncAll();
  replica.receive('b', { kind: 'appendOk', epoch: 7, matchIndex: 1 });
  t.ok(replica.serving, 'serving');
  effects.length = 0;
  const at = (ms: number) => { clock.nowMs = ms; replica.tick(); };
  return { replica, effects, at };
}

t.test('replication: a leader that hears from no majority steps down, though its lease holds', async (t) => {
  const { replica, effects, at } = servingLeader();
  const p = replica.propose(1, Buffer.from('x'));
  t.equal(p.accepted, true);
  at(50);
  t.ok(replica.serving, 'within the quorum timeout it still leads');
  at(110);
  t.equal(replica.role, 'follower', 'b and c silent for longer than the quorum timeout: it steps down');
  t.same(effects.filter((e) => e.kind === 'reject').map((e) => e.kind === 'reject' && e.reason), ['LEADERSHIP_LOST'], 'its pending proposal is abandoned, never acknowledged');
  t.equal(effects.filter((e) => e.kind === 'ack').length, 0);
  t.equal(replica.propose(1, Buffer.from('y')).accepted, false, 'and it accepts nothing more');
});

t.test('replication: one follower answering keeps the leader of three leading', async (t) => {
  const { replica, at } = servingLeader();
  for (let ms = 20; ms <= 500; ms += 20) {
    replica.receive('c', { kind: 'appendOk', epoch: 7, matchIndex: 1 });
    at(ms);
  }
  t.ok(replica.serving, 'c answers in time (b is cut off): a majority, so it leads on');
});

t.test('replication: only answers in the leader\'s own epoch count as contact', async (t) => {
  const { replica, at } = servingLeader();
  for (let ms = 20; ms <= 200; ms += 20) {
    replica.receive('c', { kind: 'appendOk', epoch: 6, matchIndex: 1 });
    at(ms);
  }
  t.equal(replica.role, 'follower', 'stale answers from an older epoch do not keep it leading');
});
