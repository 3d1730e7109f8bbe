/**
 * Appending to one chunk in place and making it durable (FORMAT.md, "Sync").
 *
 * Invariants:
 * - Bytes are only ever written at or past the durable length, so a durable byte is
 *   never rewritten and its block sum, once durable, stays valid.
 * - The durable length only grows for a given version: a sync publishes a header with
 *   a larger-or-equal length, and only after the data and sums it covers are fsynced.
 * - Sums on disk always cover exactly the durable length: full-block sums live in the
 *   sum region and the sum of the trailing partial block in the header itself, so
 *   extending a partial block never rewrites a sum that a durable header refers to.
 * - A writer that failed (checksum mismatch, write error, abort) is poisoned: it
 *   accepts nothing more and its unsynced bytes never become durable.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { xxh64 } from '../common/checksum';
import { GfsError } from '../common/errors';
import { failpoint } from '../common/failpoints';
import { limits } from '../common/limits';
import type { Logger } from '../common/log';
import { BlockSummer, forEachPiece } from './block-summer';
import {
  blockBytes, blockSumOffset, blockSumsOffsetBytes, encodeBlockSums, encodeHeader, fullBlockCount, headerSlotOffset, sumFileBytes,
  type ChunkHeader, type ChunkPaths,
} from './chunk-format';
import { readFully, toStoreError, unlinkIfExists, writeBuffersMax, writeFully } from './file-io';

/** Write-behind: see limits.writeBehindFlushBytes. */
export const writeBehindFlushBytes = limits.writeBehindFlushBytes;

export interface ChunkWriter {
  readonly handle: number;
  /** Bytes accepted so far (may exceed the durable length). */
  readonly length: number;
  readonly durableLength: number;
  /**
   * Appends at the end and queues the disk write at once; never waits. The store keeps
   * a reference to `data` until it is written, so the caller must not reuse it.
   *
   * `pieceSums`, when given, holds one xxh64 per piece of `data` split at the chunk's
   * 64 KiB block boundaries (the first piece is short when the chunk ends mid-block).
   * A mismatch throws CHECKSUM_MISMATCH and poisons the writer.
   *
   * `onReleased`, when given, is called exactly once when the writer holds no more
   * reference to `data` (written to the file, or dropped): the caller may reuse the
   * buffer from then on (the data plane recycles frame buffers this way). It is not
   * called when append throws.
   */
  append(data: Buffer, pieceSums?: readonly bigint[], onReleased?: () => void): void;
  /** Makes everything appended so far durable; resolves to the new durable length. */
  sync(): Promise<number>;
  /**
   * Work every later sync does with its data fsync, before it writes the header that
   * makes the new length durable (an append chunk's record-id sidecar, FORMAT.md).
   */
  setBeforeHeader(fn: () => Promise<void>): void;
  /** Releases the writer. Does not sync: bytes appended since the last sync are dropped. */
  close(): Promise<void>;
  /** Like close, but also fails any append or sync still to come. */
  abort(): Promise<void>;
}

/** The store's in-memory record of one chunk; the writer updates it when a sync completes. */
export interface ChunkState {
  handle: number;
  version: number;
  /** Bytes covered by the newest durable header. */
  durableLength: number;
  tier: string;
  mtimeMs: number;
  /** Seq of the newest durable header; 0 while the chunk has none (created, never synced). */
  seq: number;
  /** The newest durable header's tail sum (xxh64 of the trailing partial block). */
  tailSum: bigint;
}

/** What a writer needs from its store. */
export interface WriterHost {
  readonly log: Logger;
  /** Called after each sync that moved the header; records the new state in the index. */
  onDurable(state: ChunkState): Promise<void>;
  markCorrupt(handle: number, why: string): void;
  /** Makes the entries of `dir` durable (grouped with other writers' syncs of it). */
  syncDir(dir: string): Promise<void>;
  /** The writer is gone: the chunk may be written again. */
  releaseWriter(writer: ChunkFileWriter): void;
}

export class ChunkFileWriter implements ChunkWriter {
  readonly handle: number;
  private readonly version: number;

  /** Sums of the bytes accepted so far: their count is the writer's length. */
  private readonly summer: BlockSummer;

