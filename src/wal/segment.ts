/**
 * Segment files: naming, the 16-byte header, creation, recovery scan and sequential
 * reads. A segment is `wal-<16 hex first index>.log`: the header, then records back
 * to back (record.ts), then, in the last segment only, zero fill (FORMAT.md).
 *
 * Segments are preallocated (written full of zeros and synced before they get their
 * name, like etcd's): appends then overwrite allocated blocks without changing the
 * file size, so each fdatasync flushes data only, not the journal.
 *
 * Invariants:
 * - a segment file under its final name always has a whole header: it is created
 *   beside its final name and renamed into place;
 * - records in a segment have contiguous indices starting at the header's first index,
 *   and epochs that never decrease;
 * - only the last segment can end in a torn record or zero fill; a segment becomes
 *   non-last only after it is cut to its last record and synced.
 */
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { GfsError } from '../common/errors';
import { limits } from '../common/limits';
import { fsyncDir, writeFileAtomically, writeFully } from './durable-fs';
import { decodeRecord, mayStartRecord, RECORD_LENGTH_BYTES, RECORD_LENGTH_MIN, type WalRecord } from './record';

export const SEGMENT_MAGIC = Buffer.from('GFSWAL', 'latin1');
export const SEGMENT_FORMAT_VERSION = 1;
export const SEGMENT_HEADER_BYTES = 16;

const SEGMENT_NAME = /^wal-([0-9a-f]{16})\.log$/;
const SEGMENT_TEMP_SUFFIX = '.tmp';
/** The next segment while it is being preallocated, before it knows its first index. */
export const PREALLOCATED_SEGMENT_NAME = 'wal-preallocated.tmp';
/** Zero fill is written in pieces this big. */
const ZERO_PIECE_BYTES = limits.walIoPieceBytes;
/** Sequential reads fetch this much at a time: many records per syscall, bounded memory per reader. */
const READ_CHUNK_BYTES = limits.walIoPieceBytes;

export function hex16(n: number): string {
  assert(Number.isSafeInteger(n) && n >= 0);
  return n.toString(16).padStart(16, '0');
}

export function segmentFileName(firstIndex: number): string {
  return `wal-${hex16(firstIndex)}.log`;
}

/** The first index a segment file name declares, or undefined for any other name. */
export function parseSegmentFileName(name: string): number | undefined {
  const m = SEGMENT_NAME.exec(name);
  if (!m) return undefined;
  const n = Number.parseInt(m[1]!, 16);
  return Number.isSafeInteger(n) ? n : undefined;
}

export function isSegmentTempFileName(name: string): boolean {
  if (name === PREALLOCATED_SEGMENT_NAME) return true;
  return name.endsWith(SEGMENT_TEMP_SUFFIX) && SEGMENT_NAME.test(name.slice(0, -SEGMENT_TEMP_SUFFIX.length));
}

export function encodeSegmentHeader(firstIndex: number): Buffer {
  const header = Buffer.alloc(SEGMENT_HEADER_BYTES);
  SEGMENT_MAGIC.copy(header, 0);
  header.writeUInt8(SEGMENT_FORMAT_VERSION, 6);
  header.writeUInt8(0, 7); // reserved
  header.writeBigUInt64LE(BigInt(firstIndex), 8);
  return header;
}

function corrupt(file: string, offset: number, reason: string): GfsError {
  return new GfsError('CORRUPT', `WAL segment ${file} is corrupt at byte offset ${offset}: ${reason}`, {
    detail: { file, offset: String(offset) },
  });
}

function checkSegmentHeader(file: string, data: Buffer, nameFirstIndex: number): void {
  if (data.length < SEGMENT_HEADER_BYTES) {
    throw corrupt(file, 0, `file is ${data.length} bytes, shorter than the ${SEGMENT_HEADER_BYTES}-byte header`);
  }
  if (!data.subarray(0, 6).equals(SEGMENT_MAGIC)) throw corrupt(file, 0, 'bad magic (not a gfs WAL segment)');
  const version = data.readUInt8(6);
  if (version !== SEGMENT_FORMAT_VERSION) {
    throw corrupt(file, 6, `unsupported format version ${version} (this build reads ${SEGMENT_FORMAT_VERSION})`);
  }
  const headerFirstIndex = data.readBigUInt64LE(8);
  if (headerFirstIndex !== BigInt(nameFirstIndex)) {
    throw corrupt(file, 8, `header first index ${headerFirstIndex} does not match the file name (${nameFirstIndex})`);
  }
}

