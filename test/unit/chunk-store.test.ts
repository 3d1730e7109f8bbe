import fs from 'node:fs/promises';
import os from 'node:os';
import { spawn } from 'node:child_process';
import path from 'node:path';
import t from 'tap';
import { initChecksums, xxh64 } from '../../src/common/checksum';
import { disableFailpoint, enableFailpoint } from '../../src/common/failpoints';
import { isGfsError, type ErrorCode } from '../../src/common/errors';
import { limits } from '../../src/common/limits';
import { pieceSumsOf } from '../../src/chunkserver/block-summer';
import {
  blockBytes, blockSumsOffsetBytes, chunkPaths, decodeHeaderSlot, headerSlotStrideBytes, newestHeader, sumFileBytes,
} from '../../src/chunkserver/chunk-format';
import { ChunkStore, type ChunkStoreOptions } from '../../src/chunkserver/chunk-store';
import { loadOrCreateNodeId } from '../../src/chunkserver/node-identity';
import { generateGoldenChunk, golden, goldenBytes } from '../fixtures/format/chunk/generate';

const KiB = 1024;
const MiB = 1024 * KiB;

/** Deterministic bytes (xorshift32), so a failure reproduces. */
function testBytes(length: number, seed: number): Buffer {
  const buf = Buffer.allocUnsafe(length);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    buf[i] = x & 0xff;
  }
  return buf;
}

async function tempDir(t: tap.Test): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'gfs-chunk-store-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Opens a store on `dir` that is closed at teardown (closing twice is fine). */
async function openStore(t: tap.Test, dir: string, opts: Partial<ChunkStoreOptions> = {}): Promise<ChunkStore> {
  const store = await ChunkStore.open({ dir, ...opts });
  t.teardown(() => store.close());
  return store;
}

async function readAll(store: ChunkStore, handle: number, version: number, offset: number, length: number): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for await (const piece of store.read(handle, version, offset, length)) {
    if (piece.length > limits.readPieceBytes) throw new Error(`piece of ${piece.length} bytes`);
    pieces.push(piece);
  }
  return Buffer.concat(pieces);
}

async function rejectsCode(t: tap.Test, promise: Promise<unknown>, code: ErrorCode, what: string): Promise<void> {
  try {
    await promise;
    t.fail(`${what}: expected ${code}, got success`);
  } catch (e) {
    t.ok(isGfsError(e, code), `${what}: ${code}${isGfsError(e) ? '' : ` (got ${String(e)})`}`);
    if (!isGfsError(e, code)) t.equal((e as { code?: string }).code, code);
  }
}

function throwsCode(t: tap.Test, fn: () => unknown, code: ErrorCode, what: string): void {
  try {
    fn();
    t.fail(`${what}: expected ${code}, got success`);
  } catch (e) {
    t.equal((e as { code?: string }).code, code, what);
  }
}

/** Writes `data` as a new chunk in appends of the given sizes (cycled), syncing at the end. */
async function writeChunk(store: ChunkStore, handle: number, version: number, data: Buffer,
  appendSizes: number[] = [MiB]): Promise<void> {
  const writer = await store.openWriter(handle, version, { create: true });
  let offset = 0;
  for (let i = 0; offset < data.length; i++) {
    const n = Math.min(appendSizes[i % appendSizes.length]!, data.length - offset);
    writer.append(data.subarray(offset, offset + n));
    offset += n;
  }
  await writer.sync();
  await writer.close();
}

t.before(() => initChecksums());

const handle = 0x1234;
const version = 3;

t.test('chunk store: odd-sized unaligned appends read back byte-identical, before and after reopen', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const data = testBytes(5 * MiB + 12_345, 1);
  const writer = await store.openWriter(handle, version, { create: true });
  const sizes = [1, 777, 65_535, 65_537, MiB + 3, 4096, 131_071, 3, 200_000];
  let offset = 0;
  for (let i = 0; offset < data.length; i++) {
    const n = Math.min(sizes[i % sizes.length]!, data.length - offset);
    // Every other append carries its piece sums, as the data plane does.
    writer.append(data.subarray(offset, offset + n), i % 2 === 0 ? pieceSumsOf(offset, data.subarray(offset, offset + n)) : undefined);
    offset += n;
    if (i === 4) t.equal(await writer.sync(), offset, 'a sync in the middle returns the durable length');
  }
  t.equal(writer.length, data.length);
  t.equal(await writer.sync(), data.length);
  t.equal(writer.durableLength, data.length);
  await writer.close();

  const ranges: Array<[number, number]> = [
    [0, data.length], [0, 1], [65_535, 2], [MiB - 5, 2 * MiB + 12], [data.length - 1, 1],
    [data.length - 70_000, 70_000], [3 * MiB, MiB], [123_456, 0], [data.length, 0], [1, blockBytes],
  ];
  const checkRanges = async (s: ChunkStore, label: string) => {
    for (const [start, length] of ranges) {
      const got = await readAll(s, handle, version, start, length);
      t.ok(got.equals(data.subarray(start, start + length)), `${label}: bytes [${start}, ${start + length}) match`);
    }
  };
  await checkRanges(store, 'before reopen');
  t.same(store.get(handle), { handle, version, length: data.length, tier: 'default', mtimeMs: store.get(handle)!.mtimeMs });
  t.equal(await store.verify(handle), true);
  await store.close();

  const reopened = await openStore(t, dir);
  t.equal(reopened.get(handle)?.length, data.length);
  await checkRanges(reopened, 'after reopen');
  t.same(reopened.corruptHandles(), []);
});

