/**
 * Record-id entries: the (chunk offset, length, writer, seq) of one appended record.
 * The same bytes are a RIDS frame's payload (primary → secondaries, DATA-PLANE.md) and
 * the entries of a chunk's `.rid` sidecar (FORMAT.md), so a replica appends what it
 * received as it is.
 *
 *   entry := entryBytes:u16le chunkOffset:u32le length:u32le seq:u64le writerBytes:u8 writer:UTF-8
 *
 * Invariants: entryBytes = 19 + writerBytes; a writer is at most RECORD_WRITER_BYTES_MAX
 * bytes (empty for a record without an id, then seq is 0); decoding stops at the first
 * incomplete or malformed entry and says where (a torn tail is cut, never misread).
 */
import { GfsError } from '../common/errors';
import { limits } from '../common/limits';

export interface RecordIdEntry { offset: number; length: number; writer: string; seq: number }

export const RECORD_ID_FIXED_BYTES = 19;
/** A writer id's bytes (the entry's u8 field could hold 255). */
export const RECORD_WRITER_BYTES_MAX = limits.appendWriterIdBytesMax;

export function encodeRecordIds(entries: readonly RecordIdEntry[]): Buffer {
  const writers = entries.map((e) => Buffer.from(e.writer, 'utf8'));
  let total = 0;
  for (const w of writers) {
    if (w.length > RECORD_WRITER_BYTES_MAX) throw new GfsError('INVALID_ARGUMENT', `record writer id longer than ${RECORD_WRITER_BYTES_MAX} bytes`);
    total += RECORD_ID_FIXED_BYTES + w.length;
  }
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  entries.forEach((e, i) => {
    const w = writers[i]!;
    out.writeUInt16LE(RECORD_ID_FIXED_BYTES + w.length, at);
    out.writeUInt32LE(e.offset, at + 2);
    out.writeUInt32LE(e.length, at + 6);
    out.writeBigUInt64LE(BigInt(e.seq), at + 10);
    out.writeUInt8(w.length, at + 18);
    w.copy(out, at + RECORD_ID_FIXED_BYTES);
    at += RECORD_ID_FIXED_BYTES + w.length;
  });
  return out;
}

/** Decodes entries; `validBytes` is where the first incomplete or malformed entry starts (or the end). */
export function decodeRecordIds(buf: Buffer): { entries: RecordIdEntry[]; validBytes: number } {
  const entries: RecordIdEntry[] = [];
  let at = 0;
  while (at + RECORD_ID_FIXED_BYTES <= buf.length) {
    const entryBytes = buf.readUInt16LE(at);
    const writerBytes = buf.readUInt8(at + 18);
    if (writerBytes > RECORD_WRITER_BYTES_MAX || entryBytes !== RECORD_ID_FIXED_BYTES + writerBytes) break;
    if (at + entryBytes > buf.length) break;
    const seq = buf.readBigUInt64LE(at + 10);
    if (seq > BigInt(Number.MAX_SAFE_INTEGER)) break;
    entries.push({
      offset: buf.readUInt32LE(at + 2),
      length: buf.readUInt32LE(at + 6),
      seq: Number(seq),
      writer: buf.toString('utf8', at + RECORD_ID_FIXED_BYTES, at + entryBytes),
    });
    at += entryBytes;
  }
  return { entries, validBytes: at };
}
