/**
 * Record append from one writer (docs/LOG-STREAMS.md, "Record append" and "Exactly
 * once"): a random writer id, growing sequence numbers, many appends in flight on one
 * AppendLink to the open chunk's primary, and what is queued batched into one APPEND.
 *
 * After a failure that ends the chunk for us (CHUNK_FULL, LEASE_EXPIRED, NOT_PRIMARY,
 * STALE_VERSION, or the primary unreachable: UNAVAILABLE, TIMEOUT), every unacknowledged
 * record goes back to the queue; AppendTarget(ended_handle, failed_node, record_id of
 * the oldest) seals the chunk, answers stored_offset while the oldest is already in a
 * sealed chunk, and then names the next open chunk, to which the rest are sent again
 * with the same ids (the primary answers dup for those it already holds).
 *
 * Invariants:
 * - Records are sent, and sent again, in sequence order with unchanged ids, so the
 *   records of this writer in any chunk form a prefix of what was unacknowledged:
 *   asking the master about the oldest one alone is enough.
 * - At most limits.appendDedupPerWriter records are unacknowledged (queued or in
 *   flight): every record that may be retried is within the window a sealed chunk keeps
 *   per writer, so a retry never stores a record twice.
 * - A record's offset comes only from an APPEND_OK or a stored_offset (file offset =
 *   chunk offset + the chunk's file offset; for a stream, plus the segment's base
 *   offset from its name, so offsets grow across rolls); it is never guessed.
 * - A record with expectedOffset travels alone in its APPEND (the check is per APPEND).
 * - Nothing is sent to a chunk after its link failed: the next target comes from the
 *   master, which sealed the failed chunk first.
 */
import assert from 'node:assert/strict';
import { GfsError } from '../common/errors';
import { limits } from '../common/limits';
import { randomId } from '../common/ids';
import { backoffMs } from '../common/backoff';
import { sleep, systemClock, type Clock } from '../common/clock';
import { silentLogger, type Logger } from '../common/log';
import { AppendLink, type AppendResult } from '../dataplane';
import type { MasterConn } from './master-conn';
import type { ChunkInfo } from '../../gen/gfs';
import { parseSegmentName } from '../common/segment-name';

export interface AppenderOptions {
  /** Create the log if it is missing. */
  create?: boolean;
  /** For create: replication goal (0 / unset = the cluster default). */
  replication?: number;
  /** A writer id to resume under; random by default (one per Appender). */
  writerId?: string;
  /** The first record's sequence number (default 1): a writer resuming after a restart goes on from its last. */
  firstSeq?: number;
  /**
   * Every record may have been stored already (a writer resuming with ids it used
   * before): the master and the primary are asked about each, even on its first send.
   */
  resumed?: boolean;
  /** Give up on a record this long after it was first sent without an answer (limits.appendRetryDeadlineMs). */
  retryDeadlineMs?: number;
  /** An append the primary has not answered this long means the primary is gone (limits.appendAckTimeoutMs). */
  ackTimeoutMs?: number;
  clock?: Clock;
  random?: () => number;
  log?: Logger;
}

export interface AppendOptions {
  /** File offset the record must be stored at; otherwise PRECONDITION_FAILED and nothing stored. */
  expectedOffset?: number;
}

export interface AppendAck {
  /** File offset of the record's first byte. */
  offset: number;
  /**
   * The record id was already stored (a retry): `offset` is the first copy's. A caller
   * whose ids may repeat across different records (derived ids) checks the bytes there.
   */
  dup?: boolean;
}

/** What the appender needs of a link to the primary (AppendLink; a fake in unit tests). */
export interface AppendLinkLike {
  append(handle: number, version: number, records: { data: Buffer; id?: { writer: string; seq: number } }[],
    expectedOffset?: number): Promise<AppendResult>;
  close(): void;
  /** The link failed and refuses every later append. */
  readonly closed: boolean;
}

interface Pending {
  seq: number;
  data: Buffer;
  expectedOffset?: number;
  /** monoMs when first sent; undefined: never sent (no need to ask the master about it). */
  firstSentMs?: number;
  resolve(ack: AppendAck): void;
  reject(e: Error): void;
}

