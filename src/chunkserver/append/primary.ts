/**
 * The primary of an open append chunk (LOG-STREAMS.md, "Record append"): orders the
 * appends of one chunk, stores them with group commit, forwards them down a write chain
 * to the secondaries and answers once every replica holds them durably.
 *
 * Invariants:
 * - Offsets are given at ordering time, in arrival order: `orderedEnd` (committed +
 *   pending) only grows, every record of one APPEND lands in one batch, contiguously.
 * - At most one batch is being made durable at a time; whatever arrives meanwhile goes
 *   into the next one (bounded by appendBatchRecordsMax/appendBatchBytesMax): one local
 *   write, one RIDS + DATA forward, one SYNC per batch.
 * - `committed` only grows, and only to the end of a batch that the local fsync AND the
 *   chain's SYNC_ACK both cover: an APPEND_OK is never sent for a byte some replica
 *   could lose.
 * - A record id already in the chunk (durable or in flight) is never stored again: it
 *   is answered with its first offset once that copy commits.
 * - Once ended (chunk full, lease lost, chain failed, sealed) no append is ordered again.
 *   A chain or disk failure fails every append not yet committed (UNAVAILABLE).
 */
import assert from 'node:assert/strict';
import { GfsError } from '../../common/errors';
import { limits } from '../../common/limits';
import type { Clock, Timer } from '../../common/clock';
import type { Logger } from '../../common/log';
import { ChainLink, FrameType, encodeFrame, encodeRecordIds, encodeSums } from '../../dataplane';
import { pieceSumsOf } from '../block-summer';
import type { ChunkStore, ChunkWriter } from '../chunk-store';
import type { DataPlaneMetrics } from '../metrics';
import { RidSidecar, cutSidecar } from './rid-sidecar';

export interface PrimaryHost {
  store: ChunkStore;
  clock: Clock;
  log: Logger;
  metrics: DataPlaneMetrics;
  /** Chunk size for appends (limits.chunkBytesMax unless a test shrinks it). */
  chunkBytes: number;
  onChunkChanged(handle: number): void;
}

export interface IncomingRecord { writer: string; seq: number; data: Buffer }
export interface AppendAnswer { offsets: number[]; dup: boolean[] }

interface Batch {
  records: (IncomingRecord & { offset: number })[];
  start: number;
  end: number;
  done: Promise<void>;
  resolve(): void;
  reject(e: GfsError): void;
}

const DATA_FRAME_BYTES = limits.appendDataFrameBytes;

