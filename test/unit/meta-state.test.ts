import t from 'tap';
import { throwsCode } from './throws-code';
import type { MetaOp } from '../../gen/gfs';
import { type ErrorCode } from '../../src/common/errors';
import { MetaState, type FileNode } from '../../src/master/meta-state';

function op(partial: Partial<MetaOp>): MetaOp {
  return { requestId: '', ...partial };
}

function createOp(inode: number, path: string, overwrite = false, mtimeMs = 1) {
  return { inode, path, overwrite, replication: 2, contentType: 'application/octet-stream', metadata: { k: 'v' }, mtimeMs };
}

/** A state with something of everything: nested dirs, files, a pending put, trash, request ids. */
function busyState(): MetaState {
  const s = new MetaState({ requestIdsMax: 8 });
  let now = 10;
  const put = (path: string, lengths: number[], overwrite = false, requestId = '') => {
    const inode = s.nextInode;
    s.apply(op({ requestId, createFile: createOp(inode, path, overwrite, ++now) }));
    for (const length of lengths) {
      const handle = s.nextHandle;
      s.apply(op({ allocateChunk: { inode, handle, version: 3 } }));
      s.apply(op({ commitChunk: { inode, handle, length, version: 0 } }));
    }
    s.apply(op({ completeFile: { inode, size: lengths.reduce((a, b) => a + b, 0), checksum: `sum${inode}`, mtimeMs: ++now } }));
    return inode;
  };
  put('/logs/2024/01/a.log', [100, 50], false, 'req-a');
  put('/logs/2024/01/b.log', [7]);
  put('/logs/2024/02/c.log', []);
  put('/logs/2024/01/a.log', [1], true); // the first a.log goes to trash
  put('/media/x-y/\u{1F600}.png', [3]);
  s.apply(op({ requestId: 'req-mkdir', mkdir: { path: '/empty/dir', mtimeMs: ++now } }));
  s.apply(op({ delete: { path: '/logs/2024/02', recursive: true, mtimeMs: ++now } }));
  s.apply(op({ rename: { source: '/media/x-y', target: '/media/renamed', overwrite: false, mtimeMs: ++now } }));
  const pending = s.nextInode;
  s.apply(op({ createFile: createOp(pending, '/logs/2024/03/pending.log', false, ++now) }));
  s.apply(op({ allocateChunk: { inode: pending, handle: s.nextHandle, version: 1 } }));
  return s;
}

t.test('meta-state: a chunk ended early commits its new version; versions never go back', async (t) => {
  const s = new MetaState();
  s.apply(op({ createFile: createOp(1, '/ns/f') }));
  s.apply(op({ allocateChunk: { inode: 1, handle: 1, version: 1 } }));
  s.apply(op({ commitChunk: { inode: 1, handle: 1, length: 4, version: 2 } }));
  t.equal(s.fileByInode(1)!.chunks[0]!.version, 2, 'the sealed version is recorded');
  s.apply(op({ commitChunk: { inode: 1, handle: 1, length: 4, version: 0 } }));
  t.equal(s.fileByInode(1)!.chunks[0]!.version, 2, 'a retried commit without a version keeps it');
  s.apply(op({ commitChunk: { inode: 1, handle: 1, length: 4, version: 3 } }));
  t.equal(s.fileByInode(1)!.chunks[0]!.version, 3, 'a retried seal at a newer version moves it on');
  t.equal(MetaState.restore(s.snapshot()).fileByInode(1)!.chunks[0]!.version, 3, 'and it survives a checkpoint');
});