interface Target {
  handle: number;
  version: number;
  /** File offset of the chunk's first byte. */
  offset: number;
  primaryAddr: string;
  primaryNode: string;
  link: AppendLinkLike;
}

interface Batch { target: Target; entries: Pending[] }

/** Codes after which the chunk is done for this writer: ask the master for the next one. */
const ENDS_CHUNK = new Set(['CHUNK_FULL', 'LEASE_EXPIRED', 'NOT_PRIMARY', 'STALE_VERSION', 'UNAVAILABLE', 'TIMEOUT', 'NO_SUCH_CHUNK', 'PROTOCOL', 'IO_ERROR']);
/** Codes after which the primary is presumed unreachable (reported as failed_node). */
const UNREACHABLE = new Set(['UNAVAILABLE', 'TIMEOUT']);
/** Master answers worth asking again (the leader moved, a chunkserver is missing for a while). */
const MASTER_TRANSIENT = new Set(['UNAVAILABLE', 'TIMEOUT', 'NOT_LEADER', 'SAFE_MODE', 'NO_CHUNKSERVERS', 'NO_SPACE']);

/** The APPEND header's bytes besides the record list (id, handle, version, total, expectedOffset, JSON). */
const HEADER_FIXED_BYTES = 256;

export function asGfsError(e: unknown): GfsError {
  return e instanceof GfsError ? e : new GfsError('INTERNAL', e instanceof Error ? e.message : String(e), { cause: e });
}

export class Appender {
  readonly writerId: string;
  private nextSeq = 1;
  /** Not yet sent to the current target, in sequence order. */
  private readonly queue: Pending[] = [];
  /** Sent to the current target and not yet answered, in sending (= sequence) order. */
  private inflight: Batch[] = [];
  private target: Target | undefined;
  /** The chunk that failed us, reported with the next AppendTarget. */
  private ended: { handle: number; failedNode: string } | undefined;
  private lastError: GfsError | undefined;
  private failures = 0;
  /**
   * Bytes in one APPEND: a primary refuses (CHUNK_FULL) an APPEND that does not fit
   * whole, so a batch bigger than what a fresh chunk takes would never go anywhere.
   * Halved after a CHUNK_FULL of a batch of several records, doubled back after an ack.
   */
  private batchBytesMax: number = limits.appendBatchBytesMax;
  private pumping = false;
  private pumpScheduled = false;
  private closed = false;
  /** Callers of append waiting for a slot, oldest first. */
  private readonly waiters: (() => void)[] = [];
  /** Slots handed to woken callers that have not queued their record yet. */
  private reserved = 0;
  /** close() waiting for every record to be answered. */
  private readonly drained: (() => void)[] = [];
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly log: Logger;
  /** The file the last answer named (a stream's segment; the log itself otherwise); '' before the first. */
  appendedPath = '';

  constructor(
    private readonly conn: MasterConn,
    readonly path: string,
    private readonly opts: AppenderOptions = {},
    private readonly connect: (addr: string, timeoutMs: number) => AppendLinkLike = (addr, timeoutMs) => new AppendLink(addr, { timeoutMs }),
  ) {
    this.writerId = opts.writerId ?? randomId(8);
    this.nextSeq = opts.firstSeq ?? 1;
    assert.ok(Number.isSafeInteger(this.nextSeq) && this.nextSeq >= 0, 'firstSeq is a whole number');
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? Math.random;
    this.log = opts.log ?? silentLogger;
  }

  /** Records queued or in flight, not yet acknowledged. */
  get unacknowledged(): number {
    return this.queue.length + this.inflight.reduce((n, b) => n + b.entries.length, 0);
  }

