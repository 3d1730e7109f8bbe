/**
 * The chunkserver's on-disk chunk store (DESIGN §6, format spec in ./FORMAT.md):
 * `<data>/chunks/<2 hex>/<handle>.chk` data and `.sum` headers + block sums, and a
 * level index at `<data>/index` of handle → version, length, tier, mtime.
 *
 * Invariants:
 * - The files are the truth; the index is a cache of them plus tier and mtime, and is
 *   reconciled with the files at every open.
 * - The durable length only grows for a given version (asserted by the writer), except
 *   by truncate(): the master cutting an append chunk it just sealed at that version.
 * - Sums on disk always cover exactly the durable length: a chunk's bytes past its
 *   newest valid header's length were never acknowledged and are cut at open.
 * - No byte is returned by read() unless the whole 64 KiB block holding it verified
 *   against its sum; a mismatch marks the chunk corrupt and returns nothing of it.
 * - A chunk has at most one mutator at a time (writer, import, version bump or delete).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Level } from 'level';
import { initChecksums, xxh64 } from '../common/checksum';
import { GfsError, isGfsError } from '../common/errors';
import { failpoint } from '../common/failpoints';
import { limits } from '../common/limits';
import { silentLogger, type Logger } from '../common/log';
import { systemClock, type Clock } from '../common/clock';
import { BufferPool } from '../common/buffer-pool';
import { BlockSummer } from './block-summer';
import {
  blockBytes, blockSumOffset, blockSumsOffsetBytes, chunkPaths, chunksDirName, encodeBlockSums, encodeHeader,
  decodeHeaderSlot, fullBlockCount, handleName, headerSlotCount, headerSlotOffset, headerSlotStrideBytes,
  headerBytes, indexDirName, newestHeader, parseChunkFileName, shardName, sumFileBytes, tmpSuffix,
  type ChunkHeader,
} from './chunk-format';
import { ChunkFileWriter, type ChunkState, type ChunkWriter, type WriterHost } from './chunk-writer';
import { DirSyncer, errnoCode, fsyncDir, readFully, toStoreError, unlinkIfExists, writeFully } from './file-io';
import { cutSidecar } from './append/rid-sidecar';

export type { ChunkWriter } from './chunk-writer';

export interface ChunkMeta {
  handle: number;
  version: number;
  /** Durable length in bytes. */
  length: number;
  tier: string;
  mtimeMs: number;
}

export interface ChunkStoreOptions {
  /** The chunkserver's data directory. */
  dir: string;
  log?: Logger;
  /** Tier label of chunks written here (e.g. "ssd", "hdd"). */
  tier?: string;
  /** Timers, and mtimes unless nowMs is given (default systemClock). */
  clock?: Clock;
  /** Wall-clock ms for mtimes (default clock.nowMs). */
  nowMs?: () => number;
  /** Reported capacity; defaults to the file system's size (fs.statfs). For tests. */
  capacityBytes?: number;
}

export interface ChunkSpace {
  capacityBytes: number;
  /** Chunk data plus sum files. */
  usedBytes: number;
  freeBytes: number;
}

/** The index value for one chunk. */
interface IndexEntry {
  version: number;
  length: number;
  tier: string;
  mtimeMs: number;
}

type Mutator = ChunkFileWriter | 'opening' | 'import' | 'setVersion' | 'delete';

const defaultTier = 'default';

/** Chunks recovered concurrently at open: enough to keep a disk queue busy, few enough to bound open files. */
const recoveryConcurrency = 32;

export class ChunkStore {
  private readonly chunks = new Map<number, ChunkState>();
  /** The one mutator of each chunk that has one. */
  private readonly mutators = new Map<number, Mutator>();
  private readonly idleWaiters = new Map<number, (() => void)[]>();
  /** Piece buffers of the scrubber's verify reads, reused pass after pass. */
  private readonly verifyPool = new BufferPool(limits.readPieceBytes, 2);
  /** Chunks found corrupt (until deleted or replaced). */
  private readonly corrupt = new Set<number>();
  /** Corrupt chunks not yet handed to the heartbeat reporter by takeCorrupt(). */
  private readonly corruptUnreported = new Set<number>();
  /** Shard directories known to exist durably. */
  private readonly shardDirs = new Set<string>();
  private readonly writerHost: WriterHost;
  /** New chunks' directory syncs: shard handles kept open, concurrent syncs shared. */
  private readonly dirSyncer = new DirSyncer();
  private closed = false;

  private constructor(
    private readonly dataDir: string,
    private readonly index: Level<string, IndexEntry>,
    private readonly log: Logger,
    private readonly tier: string,
    private readonly clock: Clock,
    private readonly nowMs: () => number,
    private readonly capacityBytesOverride: number | undefined,
  ) {
    this.writerHost = {
      log,
      onDurable: (state) => this.recordDurable(state),
      markCorrupt: (handle, why) => this.markCorrupt(handle, why),
      syncDir: (dir) => this.dirSyncer.sync(dir),
      releaseWriter: (writer) => {
        if (this.mutators.get(writer.handle) === writer) this.unclaim(writer.handle);
      },
    };
  }