t.test('meta-state: a decommission is metadata: idempotent, cancellable, and kept by a checkpoint', async (t) => {
  const s = new MetaState();
  s.apply(op({ decommission: { nodeId: 'node-a', cancel: false, mtimeMs: 5 } }));
  s.apply(op({ decommission: { nodeId: 'node-a', cancel: false, mtimeMs: 9 } }));
  s.apply(op({ decommission: { nodeId: 'node-b', cancel: false, mtimeMs: 7 } }));
  t.same([...s.drainingNodes()], [['node-a', 5], ['node-b', 7]], 'a repeated drain keeps its start time');
  const restored = MetaState.restore(s.snapshot());
  t.same([...restored.drainingNodes()].sort(), [['node-a', 5], ['node-b', 7]], 'drains survive a checkpoint');
  t.ok(Buffer.from(restored.snapshot()).equals(Buffer.from(s.snapshot())), 'and the image is the same bytes');
  s.apply(op({ decommission: { nodeId: 'node-a', cancel: true, mtimeMs: 11 } }));
  s.apply(op({ decommission: { nodeId: 'node-a', cancel: true, mtimeMs: 12 } }));
  t.same([...s.drainingNodes().keys()], ['node-b'], 'cancel ends a drain; a repeated cancel is a no-op');
  throwsCode(t, () => s.apply(op({ decommission: { nodeId: '', cancel: false, mtimeMs: 1 } })), 'INVALID_ARGUMENT', 'an empty node id is refused');
  throwsCode(t, () => s.apply(op({ decommission: { nodeId: 'a b', cancel: false, mtimeMs: 1 } })), 'INVALID_ARGUMENT', 'a node id with a space is refused');
});

t.test('meta-state: a retried request id is applied once and answers with the first result', async (t) => {
  const s = new MetaState();
  const first = s.apply(op({ requestId: 'r1', createFile: createOp(1, '/ns/f') }));
  // the retry was logged with ids picked before the first one applied
  const retry = s.apply(op({ requestId: 'r1', createFile: createOp(2, '/ns/f') }));
  t.equal(first.inode, 1);
  t.equal(retry.inode, 1);
  t.equal(retry.replayed, true);
  t.equal(retry.file?.inode, 1);
  t.equal(s.pendingFiles().length, 1);
  t.equal(s.nextInode, 2, 'a replay changes nothing, not even the id counters');

  s.apply(op({ requestId: 'r2', allocateChunk: { inode: 1, handle: 1, version: 1 } }));
  const again = s.apply(op({ requestId: 'r2', allocateChunk: { inode: 1, handle: 2, version: 1 } }));
  t.same([again.handle, again.version], [1, 1]);
  t.equal(s.fileByInode(1)!.chunks.length, 1, 'one chunk, not two');

  t.same(s.seenRequest('r2'), { op: 'allocateChunk', inode: 1, handle: 1, version: 1, replayed: true, file: s.fileByInode(1) });
  t.equal(s.seenRequest('never'), undefined);
  t.equal(s.seenRequest(''), undefined);

  s.apply(op({ commitChunk: { inode: 1, handle: 1, length: 4, version: 0 } }));
  s.apply(op({ requestId: 'r3', completeFile: { inode: 1, size: 4, checksum: 'x', mtimeMs: 5 } }));
  const completeRetry = s.apply(op({ requestId: 'r3', completeFile: { inode: 1, size: 4, checksum: 'x', mtimeMs: 6 } }));
  t.equal(completeRetry.file?.state, 'sealed', 'a retried complete is not FILE_NOT_WRITABLE');
  s.validate(op({ requestId: 'r3', completeFile: { inode: 1, size: 4, checksum: 'x', mtimeMs: 6 } }));

  s.apply(op({ requestId: 'r4', delete: { path: '/ns/f', recursive: false, mtimeMs: 7 } }));
  const deleteRetry = s.apply(op({ requestId: 'r4', delete: { path: '/ns/f', recursive: false, mtimeMs: 8 } }));
  t.equal(deleteRetry.op, 'delete', 'a retried delete is not NO_SUCH_FILE');
  t.equal(s.trash().length, 1);
});

