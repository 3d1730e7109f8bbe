/**
 * Checkpoint files: `checkpoint-<16 hex index>.snap`, a 48-byte header and the opaque
 * image of the state after applying every record with index <= `index` (FORMAT.md).
 *
 * Invariants:
 * - a checkpoint file under its final name is whole: it is written beside its final
 *   name, fsynced, renamed, and the directory fsynced;
 * - the header checksum covers the header, the image checksum covers the image, and
 *   the file is exactly header + image; anything else is corrupt.
 */
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { createXxh64, xxh64 } from '../common/checksum';
import { GfsError } from '../common/errors';
import { limits } from '../common/limits';
import { writeFileAtomically } from './durable-fs';
import { hex16 } from './segment';

export interface Checkpoint {
  index: number;
  epoch: number;
  image: Uint8Array;
}

export const CHECKPOINT_MAGIC = Buffer.from('GFSCKP', 'latin1');
export const CHECKPOINT_FORMAT_VERSION = 1;
export const CHECKPOINT_HEADER_BYTES = 48;

const CHECKPOINT_NAME = /^checkpoint-([0-9a-f]{16})\.snap$/;
const CHECKPOINT_TEMP_SUFFIX = '.tmp';
/** A checkpoint that fails verification is renamed aside with this suffix, for inspection. */
export const CHECKPOINT_CORRUPT_SUFFIX = '.corrupt';
/** Images are hashed and verified in pieces so that neither wasm memory nor reads grow with the image. */
const HASH_PIECE_BYTES = limits.walIoPieceBytes;

export function checkpointFileName(index: number): string {
  return `checkpoint-${hex16(index)}.snap`;
}

export function parseCheckpointFileName(name: string): number | undefined {
  const m = CHECKPOINT_NAME.exec(name);
  if (!m) return undefined;
  const n = Number.parseInt(m[1]!, 16);
  return Number.isSafeInteger(n) ? n : undefined;
}

export function isCheckpointTempFileName(name: string): boolean {
  return name.endsWith(CHECKPOINT_TEMP_SUFFIX) && CHECKPOINT_NAME.test(name.slice(0, -CHECKPOINT_TEMP_SUFFIX.length));
}

function hashInPieces(data: Uint8Array): bigint {
  const hasher = createXxh64();
  for (let offset = 0; offset < data.length; offset += HASH_PIECE_BYTES) {
    hasher.update(data.subarray(offset, offset + HASH_PIECE_BYTES));
  }
  return hasher.digest();
}

export function encodeCheckpointHeader(cp: Checkpoint): Buffer {
  assert(Number.isSafeInteger(cp.index) && cp.index >= 0, `bad checkpoint index ${cp.index}`);
  assert(Number.isSafeInteger(cp.epoch) && cp.epoch >= 0, `bad checkpoint epoch ${cp.epoch}`);
  const header = Buffer.alloc(CHECKPOINT_HEADER_BYTES);
  CHECKPOINT_MAGIC.copy(header, 0);
  header.writeUInt8(CHECKPOINT_FORMAT_VERSION, 6);
  header.writeUInt8(0, 7); // reserved
  header.writeBigUInt64LE(BigInt(cp.index), 8);
  header.writeBigUInt64LE(BigInt(cp.epoch), 16);
  header.writeBigUInt64LE(BigInt(cp.image.length), 24);
  header.writeBigUInt64LE(hashInPieces(cp.image), 32);
  header.writeBigUInt64LE(xxh64(header.subarray(0, 40)), 40);
  return header;
}

interface CheckpointHeader {
  index: number;
  epoch: number;
  imageBytes: number;
  imageChecksum: bigint;
}

function corrupt(file: string, reason: string): GfsError {
  return new GfsError('CORRUPT', `WAL checkpoint ${file} is corrupt: ${reason}`, { detail: { file } });
}

function readSafeU64(file: string, header: Buffer, offset: number, field: string): number {
  const v = header.readBigUInt64LE(offset);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw corrupt(file, `${field} ${v} is out of range`);
  return Number(v);
}

