/**
 * The master's write-ahead log: segments of checksummed records (segment.ts,
 * record.ts), written by one group-committing writer (group-commit.ts), with
 * checkpoints that let old segments go (checkpoint.ts), recovered at open
 * (recovery.ts). Format: FORMAT.md.
 *
 * Invariants (asserted below):
 * - indices are contiguous and grow by one, from 1; a checkpoint stands for every
 *   index at or below its own;
 * - epochs in the log never decrease;
 * - an append resolves only after fdatasync of its bytes (unless `sync: false`);
 * - a checkpoint file is either whole or absent;
 * - segments on disk always form one contiguous run of indices that starts at or
 *   below (newest valid checkpoint) + 1, so recovery never has to guess.
 *
 * Two layers of state. The *log* (lastIndex, epochs) changes synchronously in call
 * order: append, appendReplicated, truncateAfter and writeCheckpoint take effect in
 * the order they are called, and an index is assigned at the call. The *disk*
 * (segments, durable index, first index) is changed only by the writer, one step at a
 * time, in that same order.
 */
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { initChecksums } from '../common/checksum';
import { GfsError, isGfsError } from '../common/errors';
import { failpoint } from '../common/failpoints';
import { limits } from '../common/limits';
import { silentLogger, type Logger } from '../common/log';
import { checkpointFileName, readCheckpointFile, writeCheckpointFile, type Checkpoint } from './checkpoint';
import { ensureDir, fsyncDir, unlinkIfPresent, writeFully } from './durable-fs';
import type { EpochHistory } from './epoch-history';
import { GroupCommitQueue } from './group-commit';
import { encodedRecordBytes, encodeRecords, RECORD_BYTES_MAX, RECORD_TYPE_MAX, type WalRecord } from './record';
import { recover, type RecoveredState, type SegmentState } from './recovery';
import {
  installSegment, PREALLOCATED_SEGMENT_NAME, preallocateSegment, readSegmentRecords, SEGMENT_HEADER_BYTES, segmentFileName,
} from './segment';

export interface WalOptions {
  /** Directory of segments and checkpoints; created if missing. */
  dir: string;
  /** A segment rolls over once it has reached this size (so it ends up at most this plus one flush). */
  segmentBytes?: number;
  log?: Logger;
  /**
   * fdatasync before acknowledging (default). Off only for benchmarks and tests that do
   * not test durability; then `durableIndex` means written, not synced.
   */
  sync?: boolean;
}

export interface WalStats {
  /** Batches written: one write() and one fdatasync each. */
  flushes: number;
  recordsWritten: number;
  bytesWritten: number;
  segmentsCreated: number;
}

/** Checkpoints kept on disk; segments are kept back to the older one so it stays usable. */
export const CHECKPOINTS_KEPT = 2;

/** `detail.reason` of the error for reading records that only a checkpoint still holds. */
export const COMPACTED = 'compacted';

export function isCompactedError(e: unknown): e is GfsError {
  return isGfsError(e, 'INVALID_ARGUMENT') && e.detail.reason === COMPACTED;
}

function invalid(message: string): GfsError {
  return new GfsError('INVALID_ARGUMENT', message);
}

