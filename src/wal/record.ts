/**
 * The WAL record codec (layout in FORMAT.md):
 *
 *   offset  size  field
 *   0       4     length    u32 LE, bytes after this field: 25 + payload length
 *   4       8     checksum  u64 LE, xxHash64 (seed 0) of bytes [12, 4 + length)
 *   12      8     epoch     u64 LE
 *   20      8     index     u64 LE
 *   28      1     type      u8
 *   29      n     payload
 *
 * Pure functions over buffers; files and recovery live in segment.ts.
 */
import assert from 'node:assert/strict';
import { xxh64 } from '../common/checksum';
import { limits } from '../common/limits';

export interface WalRecord {
  epoch: number;
  index: number;
  type: number;
  payload: Uint8Array;
}

export const RECORD_LENGTH_BYTES = 4;
export const RECORD_CHECKSUM_BYTES = 8;
/** Bytes in front of the payload: length, checksum, epoch, index, type. */
export const RECORD_HEADER_BYTES = RECORD_LENGTH_BYTES + RECORD_CHECKSUM_BYTES + 8 + 8 + 1;
/** The smallest legal `length` field: a record with an empty payload. */
export const RECORD_LENGTH_MIN = RECORD_HEADER_BYTES - RECORD_LENGTH_BYTES;
/** Whole records (header included) above this are refused on write and treated as damage on read. */
export const RECORD_BYTES_MAX = limits.walRecordBytesMax;
export const RECORD_TYPE_MAX = 0xff;

const OFFSET_CHECKSUM = RECORD_LENGTH_BYTES;
const OFFSET_EPOCH = OFFSET_CHECKSUM + RECORD_CHECKSUM_BYTES;
const OFFSET_INDEX = OFFSET_EPOCH + 8;
const OFFSET_TYPE = OFFSET_INDEX + 8;

const TWO_POW_32 = 0x1_0000_0000;

export function encodedRecordBytes(payloadBytes: number): number {
  return RECORD_HEADER_BYTES + payloadBytes;
}

/**
 * u64 fields hold JS numbers: epochs and indices stay below 2^53 for the life of a
 * cluster, and two u32 writes avoid a BigInt per field on the append path.
 */
function writeU64(buf: Buffer, value: number, offset: number): void {
  assert(Number.isSafeInteger(value) && value >= 0, `u64 field out of range: ${value}`);
  buf.writeUInt32LE(value % TWO_POW_32, offset);
  buf.writeUInt32LE(Math.floor(value / TWO_POW_32), offset + 4);
}

/** Returns the value, or -1 when it does not fit in a safe integer (only damage produces that). */
function readU64(buf: Buffer, offset: number): number {
  const low = buf.readUInt32LE(offset);
  const high = buf.readUInt32LE(offset + 4);
  if (high >= 0x20_0000) return -1;
  return high * TWO_POW_32 + low;
}

/** Writes one record at `offset` in `target` (which must have room) and returns the offset after it. */
export function encodeRecordInto(target: Buffer, offset: number, record: WalRecord): number {
  const total = encodedRecordBytes(record.payload.length);
  assert(offset + total <= target.length, 'record does not fit in the target buffer');
  target.writeUInt32LE(total - RECORD_LENGTH_BYTES, offset);
  writeU64(target, record.epoch, offset + OFFSET_EPOCH);
  writeU64(target, record.index, offset + OFFSET_INDEX);
  target.writeUInt8(record.type, offset + OFFSET_TYPE);
  target.set(record.payload, offset + RECORD_HEADER_BYTES);
  const checksum = xxh64(target.subarray(offset + OFFSET_EPOCH, offset + total));
  target.writeBigUInt64LE(checksum, offset + OFFSET_CHECKSUM);
  return offset + total;
}

/** Encodes records back to back into one buffer: one allocation and one write() per flush. */
export function encodeRecords(records: readonly WalRecord[]): Buffer {
  let total = 0;
  for (const r of records) total += encodedRecordBytes(r.payload.length);
  const out = Buffer.allocUnsafe(total);
  let offset = 0;
  for (const r of records) offset = encodeRecordInto(out, offset, r);
  assert.equal(offset, total);
  return out;
}

export type DecodeResult =
  /** A whole record with a good checksum; `payload` is a view into the input buffer. */
  | { ok: true; record: WalRecord; end: number }
  /**
   * No good record here. `incomplete` means the bytes before `limit` end inside a
   * record whose length field is plausible: either more bytes are coming (a reader
   * mid-file) or this is a torn tail.
   */
  | { ok: false; incomplete: boolean; reason: string };

/**
 * Cheap necessary conditions for a record to start at `offset` (a plausible length that
 * fits, epoch and index below 2^53), checked before paying for a checksum. Random bytes
 * pass with odds of about one in four billion.
 */
export function mayStartRecord(buf: Buffer, offset: number): boolean {
  if (buf.length - offset < RECORD_HEADER_BYTES) return false;
  const length = buf.readUInt32LE(offset);
  if (length < RECORD_LENGTH_MIN || length + RECORD_LENGTH_BYTES > RECORD_BYTES_MAX) return false;
  if (offset + RECORD_LENGTH_BYTES + length > buf.length) return false;
  return buf.readUInt32LE(offset + OFFSET_EPOCH + 4) < 0x20_0000 && buf.readUInt32LE(offset + OFFSET_INDEX + 4) < 0x20_0000;
}

/** Decodes the record starting at `offset`, looking at no byte at or past `limit`. */
export function decodeRecord(buf: Buffer, offset: number, limit: number = buf.length): DecodeResult {
  if (limit - offset < RECORD_LENGTH_BYTES) {
    return { ok: false, incomplete: true, reason: 'partial length field' };
  }
  const length = buf.readUInt32LE(offset);
  if (length < RECORD_LENGTH_MIN) {
    return { ok: false, incomplete: false, reason: `length ${length} is below the minimum ${RECORD_LENGTH_MIN}` };
  }
  if (length + RECORD_LENGTH_BYTES > RECORD_BYTES_MAX) {
    return { ok: false, incomplete: false, reason: `length ${length} exceeds the record limit ${RECORD_BYTES_MAX}` };
  }
  const end = offset + RECORD_LENGTH_BYTES + length;
  if (end > limit) {
    return { ok: false, incomplete: true, reason: `record of ${length} bytes runs past the end of the data` };
  }
  const stored = buf.readBigUInt64LE(offset + OFFSET_CHECKSUM);
  const actual = xxh64(buf.subarray(offset + OFFSET_EPOCH, end));
  if (stored !== actual) {
    return { ok: false, incomplete: false, reason: 'checksum mismatch' };
  }
  const epoch = readU64(buf, offset + OFFSET_EPOCH);
  const index = readU64(buf, offset + OFFSET_INDEX);
  if (epoch < 0 || index < 0) {
    // A good checksum over an impossible value: written by a broken encoder, not by a torn write.
    return { ok: false, incomplete: false, reason: 'epoch or index beyond 2^53 under a good checksum' };
  }
  const type = buf.readUInt8(offset + OFFSET_TYPE);
  const payload = buf.subarray(offset + RECORD_HEADER_BYTES, end);
  return { ok: true, record: { epoch, index, type, payload }, end };
}