  /**
   * Appends one record; resolves with its file offset once every replica has it durable.
   * Waits (backpressure) while appendDedupPerWriter records are unacknowledged.
   */
  async append(record: Buffer | string, opts: AppendOptions = {}): Promise<AppendAck> {
    if (this.closed) throw new GfsError('INVALID_ARGUMENT', `appender for ${this.path} is closed`);
    const data = typeof record === 'string' ? Buffer.from(record) : Buffer.from(record);
    if (data.length === 0) throw new GfsError('INVALID_ARGUMENT', 'an empty record stores nothing');
    if (data.length > limits.recordBytesMax) {
      throw new GfsError('TOO_LARGE', `a record is at most ${limits.recordBytesMax} bytes, not ${data.length}`);
    }
    const expected = opts.expectedOffset;
    if (expected !== undefined && (!Number.isSafeInteger(expected) || expected < 0)) {
      throw new GfsError('INVALID_ARGUMENT', `expectedOffset must be a whole number >= 0, not ${expected}`);
    }
    if (this.unacknowledged + this.reserved >= limits.appendDedupPerWriter || this.waiters.length > 0) {
      // FIFO: a slot freed by an answer goes to the longest waiting caller (see wake).
      await new Promise<void>((resolve) => this.waiters.push(resolve));
      this.reserved--;
    }
    return new Promise<AppendAck>((resolve, reject) => {
      // A resumed writer's record counts as sent at once, so the master is asked about it.
      const firstSentMs = this.opts.resumed ? this.clock.monoMs() : undefined;
      this.queue.push({ seq: this.nextSeq++, data, expectedOffset: expected, firstSentMs, resolve, reject });
      this.schedule();
    });
  }

  /** Waits until every record appended so far is answered, then closes the link. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.unacknowledged > 0 || this.waiters.length > 0 || this.reserved > 0) {
      await new Promise<void>((resolve) => this.drained.push(resolve));
    }
    this.target?.link.close();
    this.target = undefined;
  }

  /** Hands the free slots to waiting callers, oldest first, and wakes close() when all is answered. */
  private wake(): void {
    let free = limits.appendDedupPerWriter - this.unacknowledged - this.reserved;
    while (free > 0 && this.waiters.length > 0) {
      this.reserved++;
      free--;
      this.waiters.shift()!();
    }
    if (this.unacknowledged === 0) for (const w of this.drained.splice(0)) w();
  }