  /**
   * Opens the store and recovers it: removes temporary files and chunks that never had
   * a durable header, cuts every chunk back to its durable length, and rebuilds the
   * index entries that disagree with the files.
   */
  static async open(opts: ChunkStoreOptions): Promise<ChunkStore> {
    await initChecksums();
    const dataDir = path.resolve(opts.dir);
    const log = (opts.log ?? silentLogger).child({ component: 'chunk-store' });
    await fs.mkdir(path.join(dataDir, chunksDirName), { recursive: true });
    const index = await openIndex(path.join(dataDir, indexDirName), log);
    const clock = opts.clock ?? systemClock;
    const store = new ChunkStore(dataDir, index, log, opts.tier ?? defaultTier, clock, opts.nowMs ?? (() => clock.nowMs()),
      opts.capacityBytes);
    try {
      await store.recover();
      await store.prepareShardDirs(path.join(dataDir, chunksDirName));
    } catch (e) {
      await index.close();
      throw toStoreError(e, 'chunk store recovery');
    }
    return store;
  }

  get chunkCount(): number {
    return this.chunks.size;
  }

  list(): ChunkMeta[] {
    return [...this.chunks.values()].map(toMeta);
  }

  get(handle: number): ChunkMeta | undefined {
    const state = this.chunks.get(handle);
    return state && toMeta(state);
  }

  async space(): Promise<ChunkSpace> {
    let usedBytes = 0;
    for (const state of this.chunks.values()) usedBytes += state.durableLength + sumFileBytes(state.durableLength);
    const stats = await fs.statfs(this.dataDir);
    const fsFreeBytes = stats.bavail * stats.bsize;
    if (this.capacityBytesOverride === undefined) {
      return { capacityBytes: stats.blocks * stats.bsize, usedBytes, freeBytes: fsFreeBytes };
    }
    const capacityBytes = this.capacityBytesOverride;
    return { capacityBytes, usedBytes, freeBytes: Math.max(0, Math.min(fsFreeBytes, capacityBytes - usedBytes)) };
  }

  /**
   * Opens the chunk's only writer. `create` makes a new, empty chunk (ALREADY_EXISTS if
   * the handle is present); otherwise appends to the existing chunk of exactly `version`.
   */
  async openWriter(handle: number, version: number, opts: { create: boolean }): Promise<ChunkWriter> {
    this.checkOpen();
    checkHandle(handle);
    checkVersion(version);
    if (opts.create && this.chunks.has(handle)) {
      throw new GfsError('ALREADY_EXISTS', `chunk ${handle} already exists`, { detail: { handle: String(handle) } });
    }
    const existing = opts.create ? undefined : this.requireChunk(handle, version);
    this.claim(handle, 'opening');
    try {
      const paths = chunkPaths(this.dataDir, handle);
      let writer: ChunkFileWriter;
      if (existing) {
        writer = await ChunkFileWriter.openExisting(this.writerHost, existing, paths);
      } else {
        await this.ensureShardDir(paths.shardDir);
        const state: ChunkState = {
          handle, version, durableLength: 0, tier: this.tier, mtimeMs: this.nowMs(), seq: 0, tailSum: 0n,
        };
        try {
          writer = await ChunkFileWriter.create(this.writerHost, state, paths);
        } catch (e) {
          if (errnoCode(e) === 'EEXIST') throw new GfsError('ALREADY_EXISTS', `chunk ${handle} already exists on disk`);
          throw e;
        }
        // Listed from now on with length 0; it becomes durable with the first sync.
        this.chunks.set(handle, state);
      }
      this.mutators.set(handle, writer);
      return writer;
    } catch (e) {
      this.unclaim(handle);
      throw toStoreError(e, `chunk ${handle}: open writer`);
    }
  }

  /**
   * Bumps the chunk's version (a writer sealing it after its chain failed), durably.
   * Only grows: an older version is STALE_VERSION, the same version is a no-op.
   */
  async setVersion(handle: number, version: number): Promise<void> {
    this.checkOpen();
    checkVersion(version);
    const state = this.chunks.get(handle);
    if (!state) throw noSuchChunk(handle);
    if (version < state.version) {
      throw new GfsError('STALE_VERSION', `chunk ${handle} is at version ${state.version}, not going back to ${version}`,
        { detail: { handle: String(handle), version: String(state.version) } });
    }
    if (version === state.version) return;
    this.claim(handle, 'setVersion');
    try {
      const paths = chunkPaths(this.dataDir, handle);
      const header: ChunkHeader = {
        handle, seq: state.seq + 1, chunkVersion: version, durableLength: state.durableLength, tailSum: state.tailSum,
      };
      const sumFile = await fs.open(paths.sum, 'r+');
      try {
        await writeFully(sumFile, [encodeHeader(header)], headerSlotOffset(header.seq));
        await sumFile.datasync();
      } finally {
        await sumFile.close();
      }
      if (state.seq === 0) await this.dirSyncer.sync(paths.shardDir); // its first header: make the names durable too
      await failpoint('chunk.afterVersionHeader');
      state.version = version;
      state.seq = header.seq;
      await this.recordDurable(state);
    } catch (e) {
      throw toStoreError(e, `chunk ${handle}: set version`);
    } finally {
      this.unclaim(handle);
    }
  }

