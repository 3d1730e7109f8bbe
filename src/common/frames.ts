/**
 * Data-plane framing (spec: src/chunkserver/DATA-PLANE.md). Chunk bytes travel over
 * plain TCP in frames, not over gRPC: a framed socket reaches the disk's speed with a
 * third of the CPU that a 64 KiB-window HTTP/2 stream needs (see the README).
 *
 *   frame := [u32 bodyLength][u8 type][u32 headerLength][header: UTF-8 JSON][payload]
 *
 * bodyLength counts everything after itself. The parser refuses a frame larger than
 * limits.frameBytesMax before buffering it, so a peer cannot make us allocate at will.
 */
import { ERROR_TABLE, GfsError, type ErrorCode } from './errors';
import { limits } from './limits';

export const FrameType = {
  WRITE_OPEN: 1,
  DATA: 2,
  SYNC: 3,
  CLOSE: 4,
  READ: 10,
  OPEN_OK: 20,
  SYNC_ACK: 21,
  READ_DATA: 22,
  READ_END: 23,
  ERROR: 30,
} as const;
export type FrameTypeValue = (typeof FrameType)[keyof typeof FrameType];

export interface Frame {
  type: number;
  header: Record<string, unknown>;
  payload: Buffer;
  /** The encoded frame itself, so a chain hop can forward it without re-encoding. */
  raw: Buffer;
}

const PREFIX_BYTES = 4 + 1 + 4;
const EMPTY = Buffer.alloc(0);

/** Encodes a frame. `payload` may be given as several buffers to avoid a copy. */
export function encodeFrame(type: number, header: object, payload: Buffer | Buffer[] = EMPTY): Buffer {
  const headerBytes = Buffer.from(JSON.stringify(header));
  const parts = Array.isArray(payload) ? payload : [payload];
  let payloadBytes = 0;
  for (const p of parts) payloadBytes += p.length;
  const out = Buffer.allocUnsafe(PREFIX_BYTES + headerBytes.length + payloadBytes);
  out.writeUInt32LE(1 + 4 + headerBytes.length + payloadBytes, 0);
  out.writeUInt8(type, 4);
  out.writeUInt32LE(headerBytes.length, 5);
  headerBytes.copy(out, PREFIX_BYTES);
  let at = PREFIX_BYTES + headerBytes.length;
  for (const p of parts) { p.copy(out, at); at += p.length; }
  return out;
}

/**
 * Incremental parser: feed socket chunks, get whole frames. Keeps a list of pending
 * buffers and concatenates once per frame (one copy per frame, none per socket read).
 */
export class FrameParser {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private needBytes = 0; // total bytes of the frame being assembled, 0 = unknown yet

  push(chunk: Buffer): Frame[] {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    const frames: Frame[] = [];
    for (;;) {
      if (this.needBytes === 0) {
        if (this.pendingBytes < 4) break;
        const head = this.peek(4);
        const bodyLength = head.readUInt32LE(0);
        if (bodyLength < 5 || bodyLength + 4 > limits.frameBytesMax) {
          throw new GfsError('PROTOCOL', `bad frame length ${bodyLength}`);
        }
        this.needBytes = 4 + bodyLength;
      }
      if (this.pendingBytes < this.needBytes) break;
      const raw = this.take(this.needBytes);
      this.needBytes = 0;
      frames.push(decodeFrame(raw));
    }
    return frames;
  }

  private peek(n: number): Buffer {
    if (this.pending[0]!.length >= n) return this.pending[0]!;
    return Buffer.concat(this.pending, n);
  }

  private take(n: number): Buffer {
    const first = this.pending[0]!;
    if (first.length === n) {
      this.pending.shift();
      this.pendingBytes -= n;
      return first;
    }
    if (first.length > n) {
      this.pending[0] = first.subarray(n);
      this.pendingBytes -= n;
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const b = this.pending[0]!;
      const want = n - at;
      if (b.length <= want) {
        b.copy(out, at);
        at += b.length;
        this.pending.shift();
      } else {
        b.copy(out, at, 0, want);
        this.pending[0] = b.subarray(want);
        at += want;
      }
    }
    this.pendingBytes -= n;
    return out;
  }
}

function decodeFrame(raw: Buffer): Frame {
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
  return { type, header, payload: raw.subarray(PREFIX_BYTES + headerLength), raw };
}

/** Only the prefix and header of a frame, for writing a large payload without copying it. */
export function encodeFrameHead(type: number, header: object, payloadBytes: number): Buffer {
  const headerBytes = Buffer.from(JSON.stringify(header));
  const out = Buffer.allocUnsafe(PREFIX_BYTES + headerBytes.length);
  out.writeUInt32LE(1 + 4 + headerBytes.length + payloadBytes, 0);
  out.writeUInt8(type, 4);
  out.writeUInt32LE(headerBytes.length, 5);
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