  /** Runs the pump after the current turn, so appends made together travel in one batch. */
  private schedule(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      void this.pump();
    });
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queue.length > 0) {
        if (!this.target) {
          await this.acquireTarget();
          continue;
        }
        if (this.inflight.length >= limits.appendInFlightMax) break; // resumed when a batch is answered
        this.send(this.target, this.takeBatch());
      }
    } catch (e) {
      // A bug here must not leave callers waiting forever.
      this.failAll(asGfsError(e));
    } finally {
      this.pumping = false;
    }
  }

  /** The queue's head and what follows it up to the batch limits; a record with expectedOffset alone. */
  private takeBatch(): Pending[] {
    const first = this.queue.shift()!;
    const batch = [first];
    if (first.expectedOffset !== undefined) return batch;
    let bytes = first.data.length;
    let headerBytes = HEADER_FIXED_BYTES + this.idBytes(first);
    while (this.queue.length > 0 && batch.length < limits.appendBatchRecordsMax) {
      const next = this.queue[0]!;
      if (next.expectedOffset !== undefined || bytes + next.data.length > this.batchBytesMax) break;
      // The APPEND header lists every record's id and size: it must stay within a frame header.
      if (headerBytes + this.idBytes(next) > limits.frameHeaderBytesMax) break;
      batch.push(this.queue.shift()!);
      bytes += next.data.length;
      headerBytes += this.idBytes(next);
    }
    return batch;
  }

  /** Bytes of `["writer",seq,size],` in the APPEND header (an upper bound). */
  private idBytes(e: Pending): number {
    return this.writerId.length + String(e.seq).length + String(e.data.length).length + 8;
  }

  private send(target: Target, entries: Pending[]): void {
    const now = this.clock.monoMs();
    for (const e of entries) e.firstSentMs ??= now;
    let expectedChunkOffset: number | undefined;
    const expected = entries[0]!.expectedOffset;
    if (expected !== undefined) {
      expectedChunkOffset = expected - target.offset;
      if (expectedChunkOffset < 0) {
        // The log is already longer than that (this chunk starts past it); if this record
        // had been stored earlier, the master would have answered stored_offset for it.
        entries[0]!.reject(new GfsError('PRECONDITION_FAILED', `expected offset ${expected} but the log is at least ${target.offset} bytes`));
        this.wake();
        return;
      }
    }
    const batch: Batch = { target, entries };
    this.inflight.push(batch);
    const records = entries.map((e) => ({ data: e.data, id: { writer: this.writerId, seq: e.seq } }));
    target.link.append(target.handle, target.version, records, expectedChunkOffset).then(
      (res) => this.answered(batch, res),
      (err: unknown) => this.refused(batch, asGfsError(err)),
    );
  }

  private answered(batch: Batch, res: AppendResult): void {
    if (batch.target !== this.target) return; // the link failed meanwhile: these are being retried
    assert.equal(res.offsets.length, batch.entries.length, 'one offset per record');
    this.inflight.splice(this.inflight.indexOf(batch), 1);
    this.failures = 0;
    this.batchBytesMax = Math.min(limits.appendBatchBytesMax, this.batchBytesMax * 2);
    batch.entries.forEach((e, i) => e.resolve({ offset: batch.target.offset + res.offsets[i]!, dup: res.dup[i] === true }));
    this.wake();
    if (this.queue.length > 0) this.schedule();
  }

  private refused(batch: Batch, err: GfsError): void {
    if (batch.target !== this.target) return;
    if (!ENDS_CHUNK.has(err.code)) {
      // PRECONDITION_FAILED, TOO_LARGE, ...: these records are refused, nothing stored;
      // the connection stays usable for the rest.
      this.inflight.splice(this.inflight.indexOf(batch), 1);
      for (const e of batch.entries) e.reject(err);
      this.wake();
      // An ERROR frame ends the connection, though: the rest go to a fresh target.
      if (batch.target.link.closed) this.abandonTarget(err);
      return;
    }
    if (err.code === 'CHUNK_FULL' && batch.entries.length > 1) {
      const bytes = batch.entries.reduce((n, e) => n + e.data.length, 0);
      this.batchBytesMax = Math.max(1, Math.floor(bytes / 2));
    }
    this.abandonTarget(err);
  }

  /** The chunk is done for us: everything unanswered goes back to the queue's front, in order. */
  private abandonTarget(err: GfsError): void {
    const t = this.target!;
    this.target = undefined;
    const unreachable = UNREACHABLE.has(err.code) && t.link.closed; // before close() below closes it
    t.link.close();
    // Only a link that broke (socket error, no answer) says the primary is unreachable; an
    // UNAVAILABLE it answered itself (its chain to a secondary failed) says nothing against it.
    this.ended = { handle: t.handle, failedNode: unreachable ? t.primaryNode : '' };
    this.lastError = err;
    this.failures++;
    const back = this.inflight.flatMap((b) => b.entries);
    this.inflight = [];
    this.queue.unshift(...back);
    this.log.info({ path: this.path, handle: t.handle, primary: t.primaryAddr, code: err.code, retrying: back.length },
      'append chunk ended for this writer; asking the master for the next');
    this.schedule();
  }

  /**
   * Asks the master where to append (reporting the chunk that failed us). While the
   * oldest record turns out to be stored already, it is answered with that offset.
   */
  private async acquireTarget(): Promise<void> {
    const head = this.queue[0]!;
    const deadlineMs = this.opts.retryDeadlineMs ?? limits.appendRetryDeadlineMs;
    if (head.firstSentMs !== undefined && this.clock.monoMs() - head.firstSentMs > deadlineMs) {
      const last = this.lastError ?? new GfsError('TIMEOUT', 'no answer');
      this.failAll(new GfsError(last.code, `append to ${this.path} gave up after ${deadlineMs} ms: ${last.message}`, { cause: last }));
      return;
    }
    if (this.failures > 1) {
      await sleep(this.clock, backoffMs(this.failures - 1, {
        minMs: limits.clientBackoffBaseMs, maxMs: limits.clientBackoffMaxMs, jitterRatio: 0.5,
      }, this.random));
    }
    let res;
    try {
      res = await this.conn.call('appendTarget', {
        path: this.path, create: this.opts.create ?? false, replication: this.opts.replication ?? 0,
        endedHandle: this.ended?.handle ?? 0, failedNode: this.ended?.failedNode ?? '',
        recordId: head.firstSentMs !== undefined ? { writer: this.writerId, seq: head.seq } : undefined,
        requestId: randomId(),
      });
    } catch (e) {
      const err = asGfsError(e);
      this.log.info({ path: this.path, code: err.code, err: err.message }, 'AppendTarget failed');
      if (!MASTER_TRANSIENT.has(err.code)) { this.failAll(err); return; }
      this.lastError = err;
      this.failures++;
      if (head.firstSentMs === undefined) head.firstSentMs = this.clock.monoMs(); // bounds the wait of a never-sent record too
      return;
    }
    const endedHandle = this.ended?.handle ?? 0;
    this.ended = undefined;
    this.appendedPath = res.path;
    if (res.storedOffset !== undefined) {
      assert.equal(this.queue[0], head, 'the queue head changes only here');
      this.queue.shift();
      head.resolve({ offset: this.baseOf(res.path) + res.storedOffset, dup: true });
      this.wake();
      await this.probeStored(endedHandle);
      return;
    }
    this.useTarget(res.path, res.chunk);
  }

  /**
   * A stream's records are numbered by stream offset: a segment's base (from its name,
   * src/common/segment-name.ts) plus the offset in the segment. A log's base is 0.
   */
  private baseOf(answeredPath: string): number {
    if (answeredPath === '' || answeredPath === this.path) return 0;
    const parsed = parseSegmentName(answeredPath.slice(answeredPath.lastIndexOf('/') + 1));
    return parsed?.baseOffset ?? 0;
  }

  /**
   * The oldest record was in the sealed chunk: so may be more of the next ones (a
   * prefix of them, as they were sent in order). Asks about them in parallel rounds
   * instead of one round trip each; the first not stored ends the search and its
   * answer names the next target.
   */
  private async probeStored(endedHandle: number): Promise<void> {
    while (this.queue.length > 0 && this.queue[0]!.firstSentMs !== undefined) {
      const round: Pending[] = [];
      for (const e of this.queue) {
        if (e.firstSentMs === undefined || round.length >= limits.appendProbeParallel) break;
        round.push(e);
      }
      let answers;
      try {
        answers = await Promise.all(round.map((e) => this.conn.call('appendTarget', {
          // The ended chunk again (already sealed: nothing more happens to it): a stream
          // looks a record up in the segment that chunk belonged to, which may have rolled.
          path: this.path, create: false, replication: 0, endedHandle, failedNode: '',
          recordId: { writer: this.writerId, seq: e.seq }, requestId: randomId(),
        })));
      } catch {
        return; // the next acquireTarget asks again, one record at a time
      }
      let target: { path: string; chunk: ChunkInfo | undefined } | undefined;
      round.forEach((e, i) => {
        const a = answers[i]!;
        if (a.storedOffset === undefined) { target ??= { path: a.path, chunk: a.chunk }; return; }
        this.queue.splice(this.queue.indexOf(e), 1);
        e.resolve({ offset: this.baseOf(a.path) + a.storedOffset, dup: true });
      });
      this.wake();
      if (target) { this.useTarget(target.path, target.chunk); return; }
    }
  }

  private useTarget(answeredPath: string, chunk: ChunkInfo | undefined): void {
    if (!chunk || chunk.replicas.length === 0) {
      this.lastError = new GfsError('UNAVAILABLE', `the master named no primary for ${this.path}`);
      this.failures++;
      return;
    }
    const primary = chunk.replicas[0]!;
    this.log.debug({ path: this.path, handle: chunk.handle, version: chunk.version, primary: primary.addr, replicas: chunk.replicas.length },
      'appending to a new target');
    const timeoutMs = this.opts.ackTimeoutMs ?? limits.appendAckTimeoutMs;
    this.appendedPath = answeredPath;
    this.target = {
      handle: chunk.handle, version: chunk.version, offset: this.baseOf(answeredPath) + chunk.offset,
      primaryAddr: primary.addr, primaryNode: primary.nodeId, link: this.connect(primary.addr, timeoutMs),
    };
  }

  private failAll(err: GfsError): void {
    const all = [...this.inflight.flatMap((b) => b.entries), ...this.queue.splice(0)];
    this.inflight = [];
    if (this.target) { this.target.link.close(); this.target = undefined; }
    for (const e of all) e.reject(err);
    this.wake();
  }
}
