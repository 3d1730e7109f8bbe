/**
 * Cluster events without NATS: positions, the leader's bounded history (gaps are said,
 * never hidden), what applied ops and observations become, and a publisher whose NATS is
 * unreachable (publish never throws or waits; the oldest are dropped and counted).
 */
import t from 'tap';
import { MetaOp } from '../../gen/gfs';
import { ManualClock, systemClock } from '../../src/common/clock';
import { silentLogger } from '../../src/common/log';
import { EventHistory, NatsPublisher, comparePositions, parsePosition, positionText, type ClusterEvent, type EventSink } from '../../src/events';
import { ClusterEvents } from '../../src/master/cluster-events';
import type { ApplyResult, FileNode } from '../../src/master/meta-types';
import { freePort } from '../integration/etcd';

function ev(rev: number, seq: number): ClusterEvent {
  return { v: 1, id: `${rev}.${seq}`, rev, seq, epoch: 1, kind: 'file.created', cluster: 'c', source: 'master/m1', timeMs: 0, data: {} };
}

t.test('events: positions parse as REV or REV.SEQ and order by rev, then seq', async (t) => {
  t.same(parsePosition('1042'), { rev: 1042, seq: Infinity });
  t.same(parsePosition('1042.3'), { rev: 1042, seq: 3 });
  for (const bad of ['', 'x', '1.2.3', '-1', '1.', '.5']) t.throws(() => parsePosition(bad), { code: 'INVALID_ARGUMENT' }, bad);
  t.ok(comparePositions({ rev: 5, seq: 9 }, { rev: 6, seq: 0 }) < 0);
  t.ok(comparePositions({ rev: 6, seq: 1 }, { rev: 6, seq: 0 }) > 0);
  t.ok(comparePositions({ rev: 6, seq: Infinity }, { rev: 6, seq: 100 }) > 0, 'REV alone is after every event at REV');
  t.equal(positionText({ rev: 7, seq: Infinity }), '7');
});

t.test('events: history answers after a position, pages, and says gap once the ring dropped what was asked for', async (t) => {
  const h = new EventHistory(4, { rev: 0, seq: Infinity });
  for (const [r, s] of [[1, 0], [1, 1], [2, 0], [3, 0]] as const) h.record(ev(r, s));
  t.same(h.after({ rev: 1, seq: 0 }, 10).events.map((e) => e.id), ['1.1', '2.0', '3.0']);
  t.same(h.after({ rev: 1, seq: Infinity }, 10).events.map((e) => e.id), ['2.0', '3.0']);
  const page = h.after({ rev: 0, seq: Infinity }, 2);
  t.same(page.events.map((e) => e.id), ['1.0', '1.1']);
  t.ok(page.more);
  t.throws(() => h.record(ev(3, 0)), 'positions strictly grow');
  h.record(ev(4, 0)); // drops 1.0: the horizon moves to it
  t.equal(positionText(h.horizon), '1.0');
  t.ok(h.after({ rev: 0, seq: Infinity }, 10).gap, 'asking from before the horizon is a gap');
  t.notOk(h.after({ rev: 1, seq: 0 }, 10).gap, 'asking from the horizon is not');
  h.restart({ rev: 10, seq: Infinity });
  t.equal(h.size, 0);
  t.ok(h.after({ rev: 9, seq: Infinity }, 10).gap);
  t.same(h.after({ rev: 10, seq: Infinity }, 10).events, []);
});

t.test('events: a long poll wakes on the next event, or times out', async (t) => {
  const clock = new ManualClock();
  const h = new EventHistory(10, { rev: 0, seq: Infinity });
  let woke = false;
  const waiting = h.waitAfter({ rev: 0, seq: Infinity }, 5000, clock).then(() => { woke = true; });
  await Promise.resolve();
  t.notOk(woke);
  h.record(ev(1, 0));
  await waiting;
  t.ok(woke);
  let timedOut = false;
  const idle = h.waitAfter({ rev: 1, seq: 0 }, 5000, clock).then(() => { timedOut = true; });
  clock.advance(5000);
  await idle;
  t.ok(timedOut);
});

/** A master's events with a fake host: `leader` decides who records observations and publishes. */
function recorder(leader: { on: boolean }, files = new Map<number, FileNode>()) {
  const published: { subject: string; event: ClusterEvent }[] = [];
  const sink: EventSink = { publish: (subject, json) => published.push({ subject, event: JSON.parse(json) as ClusterEvent }), stop: async () => undefined };
  const events = new ClusterEvents({
    id: 'm1', cluster: 'test', isLeader: () => leader.on, currentEpoch: () => 3, fileByInode: (i) => files.get(i), sink, clock: new ManualClock(), log: silentLogger,
  }, 10);
  return { events, published };
}

function file(inode: number, path: string, size = 0): FileNode {
  return { kind: 'file', inode, path, size, mtimeMs: 0, state: 'sealed', chunks: [], replication: 3, contentType: '', metadata: {}, checksum: '', visible: true, overwrite: false };
}