t.test('meta-state: a request id reused for another operation is refused', async (t) => {
  const s = new MetaState();
  s.apply(op({ requestId: 'same', createFile: createOp(1, '/ns/f') }));
  throwsCode(t, () => s.apply(op({ requestId: 'same', allocateChunk: { inode: 1, handle: 1, version: 1 } })), 'INVALID_ARGUMENT');
  throwsCode(t, () => s.apply(op({ requestId: 'x'.repeat(129), mkdir: { path: '/a', mtimeMs: 1 } })), 'INVALID_ARGUMENT', 'an over-long request id');
});

t.test('meta-state: the request-id table forgets the oldest id first', async (t) => {
  const s = new MetaState({ requestIdsMax: 3 });
  for (let i = 1; i <= 4; i++) s.apply(op({ requestId: `r${i}`, mkdir: { path: `/d${i}`, mtimeMs: i } }));
  t.equal(s.seenRequest('r1'), undefined, 'evicted');
  t.ok(s.seenRequest('r2') && s.seenRequest('r3') && s.seenRequest('r4'));
  s.seenRequest('r2'); // a lookup does not make an id younger
  s.apply(op({ requestId: 'r5', mkdir: { path: '/d5', mtimeMs: 5 } }));
  t.equal(s.seenRequest('r2'), undefined);
  const restored = MetaState.restore(s.snapshot());
  restored.apply(op({ requestId: 'r6', mkdir: { path: '/d6', mtimeMs: 6 } }));
  t.equal(restored.seenRequest('r3'), undefined, 'a restored table evicts in the same order');
  t.ok(restored.seenRequest('r4'));
});

t.test('meta-state: a MetaOp must hold exactly one operation', async (t) => {
  const s = new MetaState();
  throwsCode(t, () => s.apply(op({})), 'INVALID_ARGUMENT', 'none');
  throwsCode(t, () => s.apply(op({ mkdir: { path: '/a', mtimeMs: 1 }, delete: { path: '/a', recursive: false, mtimeMs: 1 } })), 'INVALID_ARGUMENT', 'two');
});

t.test('meta-state: an op that throws leaves the state unchanged', async (t) => {
  const s = busyState();
  const pending = s.pendingFiles()[0]!;
  const aLog = s.stat('/logs/2024/01/a.log') as FileNode;
  const failing: [string, MetaOp, ErrorCode][] = [
    ['create over a file', op({ createFile: createOp(s.nextInode, '/logs/2024/01/b.log') }), 'ALREADY_EXISTS'],
    ['create with a used inode', op({ createFile: createOp(1, '/new/f') }), 'INVALID_ARGUMENT'],
    ['create below a file', op({ createFile: createOp(s.nextInode, '/logs/2024/01/b.log/x/y') }), 'NOT_A_DIRECTORY'],
    ['allocate on a sealed file', op({ allocateChunk: { inode: aLog.inode, handle: s.nextHandle, version: 1 } }), 'FILE_NOT_WRITABLE'],
    ['allocate with a used handle', op({ allocateChunk: { inode: pending.inode, handle: 1, version: 1 } }), 'INVALID_ARGUMENT'],
    ['complete with an uncommitted chunk', op({ completeFile: { inode: pending.inode, size: 0, checksum: '', mtimeMs: 1 } }), 'FILE_NOT_WRITABLE'],
    ['commit a chunk of another file', op({ commitChunk: { inode: pending.inode, handle: aLog.chunks[0]!.handle, length: 1, version: 0 } }), 'INVALID_ARGUMENT'],
    ['rename into itself', op({ rename: { source: '/logs', target: '/logs/2024/x', overwrite: false, mtimeMs: 1 } }), 'INVALID_ARGUMENT'],
    ['rename onto a file without overwrite', op({ rename: { source: '/logs/2024/01/b.log', target: '/logs/2024/01/a.log', overwrite: false, mtimeMs: 1 } }), 'ALREADY_EXISTS'],
    ['rename onto a directory', op({ rename: { source: '/logs/2024/01/b.log', target: '/empty/dir', overwrite: true, mtimeMs: 1 } }), 'ALREADY_EXISTS'],
    ['delete a non-empty directory', op({ delete: { path: '/logs', recursive: false, mtimeMs: 1 } }), 'DIRECTORY_NOT_EMPTY'],
    ['delete /', op({ delete: { path: '/', recursive: true, mtimeMs: 1 } }), 'INVALID_ARGUMENT'],
    ['mkdir over a file', op({ mkdir: { path: '/logs/2024/01/b.log', mtimeMs: 1 } }), 'ALREADY_EXISTS'],
    ['abort a sealed file', op({ abortFile: { inode: aLog.inode } }), 'FILE_NOT_WRITABLE'],
    ['a bad path with a request id', op({ requestId: 'fresh', mkdir: { path: '/a/../b', mtimeMs: 1 } }), 'INVALID_PATH'],
    ['a negative mtime', op({ mkdir: { path: '/fine', mtimeMs: -1 } }), 'INVALID_ARGUMENT'],
  ];
  for (const [what, o, code] of failing) {
    const before = Buffer.from(s.snapshot());
    const counters = [s.nextInode, s.nextHandle];
    throwsCode(t, () => s.validate(o), code, `validate: ${what}`);
    throwsCode(t, () => s.apply(o), code, `apply: ${what}`);
    t.ok(before.equals(Buffer.from(s.snapshot())), `state unchanged after: ${what}`);
    t.same([s.nextInode, s.nextHandle], counters);
  }
  t.equal(s.seenRequest('fresh'), undefined, 'a failed op does not remember its request id');
  s.assertInvariants();
});

