import { readFileSync } from 'node:fs';
import t from 'tap';

import { GfsError } from '../../src/common/errors';
import { MetaState } from '../../src/master/meta-state';
import { decodeSnapshot, encodeSnapshot } from '../../src/master/snapshot-codec';
import { GOLDEN_SNAPSHOT, GOLDEN_SNAPSHOT_V2, goldenMetaState, goldenMetaStateV2 } from '../fixtures/format/meta/generate';

type Test = Pick<typeof t, 'fail' | 'equal' | 'match'>;

const golden = (): Buffer => readFileSync(GOLDEN_SNAPSHOT);
const goldenV2 = (): Buffer => readFileSync(GOLDEN_SNAPSHOT_V2);

/** The v1 golden as the v2 writer writes the same state: version 2, and a null log field ending every file record. */
function v1AsV2(v1: string): string {
  return v1.replace('"version":1', '"version":2').split('\n').map((l) => (/^\["[fpt]"/.test(l) ? l.slice(0, -1) + ',null]' : l)).join('\n');
}

function refusedAsCorrupt(t: Test, image: string, what: string, message?: RegExp): void {
  try {
    decodeSnapshot(Buffer.from(image, 'utf8'));
    t.fail(`${what}: decoded`);
  } catch (e) {
    if (!(e instanceof GfsError)) throw e;
    t.equal(e.code, 'CORRUPT', what);
    if (message !== undefined) t.match(e.message, message, what);
  }
}

const sealed = { kind: 'file', state: 'sealed', visible: true, overwrite: false, contentType: '', metadata: {} } as const;

t.test('meta snapshot: format v1 golden image decodes to exactly the state that wrote it', async (t) => {
  const image = decodeSnapshot(golden());
  t.same(image.header, { version: 1, nextInode: 8, nextHandle: 9, requestIdsMax: 4 }, 'header: ids past the aborted put and the abandoned chunk');
  t.strictSame(image.tree, [
    { kind: 'dir', path: '/', mtimeMs: 1017 },
    { kind: 'dir', path: '/archive', mtimeMs: 1017 },
    { kind: 'dir', path: '/archive/data', mtimeMs: 1009 },
    { kind: 'dir', path: '/archive/data/\u00fcml\u00e4ut', mtimeMs: 1009 },
    {
      ...sealed, inode: 3, path: '/archive/data/\u00fcml\u00e4ut/\u{1F600}.bin', size: 10, mtimeMs: 1009, replication: 2,
      contentType: 'image/png', checksum: 'c3', chunks: [{ handle: 3, version: 7, length: 10, committed: true }],
    },
    { kind: 'dir', path: '/logs', mtimeMs: 1000 },
    { kind: 'dir', path: '/logs/app', mtimeMs: 1011 },
    {
      ...sealed, inode: 4, path: '/logs/app/day.log', size: 7, mtimeMs: 1011, replication: 2, checksum: 'c4', overwrite: true,
      chunks: [{ handle: 4, version: 1, length: 7, committed: true }],
    },
    { ...sealed, inode: 2, path: '/logs/app/empty.log', size: 0, mtimeMs: 1007, replication: 3, checksum: 'c2', chunks: [] },
    { kind: 'dir', path: '/tmp', mtimeMs: 1014 },
  ], 'tree: pre-order, files before subdirectories, names in code point order');
  t.strictSame(image.pending, [{
    kind: 'file', inode: 6, path: '/logs/app/writing.log', size: 0, mtimeMs: 1015, state: 'writing', replication: 2,
    contentType: '', metadata: {}, checksum: '', visible: false, overwrite: false,
    chunks: [{ handle: 6, version: 1, length: 512, committed: true }, { handle: 8, version: 2, length: 0, committed: false }],
  }], 'pending: the abandoned chunk 7 is gone');
  t.strictSame(image.trash, [{
    deletedAtMs: 1011,
    file: {
      kind: 'file', inode: 1, path: '/logs/app/day.log', size: 1324, mtimeMs: 1005, state: 'sealed', replication: 3,
      contentType: 'text/plain', metadata: { host: 'web-1', level: 'info' }, checksum: 'c1', visible: false, overwrite: false,
      chunks: [{ handle: 1, version: 1, length: 1024, committed: true }, { handle: 2, version: 2, length: 300, committed: true }],
    },
  }], 'trash: the overwritten file; the purged one is gone');
  t.strictSame(image.requests, [
    ['r-alloc-1', { op: 'allocateChunk', inode: 1, handle: 1, version: 1 }],
    ['r-complete-1', { op: 'completeFile', inode: 1 }],
    ['r-delete', { op: 'delete' }],
    ['r-alloc-6', { op: 'allocateChunk', inode: 6, handle: 8, version: 2 }],
  ], 'request ids: oldest first, the two oldest evicted');
  t.strictSame(image.draining, [['cs-a', 1019], ['cs-b', 1018]], 'drained nodes by id; the cancelled one is gone');
  t.strictSame(image.counts, { files: 3, dirs: 6, pending: 1, trash: 1, requestIds: 4, chunks: 6 });
});

t.test('meta snapshot: the v1 golden restores to the state that wrote it, which today is written as v2', async (t) => {
  const expected = v1AsV2(golden().toString('utf8'));
  t.equal(Buffer.from(goldenMetaState().snapshot()).toString('utf8'), expected, 'the state built from the golden ops');
  t.equal(Buffer.from(encodeSnapshot(decodeSnapshot(golden()))).toString('utf8'), expected, 'the decoded image');
  t.equal(Buffer.from(MetaState.restore(golden()).snapshot()).toString('utf8'), expected, 'the restored state');
});

t.test('meta snapshot: format v2 golden image holds the logs, their open chunks and writer windows', async (t) => {
  const image = decodeSnapshot(goldenV2());
  t.same(image.header, { version: 2, nextInode: 11, nextHandle: 14, requestIdsMax: 4 });
  const byPath = new Map(image.tree.filter((n) => n.kind === 'file').map((f) => [f.path, f]));
  const events = byPath.get('/logs/app/events');
  t.match(events, {
    inode: 8, size: 30, state: 'writing', visible: true,
    chunks: [{ handle: 9, version: 2, length: 30, committed: true }, { handle: 10, version: 2, length: 0, committed: true },
      { handle: 11, version: 1, length: 0, committed: false }],
  }, 'an open log: sealed chunks, an empty sealed chunk, the open chunk; size = sealed chunks');
  t.equal(events?.kind === 'file' && events.log?.open, true);
  t.strictSame(events?.kind === 'file' ? [...events.log!.writers] : [], [
    ['w-a', { seqs: [7], offsets: [20] }], ['w-b', { seqs: [1, 2], offsets: [0, 10] }],
  ], 'writer windows by writer id, file offsets');
  const closed = byPath.get('/logs/closed');
  t.match(closed, { state: 'sealed', size: 5, log: { open: false } }, 'a log closed by SealLog');
  t.equal(byPath.get('/logs/app/day.log')?.kind === 'file' && byPath.get('/logs/app/day.log')!.log, undefined, 'a plain file has no log');
  t.match(image.trash.map((e) => e.file), [{ inode: 1 }, { inode: 10, state: 'sealed', chunks: [], log: { open: false } }],
    'a deleted open log is closed and its uncommitted chunk dropped');
  t.strictSame(image.counts, { files: 5, dirs: 6, pending: 1, trash: 2, requestIds: 4, chunks: 10 });
});

t.test('meta snapshot: format v2 encoding the golden state today produces the golden bytes', async (t) => {
  t.ok(Buffer.from(goldenMetaStateV2().snapshot()).equals(goldenV2()), 'the state built from the golden ops');
  t.ok(Buffer.from(encodeSnapshot(decodeSnapshot(goldenV2()))).equals(goldenV2()), 'the decoded image');
  const restored = MetaState.restore(goldenV2());
  t.ok(Buffer.from(restored.snapshot()).equals(goldenV2()), 'the restored state');
  t.equal(restored.openChunk(restored.stat('/logs/app/events') as never)?.handle, 11, 'the restored log\'s open chunk');
  t.match(restored.seenRequest('r-setlog-8'), { op: 'setLog', inode: 8, replayed: true });
});

t.test('meta snapshot: v2 refuses log fields that do not fit', async (t) => {
  const text = goldenV2().toString('utf8');
  refusedAsCorrupt(t, text.replace('[false,[["w-c",[0],[0]]]]', 'true'), 'a log field that is not [open, writers]', /bad log field/);
  refusedAsCorrupt(t, text.replace('[["w-a",[7],[20]],["w-b"', '[["w-b",[7],[20]],["w-b"'), 'writers out of order', /out of order/);
  refusedAsCorrupt(t, text.replace('["w-b",[1,2],[0,10]]', '["w-b",[2,1],[0,10]]'), 'a window that does not ascend', /bad window/);
  refusedAsCorrupt(t, text.replace('[[3,7,10,true]],null]', '[[3,7,10,true]]]'), 'a v2 file record without its log field', /fields/);
  refusedAsCorrupt(t, text.replace('"",true,false,[[12,3,5,true]],[false', '"",true,false,[[12,3,5,true]],[true'), 'a sealed file marked as an open log', /not visible and sealed/);
  refusedAsCorrupt(t, golden().toString('utf8').replace('[[3,7,10,true]]]', '[[3,7,10,true]],null]'), 'a v1 file record with a 13th field', /fields/);
});

t.test('meta snapshot: the restored golden state answers as the state that wrote it', async (t) => {
  const s = MetaState.restore(golden());
  t.equal((s.stat('/logs/app/day.log') as { inode: number }).inode, 4, 'the path names the new file, not the trashed one');
  t.equal(s.inodeLocation(1), 'trash');
  t.equal(s.inodeLocation(5), undefined, 'the purged file is gone');
  t.equal(s.inodeLocation(7), undefined, 'the aborted put is gone');
  t.equal(s.chunkOwner(7), undefined, 'the abandoned chunk is gone');
  t.same(s.chunkOwner(8), { inode: 6, ref: { handle: 8, version: 2, length: 0, committed: false } });
  t.equal(s.seenRequest('r-mkdir'), undefined, 'an evicted request id is forgotten');
  t.match(s.seenRequest('r-alloc-6'), { op: 'allocateChunk', inode: 6, handle: 8, version: 2, replayed: true });
  t.same([...s.drainingNodes()], [['cs-a', 1019], ['cs-b', 1018]]);
  t.throws(() => s.apply({ requestId: '', allocateChunk: { inode: 6, handle: 7, version: 1 } }), { code: 'INVALID_ARGUMENT' },
    'the abandoned handle is never handed out again');
  t.throws(() => s.apply({ requestId: '', createFile: { inode: 7, path: '/logs/x', overwrite: false, replication: 1, contentType: '', metadata: {}, mtimeMs: 1 } }),
    { code: 'INVALID_ARGUMENT' }, 'nor the aborted inode');
});

t.test('meta snapshot: an image of an unknown version is refused as CORRUPT, never guessed at', async (t) => {
  const text = golden().toString('utf8');
  refusedAsCorrupt(t, text.replace('"version":1', '"version":3'), 'version 3', /unknown snapshot version 3/);
  refusedAsCorrupt(t, text.replace('"version":1,', ''), 'no version', /unknown snapshot version undefined/);
  refusedAsCorrupt(t, text.replace('"format":"gfs-meta"', '"format":"gfs-meta2"'), 'another format', /not a metadata snapshot/);
  const extra = text.replace('"requestIdsMax":4}', '"requestIdsMax":4,"later":true}');
  t.same(decodeSnapshot(Buffer.from(extra)).header, { version: 1, nextInode: 8, nextHandle: 9, requestIdsMax: 4 }, 'an unknown header key is ignored');
});

t.test('meta snapshot: the end record catches an image cut or spliced at a line boundary', async (t) => {
  const lines = golden().toString('utf8').split('\n');
  const without = (prefix: string): string => lines.filter((l) => !l.startsWith(prefix)).join('\n');
  refusedAsCorrupt(t, without('["end"'), 'no end record', /no end record/);
  refusedAsCorrupt(t, without('["t"'), 'a trash record dropped', /counts do not match/);
  refusedAsCorrupt(t, without('["d","/tmp"'), 'a directory dropped', /counts do not match/);
  refusedAsCorrupt(t, lines.join('\n') + '["n","cs-z",1]\n', 'a record after the end', /after the end/);
  refusedAsCorrupt(t, without('["n","cs-a"').replace('["n","cs-b",1018]', '["n","cs-b",1018]\n["n","cs-b",1018]'), 'a drained node twice', /repeated/);
  const requestIds = lines.filter((l) => l.startsWith('["r"'));
  refusedAsCorrupt(t, lines.join('\n').replace(requestIds[0]!, requestIds[0] + '\n' + requestIds[0]), 'a request id twice', /repeated/);
});