t.test('events: applied ops become file events at their WAL index; observations follow at the same index', async (t) => {
  const leader = { on: true };
  const files = new Map([[7, file(7, '/a/x', 5)], [8, file(8, '/a/old')]]);
  const { events, published } = recorder(leader, files);
  const apply = (index: number, op: MetaOp, result: ApplyResult) => { events.applying({ index }); events.applied({ index, epoch: 2 }, op, result); };
  apply(11, MetaOp.fromPartial({ createFile: { inode: 7, path: '/a/x' } }), { op: 'createFile', inode: 7, file: files.get(7) });
  apply(12, MetaOp.fromPartial({ allocateChunk: { inode: 7, handle: 1 } }), { op: 'allocateChunk', inode: 7, handle: 1 });
  apply(13, MetaOp.fromPartial({ completeFile: { inode: 7 } }), { op: 'completeFile', inode: 7, file: files.get(7), trashed: [8] });
  events.nodeDown({ id: 'n1', addr: 'h:1' });
  events.applying({ index: 14 }); // a no-op entry moves the index too
  events.replicaCorrupt(99, 'n2');
  apply(15, MetaOp.fromPartial({ delete: { path: '/a' } }), { op: 'delete', trashed: [7, 9] });
  apply(16, MetaOp.fromPartial({ delete: { path: '/a/x' } }), { op: 'delete', trashed: [7] });
  apply(17, MetaOp.fromPartial({ createFile: { inode: 20, path: '/r' } }), { op: 'createFile', inode: 20, replayed: true });
  t.same(published.map((p) => [p.event.id, p.event.kind]), [
    ['11.0', 'file.created'], ['13.0', 'file.deleted'], ['13.1', 'file.sealed'], ['13.2', 'node.down'],
    ['14.0', 'chunk.corrupt'], ['15.0', 'dir.deleted'], ['16.0', 'file.deleted'],
  ]);
  t.equal(published[0]!.subject, 'gfs.test.events.file.created');
  t.same(published[1]!.event.data, { path: '/a/old', inode: 8, reason: 'replaced' });
  t.same(published[5]!.event.data, { path: '/a', files: 2 });
  t.equal(published[0]!.event.epoch, 2, 'an op event carries its entry\'s epoch');
  t.equal(published[3]!.event.epoch, 3, 'an observation carries the leader\'s epoch');
  t.same(events.history.after({ rev: 10, seq: Infinity }, 100).events.map((e) => e.id), published.map((p) => p.event.id));
  apply(18, MetaOp.fromPartial({ tokenRevoke: { id: 'abc123', revokedAtMs: 5 } }), { op: 'tokenRevoke' } as ApplyResult);
  const revoked = published.at(-1)!;
  t.same([revoked.event.id, revoked.event.kind, revoked.event.data], ['18.0', 'token.revoked', { id: 'abc123' }], 'a revocation is an event at its index');
});

t.test('events: a follower keeps op events (same ids as the leader) but records no observation and publishes nothing', async (t) => {
  const leader = { on: false };
  const { events, published } = recorder(leader);
  events.applying({ index: 11 });
  events.applied({ index: 11, epoch: 2 }, MetaOp.fromPartial({ createFile: { inode: 1, path: '/f' } }), { op: 'createFile', inode: 1 });
  events.nodeUp({ id: 'n', addr: 'a', zone: 'z', tier: 'hot' }, false);
  events.leadership(false, 'a');
  t.same(published, []);
  t.same(events.history.after({ rev: 10, seq: Infinity }, 10).events.map((e) => `${e.id} ${e.kind}`), ['11.0 file.created']);
  leader.on = true;
  events.leadership(true, 'addr');
  events.leadership(true, 'addr');
  t.same(published.map((p) => `${p.event.id} ${p.event.kind}`), ['11.1 leader.changed'], 'one leader.changed per term');
  events.gcRound({ purgedTotal: 0, orphanDeletesTotal: 0, abortedTotal: 0 });
  events.gcRound({ purgedTotal: 2, orphanDeletesTotal: 5, abortedTotal: 0 });
  events.gcRound({ purgedTotal: 2, orphanDeletesTotal: 5, abortedTotal: 0 });
  t.same(published.slice(1).map((p) => [p.event.kind, p.event.data]), [['gc.swept', { purgedFiles: 2, orphanDeletes: 5, abortedWrites: 0 }]]);
  events.installed(50);
  t.ok(events.history.after({ rev: 11, seq: Infinity }, 10).gap, 'after a checkpoint install the older history is gone, and says so');
  t.doesNotThrow(() => events.nodeDown({ id: 'n', addr: 'a' }), 'an observation not after the horizon is dropped, never a crash');
  events.applying({ index: 51 });
  events.nodeDown({ id: 'n', addr: 'a' });
  t.same(events.history.after({ rev: 50, seq: Infinity }, 10).events.map((e) => `${e.id} ${e.kind}`), ['51.0 node.down']);
});

t.test('events: with NATS unreachable, publish never throws or waits; the queue keeps the newest and counts the dropped', async (t) => {
  const port = await freePort();
  const p = new NatsPublisher({ url: `nats://127.0.0.1:${port}`, name: 't', log: silentLogger, clock: systemClock, random: () => 0.5, queueMax: 5 });
  p.start();
  const started = performance.now();
  for (let i = 0; i < 20; i++) p.publish('gfs.t.events.file.created', JSON.stringify({ i }));
  t.ok(performance.now() - started < 1000, 'publishing 20 events took no network time');
  t.equal(p.queued, 5);
  t.equal(p.droppedTotal, 15);
  t.equal(p.publishedTotal, 0);
  t.notOk(p.isConnected);
  await p.stop();
  p.publish('x', '{}'); // after stop: ignored, no throw
});
