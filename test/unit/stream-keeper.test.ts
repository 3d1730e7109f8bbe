/**
 * The stream keeper over a real MetaState with a fake commit path and clock: the first
 * append creates the active segment, the tick rolls it by age through SealLog and
 * OpRollSegment, retention items (what gc --dry-run and df show) are due exactly when
 * the tick drops them, and the tick drops them.
 */
import t from 'tap';
import { MetaOp, type AppendTargetRequest } from '../../gen/gfs';
import type { Clock } from '../../src/common/clock';
import { createLogger } from '../../src/common/log';
import { MetaState } from '../../src/master/meta-state';
import { StreamKeeper } from '../../src/master/streams/stream-keeper';

function setup() {
  const state = new MetaState();
  let now = 1_000_000;
  let inode = 1;
  const clock = { nowMs: () => now, monoMs: () => now } as Clock;
  const commit = async (_kind: string, op: MetaOp) => state.apply(op);
  const keeper = new StreamKeeper({
    state: () => state, commit, isLeader: () => true, safeMode: () => false, reserveInode: () => Math.max(inode++, state.nextInode), clock,
    log: createLogger('test', 'silent'), openLength: async () => 0,
    sealLog: async (path) => {
      const f = state.stat(path);
      if (f.kind !== 'file') throw new Error('not a file');
      await commit('sealLog', MetaOp.fromPartial({ completeFile: { inode: f.inode, size: f.size, checksum: '', mtimeMs: now } }));
      return state.fileByInode(f.inode)!;
    },
    appendTarget: async (req: AppendTargetRequest) => ({ inode: 0, path: req.path, leaseMs: 0 }),
  });
  state.apply(MetaOp.fromPartial({
    createStream: { path: '/s', policy: { rollBytes: 0, rollAgeMs: 1000, retentionAgeMs: 5000, retentionBytes: 0, replication: 3 }, mtimeMs: now },
  }));
  return { state, keeper, advance: (ms: number) => { now += ms; }, now: () => now };
}

t.test('stream keeper: first append creates the segment, the tick rolls it by age, retention is shown due then dropped', async (t) => {
  const { state, keeper, advance, now } = setup();
  const target = await keeper.appendTarget({ path: '/s', create: false, replication: 0, endedHandle: 0, failedNode: '', requestId: '' });
  t.match(target.path, /^\/s\/\d{8}T\d{6}\.\d{3}Z-0{16}$/, 'appends go to a new active segment');
  const seg = state.stat(target.path);
  t.equal(seg.kind === 'file' && seg.state, 'writing');
  const again = await keeper.appendTarget({ path: '/s', create: false, replication: 0, endedHandle: 0, failedNode: '', requestId: '' });
  t.equal(again.path, target.path, 'the same segment while it is active');

  advance(999);
  await keeper.tick();
  t.equal(state.fileByInode(seg.kind === 'file' ? seg.inode : 0)!.state, 'writing', 'not yet old enough');
  advance(1);
  await keeper.tick();
  const sealed = state.fileByInode(seg.kind === 'file' ? seg.inode : 0)!;
  t.equal(sealed.state, 'sealed', 'rolled by age with nobody appending');
  t.match(state.stat('/s'), { stream: { activeInode: 0 } });

  t.same(keeper.retentionItems(now()).map((i) => [i.kind, i.path, i.due, i.dueInMs]), [['retention', sealed.path, false, 5000]]);
  advance(5000);
  const due = keeper.retentionItems(now());
  t.same(due.map((i) => [i.path, i.due]), [[sealed.path, true]], 'due: gc --dry-run lists it, df counts it');
  t.equal(due[0]!.bytes, 0, 'an empty segment frees nothing (bytes count every replica)');
  await keeper.tick();
  t.equal(state.fileByInode(sealed.inode), undefined, 'dropped by the tick');
  t.same(keeper.retentionItems(now()), []);
  t.same(state.list('/s', { recursive: false, limit: 0, startAfter: '' }).entries, [], 'an idle stream ends empty');
  state.assertInvariants();
});