t.test('chunk store: appends keep flowing while syncs are in flight, and reads see only durable bytes', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const data = testBytes(20 * MiB + 1, 40); // past the write-behind flush threshold twice
  const writer = await store.openWriter(handle, version, { create: true });
  const syncs: Array<Promise<number>> = [];
  const lengthsAtSync: number[] = [];
  for (let offset = 0; offset < data.length; offset += MiB) {
    const piece = data.subarray(offset, offset + MiB);
    writer.append(piece, pieceSumsOf(offset, piece));
    if ((offset / MiB) % 3 === 2) {
      lengthsAtSync.push(writer.length);
      syncs.push(writer.sync()); // not awaited: the data plane keeps appending
      const durable = store.get(handle)!.length;
      t.ok((await readAll(store, handle, version, 0, durable)).equals(data.subarray(0, durable)),
        `a read of the durable ${durable} bytes verifies mid-write`);
    }
  }
  const durableLengths = await Promise.all(syncs);
  durableLengths.forEach((d, i) => t.ok(d >= lengthsAtSync[i]!, `sync ${i} covers what was appended before it`));
  t.same([...durableLengths].sort((a, b) => a - b), durableLengths, 'the durable length only grows');
  t.equal(await writer.sync(), data.length);
  await writer.close();
  t.ok((await readAll(store, handle, version, 0, data.length)).equals(data));
});

t.test('chunk store: read yields 1 MiB-aligned pieces', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const data = testBytes(4 * MiB, 2);
  await writeChunk(store, handle, version, data);
  const sizes: number[] = [];
  for await (const piece of store.read(handle, version, MiB / 2, 2 * MiB)) sizes.push(piece.length);
  t.same(sizes, [MiB / 2, MiB, MiB / 2]);
});

t.test('chunk store: appending after reopen extends a partial trailing block and reads verify', async (t) => {
  const dir = await tempDir(t);
  const first = testBytes(100_000, 3);
  const second = testBytes(50_000, 4);
  {
    const store = await openStore(t, dir);
    await writeChunk(store, handle, version, first, [30_000]);
    await store.close();
  }
  const store = await openStore(t, dir);
  const writer = await store.openWriter(handle, version, { create: false });
  t.equal(writer.length, first.length);
  // The first piece is short: it completes the block the chunk ends in.
  const sums = pieceSumsOf(first.length, second);
  t.equal(sums.length, 2, 'split at the block boundary 131072');
  writer.append(second, sums);
  t.equal(await writer.sync(), 150_000);
  await writer.close();
  const all = Buffer.concat([first, second]);
  t.ok((await readAll(store, handle, version, 0, all.length)).equals(all));
  t.ok((await readAll(store, handle, version, 65_000, 70_000)).equals(all.subarray(65_000, 135_000)));
  t.equal(await store.verify(handle), true);
  t.equal((await fs.stat(chunkPaths(dir, handle).sum)).size, sumFileBytes(150_000), 'sums cover exactly the durable length');
  await store.close();

  const again = await openStore(t, dir);
  t.equal(again.get(handle)?.length, 150_000);
  t.equal(await again.verify(handle), true);
});

