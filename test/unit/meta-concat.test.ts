/**
 * OpConcatFiles: a file made of other files' chunks, no data copied; the parts vanish,
 * the preconditions hold, replays and snapshots keep it, invariants stay true.
 */
import t from 'tap';
import { throwsCode } from './throws-code';
import type { MetaOp } from '../../gen/gfs';
import { MetaState, type FileNode } from '../../src/master/meta-state';

function op(partial: Partial<MetaOp>): MetaOp {
  return { requestId: '', ...partial };
}

/** A sealed file with chunks of these lengths; returns its inode. */
function put(s: MetaState, path: string, lengths: number[], overwrite = false): number {
  const inode = s.nextInode;
  s.apply(op({ createFile: { inode, path, overwrite, replication: 2, contentType: '', metadata: {}, mtimeMs: 1 } }));
  for (const length of lengths) {
    const handle = s.nextHandle;
    s.apply(op({ allocateChunk: { inode, handle, version: 1 } }));
    s.apply(op({ commitChunk: { inode, handle, length, version: 0 } }));
  }
  s.apply(op({ completeFile: { inode, size: lengths.reduce((a, b) => a + b, 0), checksum: `x${inode}`, mtimeMs: 2 } }));
  return inode;
}

function concat(s: MetaState, path: string, parts: number[], extra: Record<string, unknown> = {}, requestId = '') {
  return s.apply(op({
    requestId,
    concatFiles: { inode: s.nextInode, path, parts, overwrite: false, contentType: 'text/x', metadata: { etag: '"e-3"' }, replication: 2, mtimeMs: 5, ...extra },
  }));
}

t.test('concat: the chunks move in order, the parts vanish, sizes add up, nothing is orphaned', async (t) => {
  const s = new MetaState();
  const a = put(s, '/up/a', [100, 37]);
  const b = put(s, '/up/b', [64]);
  const c = put(s, '/up/c', [5]);
  const handles = [a, b, c].flatMap((i) => s.fileByInode(i)!.chunks.map((ch) => ch.handle));
  const chunksBefore = s.counts().chunks;
  const r = concat(s, '/bucket/obj', [a, b, c]);
  const f = s.stat('/bucket/obj') as FileNode;
  t.equal(f.inode, r.inode);
  t.same(f.chunks.map((ch) => ch.handle), handles, 'the parts\' chunks, in order, same handles');
  t.same(f.chunks.map((ch) => ch.length), [100, 37, 64, 5], 'chunks of any length, anywhere');
  t.equal(f.size, 206);
  t.equal(f.state, 'sealed');
  t.equal(f.checksum, '', 'no whole-file checksum for a concatenation');
  t.same(f.metadata, { etag: '"e-3"' });
  t.equal(f.contentType, 'text/x');
  for (const i of [a, b, c]) t.equal(s.fileByInode(i), undefined, `part ${i} is gone`);
  throwsCode(t, () => s.stat('/up/a'), 'NO_SUCH_FILE');
  t.equal(s.counts().chunks, chunksBefore, 'no chunk lost or added');
  t.equal(s.trash().length, 0, 'the parts are not in trash: their chunks live on');
  for (const h of handles) t.equal(s.chunkOwner(h)?.inode, f.inode);
  t.same(r.consumed?.map((p) => p.path), ['/up/a', '/up/b', '/up/c']);
  s.assertInvariants();
  const again = MetaState.restore(s.snapshot());
  again.assertInvariants();
  t.same((again.stat('/bucket/obj') as FileNode).chunks, f.chunks, 'a snapshot carries it');
});

t.test('concat: preconditions like a complete; a failed op changes nothing', async (t) => {
  const s = new MetaState();
  const old = put(s, '/b/obj', [1]);
  const a = put(s, '/up/a', [10]);
  s.apply(op({ createStream: { path: '/st', policy: { rollBytes: 0, rollAgeMs: 0, retentionAgeMs: 0, retentionBytes: 0, replication: 1 }, update: false, mtimeMs: 2 } }));
  const before = s.snapshot();
  throwsCode(t, () => concat(s, '/b/obj', [a]), 'ALREADY_EXISTS');
  throwsCode(t, () => concat(s, '/b/obj', [a], { overwrite: true, replaces: { inode: 999 } }), 'PRECONDITION_FAILED');
  throwsCode(t, () => concat(s, '/b/new', [a, a]), 'INVALID_ARGUMENT');
  throwsCode(t, () => concat(s, '/b/new', []), 'INVALID_ARGUMENT');
  throwsCode(t, () => concat(s, '/b/new', [12345]), 'NO_SUCH_FILE');
  throwsCode(t, () => concat(s, '/b/obj', [old], { overwrite: true }), 'INVALID_ARGUMENT');
  throwsCode(t, () => concat(s, '/st/x', [a]), 'INVALID_ARGUMENT'); // nothing but segments inside a stream
  t.ok(Buffer.from(s.snapshot()).equals(Buffer.from(before)), 'the failed ops changed nothing');
  const pending = s.nextInode;
  s.apply(op({ createFile: { inode: pending, path: '/up/p', overwrite: false, replication: 2, contentType: '', metadata: {}, mtimeMs: 1 } }));
  throwsCode(t, () => concat(s, '/b/new', [a, pending]), 'NO_SUCH_FILE');
  s.apply(op({ abortFile: { inode: pending } }));
  t.ok(s.fileByInode(a) && s.stat('/up/a'), 'the part is still there after the failures');
  s.apply(op({ delete: { path: '/up/a', recursive: false, mtimeMs: 3 } }));
  throwsCode(t, () => concat(s, '/b/new', [a]), 'NO_SUCH_FILE'); // a trashed part is no part
  s.apply(op({ restore: { inode: a, target: '', mtimeMs: 4 } }));
  const r = concat(s, '/b/obj', [a], { overwrite: true, replaces: { inode: old } }, 'req-1');
  t.equal((s.stat('/b/obj') as FileNode).inode, r.inode, 'If-Match: replaced');
  t.same(r.trashed, [old], 'the replaced object went to trash');
  const replay = concat(s, '/b/obj', [a], { overwrite: true, replaces: { inode: old } }, 'req-1');
  t.ok(replay.replayed, 'a retry is applied once');
  t.equal(replay.inode, r.inode);
  s.assertInvariants();
});