/**
 * Writes `bytes` of zeros to PREALLOCATED_SEGMENT_NAME in `dir` and syncs them; the
 * file stays open for installSegment. Nothing refers to it until it is renamed.
 */
export async function preallocateSegment(dir: string, bytes: number): Promise<FileHandle> {
  const fh = await fsp.open(path.join(dir, PREALLOCATED_SEGMENT_NAME), 'w+');
  try {
    const zeros = Buffer.alloc(Math.min(ZERO_PIECE_BYTES, bytes));
    for (let offset = 0; offset < bytes; offset += zeros.length) {
      await writeFully(fh, zeros.subarray(0, Math.min(zeros.length, bytes - offset)), offset);
    }
    await fh.sync();
    return fh;
  } catch (e) {
    await fh.close();
    throw e;
  }
}

/**
 * Turns a preallocated file into the segment starting at `firstIndex`: header written
 * and synced first, then the rename and the directory sync, so a segment under its
 * final name always has a whole header. Returns the handle, open for appending.
 */
export async function installSegment(dir: string, preallocated: FileHandle, firstIndex: number): Promise<FileHandle> {
  await writeFully(preallocated, encodeSegmentHeader(firstIndex), 0);
  await preallocated.datasync();
  await fsp.rename(path.join(dir, PREALLOCATED_SEGMENT_NAME), path.join(dir, segmentFileName(firstIndex)));
  await fsyncDir(dir);
  return preallocated;
}

/** Creates a segment without preallocation (golden files and tools), atomically. */
export async function createSegment(dir: string, firstIndex: number): Promise<FileHandle> {
  const finalPath = path.join(dir, segmentFileName(firstIndex));
  await writeFileAtomically(finalPath, finalPath + SEGMENT_TEMP_SUFFIX, [encodeSegmentHeader(firstIndex)]);
  return fsp.open(finalPath, 'r+');
}

export interface SegmentScan {
  file: string;
  firstIndex: number;
  /** firstIndex - 1 when the segment holds no record. */
  lastIndex: number;
  /** Header plus every good record: where the next record goes. */
  validBytes: number;
  /** Zero fill after the last record (preallocated space), last segment only. */
  zeroFillBytes: number;
  /** Set when the last segment ends in a torn record that recovery must cut. */
  tornTail?: { offset: number; bytes: number; reason: string };
}

export interface ScanOptions {
  /** Only the last segment may end in a torn record; anywhere else a bad record is corruption. */
  isLast: boolean;
  /** Epoch of the record before this segment (0 for none): epochs never decrease. */
  previousEpoch: number;
  onRecord?: (record: WalRecord) => void;
}

/**
 * Verifies a whole segment: header, every checksum, index contiguity and epoch order.
 * A bad record in the last segment with no good record anywhere after it is a torn
 * tail (reported, not cut: the caller truncates). Anything else throws CORRUPT naming
 * the file and byte offset. Reads the file whole: a segment is bounded by the roll size
 * plus one flush.
 */
export async function scanSegment(file: string, nameFirstIndex: number, opts: ScanOptions): Promise<SegmentScan> {
  const data = await fsp.readFile(file);
  checkSegmentHeader(file, data, nameFirstIndex);
  let offset = SEGMENT_HEADER_BYTES;
  let expectedIndex = nameFirstIndex;
  let epoch = opts.previousEpoch;
  while (offset < data.length) {
    const decoded = decodeRecord(data, offset);
    if (!decoded.ok) {
      const reason = decoded.reason;
      if (isZeroFrom(data, offset)) {
        if (!opts.isLast) throw corrupt(file, offset, 'zero fill in a segment that is not the last');
        return { file, firstIndex: nameFirstIndex, lastIndex: expectedIndex - 1, validBytes: offset, zeroFillBytes: data.length - offset };
      }
      if (!opts.isLast) throw corrupt(file, offset, `${reason} in a segment that is not the last`);
      const later = findGoodRecordAfter(data, offset + 1);
      if (later !== undefined) {
        throw corrupt(file, offset, `${reason}, yet a good record follows at byte offset ${later}, so this is not a torn tail`);
      }
      return {
        file, firstIndex: nameFirstIndex, lastIndex: expectedIndex - 1, validBytes: offset, zeroFillBytes: 0,
        tornTail: { offset, bytes: data.length - offset, reason },
      };
    }
    const { record } = decoded;
    // A good checksum means these bytes were written whole: a wrong index or epoch is
    // a bug or a foreign file, never a torn write.
    if (record.index !== expectedIndex) {
      throw corrupt(file, offset, `record has index ${record.index}, expected ${expectedIndex}`);
    }
    if (record.epoch < epoch) {
      throw corrupt(file, offset, `record ${record.index} has epoch ${record.epoch}, lower than the previous ${epoch}`);
    }
    opts.onRecord?.(record);
    epoch = record.epoch;
    expectedIndex++;
    offset = decoded.end;
  }
  return { file, firstIndex: nameFirstIndex, lastIndex: expectedIndex - 1, validBytes: offset, zeroFillBytes: 0 };
}

