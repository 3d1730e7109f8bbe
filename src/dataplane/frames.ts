/**
 * Data-plane framing (spec: src/chunkserver/DATA-PLANE.md). Chunk bytes travel over
 * plain TCP in frames, not over gRPC: a framed socket reaches the disk's speed with a
 * third of the CPU that a 64 KiB-window HTTP/2 stream needs (see the README).
 *
 *   frame := [u32 bodyLength][u8 type][u32 headerLength][header: UTF-8 JSON][payload]
 *
 * bodyLength counts everything after itself.
 *
 * Invariants:
 * - The parser refuses a frame larger than limits.frameBytesMax (or a header larger
 *   than limits.frameHeaderBytesMax, or one that is not a JSON object) before buffering
 *   it, so a peer cannot make us allocate at will.
 * - Frames come out whole and in the order their bytes arrived, however the stream was
 *   cut; each frame's bytes are copied once.
 * - A pooled frame buffer goes back to its pool only after its last holder released it;
 *   a release without a matching retain is a programming error (assert).
 */
import { ERROR_TABLE, GfsError, type ErrorCode } from '../common/errors';
import assert from 'node:assert/strict';
import { limits } from '../common/limits';
import type { BufferPool } from '../common/buffer-pool';

export const FrameType = {
  WRITE_OPEN: 1,
  DATA: 2,
  SYNC: 3,
  CLOSE: 4,
  SEAL: 5,
  LEASE: 6,
  APPEND: 7,
  APPEND_MORE: 8,
  FOLLOW: 9,
  READ: 10,
  CHUNK_STAT: 11,
  TRUNCATE: 12,
  RIDS: 13,
  OPEN_OK: 20,
  SYNC_ACK: 21,
  READ_DATA: 22,
  READ_END: 23,
  SEAL_OK: 24,
  LEASE_OK: 25,
  APPEND_OK: 26,
  APPEND_FAIL: 27,
  FOLLOW_DATA: 28,
  FOLLOW_END: 29,
  ERROR: 30,
  CHUNK_STAT_OK: 31,
  TRUNCATE_OK: 32,
  CLOSE_OK: 33,
} as const;
export type FrameTypeValue = (typeof FrameType)[keyof typeof FrameType];

export interface Frame {
  type: number;
  header: Record<string, unknown>;
  payload: Buffer;
  /** The encoded frame itself, so a chain hop can forward it without re-encoding. */
  raw: Buffer;
  /**
   * For frames in pooled buffers: take one more reference / drop one. The parser
   * holds the first reference and drops it after the frame's handler returns, so a
   * handler that keeps `raw` or `payload` beyond that must retain() and later release().
   */
  retain(): void;
  release(): void;
}

/** bodyLength, type, headerLength: the bytes before a frame's header. */
export const FRAME_PREFIX_BYTES = 4 + 1 + 4;
const PREFIX_BYTES = FRAME_PREFIX_BYTES;
const EMPTY = Buffer.alloc(0);

/**
 * Writes a frame's prefix at the start of `out`; the header follows it, then the
 * payload. The one place the prefix layout is written (a sender filling a frame in
 * place uses it too).
 */
export function writeFramePrefix(out: Buffer, type: number, headerBytes: number, payloadBytes: number): void {
  out.writeUInt32LE(1 + 4 + headerBytes + payloadBytes, 0);
  out.writeUInt8(type, 4);
  out.writeUInt32LE(headerBytes, 5);
}

/** Encodes a frame. `payload` may be given as several buffers to avoid a copy. */
export function encodeFrame(type: number, header: object, payload: Buffer | Buffer[] = EMPTY): Buffer {
  const headerBytes = Buffer.from(JSON.stringify(header));
  const parts = Array.isArray(payload) ? payload : [payload];
  let payloadBytes = 0;
  for (const p of parts) payloadBytes += p.length;
  const out = Buffer.allocUnsafe(PREFIX_BYTES + headerBytes.length + payloadBytes);
  writeFramePrefix(out, type, headerBytes.length, payloadBytes);
  headerBytes.copy(out, PREFIX_BYTES);
  let at = PREFIX_BYTES + headerBytes.length;
  for (const p of parts) { p.copy(out, at); at += p.length; }
  return out;
}

/**
 * Incremental parser: feed socket chunks, get whole frames. Each frame's bytes are
 * copied once, as they arrive, into a buffer of the frame's size; large frames use a
 * BufferPool when one is given (see Frame.retain/release).
 */
export class FrameParser {
  private lengthBytes = Buffer.alloc(4);
  private lengthHave = 0;
  private frame: Buffer | undefined;
  private frameHave = 0;
  private frameNeed = 0;
  private pooled = false;

  constructor(private readonly pool?: BufferPool) {}

  /** Bytes of a frame not yet complete. */
  get buffered(): number {
    return this.lengthHave + (this.frame ? this.frameHave : 0);
  }