export class Primary {
  committed = 0;
  /** Committed + pending: where the next record goes. */
  orderedEnd = 0;
  ended = false;
  private endError: GfsError | undefined;
  private stopped = false;
  private readonly queue: Batch[] = [];
  private inFlight: Batch | undefined;
  /** Per writer: seq → (offset, committed-when). Oldest first, at most appendDedupPerWriter each. */
  private readonly ids = new Map<string, Map<number, { offset: number; done: Promise<void> }>>();
  private watchers: (() => void)[] = [];
  private leaseUntil: number;
  private leaseTimer: Timer | undefined;
  private readonly keepAlive: Timer | undefined;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly host: PrimaryHost,
    readonly handle: number,
    readonly version: number,
    private readonly writer: ChunkWriter,
    private readonly sidecar: RidSidecar,
    private readonly link: ChainLink | undefined,
    durationMs: number,
  ) {
    this.leaseUntil = host.clock.monoMs() + durationMs;
    this.armLeaseTimer();
    // An idle log must not look like a dead chain: every replica drops a connection
    // silent for dataIdleTimeoutMs, so an idle chain carries an empty SYNC now and then.
    if (link) {
      this.keepAlive = host.clock.every(limits.dataIdleTimeoutMs / 3, () => {
        if (!this.inFlight && this.queue.length === 0 && !this.stopped && !link.failure) link.sync(this.committed).catch(() => undefined);
      }).unref();
    }
  }

  /** LEASE: creates the local copy and opens the chain to the secondaries (create:true at `version`). */
  static async create(host: PrimaryHost, handle: number, version: number, chain: string[], durationMs: number): Promise<Primary> {
    const receivedMono = host.clock.monoMs();
    const writer = await host.store.openWriter(handle, version, { create: true });
    let sidecar: RidSidecar | undefined;
    let link: ChainLink | undefined;
    let primary: Primary | undefined;
    try {
      sidecar = await RidSidecar.open(host.store.sidecarPath(handle), 0);
      const s = sidecar;
      writer.setBeforeHeader(() => s.flush());
      if (chain.length > 0) {
        link = new ChainLink(chain[0]!, { onFailure: (e) => primary?.fail(e) });
        await link.open({ handle, version, create: true, chain: chain.slice(1) });
      }
      // The lease counts from when it was received, not from when the chain was ready.
      primary = new Primary(host, handle, version, writer, sidecar, link, durationMs - (host.clock.monoMs() - receivedMono));
      if (link?.failure) primary.fail(link.failure);
      return primary;
    } catch (e) {
      link?.destroy();
      await writer.abort().catch(() => undefined);
      await sidecar?.close().catch(() => undefined);
      await host.store.delete(handle).catch(() => undefined);
      throw e;
    }
  }

  get leaseValid(): boolean {
    return !this.ended && this.host.clock.monoMs() < this.leaseUntil;
  }

  /** No batch will commit any more: `committed` is final. */
  get final(): boolean {
    return this.stopped || (this.ended && !this.inFlight && this.queue.length === 0);
  }

  /** Heartbeat renewal: valid until `untilMono` (the heartbeat's send time + duration). */
  renew(version: number, untilMono: number): void {
    if (this.ended || version !== this.version) return;
    if (untilMono > this.leaseUntil) {
      this.leaseUntil = untilMono;
      this.armLeaseTimer();
    }
  }

  /** Resolves the next time `committed` grows or the chunk ends. */
  changed(): Promise<void> {
    return new Promise((resolve) => this.watchers.push(resolve));
  }

  append(version: number, records: IncomingRecord[], expectedOffset: number | undefined): Promise<AppendAnswer> {
    try {
      return this.order(version, records, expectedOffset);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  private order(version: number, records: IncomingRecord[], expectedOffset: number | undefined): Promise<AppendAnswer> {
    if (version !== this.version) {
      throw new GfsError('STALE_VERSION', `chunk ${this.handle} is at version ${this.version} here, not ${version}`);
    }
    if (!this.ended && this.host.clock.monoMs() >= this.leaseUntil) this.end(leaseExpired(this.handle));
    if (this.ended) throw this.endError!;
    const recordMax = Math.min(limits.recordBytesMax, Math.floor(this.host.chunkBytes / 4));
    const offsets: number[] = [];
    const dup: boolean[] = [];
    const waits: Promise<void>[] = [];
    const fresh: IncomingRecord[] = [];
    const seen = new Set<string>();
    let bytes = 0;
    for (const r of records) {
      if (r.data.length === 0) throw new GfsError('INVALID_ARGUMENT', 'an appended record holds at least one byte');
      if (r.data.length > recordMax) throw new GfsError('TOO_LARGE', `record of ${r.data.length} bytes exceeds ${recordMax}`);
      const key = `${r.writer}\u0000${r.seq}`;
      const known = r.writer === '' ? undefined : this.ids.get(r.writer)?.get(r.seq);
      if (known || seen.has(key)) {
        dup.push(true);
        offsets.push(known ? known.offset : -1); // -1: a repeat inside this append, filled below
        if (known) waits.push(known.done);
        continue;
      }
      if (r.writer !== '') seen.add(key);
      dup.push(false);
      offsets.push(this.orderedEnd + bytes);
      fresh.push(r);
      bytes += r.data.length;
    }
    if (fresh.length > 0) {
      if (expectedOffset !== undefined && expectedOffset !== this.orderedEnd) {
        throw new GfsError('PRECONDITION_FAILED', `chunk ${this.handle} ends at ${this.orderedEnd}, the append expected ${expectedOffset}`);
      }
      if (this.orderedEnd + bytes > this.host.chunkBytes) {
        this.end(new GfsError('CHUNK_FULL', `chunk ${this.handle} is full (${this.orderedEnd} of ${this.host.chunkBytes} bytes)`));
        throw this.endError!;
      }
      const batch = this.batchFor(fresh.length, bytes);
      let at = this.orderedEnd;
      for (const r of fresh) {
        batch.records.push({ ...r, offset: at });
        if (r.writer !== '') this.remember(r.writer, r.seq, at, batch.done);
        at += r.data.length;
      }
      this.orderedEnd = at;
      batch.end = at;
      waits.push(batch.done);
      this.kick();
    }
    // A record repeated inside one append gets the offset of its first copy.
    records.forEach((r, i) => {
      if (offsets[i] === -1) offsets[i] = offsets[records.findIndex((q) => q.writer === r.writer && q.seq === r.seq)]!;
    });
    return Promise.all(waits).then(() => ({ offsets, dup }));
  }

  /** The open batch that takes `n` more records of `bytes`, or a new one. */
  private batchFor(n: number, bytes: number): Batch {
    const last = this.queue[this.queue.length - 1];
    if (last && last.records.length + n <= limits.appendBatchRecordsMax && last.end - last.start + bytes <= limits.appendBatchBytesMax) {
      return last;
    }
    let resolve!: () => void;
    let reject!: (e: GfsError) => void;
    const done = new Promise<void>((res, rej) => { resolve = res; reject = rej; });
    done.catch(() => undefined); // every waiter has its own handler
    const batch: Batch = { records: [], start: this.orderedEnd, end: this.orderedEnd, done, resolve, reject };
    this.queue.push(batch);
    return batch;
  }

  private remember(writer: string, seq: number, offset: number, done: Promise<void>): void {
    let m = this.ids.get(writer);
    if (!m) this.ids.set(writer, (m = new Map()));
    m.set(seq, { offset, done });
    if (m.size > limits.appendDedupPerWriter) m.delete(m.keys().next().value!);
  }

  private kick(): void {
    if (this.inFlight || this.stopped || this.queue.length === 0) return;
    const batch = this.queue.shift()!;
    this.inFlight = batch;
    this.commit(batch).then(() => {
      this.inFlight = undefined;
      this.committed = batch.end;
      this.host.metrics.appendBatches.inc();
      this.host.metrics.appends.inc(batch.records.length);
      this.host.onChunkChanged(this.handle);
      batch.resolve();
      this.wake();
      this.kick();
      if (this.final) void this.release();
    }, (e: unknown) => {
      this.inFlight = undefined;
      batch.reject(unavailable(this.handle, e));
      this.fail(e);
    });
  }

  /** One batch: local write, RIDS + DATA down the chain, one SYNC; resolves when every replica holds it. */
  private async commit(batch: Batch): Promise<void> {
    const data = Buffer.concat(batch.records.map((r) => r.data));
    assert.equal(batch.start + data.length, batch.end, 'a batch is contiguous');
    assert.equal(this.writer.length, batch.start, 'batches are written in order');
    const rids = encodeRecordIds(batch.records.map((r) => ({ offset: r.offset, length: r.data.length, writer: r.writer, seq: r.seq })));
    this.sidecar.append(rids);
    this.writer.append(data);
    let downstream: Promise<number> = Promise.resolve(batch.end);
    if (this.link) {
      const link = this.link;
      link.write(encodeFrame(FrameType.RIDS, { n: batch.records.length }, rids), 0, noop);
      for (let at = 0; at < data.length; at += DATA_FRAME_BYTES) {
        const piece = data.subarray(at, at + DATA_FRAME_BYTES);
        const sums = pieceSumsOf(batch.start + at, piece);
        await link.send(encodeFrame(FrameType.DATA, { sums: sums.length }, [piece, encodeSums(sums)]), piece.length, noop);
      }
      downstream = link.sync(batch.end);
    }
    const [local, below] = await Promise.all([this.writer.sync(), downstream]);
    assert(local >= batch.end && below >= batch.end, 'every replica holds the batch');
  }

  /** The chunk takes no more appends (full, lease lost): batches already ordered still commit. */
  end(reason: GfsError): void {
    if (this.ended) return;
    this.ended = true;
    this.endError = reason;
    this.leaseTimer?.cancel();
    this.host.log.info({ handle: this.handle, reason: reason.code, committed: this.committed }, 'append chunk ended');
    this.wake();
    if (this.final) void this.release();
  }

  /** A replica or the disk failed: nothing more commits here; the master will seal the chunk. */
  fail(e: unknown): void {
    if (this.stopped) return;
    const err = unavailable(this.handle, e);
    this.host.log.warn({ handle: this.handle, err: err.message, committed: this.committed }, 'append chain failed');
    this.end(err);
    this.endError = err;
    this.stopped = true;
    for (const b of this.queue.splice(0)) b.reject(err);
    this.wake();
    void this.release();
  }

  /** A seal or truncate takes the chunk: ends the lease and the session at once; resolves once the writer is closed. */
  stop(): Promise<void> {
    if (!this.ended) this.end(new GfsError('NOT_PRIMARY', `chunk ${this.handle} was sealed; ask the master`));
    if (!this.stopped) {
      this.stopped = true;
      const err = new GfsError('UNAVAILABLE', `chunk ${this.handle} was sealed while appends were pending`);
      for (const b of this.queue.splice(0)) b.reject(err);
      this.link?.destroy();
      this.wake();
    }
    return this.release();
  }

  private release(): Promise<void> {
    this.closing ??= this.closeAll();
    return this.closing;
  }

  private async closeAll(): Promise<void> {
    this.leaseTimer?.cancel();
    this.keepAlive?.cancel();
    // A batch still being synced finishes or fails first: its answer depends on it.
    while (this.inFlight) await this.inFlight.done.catch(() => undefined);
    if (this.stopped) this.link?.destroy();
    else this.link?.close();
    try {
      await this.writer.close();
      await this.sidecar.close();
      const durable = this.host.store.get(this.handle)?.length ?? 0;
      await cutSidecar(this.host.store.sidecarPath(this.handle), durable);
    } catch (e) {
      this.host.log.warn({ handle: this.handle, err: (e as Error).message }, 'closing an append chunk failed');
    }
  }

  private wake(): void {
    const w = this.watchers;
    this.watchers = [];
    for (const f of w) f();
  }

  private armLeaseTimer(): void {
    this.leaseTimer?.cancel();
    const delay = Math.max(0, this.leaseUntil - this.host.clock.monoMs());
    this.leaseTimer = this.host.clock.after(delay, () => {
      if (this.host.clock.monoMs() >= this.leaseUntil) this.end(leaseExpired(this.handle));
      else this.armLeaseTimer();
    }).unref();
  }
}

function noop(): void {}

function leaseExpired(handle: number): GfsError {
  return new GfsError('LEASE_EXPIRED', `the lease on chunk ${handle} ran out; ask the master`);
}

function unavailable(handle: number, e: unknown): GfsError {
  if (e instanceof GfsError && e.code === 'UNAVAILABLE') return e;
  const why = e instanceof Error ? e.message : String(e);
  return new GfsError('UNAVAILABLE', `chunk ${handle}: the write chain failed (${why}); ask the master`, { cause: e });
}
