import t from 'tap';
import { throwsCode } from './throws-code';
import type { MetaOp } from '../../gen/gfs';
import { limits } from '../../src/common/limits';
import { MetaState, type FileNode } from '../../src/master/meta-state';
import { LeaseTable } from '../../src/master/logs/lease-table';
import { checkWriterRecords, mergeWriterRecords, storedOffset } from '../../src/master/logs/writer-windows';
import type { WriterWindow } from '../../src/master/meta-types';


const op = (partial: Partial<MetaOp>): MetaOp => ({ requestId: '', ...partial });
const create = (inode: number, path: string, overwrite = false) => op({
  createFile: { inode, path, overwrite, replication: 2, contentType: '', metadata: {}, mtimeMs: 10 },
});
const seal = (inode: number, handle: number, length: number, version: number, writers: { writer: string; seqs: number[]; offsets: number[] }[] = []) =>
  op({ sealChunk: { inode, handle, length, version, replicaNodes: ['a'], writers, mtimeMs: 20 } });

/** A state with an open log at /l (inode 1) and its open chunk (handle 1). */
function openLog(): { s: MetaState; file: FileNode } {
  const s = new MetaState();
  s.apply(create(1, '/n/l'));
  s.apply(op({ setLog: { inode: 1 } }));
  s.apply(op({ allocateChunk: { inode: 1, handle: 1, version: 1 } }));
  return { s, file: s.stat('/n/l') as FileNode };
}

t.test('log metadata: setLog makes a pending create a visible, open, empty log', async (t) => {
  const s = new MetaState();
  s.apply(create(1, '/n/l'));
  throwsCode(t, () => s.stat('/n/l'), 'NO_SUCH_FILE', 'a pending create is not visible');
  const r = s.apply(op({ requestId: 'r1', setLog: { inode: 1 } }));
  t.equal(r.op, 'setLog');
  t.match(s.stat('/n/l'), { inode: 1, state: 'writing', visible: true, size: 0, log: { open: true } });
  t.equal(s.pendingFiles().length, 0, 'no longer a pending put');
  t.match(s.apply(op({ requestId: 'r1', setLog: { inode: 1 } })), { replayed: true, inode: 1 }, 'a retried request id replays');
  throwsCode(t, () => s.apply(op({ setLog: { inode: 1 } })), 'NO_SUCH_FILE', 'a log is not pending any more');
  s.assertInvariants();
});

t.test('log metadata: one open chunk at a time; puts\' calls refuse a log', async (t) => {
  const { s } = openLog();
  throwsCode(t, () => s.apply(op({ allocateChunk: { inode: 1, handle: 2, version: 1 } })), 'FILE_NOT_WRITABLE', 'a second open chunk');
  throwsCode(t, () => s.apply(op({ commitChunk: { inode: 1, handle: 1, length: 5, version: 0 } })), 'FILE_NOT_WRITABLE', 'commitChunk of a log chunk');
  throwsCode(t, () => s.checkWritable(1), 'FILE_NOT_WRITABLE', 'a log is not a put');
  t.equal(s.openChunk(s.fileByInode(1)!)?.handle, 1);
  s.assertInvariants();
});

t.test('log metadata: sealChunk commits the open chunk, grows the size, keeps writer records, version only grows', async (t) => {
  const { s, file } = openLog();
  throwsCode(t, () => s.apply(seal(1, 1, 10, 0)), 'INVALID_ARGUMENT', 'a version below the chunk\'s');
  throwsCode(t, () => s.apply(seal(1, 1, limits.chunkBytesMax + 1, 2)), 'INVALID_ARGUMENT', 'longer than a chunk');
  throwsCode(t, () => s.apply(seal(1, 1, 10, 2, [{ writer: 'w', seqs: [1], offsets: [10] }])), 'INVALID_ARGUMENT', 'an offset past the chunk');
  throwsCode(t, () => s.apply(seal(1, 1, 10, 2, [{ writer: 'w', seqs: [2, 1], offsets: [0, 5] }])), 'INVALID_ARGUMENT', 'seqs not ascending');
  s.assertInvariants();
  t.match(s.apply(seal(1, 1, 10, 2, [{ writer: 'w', seqs: [1, 2], offsets: [0, 5] }])), { op: 'sealChunk', handle: 1, version: 2 });
  t.match(file, { size: 10, state: 'writing', chunks: [{ handle: 1, version: 2, length: 10, committed: true }] });
  t.equal(s.openChunk(file), undefined, 'no open chunk after the seal');
  throwsCode(t, () => s.apply(seal(1, 1, 10, 3)), 'FILE_NOT_WRITABLE', 'a sealed chunk is not sealed again');
  s.apply(op({ allocateChunk: { inode: 1, handle: 2, version: 1 } }));
  throwsCode(t, () => s.apply(seal(1, 2, 4, 1, [{ writer: 'w', seqs: [3], offsets: [3] }])), 'INVALID_ARGUMENT', 'writer offsets are file offsets');
  s.apply(seal(1, 2, 4, 1, [{ writer: 'w', seqs: [3], offsets: [12] }]));
  t.equal(file.size, 14);
  t.equal(storedOffset(file.log!.writers, 'w', 1), 0);
  t.equal(storedOffset(file.log!.writers, 'w', 3), 12, 'the second chunk\'s record at its file offset');
  t.equal(storedOffset(file.log!.writers, 'w', 4), undefined);
  s.assertInvariants();
  const restored = MetaState.restore(s.snapshot());
  t.same(restored.stat('/n/l'), file, 'a snapshot round trip keeps the log, its chunks and writer windows');
});