  /** Buffers appended but not yet handed to the kernel, in chunk order. */
  private readonly writeQueue: Buffer[] = [];
  /** Parallel to writeQueue: who to tell when the writer lets go of each buffer. */
  private readonly releaseQueue: ((() => void) | undefined)[] = [];
  /** Chunk offset where the next queued buffer goes. */
  private writeOffset: number;
  private writing: Promise<void> | null = null;
  /** Bytes written since the last write-behind flush started. */
  private bytesSinceFlush = 0;
  private flushing: Promise<void> | null = null;

  /** Set once the writer failed; every later call throws it. */
  private failure: GfsError | undefined;
  private closed = false;
  private releasing: Promise<void> | undefined;
  private syncChain: Promise<unknown> = Promise.resolve();
  /** A new chunk's directory entries must be fsynced with its first sync. */
  private needsDirSync: boolean;
  private beforeHeader: (() => Promise<void>) | undefined;

  private constructor(
    private readonly host: WriterHost,
    private readonly state: ChunkState,
    private readonly paths: ChunkPaths,
    private readonly chkFile: FileHandle,
    private readonly sumFile: FileHandle,
    tailBlockBytes: Buffer,
    isNew: boolean,
  ) {
    this.handle = state.handle;
    this.version = state.version;
    this.summer = new BlockSummer(state.durableLength, tailBlockBytes);
    this.writeOffset = state.durableLength;
    // A chunk that never had a header may have directory entries that were never fsynced.
    this.needsDirSync = isNew || state.seq === 0;
  }

  /** Creates the files of a new chunk (no header yet: a crash before the first sync removes it). */
  static async create(host: WriterHost, state: ChunkState, paths: ChunkPaths): Promise<ChunkFileWriter> {
    assert.equal(state.durableLength, 0);
    const chkFile = await fs.open(paths.chk, 'wx');
    let sumFile: FileHandle | undefined;
    try {
      sumFile = await fs.open(paths.sum, 'wx');
      // Reserve the header region (sparse: no blocks allocated) so that a .sum file is
      // never shorter than FORMAT.md says; with both slots zero it has no header yet.
      await sumFile.truncate(blockSumsOffsetBytes);
      return new ChunkFileWriter(host, state, paths, chkFile, sumFile, Buffer.alloc(0), true);
    } catch (e) {
      await Promise.allSettled([chkFile.close(), sumFile?.close()]);
      await Promise.allSettled([unlinkIfExists(paths.chk), sumFile ? unlinkIfExists(paths.sum) : undefined]);
      throw e;
    }
  }

  /**
   * Opens an existing chunk for appending. The trailing partial block is read back and
   * checked against the header's tail sum: its sum is extended from those bytes, so a
   * corrupt tail must not be blessed with a fresh sum.
   */
  static async openExisting(host: WriterHost, state: ChunkState, paths: ChunkPaths): Promise<ChunkFileWriter> {
    const chkFile = await fs.open(paths.chk, 'r+');
    let sumFile: FileHandle | undefined;
    try {
      sumFile = await fs.open(paths.sum, 'r+');
      // Bytes past the durable length were never acknowledged (an earlier writer that
      // was closed without sync and could not truncate); drop them before appending.
      if ((await chkFile.stat()).size > state.durableLength) await chkFile.truncate(state.durableLength);
      const tailBlockBytes = Buffer.alloc(state.durableLength % blockBytes);
      if (tailBlockBytes.length > 0) {
        const tailStart = state.durableLength - tailBlockBytes.length;
        const got = await readFully(chkFile, tailBlockBytes, tailStart);
        if (got !== tailBlockBytes.length || xxh64(tailBlockBytes) !== state.tailSum) {
          const why = `trailing block at offset ${tailStart} does not match its sum`;
          host.markCorrupt(state.handle, why);
          throw new GfsError('CORRUPT', `chunk ${state.handle}: ${why}`, { detail: { handle: String(state.handle) } });
        }
      }
      return new ChunkFileWriter(host, state, paths, chkFile, sumFile, tailBlockBytes, false);
    } catch (e) {
      await Promise.allSettled([chkFile.close(), sumFile?.close()]);
      throw e;
    }
  }

  get length(): number {
    return this.summer.length;
  }