t.test('meta-state: snapshot then restore gives the same answers and the same bytes', async (t) => {
  const s = busyState();
  const image = s.snapshot();
  const r = MetaState.restore(image);
  t.ok(Buffer.from(image).equals(Buffer.from(r.snapshot())), 'same snapshot bytes');
  t.same(r.counts(), s.counts());
  t.same([r.nextInode, r.nextHandle], [s.nextInode, s.nextHandle]);
  const listing = (m: MetaState) => m.list('/', { recursive: true, limit: 0, startAfter: '' });
  t.same(listing(r), listing(s));
  t.same(r.stat('/logs/2024/01/a.log'), s.stat('/logs/2024/01/a.log'));
  t.same(r.stat('/empty/dir'), s.stat('/empty/dir'));
  t.same(r.trash(), s.trash());
  t.same(r.pendingFiles(), s.pendingFiles());
  t.same([...r.allChunks()].sort((a, b) => a.handle - b.handle), [...s.allChunks()].sort((a, b) => a.handle - b.handle));
  for (let h = 1; h < s.nextHandle; h++) t.same(r.chunkOwner(h), s.chunkOwner(h), `owner of chunk ${h}`);
  t.same(r.seenRequest('req-a'), s.seenRequest('req-a'));
  t.same(r.seenRequest('req-mkdir'), s.seenRequest('req-mkdir'));
  t.same(r.inodeLocation(1), 'trash');

  // the same ops keep them equal, including ones whose outcome depends on map order
  const more = [
    op({ delete: { path: '/logs', recursive: true, mtimeMs: 100 } }),
    op({ rename: { source: '/media', target: '/m2/x', overwrite: false, mtimeMs: 101 } }),
    op({ abortFile: { inode: s.pendingFiles()[0]!.inode } }),
  ];
  for (const o of more) t.same(r.apply(o), s.apply(o));
  t.ok(Buffer.from(s.snapshot()).equals(Buffer.from(r.snapshot())), 'still the same bytes');
  t.ok(Buffer.from(new MetaState().snapshot()).equals(Buffer.from(MetaState.restore(new MetaState().snapshot()).snapshot())), 'empty state');
});

