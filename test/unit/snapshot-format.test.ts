import { readFileSync } from 'node:fs';
import t from 'tap';

import { GfsError } from '../../src/common/errors';
import { MetaState } from '../../src/master/meta-state';
import { decodeSnapshot, encodeSnapshot } from '../../src/master/snapshot-codec';
import { GOLDEN_SNAPSHOT, goldenMetaState } from '../fixtures/format/meta/generate';

type Test = Pick<typeof t, 'fail' | 'equal' | 'match'>;

const golden = (): Buffer => readFileSync(GOLDEN_SNAPSHOT);

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
  t.same(image.header, { nextInode: 8, nextHandle: 9, requestIdsMax: 4 }, 'header: ids past the aborted put and the abandoned chunk');
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

t.test('meta snapshot: format v1 encoding the golden state today produces the golden bytes', async (t) => {
  t.ok(Buffer.from(goldenMetaState().snapshot()).equals(golden()), 'the state built from the golden ops');
  t.ok(Buffer.from(encodeSnapshot(decodeSnapshot(golden()))).equals(golden()), 'the decoded image');
  t.ok(Buffer.from(MetaState.restore(golden()).snapshot()).equals(golden()), 'the restored state');
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
  refusedAsCorrupt(t, text.replace('"version":1', '"version":2'), 'version 2', /unknown snapshot version 2/);
  refusedAsCorrupt(t, text.replace('"version":1,', ''), 'no version', /unknown snapshot version undefined/);
  refusedAsCorrupt(t, text.replace('"format":"gfs-meta"', '"format":"gfs-meta2"'), 'another format', /not a metadata snapshot/);
  const extra = text.replace('"requestIdsMax":4}', '"requestIdsMax":4,"later":true}');
  t.same(decodeSnapshot(Buffer.from(extra)).header, { nextInode: 8, nextHandle: 9, requestIdsMax: 4 }, 'an unknown header key is ignored');
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
