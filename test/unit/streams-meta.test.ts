/**
 * Streams in the metadata state machine: OpCreateStream, OpRollSegment (seal the active
 * segment, create the next with a name that sorts by time), retention's purge of sealed
 * segments straight from the tree, and the v2 snapshot records that carry them.
 */
import t from 'tap';
import { MetaOp } from '../../gen/gfs';
import { MetaState } from '../../src/master/meta-state';
import { parseSegmentName, segmentName } from '../../src/common/segment-name';

const policy = { rollBytes: 100, rollAgeMs: 1000, retentionAgeMs: 5000, retentionBytes: 0, replication: 2 };
const op = (o: Partial<MetaOp>) => MetaOp.fromPartial({ requestId: '', ...o });

function newSegment(state: MetaState, stream: string, sealedInode: number, mtimeMs: number, baseOffset: number) {
  return state.apply(op({
    rollSegment: { stream, sealedInode, newSegment: `${stream}/${segmentName(mtimeMs, baseOffset)}`, newInode: state.nextInode, baseOffset, mtimeMs },
  }));
}

/** Appends `length` bytes to the active segment the way the append path does: allocate, then seal the chunk. */
function appendChunk(state: MetaState, inode: number, length: number) {
  const handle = state.nextHandle;
  state.apply(op({ allocateChunk: { inode, handle, version: 1 } }));
  state.apply(op({ sealChunk: { inode, handle, length, version: 2, replicaNodes: ['a'], writers: [], mtimeMs: 0 } }));
}

t.test('segment names sort by time and give back their time and base offset', async (t) => {
  const a = segmentName(Date.UTC(2026, 11, 6, 22, 34, 10, 123), 0xa0000);
  t.equal(a, '20261206T223410.123Z-00000000000a0000');
  t.same(parseSegmentName(a), { createdMs: Date.UTC(2026, 11, 6, 22, 34, 10, 123), baseOffset: 0xa0000 });
  t.ok(segmentName(1000, 5) < segmentName(1001, 0) && segmentName(1000, 5) < segmentName(1000, 6));
  t.equal(parseSegmentName('20261306T223410.123Z-00000000000a0000'), undefined, 'month 13');
  t.equal(parseSegmentName('x'), undefined);
});

t.test('streams: create, first segment, roll, next segment continues the stream offsets', async (t) => {
  const s = new MetaState();
  s.apply(op({ createStream: { path: '/logs/app', policy, update: false, mtimeMs: 10 } }));
  const dir = s.stat('/logs/app');
  t.match(dir, { kind: 'dir', stream: { policy, activeInode: 0, nextBaseOffset: 0 } });
  t.throws(() => s.apply(op({ createStream: { path: '/logs/app', policy, update: false, mtimeMs: 11 } })), { code: 'ALREADY_EXISTS' });
  t.throws(() => s.apply(op({ createStream: { path: '/logs/app/inner', policy, update: false, mtimeMs: 11 } })), { code: 'INVALID_ARGUMENT' });

  const first = newSegment(s, '/logs/app', 0, 1000, 0).file!;
  t.match(first, { state: 'writing', visible: true, log: { open: true }, segment: { baseOffset: 0, createdMs: 1000 }, replication: 2 });
  t.throws(() => newSegment(s, '/logs/app', 0, 1001, 0), { code: 'ALREADY_EXISTS' }, 'one active segment at a time');
  appendChunk(s, first.inode, 70);
  s.apply(op({ rollSegment: { stream: '/logs/app', sealedInode: first.inode, newSegment: '', newInode: 0, baseOffset: 0, mtimeMs: 2000 } }));
  t.equal(s.fileByInode(first.inode)!.state, 'sealed');
  t.match(s.stat('/logs/app'), { stream: { activeInode: 0, nextBaseOffset: 70 } });
  t.throws(() => newSegment(s, '/logs/app', 0, 2500, 69), { code: 'INVALID_ARGUMENT' }, 'a base offset below the end of the last segment');
  t.throws(() => newSegment(s, '/logs/app', 0, 1000, 70), { code: 'INVALID_ARGUMENT' }, 'not newer than the last segment');
  const second = newSegment(s, '/logs/app', 0, 2500, 70).file!;
  t.same(s.list('/logs/app', { recursive: false, limit: 0, startAfter: '' }).entries.map((e) => e.path), [first.path, second.path], 'ls lists by time');

  // Retention drops the sealed segment from the tree at once; the active one cannot be purged.
  t.throws(() => s.apply(op({ purge: { inodes: [second.inode] } })), { code: 'NO_SUCH_FILE' });
  const purged = s.apply(op({ purge: { inodes: [first.inode] } }));
  t.same(purged.released!.length, 1);
  t.equal(s.fileByInode(first.inode), undefined);
  t.same(s.list('/logs/app', { recursive: false, limit: 0, startAfter: '' }).entries.map((e) => e.path), [second.path]);
  s.assertInvariants();

  // The snapshot carries streams and segments; restoring gives the same bytes.
  const image = s.snapshot();
  const back = MetaState.restore(image);
  t.same(Buffer.from(back.snapshot()), Buffer.from(image));
  t.match(back.stat('/logs/app'), { stream: { policy, activeInode: second.inode, nextBaseOffset: 70, lastCreatedMs: 2500 } });
  t.match(back.fileByInode(second.inode), { segment: { baseOffset: 70, createdMs: 2500 } });
  t.match(Buffer.from(image).toString(), /\["s","\/logs\/app",100,1000,5000,0,2,\d+,70,2500\]/);
});