t.test('chunk store: wrong pieceSums are CHECKSUM_MISMATCH and nothing more becomes durable', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const good = testBytes(200_000, 5);
  const writer = await store.openWriter(handle, version, { create: true });
  writer.append(good, pieceSumsOf(0, good));
  t.equal(await writer.sync(), good.length);

  const more = testBytes(MiB, 6);
  writer.append(more.subarray(0, 100_000), pieceSumsOf(good.length, more.subarray(0, 100_000))); // fine, unsynced
  const bad = more.subarray(100_000);
  const sums = pieceSumsOf(good.length + 100_000, bad);
  sums[3] = sums[3]! ^ 1n;
  throwsCode(t, () => writer.append(bad, sums), 'CHECKSUM_MISMATCH', 'a wrong piece sum');
  throwsCode(t, () => writer.append(testBytes(10, 7)), 'CHECKSUM_MISMATCH', 'the writer accepts nothing more');
  await rejectsCode(t, writer.sync(), 'CHECKSUM_MISMATCH', 'sync of a poisoned writer');
  await writer.close();
  t.equal(store.get(handle)?.length, good.length);
  t.equal((await fs.stat(chunkPaths(dir, handle).chk)).size, good.length, 'unsynced bytes are cut on close');
  await store.close();

  const reopened = await openStore(t, dir);
  t.equal(reopened.get(handle)?.length, good.length);
  t.ok((await readAll(reopened, handle, version, 0, good.length)).equals(good));

  const w2 = await reopened.openWriter(handle, version, { create: false });
  const piece = testBytes(1000, 8);
  throwsCode(t, () => w2.append(piece, [xxh64(piece), 0n]), 'CHECKSUM_MISMATCH', 'too many piece sums');
  await w2.abort();
});

t.test('chunk store: a flipped byte is reported CORRUPT and never returned', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const data = testBytes(3 * MiB + 500, 9);
  await writeChunk(store, handle, version, data);
  const flipAt = MiB + MiB / 2 + 10; // block 24
  const chk = await fs.open(chunkPaths(dir, handle).chk, 'r+');
  await chk.write(Buffer.from([data[flipAt]! ^ 0x40]), 0, 1, flipAt);
  await chk.close();

  const yielded: Buffer[] = [];
  try {
    for await (const piece of store.read(handle, version, flipAt - 10, 20)) yielded.push(piece);
    t.fail('read of the flipped range succeeded');
  } catch (e) {
    t.ok(isGfsError(e, 'CORRUPT'), 'the read throws CORRUPT');
  }
  t.equal(yielded.length, 0, 'not a byte of the bad block is returned');

  // A read that starts in good pieces yields them, then stops at the bad one.
  const before: Buffer[] = [];
  await rejectsCode(t, (async () => {
    for await (const piece of store.read(handle, version, 0, 2 * MiB)) before.push(piece);
  })(), 'CORRUPT', 'a read through the bad block');
  t.ok(Buffer.concat(before).equals(data.subarray(0, MiB)), 'only the verified first piece came out');

  t.same(store.corruptHandles(), [handle]);
  t.same(store.takeCorrupt(), [handle]);
  t.same(store.takeCorrupt(), [], 'reported once');
  t.ok((await readAll(store, handle, version, 0, MiB)).equals(data.subarray(0, MiB)), 'other ranges still read');
  t.ok((await readAll(store, handle, version, 2 * MiB, MiB + 500)).equals(data.subarray(2 * MiB)));
  t.ok((await readAll(store, handle, version, flipAt - 70_000, 60_000)).equals(data.subarray(flipAt - 70_000, flipAt - 10_000)),
    'the block before the bad one reads');
  t.equal(await store.verify(handle), false);
  await store.delete(handle);
  t.same(store.corruptHandles(), [], 'a deleted chunk is no longer corrupt');
});

t.test('chunk store: a corrupt trailing block is not extended by a new writer', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  await writeChunk(store, handle, version, testBytes(70_000, 10));
  const chk = await fs.open(chunkPaths(dir, handle).chk, 'r+');
  await chk.write(Buffer.from([1, 2, 3]), 0, 3, 69_000);
  await chk.close();
  await rejectsCode(t, store.openWriter(handle, version, { create: false }), 'CORRUPT', 'openWriter');
  t.same(store.corruptHandles(), [handle]);
  const writer = await store.openWriter(handle, version, { create: false }).catch(() => undefined);
  t.equal(writer, undefined, 'the chunk stays unwritable');
});

t.test('chunk store: crash recovery: bytes past the durable length are cut at open', async (t) => {
  const dir = await tempDir(t);
  const data = testBytes(300_000, 11);
  {
    const store = await openStore(t, dir);
    await writeChunk(store, handle, version, data);
    await store.close();
  }
  // What a crash after the data write but before the next header leaves behind.
  await fs.appendFile(chunkPaths(dir, handle).chk, testBytes(77_777, 12));
  const store = await openStore(t, dir);
  t.equal(store.get(handle)?.length, data.length);
  t.equal((await fs.stat(chunkPaths(dir, handle).chk)).size, data.length);
  t.ok((await readAll(store, handle, version, 0, data.length)).equals(data));
  const writer = await store.openWriter(handle, version, { create: false });
  const more = testBytes(1000, 13);
  writer.append(more);
  await writer.sync();
  await writer.close();
  t.ok((await readAll(store, handle, version, 0, data.length + 1000)).equals(Buffer.concat([data, more])));
});

