/**
 * The client's connection to an append chunk's primary (LOG-STREAMS.md, "Record
 * append"; frames in DATA-PLANE.md): many APPENDs in flight on one TCP connection,
 * answered in the order they were sent.
 *
 * Invariants:
 * - Answers match requests strictly in order (an answer for another id fails the link:
 *   PROTOCOL); every append settles exactly once.
 * - A failed link (socket error, ERROR frame, timeout of any append) rejects every
 *   append still waiting with the same error and refuses later ones; `closed` is then true.
 * - An append's records travel as one APPEND frame plus APPEND_MORE frames, each within
 *   limits.frameBytesMax.
 */
import net from 'node:net';
import { GfsError } from '../common/errors';
import { limits } from '../common/limits';
import { splitHostPort } from '../common/admin-http';
import { FRAME_PREFIX_BYTES, FrameParser, FrameType, encodeFrame, frameError } from './frames';
import { RECORD_WRITER_BYTES_MAX } from './record-ids';

export interface RecordIdLike { writer: string; seq: number }
export interface AppendRecord { data: Buffer; id?: RecordIdLike }
/** Chunk offsets, one per record; dup[i] = record i was already stored (offsets[i] is the first copy's). */
export interface AppendResult { offsets: number[]; dup: boolean[] }

interface Waiter { id: number; resolve: (r: AppendResult) => void; reject: (e: GfsError) => void; timer: NodeJS.Timeout }

/** Room left in a frame for the header's JSON beyond what we measured, and for APPEND_MORE's header. */
const MORE_HEADER_BYTES = 64;

export class AppendLink {
  private readonly socket: net.Socket;
  private readonly parser = new FrameParser();
  private readonly waiting: Waiter[] = [];
  private nextId = 1;
  private failure: GfsError | undefined;
  private readonly timeoutMs: number;

  constructor(readonly addr: string, opts: { timeoutMs?: number } = {}) {
    this.timeoutMs = opts.timeoutMs ?? limits.dataIdleTimeoutMs;
    const { host, port } = splitHostPort(addr);
    this.socket = net.connect({ host, port });
    this.socket.setNoDelay(true);
    this.socket.on('error', (e) => this.fail(new GfsError('UNAVAILABLE', `primary ${addr}: ${e.message}`)));
    this.socket.on('close', () => this.fail(new GfsError('UNAVAILABLE', `primary ${addr} closed the connection`)));
    this.socket.on('data', (bytes: Buffer) => {
      try {
        for (const f of this.parser.push(bytes)) {
          if (f.type === FrameType.APPEND_OK || f.type === FrameType.APPEND_FAIL) this.onAnswer(f.type, f.header);
          else if (f.type === FrameType.ERROR) this.fail(frameError(f.header));
          else this.fail(new GfsError('PROTOCOL', `unexpected frame ${f.type} from primary ${addr}`));
        }
      } catch (e) {
        this.fail(e instanceof GfsError ? e : new GfsError('PROTOCOL', String(e)));
      }
    });
  }

  get closed(): boolean { return this.failure !== undefined; }

  /**
   * Appends `records` (stored together, in order, or not at all) to the chunk. Rejects
   * with GfsError CHUNK_FULL | LEASE_EXPIRED | NOT_PRIMARY | STALE_VERSION |
   * PRECONDITION_FAILED | TOO_LARGE | UNAVAILABLE | TIMEOUT. expectedOffset is a chunk offset.
   */
  append(handle: number, version: number, records: AppendRecord[], expectedOffset?: number): Promise<AppendResult> {
    return new Promise((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      if (records.length === 0) return reject(new GfsError('INVALID_ARGUMENT', 'an append needs at least one record'));
      let total = 0;
      const ids: [string, number, number][] = [];
      for (const r of records) {
        const writer = r.id?.writer ?? '';
        if (Buffer.byteLength(writer) > RECORD_WRITER_BYTES_MAX) {
          return reject(new GfsError('INVALID_ARGUMENT', `record writer id longer than ${RECORD_WRITER_BYTES_MAX} bytes`));
        }
        if (r.data.length > limits.recordBytesMax) {
          return reject(new GfsError('TOO_LARGE', `record of ${r.data.length} bytes exceeds ${limits.recordBytesMax}`));
        }
        ids.push([writer, r.id?.seq ?? 0, r.data.length]);
        total += r.data.length;
      }
      const id = this.nextId++;
      const header: Record<string, unknown> = { id, handle, version, records: ids, total };
      if (expectedOffset !== undefined) header.expectedOffset = expectedOffset;
      const headerBytes = Buffer.byteLength(JSON.stringify(header));
      if (headerBytes > limits.frameHeaderBytesMax) {
        return reject(new GfsError('TOO_LARGE', `an append of ${records.length} records has a ${headerBytes}-byte header (max ${limits.frameHeaderBytesMax}); send fewer records per append`));
      }
      const timer = setTimeout(() => this.fail(new GfsError('TIMEOUT', `primary ${this.addr} did not answer an append within ${this.timeoutMs} ms`)), this.timeoutMs);
      this.waiting.push({ id, resolve, reject, timer });
      this.writeRecords(id, header, headerBytes, records);
    });
  }

  private writeRecords(id: number, header: Record<string, unknown>, headerBytes: number, records: AppendRecord[]): void {
    let room = limits.frameBytesMax - FRAME_PREFIX_BYTES - headerBytes - MORE_HEADER_BYTES;
    let parts: Buffer[] = [];
    let first = true;
    const flush = () => {
      this.socket.write(first ? encodeFrame(FrameType.APPEND, header, parts) : encodeFrame(FrameType.APPEND_MORE, { id }, parts));
      first = false;
      parts = [];
      room = limits.frameBytesMax - FRAME_PREFIX_BYTES - MORE_HEADER_BYTES;
    };
    for (const r of records) {
      let at = 0;
      while (at < r.data.length) {
        if (room === 0) flush();
        const n = Math.min(room, r.data.length - at);
        parts.push(r.data.subarray(at, at + n));
        at += n;
        room -= n;
      }
    }
    if (first || parts.length > 0) flush();
  }

  close(): void {
    this.fail(new GfsError('UNAVAILABLE', `append link to ${this.addr} closed`));
  }

  private onAnswer(type: number, h: Record<string, unknown>): void {
    const w = this.waiting[0];
    if (!w || w.id !== Number(h.id)) {
      return this.fail(new GfsError('PROTOCOL', `answer for append ${String(h.id)}, waiting for ${w ? w.id : 'none'}`));
    }
    this.waiting.shift();
    clearTimeout(w.timer);
    if (type === FrameType.APPEND_OK) {
      const offsets = Array.isArray(h.offsets) ? h.offsets.map(Number) : [];
      const dup = Array.isArray(h.dup) ? h.dup.map((d) => d === true) : offsets.map(() => false);
      w.resolve({ offsets, dup });
    } else {
      const e = frameError(h);
      if (h.length !== undefined) e.detail.length = String(h.length);
      w.reject(e);
    }
  }

  private fail(e: GfsError): void {
    if (this.failure) return;
    this.failure = e;
    for (const w of this.waiting.splice(0)) {
      clearTimeout(w.timer);
      w.reject(e);
    }
    this.socket.destroy();
  }
}