t.test('streams: nothing but its segments goes inside a stream', async (t) => {
  const s = new MetaState();
  s.apply(op({ createStream: { path: '/x', policy, update: false, mtimeMs: 1 } }));
  s.apply(op({ mkdir: { path: '/y', mtimeMs: 1 } }));
  const create = (inode: number, path: string) => op({ createFile: { inode, path, overwrite: false, replication: 1, contentType: '', metadata: {}, mtimeMs: 2 } });
  t.throws(() => s.apply(create(1, '/x/file')), { code: 'INVALID_ARGUMENT' }, 'a put');
  t.throws(() => s.apply(create(1, '/x/a/file')), { code: 'INVALID_ARGUMENT' }, 'a put deeper down');
  t.throws(() => s.apply(op({ mkdir: { path: '/x/d', mtimeMs: 2 } })), { code: 'INVALID_ARGUMENT' }, 'a directory');
  t.throws(() => s.apply(op({ rename: { source: '/y', target: '/x/y', overwrite: false, mtimeMs: 2 } })), { code: 'INVALID_ARGUMENT' }, 'a move in');
  s.apply(op({ mkdir: { path: '/x', mtimeMs: 3 } }));
  s.apply(op({ rename: { source: '/x', target: '/y/x', overwrite: false, mtimeMs: 4 } }));
  t.match(s.stat('/y/x'), { stream: { policy } }, 'the stream itself may move');
});

t.test('streams: update changes the policy of an existing stream only', async (t) => {
  const s = new MetaState();
  t.throws(() => s.apply(op({ createStream: { path: '/x', policy, update: true, mtimeMs: 1 } })), { code: 'NO_SUCH_FILE' });
  s.apply(op({ createStream: { path: '/x', policy, update: false, mtimeMs: 1 } }));
  s.apply(op({ createStream: { path: '/x', policy: { ...policy, retentionBytes: 7 }, update: true, mtimeMs: 2 } }));
  t.match(s.stat('/x'), { stream: { policy: { retentionBytes: 7 } } });
  t.throws(() => s.apply(op({ createStream: { path: '/y', policy: { ...policy, replication: 0 }, update: false, mtimeMs: 1 } })), { code: 'INVALID_ARGUMENT' });
});

t.test('streams: deleting the stream trashes its segments, the open one closed', async (t) => {
  const s = new MetaState();
  s.apply(op({ createStream: { path: '/x', policy, update: false, mtimeMs: 1 } }));
  const seg = newSegment(s, '/x', 0, 100, 0).file!;
  appendChunk(s, seg.inode, 10);
  s.apply(op({ delete: { path: '/x', recursive: true, mtimeMs: 200 } }));
  t.equal(s.inodeLocation(seg.inode), 'trash');
  s.assertInvariants();
  s.apply(op({ createStream: { path: '/x', policy, update: false, mtimeMs: 300 } }));
  s.apply(op({ mkdir: { path: '/p', mtimeMs: 300 } }));
  s.apply(op({ createFile: { inode: s.nextInode, path: '/p/f', overwrite: false, replication: 1, contentType: '', metadata: {}, mtimeMs: 301 } }));
  const plain = s.nextInode - 1;
  s.apply(op({ completeFile: { inode: plain, size: 0, checksum: '', mtimeMs: 302 } }));
  s.apply(op({ delete: { path: '/p/f', recursive: false, mtimeMs: 303 } }));
  t.throws(() => s.apply(op({ restore: { inode: plain, target: '/x/f', mtimeMs: 304 } })), { code: 'INVALID_ARGUMENT' }, 'no plain file restored into a stream');
  s.apply(op({ restore: { inode: seg.inode, target: '', mtimeMs: 305 } }));
  t.match(s.fileByInode(seg.inode), { path: seg.path, state: 'sealed', visible: true }, 'a segment goes back where it was');
});