  /** Where the chunk's record-id sidecar lives (it may not exist). */
  sidecarPath(handle: number): string {
    return chunkPaths(this.dataDir, handle).rid;
  }

  /**
   * Cuts the chunk (data, sums, record-id sidecar) to `length` at `version` (the
   * master sealing an open append chunk: bytes past the smallest durable length among
   * the replicas were never acknowledged). Never extends: a chunk holding fewer bytes
   * is an error. The new, shorter header is written first, so a crash leaves files that
   * start-up cuts to it. This is the one place a durable length shrinks; the version
   * was bumped by the seal just before, and nothing reads that version yet.
   */
  async truncate(handle: number, version: number, length: number): Promise<number> {
    this.checkOpen();
    const state = this.requireChunk(handle, version);
    if (!Number.isSafeInteger(length) || length < 0) throw new GfsError('INVALID_ARGUMENT', `bad length ${length}`);
    if (length > state.durableLength) {
      throw new GfsError('IO_ERROR', `chunk ${handle} holds ${state.durableLength} durable bytes, cannot truncate up to ${length}`,
        { detail: { handle: String(handle), length: String(state.durableLength) } });
    }
    const paths = chunkPaths(this.dataDir, handle);
    if (length === state.durableLength) {
      await cutSidecar(paths.rid, length);
      return length;
    }
    this.claim(handle, 'setVersion');
    try {
      // The new tail block's bytes, from a verified read of the block holding them.
      const tailStart = Math.floor(length / blockBytes) * blockBytes;
      const parts: Buffer[] = [];
      if (length > tailStart) {
        for await (const piece of this.readVerified(state, state.durableLength, state.tailSum, tailStart, length)) parts.push(Buffer.from(piece.bytes));
      }
      const tail = Buffer.concat(parts);
      assert.equal(tail.length, length - tailStart);
      const header: ChunkHeader = {
        handle, seq: state.seq + 1, chunkVersion: version, durableLength: length, tailSum: tail.length > 0 ? xxh64(tail) : 0n,
      };
      const sumFile = await fs.open(paths.sum, 'r+');
      try {
        await writeFully(sumFile, [encodeHeader(header)], headerSlotOffset(header.seq));
        await sumFile.datasync();
        state.seq = header.seq;
        state.durableLength = length;
        state.tailSum = header.tailSum;
        await sumFile.truncate(sumFileBytes(length));
        await sumFile.datasync();
      } finally {
        await sumFile.close();
      }
      await fs.truncate(paths.chk, length);
      await cutSidecar(paths.rid, length);
      await this.recordDurable(state);
      return length;
    } catch (e) {
      throw toStoreError(e, `chunk ${handle}: truncate`);
    } finally {
      this.unclaim(handle);
    }
  }

  /**
   * Streams `length` bytes from `offset`, in pieces of at most readPieceBytes aligned to
   * readPieceBytes in the chunk, each read with one syscall. Every block a piece touches
   * is verified before any of its bytes is yielded.
   */
  async *read(handle: number, version: number, offset: number, length: number): AsyncGenerator<Buffer> {
    for await (const piece of this.readPieces(handle, version, offset, length)) yield piece.bytes;
  }