t.test('chunk store: crash recovery: a crash between data fsync and header keeps the old durable length', async (t) => {
  const dir = await tempDir(t);
  const first = testBytes(90_000, 14);
  const store = await openStore(t, dir);
  const writer = await store.openWriter(handle, version, { create: true });
  writer.append(first);
  await writer.sync();
  writer.append(testBytes(3 * blockBytes, 15));
  enableFailpoint('chunk.afterDataBeforeHeader', 'error');
  t.teardown(() => disableFailpoint('chunk.afterDataBeforeHeader'));
  await rejectsCode(t, writer.sync(), 'IO_ERROR', 'sync stopped at the failpoint');
  disableFailpoint('chunk.afterDataBeforeHeader');
  t.equal(writer.durableLength, first.length);
  // Leave the files as the crash would: skip the writer's cleanup by copying them first.
  const paths = chunkPaths(dir, handle);
  const [chkBytes, sumBytes] = await Promise.all([fs.readFile(paths.chk), fs.readFile(paths.sum)]);
  t.ok(chkBytes.length > first.length && sumBytes.length > sumFileBytes(first.length), 'data and sums were written');
  await store.close();
  await Promise.all([fs.writeFile(paths.chk, chkBytes), fs.writeFile(paths.sum, sumBytes)]);

  const reopened = await openStore(t, dir);
  t.equal(reopened.get(handle)?.length, first.length);
  t.equal((await fs.stat(paths.chk)).size, first.length);
  t.equal((await fs.stat(paths.sum)).size, sumFileBytes(first.length), 'sums past the durable length are cut');
  t.ok((await readAll(reopened, handle, version, 0, first.length)).equals(first));
});

/** Runs `body` (JS, with `ChunkStore`, `dir` and `data(n, seed)` in scope) in a child process with failpoints set. */
function runChild(dir: string, failpoints: string, body: string): Promise<{ code: number | null; signal: string | null }> {
  const storeModule = path.join(__dirname, '..', '..', 'src', 'chunkserver', 'chunk-store.js');
  const script = `
    const { ChunkStore } = require(${JSON.stringify(storeModule)});
    const dir = ${JSON.stringify(dir)};
    const data = ${testBytes.toString()};
    (async () => { ${body} })().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });`;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', script], {
      env: { ...process.env, GFS_FAILPOINTS: failpoints }, stdio: ['ignore', 'inherit', 'inherit'],
    });
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
}

t.test('chunk store: crash recovery: a process killed between data fsync and header keeps the acknowledged length', async (t) => {
  const dir = await tempDir(t);
  const failpointsModule = path.join(__dirname, '..', '..', 'src', 'common', 'failpoints.js');
  const result = await runChild(dir, '', `
    const store = await ChunkStore.open({ dir });
    const w = await store.openWriter(${handle}, ${version}, { create: true });
    w.append(data(100000, 50));
    await w.sync(); // acknowledged
    require(${JSON.stringify(failpointsModule)}).enableFailpoint('chunk.afterDataBeforeHeader', 'crash');
    w.append(data(300000, 51));
    await w.sync();`);
  t.equal(result.signal, 'SIGKILL', 'the child died at the failpoint');
  const store = await openStore(t, dir);
  t.equal(store.get(handle)?.length, 100_000);
  t.ok((await readAll(store, handle, version, 0, 100_000)).equals(testBytes(100_000, 50)));
  t.equal((await fs.stat(chunkPaths(dir, handle).chk)).size, 100_000);
});

t.test('chunk store: crash recovery: a seal killed after its header fsync keeps the new version and every byte', async (t) => {
  const dir = await tempDir(t);
  const result = await runChild(dir, 'chunk.afterVersionHeader=crash', `
    const store = await ChunkStore.open({ dir });
    const w = await store.openWriter(${handle}, 1, { create: true });
    w.append(data(150000, 53));
    await w.sync(); // acknowledged
    await w.close();
    // The header is durable, the index not yet, when the failpoint kills the process.
    await store.setVersion(${handle}, 2);`);
  t.equal(result.signal, 'SIGKILL', 'the child died at the failpoint');
  const store = await openStore(t, dir);
  t.equal(store.get(handle)?.version, 2, 'the header on disk wins over the stale index entry');
  t.equal(store.get(handle)?.length, 150_000);
  t.ok((await readAll(store, handle, 2, 0, 150_000)).equals(testBytes(150_000, 53)), 'acknowledged bytes intact');
});

