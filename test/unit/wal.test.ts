import t from 'tap';
import { spawn } from 'node:child_process';
import { promises as fsp, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { initChecksums } from '../../src/common/checksum';
import { disableFailpoint, enableFailpoint } from '../../src/common/failpoints';
import { isGfsError } from '../../src/common/errors';
import { isCompactedError, Wal, type WalOptions, type WalRecord } from '../../src/wal';
import { GOLDEN_CHECKPOINT, GOLDEN_RECORDS, GOLDEN_SEGMENT_BYTES, writeGoldenWal } from '../fixtures/format/wal/generate';

// Layout facts the damage tests rely on (FORMAT.md).
const SEGMENT_HEADER_BYTES = 16;
const RECORD_HEADER_BYTES = 29;
const PAYLOAD_BYTES = 20;
const RECORD_BYTES = RECORD_HEADER_BYTES + PAYLOAD_BYTES;
/** Five 49-byte records per segment: 16 + 5 * 49 = 261 >= 256 rolls. */
const SMALL_SEGMENT_BYTES = 256;

const GOLDEN_DIR = path.resolve(__dirname, '../../../test/fixtures/format/wal/v1');

type Test = tap.Test;

function tempDir(t: Test): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gfs-wal-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Segments preallocate this much unless a test says otherwise: keeps tests quick. */
const TEST_SEGMENT_BYTES = 1024 * 1024;

/** Opens a log and closes it at the end of the test if the test did not. */
async function openWal(t: Test, opts: WalOptions): Promise<Wal> {
  const wal = await Wal.open({ segmentBytes: TEST_SEGMENT_BYTES, ...opts });
  t.teardown(() => wal.close().catch(() => undefined));
  return wal;
}

/** A payload that says which index it was written for, PAYLOAD_BYTES long. */
function payloadFor(index: number): Uint8Array {
  return new Uint8Array(Buffer.from(`record-${String(index).padStart(PAYLOAD_BYTES - 7, '0')}`));
}

async function appendMany(wal: Wal, count: number, epoch = 1): Promise<void> {
  for (let i = 0; i < count; i++) await wal.append(epoch, 7, payloadFor(wal.lastIndex + 1));
}

async function readAll(wal: Wal, from: number): Promise<WalRecord[]> {
  const out: WalRecord[] = [];
  for await (const r of wal.readFrom(from)) out.push(r);
  return out;
}

function indices(records: WalRecord[]): number[] {
  return records.map((r) => r.index);
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

async function segmentFiles(dir: string): Promise<string[]> {
  return (await fsp.readdir(dir)).filter((n) => /^wal-[0-9a-f]{16}\.log$/.test(n)).sort();
}

/** Byte offset of record `index` in a segment whose records all carry PAYLOAD_BYTES. */
function recordOffset(segmentFirstIndex: number, index: number): number {
  return SEGMENT_HEADER_BYTES + (index - segmentFirstIndex) * RECORD_BYTES;
}

async function flipByte(file: string, offset: number): Promise<void> {
  const fh = await fsp.open(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, offset);
    b[0] = b[0]! ^ 0x5a;
    await fh.write(b, 0, 1, offset);
  } finally {
    await fh.close();
  }
}

/** The error a promise rejects with (failing the test if it resolves). */
async function rejection(t: Test, promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  t.fail('expected a rejection');
  return undefined;
}

function captureLog(): { log: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { log, lines };
}

/** Deterministic non-zero junk (a fixed LCG), standing in for whatever a crash leaves. */
function junk(bytes: number): Buffer {
  const out = Buffer.alloc(bytes);
  let x = 12345;
  for (let i = 0; i < bytes; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = (x >>> 16) & 0xff || 1;
  }
  return out;
}

t.before(async () => {
  await initChecksums();
});

t.test('wal: a new log in a missing directory is empty and readable', async (t) => {
  const dir = path.join(tempDir(t), 'a', 'b', 'wal');
  const wal = await openWal(t, { dir });
  t.equal(wal.firstIndex, 1);
  t.equal(wal.lastIndex, 0);
  t.equal(wal.lastEpoch, 0);
  t.equal(await wal.loadCheckpoint(), null);
  t.same(await readAll(wal, 1), []);
});

t.test('wal: records survive a reopen across many segments, and readFrom starts at any index', async (t) => {
  const dir = tempDir(t);
  const wal = await openWal(t, { dir, segmentBytes: SMALL_SEGMENT_BYTES });
  const written: WalRecord[] = [];
  for (let i = 1; i <= 60; i++) {
    const epoch = 1 + Math.floor(i / 25); // 1, then 2 from 25, then 3 from 50
    const payload = new Uint8Array(Buffer.from(`op ${i} `.repeat(1 + (i % 4))));
    written.push(await wal.append(epoch, i % 3, payload));
  }
  t.same(indices(written), range(1, 60), 'indices are assigned one by one from 1');
  await wal.close();
  t.ok((await segmentFiles(dir)).length >= 5, 'small segments rolled over several times');

  const reopened = await openWal(t, { dir, segmentBytes: SMALL_SEGMENT_BYTES });
  t.equal(reopened.firstIndex, 1);
  t.equal(reopened.lastIndex, 60);
  t.equal(reopened.lastEpoch, 3);
  t.equal(reopened.epochAt(24), 1);
  t.equal(reopened.epochAt(25), 2);
  t.equal(reopened.epochAt(60), 3);
  for (const from of [1, 2, 13, 30, 59, 60]) {
    const got = await readAll(reopened, from);
    t.same(got.map((r) => ({ ...r, payload: Buffer.from(r.payload) })),
      written.slice(from - 1).map((r) => ({ ...r, payload: Buffer.from(r.payload) })), `readFrom(${from})`);
  }
  t.same(await readAll(reopened, 61), [], 'reading past the end yields nothing');
  const next = await reopened.append(3, 0, payloadFor(61));
  t.equal(next.index, 61, 'appends continue after the recovered end');
});

t.test('wal: concurrent appends are group committed and keep call order', async (t) => {
  const dir = tempDir(t);
  const wal = await openWal(t, { dir });
  const appends = range(1, 500).map((i) => wal.append(1, 1, payloadFor(i)));
  const records = await Promise.all(appends);
  t.same(indices(records), range(1, 500), 'index order is call order');
  t.ok(wal.stats.flushes < 500, `500 appends took ${wal.stats.flushes} flushes`);
  t.equal(wal.stats.recordsWritten, 500);

  // 64 appenders, each keeping one append in flight, as a busy master would.
  const before = wal.stats.flushes;
  let issued = 0;
  await Promise.all(range(1, 64).map(async () => {
    while (issued < 2000) {
      issued++;
      await wal.append(1, 1, payloadFor(wal.lastIndex + 1));
    }
  }));
  const flushes = wal.stats.flushes - before;
  t.ok(flushes <= 2000 / 8, `2000 appends with 64 in flight took ${flushes} flushes`);

  const all = await readAll(wal, 1);
  t.same(indices(all), range(1, 2500));
  t.same(Buffer.from(all[0]!.payload), Buffer.from(payloadFor(1)));
  t.same(Buffer.from(all[499]!.payload), Buffer.from(payloadFor(500)));
});

t.test('wal: a record cut off at the end of the last segment is dropped on reopen, and appends continue', async (t) => {
  for (const [what, cutInto] of [['mid-payload', RECORD_BYTES - 7], ['mid-length-field', 2]] as const) {
    const dir = tempDir(t);
    const wal = await openWal(t, { dir });
    await appendMany(wal, 20);
    await wal.close();
    const [file] = await segmentFiles(dir);
    await fsp.truncate(path.join(dir, file!), recordOffset(1, 20) + cutInto);

    const { log, lines } = captureLog();
    const reopened = await openWal(t, { dir, log });
    t.equal(reopened.lastIndex, 19, `${what}: every whole record is kept`);
    t.same(indices(await readAll(reopened, 1)), range(1, 19));
    const warning = lines.find((l) => l.level === 40 && /torn tail/.test(String(l.msg)));
    t.equal(warning?.bytes, cutInto, `${what}: the warning says how many bytes were cut`);
    t.equal((await reopened.append(1, 7, payloadFor(20))).index, 20);
    await reopened.close();

    const again = await openWal(t, { dir });
    t.same(indices(await readAll(again, 1)), range(1, 20), `${what}: the record appended after recovery is durable`);
  }
});

t.test('wal: junk or zeros after the last record are not records; junk is cut on reopen', async (t) => {
  const dir = tempDir(t);
  const wal = await openWal(t, { dir });
  await appendMany(wal, 10);
  await wal.close();
  const file = path.join(dir, (await segmentFiles(dir))[0]!);
  const end = recordOffset(1, 11);

  // Zeros: the preallocated space after the last record; nothing to cut, nothing to warn about.
  await fsp.truncate(file, end);
  await fsp.appendFile(file, Buffer.alloc(4096));
  let captured = captureLog();
  let reopened = await openWal(t, { dir, log: captured.log });
  t.equal(reopened.lastIndex, 10);
  t.notOk(captured.lines.some((l) => l.level === 40), 'zero fill is not a torn tail');
  await reopened.close();

  // Junk: cut, with a warning naming the byte count.
  const fh = await fsp.open(file, 'r+');
  await fh.write(junk(300), 0, 300, end);
  await fh.close();
  const sizeWithJunk = (await fsp.stat(file)).size;
  captured = captureLog();
  reopened = await openWal(t, { dir, log: captured.log });
  t.equal(reopened.lastIndex, 10);
  const warning = captured.lines.find((l) => l.level === 40 && /torn tail/.test(String(l.msg)));
  t.equal(warning?.bytes, sizeWithJunk - end);
  t.equal((await fsp.stat(file)).size, end, 'the file is cut back to its last record');
  await appendMany(reopened, 2);
  await reopened.close();

  reopened = await openWal(t, { dir });
  t.same(indices(await readAll(reopened, 1)), range(1, 12));
});

t.test('wal: a bad checksum on the very last record reads as a torn write and is cut', async (t) => {
  const dir = tempDir(t);
  const wal = await openWal(t, { dir });
  await appendMany(wal, 5);
  await wal.close();
  await flipByte(path.join(dir, (await segmentFiles(dir))[0]!), recordOffset(1, 5) + RECORD_HEADER_BYTES + 3);
  const reopened = await openWal(t, { dir });
  t.equal(reopened.lastIndex, 4);
});

t.test('wal: a flipped byte in a record with a good record after it stops open with CORRUPT', async (t) => {
  const cases = [
    ['payload byte', RECORD_HEADER_BYTES + 5],
    ['epoch byte', 12],
    ['length byte', 0],
  ] as const;
  for (const [what, within] of cases) {
    const dir = tempDir(t);
    const wal = await openWal(t, { dir });
    await appendMany(wal, 10);
    await wal.close();
    const name = (await segmentFiles(dir))[0]!;
    await flipByte(path.join(dir, name), recordOffset(1, 5) + within);
    const e = await rejection(t, Wal.open({ dir }));
    t.ok(isGfsError(e, 'CORRUPT'), `${what}: code CORRUPT`);
    t.match((e as Error).message, name, `${what}: the message names the file`);
    t.match((e as Error).message, `byte offset ${recordOffset(1, 5)}`, `${what}: and the offset of the bad record`);
  }
});

t.test('wal: a bad record at the end of a segment that is not the last stops open with CORRUPT', async (t) => {
  const dir = tempDir(t);
  const wal = await openWal(t, { dir, segmentBytes: SMALL_SEGMENT_BYTES });
  await appendMany(wal, 12); // segments 1-5, 6-10, 11-12
  await wal.close();
  const [first] = await segmentFiles(dir);
  await flipByte(path.join(dir, first!), recordOffset(1, 5) + RECORD_HEADER_BYTES);
  await t.rejects(Wal.open({ dir }), { code: 'CORRUPT', message: new RegExp(first!) });
});

t.test('wal: a missing segment in the middle stops open with CORRUPT', async (t) => {
  const dir = tempDir(t);
  const wal = await openWal(t, { dir, segmentBytes: SMALL_SEGMENT_BYTES });
  await appendMany(wal, 12);
  await wal.close();
  const names = await segmentFiles(dir);
  await fsp.unlink(path.join(dir, names[1]!));
  await t.rejects(Wal.open({ dir }), { code: 'CORRUPT', message: /not contiguous/ });
});

t.test('wal: a checkpoint lets old segments go, and a reopen finds it and the records after it', async (t) => {
  const dir = tempDir(t);
  const wal = await openWal(t, { dir, segmentBytes: SMALL_SEGMENT_BYTES });
  await appendMany(wal, 100); // 20 segments of 5 records
  const image = (through: number) => new Uint8Array(Buffer.from(`state through ${through}`));

  await wal.writeCheckpoint({ index: 40, epoch: 1, image: image(40) });
  t.equal(wal.firstIndex, 1, 'the first checkpoint keeps every segment: nothing older to fall back on');
  await wal.writeCheckpoint({ index: 80, epoch: 1, image: image(80) });
  t.equal(wal.firstIndex, 41, 'segments wholly at or below the older kept checkpoint are gone');
  t.equal((await segmentFiles(dir))[0], 'wal-0000000000000029.log', 'the first segment left starts at 41 (0x29)');
  t.ok(isCompactedError(await rejection(t, readAll(wal, 40))), 'records only the checkpoint holds cannot be read');
  t.same(indices(await readAll(wal, 41)), range(41, 100));
  await wal.close();

  const reopened = await openWal(t, { dir, segmentBytes: SMALL_SEGMENT_BYTES });
  const cp = await reopened.loadCheckpoint();
  t.equal(cp?.index, 80);
  t.equal(cp?.epoch, 1);
  t.same(Buffer.from(cp!.image), Buffer.from(image(80)));
  t.equal(reopened.firstIndex, 41);
  t.equal(reopened.lastIndex, 100);
  t.same(indices(await readAll(reopened, 81)), range(81, 100));

  await reopened.writeCheckpoint({ index: 100, epoch: 1, image: image(100) });
  const checkpoints = (await fsp.readdir(dir)).filter((n) => n.startsWith('checkpoint-')).sort();
  t.same(checkpoints, ['checkpoint-0000000000000050.snap', 'checkpoint-0000000000000064.snap'], 'the newest two are kept');
  t.equal(reopened.firstIndex, 81);
  t.equal((await reopened.append(1, 7, payloadFor(101))).index, 101, 'the segment after the checkpoint takes new records');
  await t.rejects(reopened.truncateAfter(99), { code: 'INVALID_ARGUMENT' }, 'no truncation below a checkpoint');
});

t.test('wal: leftovers of an interrupted checkpoint are removed on open', async (t) => {
  const dir = tempDir(t);
  const wal = await openWal(t, { dir });
  await appendMany(wal, 10);
  await wal.writeCheckpoint({ index: 5, epoch: 1, image: new Uint8Array([5]) });
  await wal.close();
  // A crash mid-write leaves the temporary file beside the final name.
  await fsp.writeFile(path.join(dir, 'checkpoint-0000000000000009.snap.tmp'), junk(100));

  const reopened = await openWal(t, { dir });
  t.notOk((await fsp.readdir(dir)).some((n) => n.endsWith('.tmp')), 'temporary files are gone');
  t.equal((await reopened.loadCheckpoint())?.index, 5);
});

t.test('wal: a checkpoint renamed into place counts even if the write stopped right after the rename', async (t) => {
  const dir = tempDir(t);
  const wal = await openWal(t, { dir });
  await appendMany(wal, 10);
  enableFailpoint('wal.afterCheckpointRename', 'error');
  t.teardown(() => disableFailpoint('wal.afterCheckpointRename'));
  await t.rejects(wal.writeCheckpoint({ index: 8, epoch: 1, image: new Uint8Array([8]) }), { code: 'IO_ERROR' });
  disableFailpoint('wal.afterCheckpointRename');
  await wal.close();

  const reopened = await openWal(t, { dir });
  t.equal((await reopened.loadCheckpoint())?.index, 8);
  t.equal(reopened.lastIndex, 10);
});

t.test('wal: a corrupt newest checkpoint falls back to the previous one and the segments after it', async (t) => {
  const dir = tempDir(t);
  const wal = await openWal(t, { dir, segmentBytes: SMALL_SEGMENT_BYTES });
  await appendMany(wal, 50);
  await wal.writeCheckpoint({ index: 20, epoch: 1, image: new Uint8Array(Buffer.from('state 20')) });
  await wal.writeCheckpoint({ index: 40, epoch: 1, image: new Uint8Array(Buffer.from('state 40')) });
  await wal.close();
  const newest = path.join(dir, 'checkpoint-0000000000000028.snap');
  await flipByte(newest, 48 + 2); // a byte of the image

  const { log, lines } = captureLog();
  const reopened = await openWal(t, { dir, segmentBytes: SMALL_SEGMENT_BYTES, log });
  const cp = await reopened.loadCheckpoint();
  t.equal(cp?.index, 20);
  t.same(Buffer.from(cp!.image), Buffer.from('state 20'));
  t.ok(reopened.firstIndex <= 21, 'the segments after the previous checkpoint are still there');
  t.same(indices(await readAll(reopened, 21)), range(21, 50));
  t.ok(lines.some((l) => l.level === 50 && /corrupt/.test(String(l.msg))), 'the corrupt checkpoint is reported');
  const names = await fsp.readdir(dir);
  t.ok(names.includes('checkpoint-0000000000000028.snap.corrupt'), 'and kept aside for inspection');
  t.notOk(names.includes('checkpoint-0000000000000028.snap'));
});

t.test('wal: appendReplicated takes only records that continue the log, all or nothing', async (t) => {
  const dir = tempDir(t);
  const wal = await openWal(t, { dir });
  const rec = (index: number, epoch: number): WalRecord => ({ index, epoch, type: 4, payload: payloadFor(index) });

  await wal.appendReplicated([rec(1, 2), rec(2, 2)]);
  t.equal(wal.lastIndex, 2);
  await t.rejects(wal.appendReplicated([rec(4, 2)]), { code: 'INVALID_ARGUMENT' }, 'a gap');
  await t.rejects(wal.appendReplicated([rec(2, 2)]), { code: 'INVALID_ARGUMENT' }, 'an overlap');
  await t.rejects(wal.appendReplicated([rec(3, 2), rec(5, 2)]), { code: 'INVALID_ARGUMENT' }, 'a gap inside the batch');
  await t.rejects(wal.appendReplicated([rec(3, 1)]), { code: 'STALE_EPOCH' }, 'a lower epoch');
  await t.rejects(wal.appendReplicated([rec(3, 3), rec(4, 2)]), { code: 'STALE_EPOCH' }, 'an epoch going down inside the batch');
  t.equal(wal.lastIndex, 2, 'a refused batch appends nothing');

  await Promise.all([wal.appendReplicated([rec(3, 3), rec(4, 3)]), wal.appendReplicated([rec(5, 3)])]);
  await wal.close();
  const reopened = await openWal(t, { dir });
  const all = await readAll(reopened, 1);
  t.same(all.map((r) => [r.index, r.epoch]), [[1, 2], [2, 2], [3, 3], [4, 3], [5, 3]]);
});

t.test('wal: truncateAfter drops later records durably and the next append continues from there', async (t) => {
  const dir = tempDir(t);
  const wal = await openWal(t, { dir, segmentBytes: SMALL_SEGMENT_BYTES });
  await appendMany(wal, 20, 1);
  await appendMany(wal, 10, 2); // 21-30 in epoch 2, across segments
  await wal.truncateAfter(12);
  t.equal(wal.lastIndex, 12);
  t.equal(wal.lastEpoch, 1, 'the epoch goes back with the records');
  t.equal(wal.durableIndex, 12);
  const next = await wal.append(1, 9, payloadFor(13)); // epoch 1 is fine again: the log ends in epoch 1
  t.equal(next.index, 13);
  await wal.close();

  const reopened = await openWal(t, { dir, segmentBytes: SMALL_SEGMENT_BYTES });
  const all = await readAll(reopened, 1);
  t.same(indices(all), range(1, 13));
  t.equal(all[12]!.type, 9, 'record 13 is the new one');
  t.equal((await segmentFiles(dir)).at(-1), 'wal-000000000000000b.log', 'segments after the cut are deleted');
});

t.test('wal: truncateAfter takes effect in call order among appends in flight', async (t) => {
  const dir = tempDir(t);
  const wal = await openWal(t, { dir });
  await appendMany(wal, 5);
  const p6 = wal.append(1, 1, payloadFor(6));
  const p7 = wal.append(1, 1, payloadFor(7));
  const truncated = wal.truncateAfter(6);
  const p7again = wal.append(2, 2, payloadFor(7));
  const [r6, r7, , r7again] = await Promise.all([p6, p7, truncated, p7again]);
  t.same([r6.index, r7.index, r7again.index], [6, 7, 7]);
  const all = await readAll(wal, 1);
  t.same(all.map((r) => [r.index, r.epoch]), [[1, 1], [2, 1], [3, 1], [4, 1], [5, 1], [6, 1], [7, 2]]);
});

t.test('wal: epochs never decrease: an append with a lower epoch is refused and uses no index', async (t) => {
  const dir = tempDir(t);
  const wal = await openWal(t, { dir });
  await wal.append(5, 1, payloadFor(1));
  await t.rejects(wal.append(4, 1, payloadFor(2)), { code: 'STALE_EPOCH' });
  t.equal(wal.lastIndex, 1);
  t.equal((await wal.append(5, 1, payloadFor(2))).index, 2);
  t.equal((await wal.append(6, 1, payloadFor(3))).index, 3);
  t.equal(wal.lastEpoch, 6);
  await t.rejects(wal.append(6, 256, payloadFor(4)), { code: 'INVALID_ARGUMENT' }, 'type is a byte');
  await t.rejects(wal.append(-1, 1, payloadFor(4)), { code: 'INVALID_ARGUMENT' });
  await t.rejects(wal.append(6, 1, new Uint8Array(5 * 1024 * 1024)), { code: 'TOO_LARGE' });
});

t.test('wal: a checkpoint the log does not hold replaces the whole log (a follower installing an image)', async (t) => {
  const dir = tempDir(t);
  const wal = await openWal(t, { dir, segmentBytes: SMALL_SEGMENT_BYTES });
  await appendMany(wal, 12, 1);
  await wal.writeCheckpoint({ index: 50, epoch: 3, image: new Uint8Array([50]) });
  t.equal(wal.lastIndex, 50);
  t.equal(wal.lastEpoch, 3);
  t.equal(wal.firstIndex, 51);
  t.same(await segmentFiles(dir), []);
  t.equal((await wal.append(3, 1, payloadFor(51))).index, 51);
  await wal.close();

  const reopened = await openWal(t, { dir, segmentBytes: SMALL_SEGMENT_BYTES });
  t.equal(reopened.firstIndex, 51);
  t.equal(reopened.lastIndex, 51);
  t.equal((await reopened.loadCheckpoint())?.index, 50);
  t.same(indices(await readAll(reopened, 51)), [51]);
  t.equal(reopened.epochAt(50), 3);

  // Same index, other epoch: the log's record 51 is not the checkpoint's either.
  await reopened.writeCheckpoint({ index: 51, epoch: 4, image: new Uint8Array([51]) });
  t.equal(reopened.lastIndex, 51);
  t.equal(reopened.lastEpoch, 4);
  t.equal(reopened.firstIndex, 52);
});

t.test('wal: a failed fsync fails the append and stops the log until it is reopened', async (t) => {
  const dir = tempDir(t);
  const wal = await Wal.open({ dir, segmentBytes: TEST_SEGMENT_BYTES });
  await appendMany(wal, 3);
  enableFailpoint('wal.beforeFsync', 'error');
  t.teardown(() => disableFailpoint('wal.beforeFsync'));
  await t.rejects(wal.append(1, 1, payloadFor(4)), { code: 'IO_ERROR' });
  disableFailpoint('wal.beforeFsync');
  await t.rejects(wal.append(1, 1, payloadFor(5)), { code: 'IO_ERROR', message: /reopen/ });
  await wal.close();

  const reopened = await openWal(t, { dir });
  t.ok(reopened.lastIndex >= 3, 'every acknowledged record is there');
  await appendMany(reopened, 1);
});

t.test('wal: a process killed just before fsync loses no acknowledged record', async (t) => {
  const dir = tempDir(t);
  const child = path.resolve(__dirname, '../fixtures/wal/crash-before-fsync.js');
  const proc = spawn(process.execPath, [child, dir, '25'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const signal = await new Promise<NodeJS.Signals | null>((resolve) => proc.on('exit', (_code, sig) => resolve(sig)));
  t.equal(signal, 'SIGKILL', 'the failpoint killed the process');
  const acked = out.split('\n').filter(Boolean).map(Number);
  t.same(acked, range(1, 25), 'the child saw 25 acknowledgements');

  const wal = await openWal(t, { dir });
  t.ok(wal.lastIndex >= 25);
  const got = (await readAll(wal, 1)).slice(0, acked.length);
  t.same(got.map((r) => Buffer.from(r.payload).toString()), acked.map((i) => Buffer.from(payloadFor(i)).toString()),
    'every acknowledged record reads back whole');
});

t.test('wal: format v1 golden files read back as exactly the records that wrote them', async (t) => {
  const dir = tempDir(t);
  await fsp.cp(GOLDEN_DIR, dir, { recursive: true }); // open may repair; never touch the fixtures
  const wal = await openWal(t, { dir, segmentBytes: GOLDEN_SEGMENT_BYTES });
  t.equal(wal.firstIndex, 1);
  t.equal(wal.lastIndex, 5);
  t.equal(wal.lastEpoch, 3);
  const records = await readAll(wal, 1);
  t.same(records.map((r) => ({ ...r, payload: Buffer.from(r.payload) })),
    GOLDEN_RECORDS.map((r) => ({ ...r, payload: Buffer.from(r.payload) })));
  const cp = await wal.loadCheckpoint();
  t.same({ ...cp, image: Buffer.from(cp!.image) }, { ...GOLDEN_CHECKPOINT, image: Buffer.from(GOLDEN_CHECKPOINT.image) });
});

t.test('wal: format v1 writing the golden records today produces the golden bytes', async (t) => {
  const dir = tempDir(t);
  await writeGoldenWal(dir);
  const golden = (await fsp.readdir(GOLDEN_DIR)).sort();
  t.same((await fsp.readdir(dir)).sort(), golden);
  for (const name of golden) {
    t.same(await fsp.readFile(path.join(dir, name)), await fsp.readFile(path.join(GOLDEN_DIR, name)), name);
  }
});