t.test('log metadata: completeFile closes a log once no chunk is open', async (t) => {
  const { s, file } = openLog();
  throwsCode(t, () => s.apply(op({ completeFile: { inode: 1, size: 0, checksum: '', mtimeMs: 30 } })), 'FILE_NOT_WRITABLE', 'an open chunk first');
  s.apply(seal(1, 1, 7, 2));
  throwsCode(t, () => s.apply(op({ completeFile: { inode: 1, size: 6, checksum: '', mtimeMs: 30 } })), 'INVALID_ARGUMENT', 'the wrong size');
  s.apply(op({ completeFile: { inode: 1, size: 7, checksum: '', mtimeMs: 30 } }));
  t.match(file, { state: 'sealed', log: { open: false }, size: 7 });
  throwsCode(t, () => s.apply(op({ allocateChunk: { inode: 1, handle: 2, version: 1 } })), 'FILE_NOT_WRITABLE', 'a closed log takes no chunk');
  s.assertInvariants();
});

t.test('log metadata: deleting an open log closes it, drops its open chunk, and its handle is never reused', async (t) => {
  const { s, file } = openLog();
  s.apply(seal(1, 1, 7, 2));
  s.apply(op({ allocateChunk: { inode: 1, handle: 2, version: 1 } }));
  s.apply(op({ delete: { path: '/n/l', recursive: false, mtimeMs: 40 } }));
  t.equal(s.inodeLocation(1), 'trash');
  t.match(file, { state: 'sealed', size: 7, log: { open: false }, chunks: [{ handle: 1 }] });
  t.equal(s.chunkOwner(2), undefined, 'the open chunk left the chunk table (GC reclaims its replicas)');
  throwsCode(t, () => s.apply(op({ allocateChunk: { inode: 1, handle: 2, version: 1 } })), 'FILE_NOT_WRITABLE', 'a trashed log');
  s.assertInvariants();
  MetaState.restore(s.snapshot()).assertInvariants();
});

t.test('log metadata: abandonChunk drops a log\'s open chunk only', async (t) => {
  const { s, file } = openLog();
  s.apply(op({ abandonChunk: { inode: 1, handle: 1 } }));
  t.same(file.chunks, []);
  s.apply(op({ allocateChunk: { inode: 1, handle: 2, version: 1 } }));
  s.apply(seal(1, 2, 3, 1));
  throwsCode(t, () => s.apply(op({ abandonChunk: { inode: 1, handle: 2 } })), 'FILE_NOT_WRITABLE', 'a sealed chunk stays');
  s.assertInvariants();
});

t.test('writer windows: merge keeps the last records per writer, first copy wins, writers bounded', async (t) => {
  const w = new Map<string, WriterWindow>();
  mergeWriterRecords(w, [{ writer: 'a', seqs: [1, 2, 3], offsets: [0, 10, 20] }], 4, 2);
  mergeWriterRecords(w, [{ writer: 'a', seqs: [3, 4, 5], offsets: [99, 30, 40] }], 4, 2);
  t.same(w.get('a'), { seqs: [2, 3, 4, 5], offsets: [10, 20, 30, 40] }, 'oldest seq dropped; seq 3 keeps its first offset');
  mergeWriterRecords(w, [{ writer: 'b', seqs: [1], offsets: [50] }, { writer: 'c', seqs: [1], offsets: [60] }], 4, 2);
  t.same([...w.keys()].sort(), ['b', 'c'], 'past writersMax the writer whose newest record is oldest is forgotten');
  t.equal(storedOffset(w, 'c', 1), 60);
  t.equal(storedOffset(w, 'a', 2), undefined);
  t.throws(() => checkWriterRecords([{ writer: 'a', seqs: [1], offsets: [1] }, { writer: 'a', seqs: [2], offsets: [2] }], 0, 10, 8), { code: 'INVALID_ARGUMENT' }, 'a writer twice');
  t.throws(() => checkWriterRecords([{ writer: 'x'.repeat(9), seqs: [], offsets: [] }], 0, 10, 8), { code: 'INVALID_ARGUMENT' }, 'a writer id too long');
  t.throws(() => checkWriterRecords([{ writer: 'a', seqs: [1, 2], offsets: [1] }], 0, 10, 8), { code: 'INVALID_ARGUMENT' }, 'seqs and offsets differ');
});

t.test('lease table: grant, renew only by the primary at the version, lapse, adopt after failover', async (t) => {
  const leases = new LeaseTable(1000);
  leases.grant({ inode: 1, handle: 5, version: 1, primary: 'p', chain: ['s'] }, 100);
  t.ok(leases.valid(5, 1, 1099));
  t.notOk(leases.valid(5, 1, 1100), 'counted from LEASE_OK');
  t.notOk(leases.valid(5, 2, 500), 'another version');
  t.notOk(leases.renew('s', 5, 1, 600, () => undefined), 'a secondary cannot renew');
  t.notOk(leases.renew('p', 5, 2, 600, () => undefined), 'nor the primary at another version');
  t.ok(leases.renew('p', 5, 1, 600, () => undefined));
  t.equal(leases.get(5)!.expiresMonoMs, 1600);
  t.ok(leases.renew('p', 5, 1, 300, () => undefined));
  t.equal(leases.get(5)!.expiresMonoMs, 1600, 'a late renewal never shortens a lease');
  t.same(leases.lapsed(1599), []);
  t.same(leases.lapsed(1600).map((l) => l.handle), [5], 'lapsed without renewal');
  leases.clear();
  t.notOk(leases.renew('p', 5, 1, 2000, () => undefined), 'nothing to adopt');
  t.ok(leases.renew('p', 5, 1, 2000, () => ({ inode: 1, chain: ['p', 's'] })), 'a new leader adopts the lease a primary names');
  t.match(leases.get(5), { primary: 'p', chain: ['s'], expiresMonoMs: 3000 });
  leases.drop(5);
  t.equal(leases.size, 0);
});