t.test('chunk store: crash recovery: a process killed before an import renames leaves no chunk', async (t) => {
  const dir = await tempDir(t);
  const result = await runChild(dir, 'chunk.afterWriteBeforeRename=crash', `
    const store = await ChunkStore.open({ dir });
    async function* source() { yield data(200000, 52); }
    await store.importChunk(${handle}, ${version}, source(), 200000);`);
  t.equal(result.signal, 'SIGKILL', 'the child died at the failpoint');
  const shardDir = chunkPaths(dir, handle).shardDir;
  t.same((await fs.readdir(shardDir)).filter((n) => n.endsWith('.tmp')).length, 2, 'the crash left temporary files');
  const store = await openStore(t, dir);
  t.equal(store.get(handle), undefined);
  t.same(await fs.readdir(shardDir), []);
});

t.test('chunk store: crash recovery: a damaged newest header slot falls back to the previous one', async (t) => {
  const dir = await tempDir(t);
  const first = testBytes(100_000, 16); // seq 1 in slot 1: one full block + a tail
  const second = testBytes(400_000, 17); // seq 2 in slot 0
  {
    const store = await openStore(t, dir);
    const writer = await store.openWriter(handle, version, { create: true });
    writer.append(first);
    await writer.sync();
    writer.append(second);
    await writer.sync();
    await writer.close();
    await store.close();
  }
  const paths = chunkPaths(dir, handle);
  const prefix = (await fs.readFile(paths.sum)).subarray(0, blockSumsOffsetBytes);
  t.equal(newestHeader(prefix, handle)?.seq, 2);
  // A torn write of slot 0: half new bytes, half garbage.
  const sum = await fs.open(paths.sum, 'r+');
  await sum.write(Buffer.alloc(20, 0xee), 0, 20, 30);
  await sum.close();

  const store = await openStore(t, dir);
  t.equal(store.get(handle)?.length, first.length, 'the older header wins');
  t.equal((await fs.stat(paths.chk)).size, first.length, 'data past its length is cut');
  t.equal((await fs.stat(paths.sum)).size, sumFileBytes(first.length));
  t.ok((await readAll(store, handle, version, 0, first.length)).equals(first));
  t.equal(await store.verify(handle), true);

  // The next sync writes seq 2 over the damaged slot.
  const writer = await store.openWriter(handle, version, { create: false });
  writer.append(second);
  t.equal(await writer.sync(), first.length + second.length);
  await writer.close();
  const fixed = (await fs.readFile(paths.sum)).subarray(0, blockSumsOffsetBytes);
  t.equal(decodeHeaderSlot(fixed, 0, handle)?.seq, 2);
  t.equal(decodeHeaderSlot(fixed, 1, handle)?.seq, 1);
  t.ok((await readAll(store, handle, version, 0, first.length + second.length)).equals(Buffer.concat([first, second])));
});

t.test('chunk store: crash recovery: leftover .tmp files are removed at open', async (t) => {
  const dir = await tempDir(t);
  {
    const store = await openStore(t, dir);
    await writeChunk(store, handle, version, testBytes(1000, 18));
    await store.close();
  }
  const paths = chunkPaths(dir, 0x77);
  await fs.mkdir(paths.shardDir, { recursive: true });
  await fs.writeFile(paths.chkTmp, testBytes(5000, 19));
  await fs.writeFile(paths.sumTmp, testBytes(100, 20));
  const store = await openStore(t, dir);
  t.same(store.list().map((m) => m.handle), [handle]);
  t.same(await fs.readdir(paths.shardDir), [], 'both temporary files are gone');
});

t.test('chunk store: crash recovery: a chunk without a valid header is removed at open', async (t) => {
  const dir = await tempDir(t);
  const headerless = 0x101;
  const loneChk = 0x202;
  {
    const store = await openStore(t, dir);
    await writeChunk(store, handle, version, testBytes(1000, 21));
    const writer = await store.openWriter(headerless, 1, { create: true });
    writer.append(testBytes(5000, 22)); // never synced: never acknowledged
    t.equal(store.get(headerless)?.length, 0, 'listed with nothing durable');
    // Simulate the crash: keep the files as they are now.
    await new Promise((r) => setTimeout(r, 10));
    const paths = chunkPaths(dir, headerless);
    const [chkBytes, sumBytes] = await Promise.all([fs.readFile(paths.chk), fs.readFile(paths.sum)]);
    await store.close();
    await Promise.all([fs.writeFile(paths.chk, chkBytes), fs.writeFile(paths.sum, sumBytes)]);
  }
  const lonePaths = chunkPaths(dir, loneChk);
  await fs.mkdir(lonePaths.shardDir, { recursive: true });
  await fs.writeFile(lonePaths.chk, testBytes(100, 23));

  const store = await openStore(t, dir);
  t.same(store.list().map((m) => m.handle), [handle]);
  for (const p of [chunkPaths(dir, headerless).chk, chunkPaths(dir, headerless).sum, lonePaths.chk]) {
    t.equal(await fs.access(p).then(() => true, () => false), false, `${path.basename(p)} removed`);
  }
});