t.test('stream keeper: a segment closed without a roll (SealLog of the segment itself) is rolled by the next tick, and retention can drop it', async (t) => {
  const { state, keeper, advance } = setup();
  const a = await keeper.appendTarget({ path: '/s', create: false, replication: 0, endedHandle: 0, failedNode: '', requestId: '' });
  const seg = state.stat(a.path);
  const inode = seg.kind === 'file' ? seg.inode : 0;
  const handle = state.nextHandle;
  state.apply(MetaOp.fromPartial({ allocateChunk: { inode, handle, version: 1 } }));
  state.apply(MetaOp.fromPartial({ sealChunk: { inode, handle, length: 40, version: 2, replicaNodes: ['a'], writers: [], mtimeMs: 0 } }));
  state.apply(MetaOp.fromPartial({ completeFile: { inode, size: 40, checksum: '', mtimeMs: 0 } }));
  t.match(state.stat('/s'), { stream: { activeInode: inode, nextBaseOffset: 0 } }, 'closed, the stream not told yet');
  await keeper.tick();
  t.match(state.stat('/s'), { stream: { activeInode: 0, nextBaseOffset: 40 } }, 'the tick finished the roll');
  const b = await keeper.appendTarget({ path: '/s', create: false, replication: 0, endedHandle: 0, failedNode: '', requestId: '' });
  t.match(b.path, /-0{14}28$/, 'the next segment starts at stream offset 40');
  advance(5000);
  await keeper.tick();
  t.equal(state.fileByInode(inode), undefined, 'retention dropped the closed segment');

  // A closed "active" segment that retention drops before any roll: the stream's offsets still move past it.
  const s2 = new MetaState();
  s2.apply(MetaOp.fromPartial({ createStream: { path: '/t', policy: { rollBytes: 0, rollAgeMs: 0, retentionAgeMs: 10, retentionBytes: 0, replication: 1 }, mtimeMs: 1 } }));
  s2.apply(MetaOp.fromPartial({ rollSegment: { stream: '/t', sealedInode: 0, newSegment: '/t/19700101T000000.100Z-0000000000000000', newInode: 1, baseOffset: 0, mtimeMs: 100 } }));
  s2.apply(MetaOp.fromPartial({ allocateChunk: { inode: 1, handle: 1, version: 1 } }));
  s2.apply(MetaOp.fromPartial({ sealChunk: { inode: 1, handle: 1, length: 7, version: 2, replicaNodes: ['a'], writers: [], mtimeMs: 0 } }));
  s2.apply(MetaOp.fromPartial({ completeFile: { inode: 1, size: 7, checksum: '', mtimeMs: 200 } }));
  s2.apply(MetaOp.fromPartial({ purge: { inodes: [1] } }));
  t.match(s2.stat('/t'), { stream: { activeInode: 0, nextBaseOffset: 7 } });
  s2.assertInvariants();
});

t.test('stream keeper: a segment created after a roll in the same millisecond still sorts after it', async (t) => {
  const { state, keeper, advance } = setup();
  const a = await keeper.appendTarget({ path: '/s', create: false, replication: 0, endedHandle: 0, failedNode: '', requestId: '' });
  advance(1000);
  await keeper.tick();
  const b = await keeper.appendTarget({ path: '/s', create: false, replication: 0, endedHandle: 0, failedNode: '', requestId: '' });
  await keeper.rollNowFor('/s');
  const c = await keeper.appendTarget({ path: '/s', create: false, replication: 0, endedHandle: 0, failedNode: '', requestId: '' });
  t.ok(a.path < b.path && b.path < c.path, `${a.path} < ${b.path} < ${c.path}`);
  t.same(state.list('/s', { recursive: false, limit: 0, startAfter: '' }).entries.map((e) => e.path), [a.path, b.path, c.path]);
});