function decodeCheckpointHeader(file: string, header: Buffer, nameIndex: number, fileBytes: number): CheckpointHeader {
  if (header.length < CHECKPOINT_HEADER_BYTES) {
    throw corrupt(file, `file is ${header.length} bytes, shorter than the ${CHECKPOINT_HEADER_BYTES}-byte header`);
  }
  if (!header.subarray(0, 6).equals(CHECKPOINT_MAGIC)) throw corrupt(file, 'bad magic (not a gfs checkpoint)');
  // The version comes before the header checksum: another version may lay the header out differently.
  const version = header.readUInt8(6);
  if (version !== CHECKPOINT_FORMAT_VERSION) {
    throw corrupt(file, `unsupported format version ${version} (this build reads ${CHECKPOINT_FORMAT_VERSION})`);
  }
  if (header.readBigUInt64LE(40) !== xxh64(header.subarray(0, 40))) throw corrupt(file, 'header checksum mismatch');
  const index = readSafeU64(file, header, 8, 'index');
  const epoch = readSafeU64(file, header, 16, 'epoch');
  const imageBytes = readSafeU64(file, header, 24, 'image length');
  if (index !== nameIndex) throw corrupt(file, `header index ${index} does not match the file name (${nameIndex})`);
  if (CHECKPOINT_HEADER_BYTES + imageBytes !== fileBytes) {
    throw corrupt(file, `file is ${fileBytes} bytes, header says ${CHECKPOINT_HEADER_BYTES + imageBytes}`);
  }
  return { index, epoch, imageBytes, imageChecksum: header.readBigUInt64LE(32) };
}

/**
 * Writes the checkpoint atomically into `dir`; `afterRename` runs between the rename and
 * the directory fsync (the `wal.afterCheckpointRename` failpoint).
 */
export async function writeCheckpointFile(dir: string, cp: Checkpoint, afterRename?: () => Promise<void>): Promise<string> {
  const finalPath = path.join(dir, checkpointFileName(cp.index));
  await writeFileAtomically(finalPath, finalPath + CHECKPOINT_TEMP_SUFFIX, [encodeCheckpointHeader(cp), cp.image], afterRename);
  return finalPath;
}

/** Verifies a checkpoint file by streaming it (memory does not grow with the image). */
export async function verifyCheckpointFile(file: string, nameIndex: number): Promise<{ index: number; epoch: number }> {
  const fh = await fsp.open(file, 'r');
  try {
    const { size } = await fh.stat();
    const header = Buffer.alloc(Math.min(size, CHECKPOINT_HEADER_BYTES));
    await fh.read(header, 0, header.length, 0);
    const h = decodeCheckpointHeader(file, header, nameIndex, size);
    const hasher = createXxh64();
    const piece = Buffer.allocUnsafe(Math.min(HASH_PIECE_BYTES, Math.max(h.imageBytes, 1)));
    for (let offset = 0; offset < h.imageBytes;) {
      const { bytesRead } = await fh.read(piece, 0, Math.min(piece.length, h.imageBytes - offset), CHECKPOINT_HEADER_BYTES + offset);
      if (bytesRead === 0) throw corrupt(file, 'file ended while reading the image');
      hasher.update(piece.subarray(0, bytesRead));
      offset += bytesRead;
    }
    if (hasher.digest() !== h.imageChecksum) throw corrupt(file, 'image checksum mismatch');
    return { index: h.index, epoch: h.epoch };
  } finally {
    await fh.close();
  }
}

/** Reads and verifies a whole checkpoint. */
export async function readCheckpointFile(file: string, nameIndex: number): Promise<Checkpoint> {
  const data = await fsp.readFile(file);
  const h = decodeCheckpointHeader(file, data.subarray(0, CHECKPOINT_HEADER_BYTES), nameIndex, data.length);
  const image = data.subarray(CHECKPOINT_HEADER_BYTES);
  if (hashInPieces(image) !== h.imageChecksum) throw corrupt(file, 'image checksum mismatch');
  return { index: h.index, epoch: h.epoch, image };
}