t.test('chunk store: the index is rebuilt from the files and keeps tier and mtime', async (t) => {
  const dir = await tempDir(t);
  let now = 1_000;
  {
    const store = await openStore(t, dir, { tier: 'ssd', nowMs: () => now });
    await writeChunk(store, 1, 1, testBytes(10, 24));
    now = 2_000;
    await writeChunk(store, 2, 1, testBytes(10, 25));
    await store.close();
  }
  // Chunk 2 vanishes behind the store's back; the index still names it.
  await fs.rm(chunkPaths(dir, 2).chk);
  await fs.rm(chunkPaths(dir, 2).sum);
  const store = await openStore(t, dir, { tier: 'hdd', nowMs: () => now });
  t.same(store.list(), [{ handle: 1, version: 1, length: 10, tier: 'ssd', mtimeMs: 1_000 }]);
  await store.close();
  // And the index was rewritten: a third open sees the same.
  await fs.rm(path.join(dir, 'index'), { recursive: true });
  const rebuilt = await openStore(t, dir, { tier: 'hdd' });
  t.same(rebuilt.list().map((m) => [m.handle, m.length, m.tier]), [[1, 10, 'hdd']], 'a lost index is rebuilt from the files');
});

t.test('chunk store: argument and state errors have stable codes', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  await writeChunk(store, handle, version, testBytes(1000, 26));
  await rejectsCode(t, readAll(store, 999, 1, 0, 1), 'NO_SUCH_CHUNK', 'read of a missing chunk');
  await rejectsCode(t, readAll(store, handle, version + 1, 0, 1), 'STALE_VERSION', 'read of another version');
  await rejectsCode(t, readAll(store, handle, version, 500, 501), 'INVALID_ARGUMENT', 'read past the durable length');
  await rejectsCode(t, store.openWriter(handle, version, { create: true }), 'ALREADY_EXISTS', 'create twice');
  await rejectsCode(t, store.openWriter(handle, version - 1, { create: false }), 'STALE_VERSION', 'append to an old version');
  await rejectsCode(t, store.openWriter(999, 1, { create: false }), 'NO_SUCH_CHUNK', 'append to a missing chunk');
  const writer = await store.openWriter(handle, version, { create: false });
  await rejectsCode(t, store.openWriter(handle, version, { create: false }), 'FILE_NOT_WRITABLE', 'a second writer');
  await rejectsCode(t, store.setVersion(handle, version + 1), 'FILE_NOT_WRITABLE', 'a version bump under a writer');
  throwsCode(t, () => writer.append(Buffer.alloc(limits.chunkBytesMax)), 'TOO_LARGE', 'past chunkBytesMax');
  writer.append(testBytes(10, 27));
  t.equal(await writer.sync(), 1010, 'TOO_LARGE does not poison the writer');
  await writer.close();
  throwsCode(t, () => writer.append(Buffer.alloc(1)), 'FILE_NOT_WRITABLE', 'append after close');
  await rejectsCode(t, store.verify(999), 'NO_SUCH_CHUNK', 'verify of a missing chunk');
});

t.test('chunk store: setVersion only grows and survives reopen', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const data = testBytes(70_000, 28);
  await writeChunk(store, handle, 1, data);
  await store.setVersion(handle, 4);
  await store.setVersion(handle, 4);
  await rejectsCode(t, store.setVersion(handle, 3), 'STALE_VERSION', 'going back');
  t.ok((await readAll(store, handle, 1, 0, data.length)).equals(data), 'a reader that knows an older version still reads (a seal keeps every acked byte)');
  await rejectsCode(t, readAll(store, handle, 5, 0, 1), 'STALE_VERSION', 'a reader expecting a newer version than here is refused');
  await rejectsCode(t, store.openWriter(handle, 1, { create: false }), 'STALE_VERSION', 'a writer needs the exact version');
  t.ok((await readAll(store, handle, 4, 0, data.length)).equals(data));
  await store.close();
  const reopened = await openStore(t, dir);
  t.equal(reopened.get(handle)?.version, 4);
  t.equal(await reopened.verify(handle), true);
});