  /**
   * read(), with each piece in a buffer from `pool` when given: the caller calls
   * `release()` once it no longer needs the bytes (a socket wrote them), and the buffer
   * serves a later read instead of waiting for a full GC (the data plane's reads).
   */
  async *readPieces(handle: number, version: number, offset: number, length: number, pool?: BufferPool): AsyncGenerator<ReadPiece> {
    this.checkOpen();
    // A newer version here than the reader's is fine: a seal only bumps the version of
    // replicas holding every acknowledged byte, and the master may not have recorded it yet.
    const state = this.requireChunk(handle, version, { orNewer: true });
    // A consistent snapshot: bytes below the durable length never change, so this
    // length and tail sum stay valid however the chunk grows during the read.
    const durableLength = state.durableLength;
    const tailSum = state.tailSum;
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 ||
      offset + length > durableLength) {
      throw new GfsError('INVALID_ARGUMENT',
        `chunk ${handle}: cannot read ${length} bytes at ${offset}: durable length is ${durableLength}`);
    }
    if (length === 0) return;
    yield* this.readVerified(state, durableLength, tailSum, offset, offset + length, pool);
  }

  /** Re-reads and re-verifies the whole chunk (the scrubber); false, and marked corrupt, on any mismatch. */
  async verify(handle: number): Promise<boolean> {
    this.checkOpen();
    const state = this.chunks.get(handle);
    if (!state) throw noSuchChunk(handle);
    try {
      // The header on disk must still say what we believe; skipped while a mutator may be rewriting it.
      if (!this.mutators.has(handle) && state.seq > 0) await this.verifyHeader(state);
      if (state.durableLength > 0) {
        for await (const piece of this.readVerified(state, state.durableLength, state.tailSum, 0, state.durableLength, this.verifyPool)) {
          piece.release(); // reading is verifying
        }
      }
      return true;
    } catch (e) {
      if (isGfsError(e, 'CORRUPT')) return false;
      throw e;
    }
  }

  /** The chunk has a mutator now (open writer, import, version bump, delete): the scrubber skips it. */
  busy(handle: number): boolean {
    return this.mutators.has(handle);
  }

  /** Every chunk currently known to be corrupt. */
  corruptHandles(): number[] {
    return [...this.corrupt].sort((a, b) => a - b);
  }

  /** Corrupt chunks found since the last call: the heartbeat reporter drains these. */
  takeCorrupt(): number[] {
    const handles = [...this.corruptUnreported].sort((a, b) => a - b);
    this.corruptUnreported.clear();
    return handles;
  }

  /**
   * Removes the chunk. An open writer is aborted first (the master's word wins).
   * Deleting a chunk that is not here is not an error, so a retried delete is harmless.
   */
  async delete(handle: number): Promise<void> {
    this.checkOpen();
    const mutator = this.mutators.get(handle);
    if (mutator instanceof ChunkFileWriter) {
      await mutator.abortWith(new GfsError('NO_SUCH_CHUNK', `chunk ${handle} was deleted`));
    }
    const state = this.chunks.get(handle);
    if (!state) return;
    this.claim(handle, 'delete');
    try {
      this.forget(handle);
      await this.removeChunkFiles(handle);
      await this.indexDel(handle);
    } catch (e) {
      throw toStoreError(e, `chunk ${handle}: delete`);
    } finally {
      this.unclaim(handle);
    }
  }

  /**
   * Copies a whole chunk in from another replica: written beside the final names,
   * fsynced, then renamed, so a crash leaves either the whole chunk or temporary files
   * that the next open removes. Replaces a local copy of an older version.
   */
  async importChunk(handle: number, version: number, source: AsyncIterable<Buffer>,
    expectedLength: number): Promise<ChunkMeta> {
    this.checkOpen();
    checkHandle(handle);
    checkVersion(version);
    if (!Number.isSafeInteger(expectedLength) || expectedLength < 0) {
      throw new GfsError('INVALID_ARGUMENT', `chunk ${handle}: bad expected length ${expectedLength}`);
    }
    if (expectedLength > limits.chunkBytesMax) {
      throw new GfsError('TOO_LARGE', `chunk ${handle}: ${expectedLength} bytes exceeds ${limits.chunkBytesMax}`);
    }
    const existing = this.chunks.get(handle);
    if (existing && existing.version >= version) {
      throw new GfsError('ALREADY_EXISTS', `chunk ${handle} is already here at version ${existing.version}`,
        { detail: { handle: String(handle), version: String(existing.version) } });
    }
    this.claim(handle, 'import');
    const paths = chunkPaths(this.dataDir, handle);
    try {
      await this.ensureShardDir(paths.shardDir);
      const summer = new BlockSummer();
      const chkFile = await fs.open(paths.chkTmp, 'w');
      // Writes overlap with receiving the next pieces, and the data is flushed as it
      // arrives, so the final fsync has little left to do (it was a third of a clone).
      const inflight = new Set<Promise<void>>();
      let flushing: Promise<void> | undefined;
      let flushedUpTo = 0;
      const track = (p: Promise<void>) => {
        const tracked = p.finally(() => inflight.delete(tracked));
        tracked.catch(() => undefined); // awaited below
        inflight.add(tracked);
      };
      try {
        for await (const piece of source) {
          if (summer.length + piece.length > expectedLength) {
            throw new GfsError('INVALID_ARGUMENT', `chunk ${handle}: source is longer than ${expectedLength} bytes`);
          }
          track(writeFully(chkFile, [piece], summer.length).then(() => undefined));
          summer.update(piece);
          if (inflight.size >= importWritesInFlightMax) await Promise.race(inflight);
          if (!flushing && summer.length - flushedUpTo >= importFlushEveryBytes) {
            const upTo = summer.length;
            flushing = Promise.all([...inflight]).then(() => chkFile.datasync()).then(() => { flushedUpTo = upTo; flushing = undefined; });
            track(flushing);
          }
        }
        await Promise.all([...inflight]);
        if (summer.length !== expectedLength) {
          throw new GfsError('INVALID_ARGUMENT',
            `chunk ${handle}: source ended after ${summer.length} of ${expectedLength} bytes`);
        }
        await chkFile.sync();
      } finally {
        await Promise.allSettled([...inflight]);
        await chkFile.close();
      }
      const header: ChunkHeader = { handle, seq: 1, chunkVersion: version, durableLength: expectedLength, tailSum: summer.tailSum() };
      const sumBytes = Buffer.alloc(sumFileBytes(expectedLength));
      encodeHeader(header).copy(sumBytes, headerSlotOffset(header.seq));
      encodeBlockSums(summer.takeBlockSums()).copy(sumBytes, blockSumsOffsetBytes);
      const sumFile = await fs.open(paths.sumTmp, 'w');
      try {
        await writeFully(sumFile, [sumBytes], 0);
        await sumFile.sync();
      } finally {
        await sumFile.close();
      }
      await failpoint('chunk.afterWriteBeforeRename');
      if (existing) {
        // The stale copy's .sum goes first, durably: a new .chk must never meet an old .sum.
        this.forget(handle);
        await unlinkIfExists(paths.rid);
        await unlinkIfExists(paths.sum);
        await fsyncDir(paths.shardDir);
        await this.indexDel(handle);
      }
      // .chk first: a crash between the renames leaves a .chk without a .sum, which
      // open removes, like the leftover .sum.tmp.
      await fs.rename(paths.chkTmp, paths.chk);
      await fs.rename(paths.sumTmp, paths.sum);
      await fsyncDir(paths.shardDir);
      const state: ChunkState = {
        handle, version, durableLength: expectedLength, tier: this.tier, mtimeMs: this.nowMs(),
        seq: header.seq, tailSum: header.tailSum,
      };
      this.chunks.set(handle, state);
      await this.recordDurable(state);
      return toMeta(state);
    } catch (e) {
      await Promise.allSettled([unlinkIfExists(paths.chkTmp), unlinkIfExists(paths.sumTmp)]);
      throw toStoreError(e, `chunk ${handle}: import`);
    } finally {
      this.unclaim(handle);
    }
  }

  /** Aborts open writers (their unsynced bytes are dropped) and closes the index. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const writers = [...this.mutators.values()].filter((m): m is ChunkFileWriter => m instanceof ChunkFileWriter);
    await Promise.allSettled(writers.map((w) => w.abortWith(new GfsError('UNAVAILABLE', 'chunk store is closing'))));
    await this.dirSyncer.close();
    await this.index.close();
  }

  // ---- reading ----

  private async *readVerified(state: ChunkState, durableLength: number, tailSum: bigint,
    start: number, end: number, pool?: BufferPool): AsyncGenerator<ReadPiece> {
    assert(start < end && end <= durableLength);
    const handle = state.handle;
    const paths = chunkPaths(this.dataDir, handle);
    let chkFile: FileHandle | undefined;
    let sumFile: FileHandle | undefined;
    try {
      try {
        chkFile = await fs.open(paths.chk, 'r');
        sumFile = await fs.open(paths.sum, 'r');
      } catch (e) {
        if (errnoCode(e) !== 'ENOENT') throw toStoreError(e, `chunk ${handle}: open for read`);
        // Deleted while we started, or the file vanished under a live chunk.
        if (this.chunks.get(handle) !== state) throw noSuchChunk(handle);
        throw this.corruptError(handle, 'a chunk file is missing');
      }
      const firstBlock = Math.floor(start / blockBytes);
      const endBlock = Math.ceil(end / blockBytes); // exclusive
      const fullBlocks = fullBlockCount(durableLength);
      // All the full-block sums this read needs, in one read (8 bytes per 64 KiB).
      const blockSums = Buffer.allocUnsafe(Math.max(0, Math.min(endBlock, fullBlocks) - firstBlock) * 8);
      if (await readFully(sumFile, blockSums, blockSumOffset(firstBlock)) !== blockSums.length) {
        throw this.corruptError(handle, 'the .sum file is shorter than its header says');
      }
      const pieceBytes = limits.readPieceBytes;
      const file = chkFile;
      const readPiece = (pieceStart: number) => {
        // Whole blocks only, from the first block the range touches to the last.
        const readStart = Math.max(pieceStart, firstBlock * blockBytes);
        const readEnd = Math.min(pieceStart + pieceBytes, endBlock * blockBytes, durableLength);
        const pooled = pool !== undefined && readEnd - readStart <= pool.bufferBytes;
        const base = pooled ? pool.get() : Buffer.allocUnsafe(readEnd - readStart);
        const release = pooled ? once(() => pool.put(base)) : noRelease;
        const bytes = base.subarray(0, readEnd - readStart);
        const done = readFully(file, bytes, readStart).then(
          (got) => ({ bytes, release, readStart, readEnd, got }),
          (e: unknown) => { release(); throw e; },
        );
        done.catch(() => undefined); // awaited below, or dropped if the consumer stops early
        return done;
      };
      let pieceStart = Math.floor(start / pieceBytes) * pieceBytes;
      let next: ReturnType<typeof readPiece> | undefined = readPiece(pieceStart);
      try {
        while (next) {
          const { bytes, release, readStart, readEnd, got } = await next;
          pieceStart += pieceBytes;
          // Read ahead one piece, so the disk works while this one is verified and consumed.
          next = pieceStart < end ? readPiece(pieceStart) : undefined;
          try {
            if (got !== bytes.length) throw this.corruptError(handle, `the .chk file ends before ${readEnd}`);
            for (let blockStart = readStart; blockStart < readEnd; blockStart += blockBytes) {
              const blockIndex = blockStart / blockBytes;
              const block = bytes.subarray(blockStart - readStart, Math.min(blockStart + blockBytes, readEnd) - readStart);
              const expectedSum = blockIndex < fullBlocks ? blockSums.readBigUInt64LE((blockIndex - firstBlock) * 8) : tailSum;
              if (xxh64(block) !== expectedSum) {
                throw this.corruptError(handle, `block ${blockIndex} (offset ${blockStart}) does not match its sum`);
              }
            }
          } catch (e) {
            release();
            throw e;
          }
          // Every block of `bytes` verified: only now may any of it leave.
          yield { bytes: bytes.subarray(Math.max(start, readStart) - readStart, Math.min(end, readEnd) - readStart), release };
        }
      } finally {
        // The consumer stopped early or a piece failed: the read-ahead piece goes back too.
        if (next) void next.then((p) => p.release(), () => undefined);
      }
    } finally {
      await Promise.allSettled([chkFile?.close(), sumFile?.close()]);
    }
  }

  private async verifyHeader(state: ChunkState): Promise<void> {
    const prefix = await readFilePrefix(chunkPaths(this.dataDir, state.handle).sum, blockSumsOffsetBytes);
    const header = decodeHeaderSlot(prefix, state.seq % headerSlotCount, state.handle);
    if (!header || header.seq !== state.seq || header.chunkVersion !== state.version ||
      header.durableLength !== state.durableLength || header.tailSum !== state.tailSum) {
      throw this.corruptError(state.handle, `header ${state.seq} on disk is damaged`);
    }
  }

  private corruptError(handle: number, why: string): GfsError {
    this.markCorrupt(handle, why);
    return new GfsError('CORRUPT', `chunk ${handle} is corrupt: ${why}`, { detail: { handle: String(handle) } });
  }

  private markCorrupt(handle: number, why: string): void {
    if (!this.corrupt.has(handle)) this.log.error({ handle, why }, 'chunk is corrupt');
    this.corrupt.add(handle);
    this.corruptUnreported.add(handle);
  }

  // ---- recovery ----

  private async recover(): Promise<void> {
    const chunksDir = path.join(this.dataDir, chunksDirName);
    const dirsToSync = new Set<string>();
    const found = new Map<number, { chk: boolean; sum: boolean; rid: boolean }>();
    for (const shard of await fs.readdir(chunksDir)) {
      const shardDir = path.join(chunksDir, shard);
      if (!/^[0-9a-f]{2}$/.test(shard)) {
        this.log.warn({ path: shardDir }, 'unexpected entry in the chunks directory; left alone');
        continue;
      }
      this.shardDirs.add(shardDir);
      for (const name of await fs.readdir(shardDir)) {
        const file = path.join(shardDir, name);
        if (name.endsWith(tmpSuffix)) {
          // An import that did not reach its rename: never acknowledged.
          this.log.info({ path: file }, 'removing temporary file left by an interrupted import');
          await unlinkIfExists(file);
          dirsToSync.add(shardDir);
          continue;
        }
        const parsed = parseChunkFileName(name);
        if (!parsed || shardName(parsed.handle) !== shard) {
          this.log.warn({ path: file }, 'unexpected file in a chunk directory; left alone');
          continue;
        }
        const files = found.get(parsed.handle) ?? { chk: false, sum: false, rid: false };
        files[parsed.kind] = true;
        found.set(parsed.handle, files);
      }
    }

    const handles = [...found.keys()];
    for (let i = 0; i < handles.length; i += recoveryConcurrency) {
      await Promise.all(handles.slice(i, i + recoveryConcurrency).map(async (handle) => {
        const state = await this.recoverChunk(handle, found.get(handle)!, dirsToSync);
        if (state) this.chunks.set(handle, state);
      }));
    }
    await Promise.all([...dirsToSync].map((dir) => fsyncDir(dir)));
    await this.reconcileIndex();
  }

  /** Brings one chunk's files back to its newest valid header; undefined if the chunk is dropped. */
  private async recoverChunk(handle: number, files: { chk: boolean; sum: boolean; rid: boolean },
    dirsToSync: Set<string>): Promise<ChunkState | undefined> {
    const paths = chunkPaths(this.dataDir, handle);
    const drop = async (why: string, level: 'warn' | 'error' = 'warn'): Promise<undefined> => {
      this.log[level]({ handle, why }, 'removing chunk at start-up');
      // .sum first, like delete: a lone .chk is dropped on the next open too.
      await unlinkIfExists(paths.rid);
      await unlinkIfExists(paths.sum);
      await unlinkIfExists(paths.chk);
      dirsToSync.add(paths.shardDir);
      return undefined;
    };
    if (!files.sum) return drop('no .sum file: the chunk never had a durable header');
    const prefix = await readFilePrefix(paths.sum, blockSumsOffsetBytes);
    const header = newestHeader(prefix, handle);
    if (!header) return drop('no valid header: the chunk never acknowledged a byte');
    if (!files.chk) return drop('the .chk file is missing', 'error');
    for (let slot = 0; slot < headerSlotCount; slot++) {
      const slotBytes = prefix.subarray(slot * headerSlotStrideBytes, slot * headerSlotStrideBytes + headerBytes);
      if (!decodeHeaderSlot(prefix, slot, handle) && slotBytes.some((b) => b !== 0)) {
        this.log.warn({ handle, slot, seq: header.seq }, 'a header slot is damaged (torn write?); using the other one');
      }
    }

    const [chkStat, sumStat] = await Promise.all([fs.stat(paths.chk), fs.stat(paths.sum)]);
    const problems: string[] = [];
    if (chkStat.size > header.durableLength) {
      this.log.info({ handle, fileBytes: chkStat.size, durableLength: header.durableLength },
        'cutting unacknowledged bytes past the durable length');
      await fs.truncate(paths.chk, header.durableLength);
    } else if (chkStat.size < header.durableLength) {
      problems.push(`.chk holds ${chkStat.size} of ${header.durableLength} durable bytes`);
    }
    const sumBytes = sumFileBytes(header.durableLength);
    if (sumStat.size > sumBytes) {
      await fs.truncate(paths.sum, sumBytes);
    } else if (sumStat.size < sumBytes) {
      problems.push(`.sum holds ${sumStat.size} of ${sumBytes} bytes`);
    }
    if (problems.length > 0) this.markCorrupt(handle, problems.join('; '));
    // Record ids of appends past the durable length were never acknowledged.
    if (files.rid) await cutSidecar(paths.rid, Math.min(header.durableLength, chkStat.size));
    return {
      handle,
      version: header.chunkVersion,
      durableLength: header.durableLength,
      tier: this.tier,
      mtimeMs: sumStat.mtimeMs,
      seq: header.seq,
      tailSum: header.tailSum,
    };
  }

  /** Makes the index agree with the recovered chunks, keeping tier and mtime where it still matches. */
  private async reconcileIndex(): Promise<void> {
    const ops: Array<{ type: 'put'; key: string; value: IndexEntry } | { type: 'del'; key: string }> = [];
    const indexed = new Set<number>();
    for await (const [key, entry] of this.index.iterator()) {
      const handle = /^[0-9a-f]{16}$/.test(key) ? Number.parseInt(key, 16) : NaN;
      const state = this.chunks.get(handle);
      if (!state) {
        ops.push({ type: 'del', key });
        continue;
      }
      indexed.add(handle);
      if (typeof entry?.tier === 'string') state.tier = entry.tier;
      if (entry?.version === state.version && entry.length === state.durableLength && typeof entry.mtimeMs === 'number') {
        state.mtimeMs = entry.mtimeMs;
      } else {
        ops.push({ type: 'put', key, value: indexEntry(state) });
      }
    }
    for (const state of this.chunks.values()) {
      if (!indexed.has(state.handle)) ops.push({ type: 'put', key: handleName(state.handle), value: indexEntry(state) });
    }
    if (ops.length > 0) await this.index.batch(ops);
    this.log.info({ chunks: this.chunks.size, indexFixes: ops.length, corrupt: this.corrupt.size }, 'chunk store open');
  }

  // ---- helpers ----

  /** Persists a chunk's new durable state in the index. The files already are the truth, so a failure only logs. */
  private async recordDurable(state: ChunkState): Promise<void> {
    state.mtimeMs = this.nowMs();
    try {
      await this.index.put(handleName(state.handle), indexEntry(state));
    } catch (e) {
      this.log.error({ err: e, handle: state.handle }, 'could not update the chunk index; the next open rebuilds it');
    }
  }

  private async indexDel(handle: number): Promise<void> {
    try {
      await this.index.del(handleName(handle));
    } catch (e) {
      this.log.error({ err: e, handle }, 'could not update the chunk index; the next open rebuilds it');
    }
  }

  private forget(handle: number): void {
    this.chunks.delete(handle);
    this.corrupt.delete(handle);
    this.corruptUnreported.delete(handle);
  }

  private async removeChunkFiles(handle: number): Promise<void> {
    const paths = chunkPaths(this.dataDir, handle);
    // .sum first: a crash in between leaves a headerless .chk, which open removes.
    await unlinkIfExists(paths.rid);
    await unlinkIfExists(paths.sum);
    await unlinkIfExists(paths.chk);
    await fsyncDir(paths.shardDir);
  }

  /**
   * Creates all 256 shard directories up front with one fsync of their parent, so a
   * chunk's creation never pays for a directory of its own on the write path.
   */
  private async prepareShardDirs(chunksDir: string): Promise<void> {
    await fs.mkdir(chunksDir, { recursive: true });
    await Promise.all(Array.from({ length: 256 }, (_, i) => fs.mkdir(path.join(chunksDir, i.toString(16).padStart(2, '0'))).catch((e) => {
      if (errnoCode(e) !== 'EEXIST') throw e;
    })));
    await fsyncDir(chunksDir);
    for (let i = 0; i < 256; i++) this.shardDirs.add(path.join(chunksDir, i.toString(16).padStart(2, '0')));
  }

  private async ensureShardDir(shardDir: string): Promise<void> {
    if (this.shardDirs.has(shardDir)) return;
    try {
      await fs.mkdir(shardDir);
    } catch (e) {
      if (errnoCode(e) !== 'EEXIST') throw e;
    }
    await fsyncDir(path.dirname(shardDir));
    this.shardDirs.add(shardDir);
  }

  /** Ends a mutation of the chunk and wakes whoever waits for it to be free. */
  private unclaim(handle: number): void {
    this.mutators.delete(handle);
    const waiters = this.idleWaiters.get(handle);
    if (!waiters) return;
    this.idleWaiters.delete(handle);
    for (const wake of waiters) wake();
  }

  /**
   * Resolves once the chunk has no mutator (a writer closing, an fsync in hand, an
   * import), or after `timeoutMs`; a mutation started after that is not waited for.
   */
  whenIdle(handle: number, timeoutMs: number): Promise<void> {
    if (!this.mutators.has(handle) || timeoutMs <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = this.clock.after(timeoutMs, resolve);
      const list = this.idleWaiters.get(handle) ?? [];
      list.push(() => { timer.cancel(); resolve(); });
      this.idleWaiters.set(handle, list);
    });
  }

  private claim(handle: number, mutator: Mutator): void {
    const current = this.mutators.get(handle);
    if (current !== undefined) {
      const what = current instanceof ChunkFileWriter || current === 'opening' ? 'an open writer' : `a running ${current}`;
      throw new GfsError('FILE_NOT_WRITABLE', `chunk ${handle} is busy with ${what}`, { detail: { handle: String(handle) } });
    }
    this.mutators.set(handle, mutator);
  }

  private requireChunk(handle: number, version: number, opts: { orNewer?: boolean } = {}): ChunkState {
    const state = this.chunks.get(handle);
    if (!state) throw noSuchChunk(handle);
    if (opts.orNewer ? state.version < version : state.version !== version) {
      throw new GfsError('STALE_VERSION', `chunk ${handle} is at version ${state.version}, not ${version}`,
        { detail: { handle: String(handle), version: String(state.version) } });
    }
    return state;
  }

  private checkOpen(): void {
    if (this.closed) throw new GfsError('UNAVAILABLE', 'chunk store is closed');
  }
}