  get durableLength(): number {
    return this.state.durableLength;
  }

  append(data: Buffer, pieceSums?: readonly bigint[], onReleased?: () => void): void {
    this.throwIfUnusable();
    if (this.summer.length + data.length > limits.chunkBytesMax) {
      throw new GfsError('TOO_LARGE',
        `chunk ${this.handle}: appending ${data.length} bytes at ${this.summer.length} exceeds ${limits.chunkBytesMax}`);
    }
    // Verify everything before changing any state, so a bad frame leaves no trace.
    const verifiedBlockSums = pieceSums === undefined ? undefined : this.verifyPieces(data, pieceSums);
    this.summer.update(data, verifiedBlockSums);
    if (data.length > 0) {
      this.writeQueue.push(data);
      this.releaseQueue.push(onReleased);
      this.startWrites();
    } else {
      onReleased?.();
    }
  }

  /**
   * Checks each piece (data split at the chunk's block boundaries) against its sum.
   * Returns, per piece, the sum when the piece is one aligned full block (it is then
   * also that block's sum) and undefined otherwise.
   */
  private verifyPieces(data: Buffer, pieceSums: readonly bigint[]): (bigint | undefined)[] {
    const chunkOffset = this.summer.length;
    const blockSums: (bigint | undefined)[] = [];
    const pieces = forEachPiece(chunkOffset, data.length, (dataOffset, pieceBytes, alignedFullBlock) => {
      const piece = blockSums.length;
      const sum = xxh64(data.subarray(dataOffset, dataOffset + pieceBytes));
      if (piece >= pieceSums.length || sum !== pieceSums[piece]) {
        throw this.poison(new GfsError('CHECKSUM_MISMATCH',
          `chunk ${this.handle}: piece ${piece} (${pieceBytes} bytes at chunk offset ${chunkOffset + dataOffset}) ` +
          'does not match its checksum',
          { detail: { handle: String(this.handle), offset: String(chunkOffset + dataOffset) } }));
      }
      blockSums.push(alignedFullBlock ? sum : undefined);
    });
    if (pieces !== pieceSums.length) {
      throw this.poison(new GfsError('CHECKSUM_MISMATCH',
        `chunk ${this.handle}: ${pieceSums.length} piece checksums for ${pieces} pieces`,
        { detail: { handle: String(this.handle) } }));
    }
    return blockSums;
  }

  /** Hands queued buffers to the kernel in order, coalescing whatever queued up meanwhile into one pwritev. */
  private startWrites(): void {
    if (this.writing || this.failure || this.writeQueue.length === 0) return;
    this.writing = this.writeQueued().finally(() => {
      this.writing = null;
      this.startWrites(); // appends that arrived as the loop was finishing
    });
  }

  private async writeQueued(): Promise<void> {
    try {
      while (this.writeQueue.length > 0 && !this.failure) {
        const batch = this.writeQueue.splice(0, writeBuffersMax);
        const released = this.releaseQueue.splice(0, batch.length);
        let written: number;
        try {
          written = await writeFully(this.chkFile, batch, this.writeOffset);
        } finally {
          // Settled either way: the kernel no longer reads these buffers.
          for (const r of released) r?.();
        }
        this.writeOffset += written;
        this.bytesSinceFlush += written;
        if (this.bytesSinceFlush >= writeBehindFlushBytes && !this.flushing) this.startFlush();
      }
    } catch (e) {
      this.poison(toStoreError(e, `chunk ${this.handle}: write`));
    }
  }

  private startFlush(): void {
    this.bytesSinceFlush = 0;
    this.flushing = this.chkFile.datasync()
      // A failed fsync may have dropped dirty pages: nothing written since can be trusted.
      .catch((e) => { this.poison(toStoreError(e, `chunk ${this.handle}: write-behind flush`)); })
      .finally(() => { this.flushing = null; });
  }

  /** Resolves once every queued buffer is written; throws the writer's failure if there is one. */
  private async drainWrites(): Promise<void> {
    for (;;) {
      if (this.failure) throw this.failure;
      if (this.writing) {
        await this.writing;
      } else if (this.writeQueue.length > 0) {
        this.startWrites();
      } else {
        return;
      }
    }
  }