const ZEROS = Buffer.alloc(limits.walZeroScanBytes);

/** Offset of the last non-zero byte, or -1 when all are zero. */
function lastNonZeroByte(data: Buffer): number {
  let end = data.length;
  while (end > 0) {
    const start = Math.max(0, end - ZEROS.length);
    if (!data.subarray(start, end).equals(ZEROS.subarray(0, end - start))) {
      for (let i = end - 1; i >= start; i--) if (data[i] !== 0) return i;
    }
    end = start;
  }
  return -1;
}

/** Whether every byte from `from` to the end is zero. */
export function isZeroFrom(data: Buffer, from: number): boolean {
  for (let offset = from; offset < data.length; offset += ZEROS.length) {
    const piece = data.subarray(offset, Math.min(offset + ZEROS.length, data.length));
    if (!piece.equals(ZEROS.subarray(0, piece.length))) return false;
  }
  return true;
}

/**
 * The offset of the first whole record with a good checksum at or after `from`, if any.
 * This is what separates a torn tail (nothing good after the damage) from damage in
 * the middle. A record's length field is not zero, so the search stops at the last
 * non-zero byte (the zero fill of a preallocated segment is skipped at memcmp speed),
 * and cheap field checks (mayStartRecord) keep junk from being hashed at almost every
 * offset, so the search stays linear however large a torn tail is.
 */
export function findGoodRecordAfter(data: Buffer, from: number): number | undefined {
  const lastStart = Math.min(data.length - (RECORD_LENGTH_BYTES + RECORD_LENGTH_MIN), lastNonZeroByte(data));
  for (let offset = from; offset <= lastStart; offset++) {
    if (!mayStartRecord(data, offset)) continue;
    if (decodeRecord(data, offset).ok) return offset;
  }
  return undefined;
}

export interface PositionedRecord {
  record: WalRecord;
  /** Byte offset of the record in its segment, and of the byte after it. */
  offset: number;
  end: number;
}

/**
 * Reads the records of one segment in order between two byte offsets that lie on
 * record boundaries (both known from an earlier scan or flush). Payloads are copies,
 * independent of the read buffers. A bad record inside the range throws CORRUPT.
 */
export async function* readSegmentRecords(
  file: string,
  startOffset: number,
  endOffset: number,
): AsyncGenerator<PositionedRecord> {
  assert(startOffset >= SEGMENT_HEADER_BYTES && startOffset <= endOffset);
  const fh = await fsp.open(file, 'r');
  try {
    let buf = Buffer.alloc(0);
    let bufStart = startOffset; // file offset of buf[0]
    let offset = startOffset;
    while (offset < endOffset) {
      const decoded = decodeRecord(buf, offset - bufStart);
      if (decoded.ok) {
        const { record } = decoded;
        yield {
          record: { ...record, payload: Buffer.from(record.payload) },
          offset,
          end: bufStart + decoded.end,
        };
        offset = bufStart + decoded.end;
        continue;
      }
      if (!decoded.incomplete) throw corrupt(file, offset, decoded.reason);
      // Refill: keep the unread tail, read at least a chunk, and enough for the whole record.
      const have = bufStart + buf.length - offset;
      const knownLength = have >= RECORD_LENGTH_BYTES ? buf.readUInt32LE(offset - bufStart) + RECORD_LENGTH_BYTES : 0;
      const want = Math.min(Math.max(READ_CHUNK_BYTES, knownLength), endOffset - offset);
      if (want <= have) throw corrupt(file, offset, `${decoded.reason} before the expected end at ${endOffset}`);
      const next = Buffer.allocUnsafe(want);
      buf.copy(next, 0, offset - bufStart);
      let filled = have;
      while (filled < want) {
        const { bytesRead } = await fh.read(next, filled, want - filled, offset + filled);
        if (bytesRead === 0) throw corrupt(file, offset + filled, `file ends before the expected end at ${endOffset}`);
        filled += bytesRead;
      }
      buf = next;
      bufStart = offset;
    }
  } finally {
    await fh.close();
  }
}