async function openIndex(location: string, log: Logger): Promise<Level<string, IndexEntry>> {
  const open = async () => {
    const db = new Level<string, IndexEntry>(location, { valueEncoding: 'json' });
    await db.open();
    return db;
  };
  try {
    return await open();
  } catch (e) {
    const causeCode = (e as { cause?: { code?: string } }).cause?.code;
    if (causeCode === 'LEVEL_LOCKED') {
      throw new GfsError('UNAVAILABLE', `chunk index ${location} is in use by another process`, { cause: e });
    }
    // The index only caches what the files say: rebuild it rather than refuse to start.
    log.warn({ err: e, location }, 'chunk index cannot be opened; rebuilding it from the chunk files');
    await fs.rm(location, { recursive: true, force: true });
    return open();
  }
}

async function readFilePrefix(file: string, bytes: number): Promise<Buffer> {
  const handle = await fs.open(file, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    const got = await readFully(handle, buf, 0);
    return buf.subarray(0, got);
  } finally {
    await handle.close();
  }
}

function toMeta(state: ChunkState): ChunkMeta {
  return {
    handle: state.handle, version: state.version, length: state.durableLength, tier: state.tier, mtimeMs: state.mtimeMs,
  };
}

function indexEntry(state: ChunkState): IndexEntry {
  return { version: state.version, length: state.durableLength, tier: state.tier, mtimeMs: state.mtimeMs };
}

function noSuchChunk(handle: number): GfsError {
  return new GfsError('NO_SUCH_CHUNK', `no chunk ${handle} here`, { detail: { handle: String(handle) } });
}

function checkHandle(handle: number): void {
  if (!Number.isSafeInteger(handle) || handle < 0) throw new GfsError('INVALID_ARGUMENT', `bad chunk handle ${handle}`);
}

/** A verified piece of a chunk; release() once its bytes are no longer needed (pooled reads). */
export interface ReadPiece {
  bytes: Buffer;
  release(): void;
}

const noRelease = (): void => undefined;

function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    fn();
  };
}

const { importWritesInFlightMax, importFlushEveryBytes } = limits;

function checkVersion(version: number): void {
  if (!Number.isSafeInteger(version) || version < 0) throw new GfsError('INVALID_ARGUMENT', `bad chunk version ${version}`);
}