t.test('meta-state: a damaged snapshot is refused as CORRUPT', async (t) => {
  const image = Buffer.from(busyState().snapshot());
  throwsCode(t, () => MetaState.restore(image.subarray(0, image.length - 1)), 'CORRUPT', 'cut mid-line');
  const lastLine = image.lastIndexOf(0x0a, image.length - 2);
  throwsCode(t, () => MetaState.restore(image.subarray(0, lastLine + 1)), 'CORRUPT', 'end record missing');
  throwsCode(t, () => MetaState.restore(new Uint8Array()), 'CORRUPT', 'empty');
  const text = image.toString('utf8');
  throwsCode(t, () => MetaState.restore(Buffer.from(text.replace('"/logs/2024/01/b.log"', '"/nowhere/b.log"'))), 'CORRUPT', 'a file without its directory');
  throwsCode(t, () => MetaState.restore(Buffer.from(text.replace('"format":"gfs-meta"', '"format":"other"'))), 'CORRUPT', 'wrong format');
  throwsCode(t, () => MetaState.restore(Buffer.from(text.replace('["d","/empty/dir"', '["d" "/empty/dir"'))), 'CORRUPT', 'bad JSON');
  const dropped = text.split('\n').filter((l) => !l.startsWith('["r","req-mkdir"')).join('\n');
  throwsCode(t, () => MetaState.restore(Buffer.from(dropped)), 'CORRUPT', 'a missing record');
});

t.test('meta-state: invariants hold through a busy history', async (t) => {
  const s = busyState();
  s.assertInvariants();
  t.same(s.counts(), { files: 3, dirs: 7, chunks: 6, trash: 2, pending: 1 });
});

t.test('meta-state: completeFile merges the metadata it carries (digests known only at the end of the body)', async (t) => {
  const s = new MetaState();
  s.apply(op({ createFile: createOp(1, '/ns/obj') }));
  s.apply(op({ completeFile: { inode: 1, size: 0, checksum: '', mtimeMs: 2, metadata: { entries: { etag: '"d41d8cd98f00b204e9800998ecf8427e"', k: 'w' } } } }));
  t.same(s.fileByInode(1)!.metadata, { etag: '"d41d8cd98f00b204e9800998ecf8427e"', k: 'w' }, 'added, and a later value wins');
  s.apply(op({ createFile: createOp(2, '/ns/other') }));
  s.apply(op({ completeFile: { inode: 2, size: 0, checksum: '', mtimeMs: 3 } }));
  t.same(s.fileByInode(2)!.metadata, { k: 'v' }, 'no metadata: unchanged');
});

t.test('meta-state: a completion that names the file it replaces is a compare-and-swap', async (t) => {
  const s = new MetaState();
  s.apply(op({ createFile: createOp(1, '/ns/obj') }));
  s.apply(op({ completeFile: { inode: 1, size: 0, checksum: '', mtimeMs: 2 } }));
  // Two writers both saw inode 1 and both ask to replace it: the first wins, the second fails.
  s.apply(op({ createFile: createOp(2, '/ns/obj', true) }));
  s.apply(op({ createFile: createOp(3, '/ns/obj', true) }));
  s.apply(op({ completeFile: { inode: 2, size: 0, checksum: '', mtimeMs: 3, replaces: { inode: 1 } } }));
  throwsCode(t, () => s.apply(op({ completeFile: { inode: 3, size: 0, checksum: '', mtimeMs: 4, replaces: { inode: 1 } } })), 'PRECONDITION_FAILED');
  t.equal((s.stat('/ns/obj') as FileNode).inode, 2, 'the first replacement stands');
  throwsCode(t, () => s.apply(op({ completeFile: { inode: 3, size: 0, checksum: '', mtimeMs: 4, replaces: { inode: 99 } } })), 'PRECONDITION_FAILED');
  s.apply(op({ completeFile: { inode: 3, size: 0, checksum: '', mtimeMs: 5, replaces: { inode: 2 } } }));
  t.equal((s.stat('/ns/obj') as FileNode).inode, 3);
});