function isSafeCount(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

export class Wal {
  readonly dir: string;
  readonly stats: WalStats = { flushes: 0, recordsWritten: 0, bytesWritten: 0, segmentsCreated: 0 };

  private readonly segmentBytes: number;
  private readonly log: Logger;
  private readonly sync: boolean;
  private readonly writer: GroupCommitQueue<WalRecord>;

  // The log, changed in call order.
  private readonly epochs: EpochHistory;
  /** Highest checkpoint index written or being written: truncation stops there. */
  private checkpointFloor: number;

  // The disk, changed only by the writer.
  private readonly segments: SegmentState[];
  private active: FileHandle | undefined;
  private durable: number;
  private first: number;
  /** Checkpoint files on disk, newest first; the first one is verified. */
  private readonly checkpointIndexes: number[];
  /** Bumped by every truncation, so readers notice records vanishing under them. */
  private truncations = 0;

  /** The next segment, being zero-filled in the background once the active one is half full. */
  private preallocated: Promise<FileHandle> | undefined;
  private checkpointWrites: Promise<unknown> = Promise.resolve();
  private readonly checkpointsInFlight = new Set<Promise<unknown>>();
  private closing = false;

  private constructor(opts: Required<WalOptions>, state: RecoveredState, active: FileHandle | undefined) {
    this.dir = opts.dir;
    this.segmentBytes = opts.segmentBytes;
    this.log = opts.log;
    this.sync = opts.sync;
    this.segments = state.segments;
    this.epochs = state.epochs;
    this.checkpointIndexes = state.checkpointIndexes;
    this.checkpointFloor = state.checkpointIndexes[0] ?? 0;
    this.active = active;
    this.durable = state.epochs.lastIndex;
    this.first = this.segments[0]?.firstIndex ?? this.durable + 1;
    this.writer = new GroupCommitQueue((records) => this.flush(records));
  }

  /** Opens (recovering) or creates the log in `opts.dir`. */
  static async open(opts: WalOptions): Promise<Wal> {
    const full: Required<WalOptions> = {
      dir: path.resolve(opts.dir),
      segmentBytes: opts.segmentBytes ?? limits.walSegmentBytes,
      log: opts.log ?? silentLogger,
      sync: opts.sync ?? true,
    };
    if (!isSafeCount(full.segmentBytes) || full.segmentBytes <= SEGMENT_HEADER_BYTES) {
      throw invalid(`segmentBytes must be an integer above the ${SEGMENT_HEADER_BYTES}-byte segment header`);
    }
    await initChecksums();
    await ensureDir(full.dir);
    const state = await recover(full.dir, full.log);
    const last = state.segments.at(-1);
    const active = last ? await fsp.open(last.file, 'r+') : undefined;
    const wal = new Wal(full, state, active);
    full.log.info(
      { dir: full.dir, firstIndex: wal.firstIndex, lastIndex: wal.lastIndex, lastEpoch: wal.lastEpoch,
        checkpointIndex: state.checkpointIndexes[0] ?? null, segments: state.segments.length },
      'WAL opened',
    );
    return wal;
  }

  /** Lowest index still in segments, or the newest checkpoint's index + 1 when none is. */
  get firstIndex(): number {
    return this.first;
  }

  /** Highest index assigned (durable or not); 0 for an empty log. */
  get lastIndex(): number {
    return this.epochs.lastIndex;
  }

  /** Epoch of the record at lastIndex (0 for an empty log). */
  get lastEpoch(): number {
    return this.epochs.lastEpoch;
  }

  /** Highest index whose bytes are synced. */
  get durableIndex(): number {
    return this.durable;
  }

  /**
   * Epoch of the record at `index`, known from firstIndex - 1 (or the newest checkpoint)
   * up to lastIndex; index 0 has epoch 0. Replication matches logs by (index, epoch).
   */
  epochAt(index: number): number {
    if (index === 0) return 0;
    const epoch = this.epochs.epochAt(index);
    if (epoch === undefined) {
      if (index > this.lastIndex) throw invalid(`index ${index} is past the end of the log (${this.lastIndex})`);
      throw this.compacted(index);
    }
    return epoch;
  }

  /** The newest checkpoint, verified by its checksums, or null when there is none. */
  async loadCheckpoint(): Promise<Checkpoint | null> {
    this.throwIfUnusable();
    const index = this.checkpointIndexes[0];
    if (index === undefined) return null;
    return readCheckpointFile(path.join(this.dir, checkpointFileName(index)), index);
  }

  /**
   * Every durable record with index >= `index`, in order, as of the call: records
   * appended meanwhile are not included. Throws the compacted error (isCompactedError)
   * when `index` is below firstIndex, and UNAVAILABLE if a truncation overtakes the read.
   */
  async *readFrom(index: number): AsyncGenerator<WalRecord> {
    this.throwIfUnusable();
    if (!Number.isSafeInteger(index) || index < 1) throw invalid(`readFrom index must be a positive integer, got ${index}`);
    if (index < this.first) throw this.compacted(index);
    // Durable and not truncated since: the log may be logically shorter while a truncation waits its turn.
    const end = Math.min(this.durable, this.lastIndex);
    const generation = this.truncations;
    const segments = this.segments
      .filter((s) => s.lastIndex >= index && s.firstIndex <= end)
      .map((s) => ({ ...s }));
    for (const segment of segments) {
      try {
        for await (const { record } of readSegmentRecords(segment.file, SEGMENT_HEADER_BYTES, segment.bytes)) {
          if (this.truncations !== generation) {
            throw new GfsError('UNAVAILABLE', `the WAL was truncated while records from ${index} were being read; read again`);
          }
          if (record.index > end) return;
          if (record.index >= index) yield record;
        }
      } catch (e) {
        // Checkpoint pruning may delete a segment between the snapshot above and its open.
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw this.compacted(index);
        throw e;
      }
    }
  }

  /**
   * Appends one record at index lastIndex + 1 (assigned now, so call order is log
   * order) and resolves once it is durable. The payload is written when its batch is
   * flushed: do not change it until then.
   */
  append(epoch: number, type: number, payload: Uint8Array): Promise<WalRecord> {
    try {
      this.throwIfUnusable();
      const record: WalRecord = { epoch, index: this.lastIndex + 1, type, payload };
      this.checkRecord(record, this.lastEpoch);
      this.epochs.noteRecord(record.index, record.epoch);
      return this.writer.enqueueRecords([record]).then(() => record);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * For followers: appends records that carry the leader's indices and epochs. They
   * must continue the log exactly (first index = lastIndex + 1, then one by one) with
   * epochs that never decrease; otherwise nothing is appended and this rejects with
   * INVALID_ARGUMENT (or STALE_EPOCH). Resolves once all are durable.
   */
  appendReplicated(records: WalRecord[]): Promise<void> {
    try {
      this.throwIfUnusable();
      let expected = this.lastIndex + 1;
      let epoch = this.lastEpoch;
      for (const r of records) {
        if (r.index !== expected) {
          throw invalid(`replicated record has index ${r.index}, expected ${expected} (the log ends at ${this.lastIndex})`);
        }
        this.checkRecord(r, epoch);
        epoch = r.epoch;
        expected++;
      }
      if (records.length === 0) return Promise.resolve();
      for (const r of records) this.epochs.noteRecord(r.index, r.epoch);
      return this.writer.enqueueRecords(records);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Drops every record with index > `index`, durably (a follower removing entries that
   * conflict with the leader). Takes effect in call order: the next append gets
   * index + 1. Refused below the newest checkpoint, whose image already holds them.
   */
  truncateAfter(index: number): Promise<void> {
    try {
      this.throwIfUnusable();
      if (!isSafeCount(index)) throw invalid(`truncateAfter index must be a non-negative integer, got ${index}`);
      if (index < this.checkpointFloor) {
        throw invalid(`cannot truncate the WAL after ${index}: the checkpoint at ${this.checkpointFloor} covers it`);
      }
      if (index >= this.lastIndex) return Promise.resolve();
      this.epochs.truncateAfter(index);
      return this.writer.enqueueControl(() => this.truncateSegmentsAfter(index));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Writes a checkpoint atomically, keeps the newest CHECKPOINTS_KEPT, and deletes
   * segments whose records are all at or below the older kept checkpoint (so that
   * checkpoint plus segments still replays if the newest is ever found corrupt).
   * `cp.epoch` is the epoch of record `cp.index`.
   *
   * If the log holds no record (index, epoch) equal to the checkpoint's, the checkpoint
   * replaces the whole log, as a Raft snapshot does (§7): a follower installing the
   * leader's image. The log then ends at cp.index and continues from cp.index + 1.
   */
  writeCheckpoint(cp: Checkpoint): Promise<void> {
    try {
      this.throwIfUnusable();
      if (!isSafeCount(cp.index) || !isSafeCount(cp.epoch) || !(cp.image instanceof Uint8Array)) {
        throw invalid('a checkpoint needs a non-negative integer index and epoch and a byte image');
      }
      if (cp.index < this.checkpointFloor) {
        throw invalid(`checkpoint at ${cp.index} is older than the one at ${this.checkpointFloor}`);
      }
      // The epoch of every index from the checkpoint floor up is known (recovery and pruning keep it).
      assert(this.epochs.lowIndex <= cp.index, 'the epoch history reaches back to the checkpoint floor');
      const matchesLog = cp.index <= this.lastIndex && this.epochs.epochAt(cp.index) === cp.epoch;
      this.checkpointFloor = cp.index;
      const done = matchesLog ? this.checkpointWithinLog(cp) : this.checkpointReplacingLog(cp);
      this.checkpointsInFlight.add(done);
      void done.finally(() => this.checkpointsInFlight.delete(done)).catch(() => undefined);
      return done;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Waits for everything queued, syncs and closes the active segment. Later calls are refused. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    await Promise.allSettled([...this.checkpointsInFlight]);
    const release = async (): Promise<void> => {
      const fh = this.active;
      this.active = undefined;
      const preallocated = this.preallocated;
      this.preallocated = undefined;
      try {
        if (fh && !this.sync && !this.writer.failed) await fh.datasync();
      } finally {
        await fh?.close();
        if (preallocated) await discardPreallocated(this.dir, preallocated);
      }
    };
    try {
      await this.writer.enqueueControl(release);
    } catch {
      await release(); // the writer failed: nothing more will be written, just let go of the file
    }
  }

  // ---- call-order side -------------------------------------------------------

  private throwIfUnusable(): void {
    if (this.closing) throw new GfsError('UNAVAILABLE', `WAL ${this.dir} is closed`);
    const failed = this.writer.failed;
    if (failed) {
      throw new GfsError('IO_ERROR', `WAL ${this.dir} stopped after a failed write; reopen it to recover`, {
        cause: failed.error,
      });
    }
  }

  private checkRecord(r: WalRecord, previousEpoch: number): void {
    if (!isSafeCount(r.epoch)) throw invalid(`epoch must be a non-negative integer, got ${r.epoch}`);
    if (!Number.isInteger(r.type) || r.type < 0 || r.type > RECORD_TYPE_MAX) {
      throw invalid(`record type must be an integer 0..${RECORD_TYPE_MAX}, got ${r.type}`);
    }
    if (!(r.payload instanceof Uint8Array)) throw invalid('record payload must be a Uint8Array');
    if (encodedRecordBytes(r.payload.length) > RECORD_BYTES_MAX) {
      throw new GfsError('TOO_LARGE', `WAL record of ${encodedRecordBytes(r.payload.length)} bytes exceeds ${RECORD_BYTES_MAX}`);
    }
    if (r.epoch < previousEpoch) {
      throw new GfsError('STALE_EPOCH', `epoch ${r.epoch} is lower than the log's epoch ${previousEpoch}`);
    }
  }

  private compacted(index: number): GfsError {
    return new GfsError('INVALID_ARGUMENT', `WAL records before ${this.first} are only in a checkpoint (asked for ${index})`, {
      detail: { reason: COMPACTED, firstIndex: String(this.first) },
    });
  }

  /** Checkpoint writes run one at a time, in call order. */
  private serializeCheckpointWrite(write: () => Promise<void>): Promise<void> {
    const written = this.checkpointWrites.then(write);
    this.checkpointWrites = written.catch(() => undefined);
    return written;
  }

  private async checkpointWithinLog(cp: Checkpoint): Promise<void> {
    // The image covers cp.index, so cp.index must be on disk before the checkpoint is:
    // otherwise a crash could leave a checkpoint past the end of a shorter log. The
    // barrier is queued now so it cannot wait behind anything queued later.
    const durableBarrier = this.durable >= cp.index ? Promise.resolve() : this.writer.enqueueControl(async () => {});
    durableBarrier.catch(() => undefined); // awaited below, maybe after it settles: not an unhandled rejection
    await this.serializeCheckpointWrite(async () => {
      await durableBarrier;
      await this.writeCheckpointFileAndRecord(cp);
    });
    // The image is a copy of state, not the writer's business: it is written beside the
    // writer, and only deleting segments goes through the queue.
    await this.writer.enqueueControl(() => this.applyCheckpointRetention(false, cp));
  }

  private checkpointReplacingLog(cp: Checkpoint): Promise<void> {
    this.epochs.resetTo(cp.index, cp.epoch);
    const written = this.serializeCheckpointWrite(() => this.writeCheckpointFileAndRecord(cp));
    // Queued now: appends made after this call continue from cp.index + 1 and must wait for it.
    return this.writer.enqueueControl(async () => {
      await written;
      await this.applyCheckpointRetention(true, cp);
    });
  }

  private async writeCheckpointFileAndRecord(cp: Checkpoint): Promise<void> {
    await writeCheckpointFile(this.dir, cp, () => failpoint('wal.afterCheckpointRename'));
    if (this.checkpointIndexes[0] !== cp.index) this.checkpointIndexes.unshift(cp.index);
    this.log.info({ index: cp.index, epoch: cp.epoch, imageBytes: cp.image.length }, 'WAL checkpoint written');
  }

  // ---- writer side (runs inside the group-commit queue, one step at a time) ---

  private async flush(records: WalRecord[]): Promise<void> {
    const first = records[0]!;
    const last = records.at(-1)!;
    assert.equal(first.index, this.diskLastIndex() + 1, 'WAL flush must continue the log on disk');
    let segment = this.segments.at(-1);
    if (segment === undefined || (segment.bytes >= this.segmentBytes && segment.lastIndex >= segment.firstIndex)) {
      segment = await this.rollSegment(first.index);
    }
    const fh = this.active;
    assert(fh, 'the last segment is open for appending');
    const data = encodeRecords(records);
    await writeFully(fh, data, segment.bytes);
    await failpoint('wal.beforeFsync');
    if (this.sync) await fh.datasync();
    segment.bytes += data.length;
    segment.lastIndex = last.index;
    this.durable = last.index;
    if (segment.bytes >= this.segmentBytes * limits.walPreallocateAtRatio) this.startPreallocation();
    this.stats.flushes++;
    this.stats.recordsWritten += records.length;
    this.stats.bytesWritten += data.length;
  }

  private diskLastIndex(): number {
    return this.segments.at(-1)?.lastIndex ?? this.durable;
  }

  private startPreallocation(): void {
    if (this.preallocated) return;
    this.preallocated = preallocateSegment(this.dir, this.segmentBytes);
    // Failure surfaces when the roll takes it; until then it must not count as unhandled.
    this.preallocated.catch(() => undefined);
  }

  private async rollSegment(firstIndex: number): Promise<SegmentState> {
    const previous = this.active;
    const previousSegment = this.segments.at(-1);
    this.active = undefined;
    if (previous && previousSegment) {
      // A segment stops being the last only once it ends at its last record (no zero
      // fill) and is synced (even without per-flush syncs: a later segment must never
      // be durable while an earlier one has a hole, or recovery would find corruption).
      await previous.truncate(previousSegment.bytes);
      await previous.sync();
      await previous.close();
    }
    this.startPreallocation();
    const preallocated = this.preallocated!;
    this.preallocated = undefined;
    this.active = await installSegment(this.dir, await preallocated, firstIndex);
    const segment: SegmentState = {
      file: path.join(this.dir, segmentFileName(firstIndex)),
      firstIndex,
      lastIndex: firstIndex - 1,
      bytes: SEGMENT_HEADER_BYTES,
    };
    this.segments.push(segment);
    this.stats.segmentsCreated++;
    return segment;
  }

  private async truncateSegmentsAfter(index: number): Promise<void> {
    if (index >= this.diskLastIndex()) return;
    this.truncations++;
    // Newest first, so that a crash part-way leaves a contiguous run of segments.
    let removed = 0;
    while (this.segments.length > 0 && this.segments.at(-1)!.firstIndex > index) {
      const segment = this.segments.pop()!;
      if (this.active) {
        await this.active.close();
        this.active = undefined;
      }
      await fsp.unlink(segment.file);
      removed++;
    }
    if (removed > 0) await fsyncDir(this.dir);
    const segment = this.segments.at(-1);
    if (segment) {
      this.active ??= await fsp.open(segment.file, 'r+');
      if (segment.lastIndex > index) {
        const cut = await endOfRecord(segment, index);
        await this.active.truncate(cut);
        await this.active.sync();
        segment.bytes = cut;
        segment.lastIndex = index;
      }
    }
    this.durable = Math.min(this.durable, index);
    if (this.segments.length === 0) this.first = index + 1;
    this.log.info({ index, segmentsRemoved: removed }, 'WAL truncated');
  }

  private async applyCheckpointRetention(replacesLog: boolean, cp: Checkpoint): Promise<void> {
    let removedNames = 0;
    if (replacesLog) {
      if (this.active) {
        await this.active.close();
        this.active = undefined;
      }
      this.truncations++;
      while (this.segments.length > 0) {
        await fsp.unlink(this.segments.pop()!.file);
        removedNames++;
      }
      this.durable = cp.index;
      this.log.warn({ index: cp.index, epoch: cp.epoch }, 'WAL checkpoint does not match the log: it replaces the whole log');
    }
    // Keep the newest CHECKPOINTS_KEPT checkpoints; segments go back to the oldest kept one.
    this.checkpointIndexes.sort((a, b) => b - a);
    for (const index of this.checkpointIndexes.splice(CHECKPOINTS_KEPT)) {
      if (await unlinkIfPresent(path.join(this.dir, checkpointFileName(index)))) removedNames++;
    }
    const pruneThrough = this.checkpointIndexes.length >= CHECKPOINTS_KEPT ? this.checkpointIndexes.at(-1)! : 0;
    // Oldest first, never the last (it takes the next records), so what stays is contiguous.
    while (this.segments.length > 1 && this.segments[0]!.lastIndex <= pruneThrough) {
      await fsp.unlink(this.segments.shift()!.file);
      removedNames++;
    }
    if (removedNames > 0) await fsyncDir(this.dir);
    this.first = this.segments[0]?.firstIndex ?? this.diskLastIndex() + 1;
    this.epochs.forgetBefore(Math.min(this.first - 1, this.epochs.lastIndex));
  }
}

async function discardPreallocated(dir: string, preallocated: Promise<FileHandle>): Promise<void> {
  const fh = await preallocated.catch(() => undefined);
  if (!fh) return;
  await fh.close();
  await unlinkIfPresent(path.join(dir, PREALLOCATED_SEGMENT_NAME));
}

/** Byte offset just past record `index` in `segment`, found by reading it. */
async function endOfRecord(segment: SegmentState, index: number): Promise<number> {
  assert(index >= segment.firstIndex && index <= segment.lastIndex);
  for await (const { record, end } of readSegmentRecords(segment.file, SEGMENT_HEADER_BYTES, segment.bytes)) {
    if (record.index === index) return end;
  }
  throw new GfsError('CORRUPT', `WAL segment ${segment.file} does not hold record ${index} as expected`);
}