t.test('chunk store: a write that hits ENOSPC is NO_SPACE and claims nothing', { skip: process.platform !== 'linux' }, async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const writer = await store.openWriter(handle, version, { create: true });
  t.equal(await writer.sync(), 0, 'an empty chunk becomes durable');
  await writer.close();
  t.equal(await store.verify(handle), true, 'an empty chunk verifies');
  // /dev/full fails every write with ENOSPC: a real disk-full error from the kernel.
  const paths = chunkPaths(dir, handle);
  await fs.rm(paths.chk);
  await fs.symlink('/dev/full', paths.chk);
  const full = await store.openWriter(handle, version, { create: false });
  full.append(testBytes(MiB, 29));
  await rejectsCode(t, full.sync(), 'NO_SPACE', 'sync after a failed write');
  throwsCode(t, () => full.append(Buffer.alloc(1)), 'NO_SPACE', 'the writer stays failed');
  await full.close();
  t.equal(store.get(handle)?.length, 0);
  const header = newestHeader((await fs.readFile(paths.sum)).subarray(0, blockSumsOffsetBytes), handle);
  t.equal(header?.durableLength, 0, 'no header claims the unwritten bytes');
  await fs.rm(paths.chk);
});

t.test('chunk store: delete removes the chunk and is idempotent', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir, { capacityBytes: 10 * MiB });
  await writeChunk(store, handle, version, testBytes(MiB, 30));
  const space = await store.space();
  t.equal(space.usedBytes, MiB + sumFileBytes(MiB));
  t.equal(space.capacityBytes, 10 * MiB);
  t.ok(space.freeBytes <= 10 * MiB - space.usedBytes);
  const writer = await store.openWriter(handle, version, { create: false });
  writer.append(testBytes(10, 31));
  await store.delete(handle);
  await rejectsCode(t, writer.sync(), 'NO_SUCH_CHUNK', 'the open writer was aborted');
  await store.delete(handle);
  t.equal(store.get(handle), undefined);
  t.same(await fs.readdir(chunkPaths(dir, handle).shardDir), []);
  t.equal((await store.space()).usedBytes, 0);
  await store.close();
  t.same((await openStore(t, dir)).list(), []);
});

t.test('chunk store: importChunk round trip', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir, { nowMs: () => 42 });
  const data = testBytes(2 * MiB + 33_333, 32);
  async function* source(bytes: Buffer, pieceBytes: number) {
    for (let i = 0; i < bytes.length; i += pieceBytes) yield bytes.subarray(i, i + pieceBytes);
  }
  const meta = await store.importChunk(handle, 5, source(data, 300_001), data.length);
  t.same(meta, { handle, version: 5, length: data.length, tier: 'default', mtimeMs: 42 });
  t.ok((await readAll(store, handle, 5, 0, data.length)).equals(data));
  t.equal(await store.verify(handle), true);
  const paths = chunkPaths(dir, handle);
  t.same((await fs.readdir(paths.shardDir)).sort(), [path.basename(paths.chk), path.basename(paths.sum)]);

  await rejectsCode(t, store.importChunk(handle, 5, source(data, MiB), data.length), 'ALREADY_EXISTS', 'same version again');
  await rejectsCode(t, store.importChunk(7, 1, source(data, MiB), data.length - 1), 'INVALID_ARGUMENT', 'a longer source');
  await rejectsCode(t, store.importChunk(7, 1, source(data, MiB), data.length + 1), 'INVALID_ARGUMENT', 'a shorter source');
  enableFailpoint('chunk.afterWriteBeforeRename', 'error');
  t.teardown(() => disableFailpoint('chunk.afterWriteBeforeRename'));
  await rejectsCode(t, store.importChunk(7, 1, source(data, MiB), data.length), 'IO_ERROR', 'a failure before the rename');
  disableFailpoint('chunk.afterWriteBeforeRename');
  t.equal(store.get(7), undefined);
  t.same(await fs.readdir(chunkPaths(dir, 7).shardDir), [], 'no temporary files left');

  // A newer version replaces a stale local copy.
  const newer = testBytes(100, 33);
  await store.importChunk(handle, 6, source(newer, 7), newer.length);
  t.ok((await readAll(store, handle, 6, 0, newer.length)).equals(newer));
  await store.close();
  const reopened = await openStore(t, dir);
  t.same(reopened.list().map((m) => [m.handle, m.version, m.length]), [[handle, 6, 100]]);
  t.equal(await reopened.verify(handle), true);
});