  setBeforeHeader(fn: () => Promise<void>): void {
    this.beforeHeader = fn;
  }

  sync(): Promise<number> {
    const run = this.syncChain.then(() => this.syncNow());
    this.syncChain = run.catch(() => undefined);
    return run;
  }

  private async syncNow(): Promise<number> {
    this.throwIfUnusable();
    const state = this.state;
    assert.equal(state.version, this.version, 'the version cannot change under an open writer');
    const targetLength = this.summer.length;
    if (targetLength === state.durableLength && state.seq > 0) {
      await this.beforeHeader?.();
      return targetLength;
    }

    // Snapshot synchronously: appends may continue while this sync waits on the disk.
    const firstNewBlock = fullBlockCount(state.durableLength);
    const newBlockSums = this.summer.takeBlockSums();
    assert.equal(firstNewBlock + newBlockSums.length, fullBlockCount(targetLength), 'one sum per full block');
    const header: ChunkHeader = {
      handle: this.handle,
      seq: state.seq + 1,
      chunkVersion: this.version,
      durableLength: targetLength,
      tailSum: this.summer.tailSum(),
    };
    assert(header.durableLength >= state.durableLength, 'the durable length only grows for a given version');

    try {
      await this.drainWrites();
      if (newBlockSums.length > 0) {
        await writeFully(this.sumFile, [encodeBlockSums(newBlockSums)], blockSumOffset(firstNewBlock));
      }
      // A write-behind flush that failed poisons the writer, and a later fsync may then
      // wrongly succeed (the dirty pages are gone): wait for it and check.
      while (this.flushing) await this.flushing;
      if (this.failure) throw this.failure;
      await Promise.all([
        this.chkFile.datasync(),
        this.sumFile.datasync(),
        this.needsDirSync ? this.host.syncDir(this.paths.shardDir) : undefined,
        this.beforeHeader?.(),
      ]);
      await failpoint('chunk.afterDataBeforeHeader');
      // The header is what makes the new length durable: written last, to the slot not
      // holding the current header, so a torn write leaves the current one intact.
      await writeFully(this.sumFile, [encodeHeader(header)], headerSlotOffset(header.seq));
      await this.sumFile.datasync();
    } catch (e) {
      throw this.poison(toStoreError(e, `chunk ${this.handle}: sync`));
    }
    this.needsDirSync = false;
    state.seq = header.seq;
    state.durableLength = header.durableLength;
    state.tailSum = header.tailSum;
    await this.host.onDurable(state);
    return header.durableLength;
  }

  close(): Promise<void> {
    this.releasing ??= this.release();
    return this.releasing;
  }

  abort(): Promise<void> {
    this.poison(new GfsError('FILE_NOT_WRITABLE', `chunk ${this.handle}: writer was aborted`));
    return this.close();
  }

  /** Used by the store when the chunk is deleted under an open writer. */
  abortWith(error: GfsError): Promise<void> {
    this.poison(error);
    return this.close();
  }

  private async release(): Promise<void> {
    this.closed = true;
    this.writeQueue.length = 0; // never synced, never acknowledged: not worth writing
    for (const r of this.releaseQueue.splice(0)) r?.();
    await this.syncChain;
    while (this.writing) await this.writing;
    while (this.flushing) await this.flushing;
    try {
      // Leave the files exactly as the durable header describes them, so the next
      // writer and the space accounting see no unacknowledged bytes.
      if (this.summer.length !== this.state.durableLength || this.failure) {
        await this.chkFile.truncate(this.state.durableLength);
        await this.sumFile.truncate(sumFileBytes(this.state.durableLength));
      }
    } catch (e) {
      // Harmless: start-up truncates past the durable length anyway.
      this.host.log.warn({ err: e, handle: this.handle }, 'could not truncate unsynced bytes of a closed chunk writer');
    } finally {
      await Promise.allSettled([this.chkFile.close(), this.sumFile.close()]);
      this.host.releaseWriter(this);
    }
  }

  private poison(error: GfsError): GfsError {
    this.failure ??= error;
    return error;
  }

  private throwIfUnusable(): void {
    if (this.failure) throw this.failure;
    if (this.closed) throw new GfsError('FILE_NOT_WRITABLE', `chunk ${this.handle}: writer is closed`);
  }
}