  push(chunk: Buffer): Frame[] {
    const frames: Frame[] = [];
    let at = 0;
    while (at < chunk.length) {
      if (!this.frame) {
        const n = Math.min(4 - this.lengthHave, chunk.length - at);
        chunk.copy(this.lengthBytes, this.lengthHave, at, at + n);
        this.lengthHave += n;
        at += n;
        if (this.lengthHave < 4) break;
        const bodyLength = this.lengthBytes.readUInt32LE(0);
        if (bodyLength < 5 || bodyLength + 4 > limits.frameBytesMax) {
          throw new GfsError('PROTOCOL', `bad frame length ${bodyLength}`);
        }
        this.frameNeed = bodyLength + 4;
        this.pooled = this.pool !== undefined && this.frameNeed > POOL_THRESHOLD_BYTES && this.frameNeed <= this.pool.bufferBytes;
        this.frame = this.pooled ? this.pool!.get() : Buffer.allocUnsafe(this.frameNeed);
        this.lengthBytes.copy(this.frame, 0);
        this.frameHave = 4;
        this.lengthHave = 0;
      }
      const n = Math.min(this.frameNeed - this.frameHave, chunk.length - at);
      chunk.copy(this.frame, this.frameHave, at, at + n);
      this.frameHave += n;
      at += n;
      if (this.frameHave === this.frameNeed) {
        const buf = this.frame;
        this.frame = undefined;
        frames.push(decodeFrame(buf.subarray(0, this.frameNeed), this.pooled ? refCounted(buf, this.pool!) : NOT_POOLED));
      }
    }
    return frames;
  }
}

/** Frames smaller than this are not worth pooling (headers, acks, small appends). */
const POOL_THRESHOLD_BYTES = 64 * 1024;

const NOT_POOLED = { retain(): void {}, release(): void {} };

function refCounted(buf: Buffer, pool: BufferPool): { retain(): void; release(): void } {
  let refs = 1;
  return {
    retain(): void {
      assert(refs > 0, 'retain of a released frame');
      refs++;
    },
    release(): void {
      assert(refs > 0, 'frame released more often than retained');
      if (--refs === 0) pool.put(buf);
    },
  };
}

function decodeFrame(raw: Buffer, refs: { retain(): void; release(): void }): Frame {
  const type = raw.readUInt8(4);
  const headerLength = raw.readUInt32LE(5);
  if (headerLength > limits.frameHeaderBytesMax || PREFIX_BYTES + headerLength > raw.length) {
    throw new GfsError('PROTOCOL', `bad frame header length ${headerLength}`);
  }
  let header: Record<string, unknown>;
  try {
    header = headerLength === 0 ? {} : JSON.parse(raw.toString('utf8', PREFIX_BYTES, PREFIX_BYTES + headerLength));
  } catch {
    throw new GfsError('PROTOCOL', 'frame header is not JSON');
  }
  if (typeof header !== 'object' || header === null) throw new GfsError('PROTOCOL', 'frame header is not an object');
  return { type, header, payload: raw.subarray(PREFIX_BYTES + headerLength), raw, retain: refs.retain, release: refs.release };
}

/** Only the prefix and header of a frame, for writing a large payload without copying it. */
export function encodeFrameHead(type: number, header: object, payloadBytes: number): Buffer {
  const headerBytes = Buffer.from(JSON.stringify(header));
  const out = Buffer.allocUnsafe(PREFIX_BYTES + headerBytes.length);
  writeFramePrefix(out, type, headerBytes.length, payloadBytes);
  headerBytes.copy(out, PREFIX_BYTES);
  return out;
}

/** Block sums travel in DATA payloads as u64 little-endian, before the data. */
export function encodeSums(sums: bigint[]): Buffer {
  const out = Buffer.allocUnsafe(sums.length * 8);
  for (let i = 0; i < sums.length; i++) out.writeBigUInt64LE(sums[i]!, i * 8);
  return out;
}

export function decodeSums(buf: Buffer, count: number): bigint[] {
  if (buf.length < count * 8) throw new GfsError('PROTOCOL', 'DATA frame shorter than its sums');
  const sums = new Array<bigint>(count);
  for (let i = 0; i < count; i++) sums[i] = buf.readBigUInt64LE(i * 8);
  return sums;
}

export function errorFrame(e: unknown, extra: Record<string, unknown> = {}): Buffer {
  const code = e instanceof GfsError ? e.code : 'INTERNAL';
  const message = e instanceof Error ? e.message : String(e);
  return encodeFrame(FrameType.ERROR, { code, message, ...extra });
}

export function frameError(header: Record<string, unknown>): GfsError {
  const code = typeof header.code === 'string' && header.code in ERROR_TABLE ? (header.code as ErrorCode) : 'INTERNAL';
  const detail: Record<string, string> = {};
  for (const [k, v] of Object.entries(header)) if (k !== 'code' && k !== 'message' && typeof v === 'string') detail[k] = v;
  return new GfsError(code, String(header.message ?? code), { detail });
}