t.test('chunk store: node id is generated once and stable across reopen', async (t) => {
  const dir = await tempDir(t);
  const dataDir = path.join(dir, 'data');
  const id = await loadOrCreateNodeId(dataDir);
  t.match(id, /^[0-9a-f]{16}$/);
  t.equal(await loadOrCreateNodeId(dataDir), id);
  t.equal(await loadOrCreateNodeId(dataDir, () => 'ffffffffffffffff'), id, 'never regenerated');
  t.not(await loadOrCreateNodeId(path.join(dir, 'other')), id, 'another disk is another node');
  t.same((await fs.readdir(dataDir)).sort(), ['node-id']);
  await fs.writeFile(path.join(dataDir, 'node-id'), 'not an id\n');
  await rejectsCode(t, loadOrCreateNodeId(dataDir), 'CORRUPT', 'a damaged id is not silently replaced');
});

const goldenDir = path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'format', 'chunk', 'v1');

t.test('chunk store: format v1 golden chunk still reads', async (t) => {
  const dir = await tempDir(t);
  await fs.cp(path.join(goldenDir, 'chunks'), path.join(dir, 'chunks'), { recursive: true });
  const store = await openStore(t, dir);
  t.same(store.list().map((m) => [m.handle, m.version, m.length]), [[golden.handle, golden.version, golden.lengthBytes]]);
  t.ok((await readAll(store, golden.handle, golden.version, 0, golden.lengthBytes)).equals(goldenBytes()));
  t.equal(await store.verify(golden.handle), true);

  const sum = await fs.readFile(path.join(goldenDir, 'chunks', 'a1', '00000000000002a1.sum'));
  const data = goldenBytes();
  t.same(decodeHeaderSlot(sum, 1, golden.handle), {
    handle: golden.handle, seq: 1, chunkVersion: golden.version, durableLength: golden.firstSyncBytes,
    tailSum: xxh64(data.subarray(blockBytes, golden.firstSyncBytes)),
  });
  t.same(decodeHeaderSlot(sum, 0, golden.handle), {
    handle: golden.handle, seq: 2, chunkVersion: golden.version, durableLength: golden.lengthBytes,
    tailSum: xxh64(data.subarray(2 * blockBytes, golden.lengthBytes)),
  });
  t.equal(sum.subarray(0, 8).toString('ascii'), 'GFSCHSUM');
  t.equal(sum[8], 1, 'format version byte');
  t.equal(headerSlotStrideBytes, 4096);
  t.equal(sum.readBigUInt64LE(blockSumsOffsetBytes), xxh64(data.subarray(0, blockBytes)));
  t.equal(sum.readBigUInt64LE(blockSumsOffsetBytes + 8), xxh64(data.subarray(blockBytes, 2 * blockBytes)));
  t.equal(sum.length, blockSumsOffsetBytes + 16);
});

t.test('chunk store: writing the golden chunk today gives the same bytes (a format change is deliberate)', async (t) => {
  const dir = await tempDir(t);
  await generateGoldenChunk(dir);
  for (const name of ['00000000000002a1.chk', '00000000000002a1.sum']) {
    const [now, then] = await Promise.all([
      fs.readFile(path.join(dir, 'chunks', 'a1', name)),
      fs.readFile(path.join(goldenDir, 'chunks', 'a1', name)),
    ]);
    t.ok(now.equals(then), `${name} is byte-identical to format v1`);
  }
});

t.test('chunk store: whenIdle waits for a closing writer, so a version bump after it finds the chunk free', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const writer = await store.openWriter(handle, 1, { create: true });
  writer.append(testBytes(100_000, 5));
  const synced = writer.sync(); // an fsync in hand when the writer is told to close
  await rejectsCode(t, store.setVersion(handle, 2), 'FILE_NOT_WRITABLE', 'a bump while the writer is open');
  const closing = writer.close();
  await store.whenIdle(handle, 5000);
  t.notOk(store.busy(handle), 'idle once the writer closed');
  await store.setVersion(handle, 2);
  t.equal(store.get(handle)?.version, 2);
  await Promise.allSettled([synced, closing]);
  const started = Date.now();
  await store.whenIdle(handle, 5000);
  t.ok(Date.now() - started < 100, 'an idle chunk does not wait');
  const again = await store.openWriter(handle, 2, { create: false });
  const waited = Date.now();
  await store.whenIdle(handle, 50);
  t.ok(Date.now() - waited >= 45, 'a writer that stays open: whenIdle gives up after its timeout');
  await again.close();
});
