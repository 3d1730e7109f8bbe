/**
 * The on-disk format of one chunk (spec: ./FORMAT.md): names, the `.sum` header
 * slots and the block-sum region. Pure: no I/O, so the store, the fsck tool and the
 * tests share one definition.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { xxh64 } from '../common/checksum';
import { limits } from '../common/limits';

/** Bumped on any change to the layout below; a store refuses headers of other versions. */
export const chunkFormatVersion = 1;

/** ASCII "GFSCHSUM": the first 8 bytes of every valid header slot. */
export const headerMagic = Buffer.from('GFSCHSUM', 'ascii');

/** Bytes of one encoded header. */
export const headerBytes = 64;

/**
 * Distance between the two header slots. Each slot gets its own 4 KiB page, so a
 * torn or garbled page/sector write while one slot is rewritten cannot damage the
 * other one, which is the whole point of keeping two.
 */
export const headerSlotStrideBytes = 4096;

/** Number of alternating header slots: the header with sequence number `seq` lives in slot `seq % 2`. */
export const headerSlotCount = 2;

/** Where the block-sum region starts in a `.sum` file. */
export const blockSumsOffsetBytes = headerSlotStrideBytes * headerSlotCount;

/** Bytes of one stored block sum (u64 little-endian xxHash64). */
export const blockSumBytes = 8;

/** The checksum block size this format version was written with (recorded in every header). */
export const blockBytes = limits.blockBytes;

/** Byte offsets inside an encoded header (see FORMAT.md). */
const field = {
  magic: 0,
  formatVersion: 8,
  reserved: 9, // 3 bytes, zero
  blockBytes: 12, // u32
  handle: 16, // u64
  seq: 24, // u64
  chunkVersion: 32, // u64
  durableLength: 40, // u64
  tailSum: 48, // u64
  headerSum: 56, // u64, xxh64 of bytes [0, 56)
} as const;

export interface ChunkHeader {
  handle: number;
  /** Grows by one with every header written; the valid slot with the highest seq wins. */
  seq: number;
  chunkVersion: number;
  /** Bytes of the `.chk` file that are durable and covered by sums. */
  durableLength: number;
  /** xxh64 of the trailing partial block [fullBlocks * blockBytes, durableLength); 0n when there is none. */
  tailSum: bigint;
}

/** Full 64 KiB blocks in `length` bytes: these have a sum in the block-sum region. */
export function fullBlockCount(length: number): number {
  return Math.floor(length / blockBytes);
}

/** Size a `.sum` file must have (at least) for a chunk of `durableLength` with a header. */
export function sumFileBytes(durableLength: number): number {
  return blockSumsOffsetBytes + fullBlockCount(durableLength) * blockSumBytes;
}

export function headerSlotOffset(seq: number): number {
  return (seq % headerSlotCount) * headerSlotStrideBytes;
}

export function blockSumOffset(blockIndex: number): number {
  return blockSumsOffsetBytes + blockIndex * blockSumBytes;
}

export function encodeHeader(h: ChunkHeader): Buffer {
  assert(Number.isSafeInteger(h.seq) && h.seq >= 1, 'header seq starts at 1');
  assert(h.durableLength >= 0 && h.durableLength <= limits.chunkBytesMax);
  assert(h.durableLength % blockBytes !== 0 || h.tailSum === 0n, 'no tail block means no tail sum');
  const buf = Buffer.alloc(headerBytes);
  headerMagic.copy(buf, field.magic);
  buf.writeUInt8(chunkFormatVersion, field.formatVersion);
  buf.writeUInt32LE(blockBytes, field.blockBytes);
  buf.writeBigUInt64LE(BigInt(h.handle), field.handle);
  buf.writeBigUInt64LE(BigInt(h.seq), field.seq);
  buf.writeBigUInt64LE(BigInt(h.chunkVersion), field.chunkVersion);
  buf.writeBigUInt64LE(BigInt(h.durableLength), field.durableLength);
  buf.writeBigUInt64LE(h.tailSum, field.tailSum);
  buf.writeBigUInt64LE(xxh64(buf.subarray(0, field.headerSum)), field.headerSum);
  return buf;
}

function safeNumber(v: bigint): number | undefined {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : undefined;
}

/**
 * Decodes the header slot `slot` of a `.sum` file's first bytes. Returns undefined for
 * anything that is not a complete, self-consistent header of this format written for
 * `handle` in that slot: a torn, zeroed, bit-flipped or misplaced header is simply
 * not a header.
 */
export function decodeHeaderSlot(sumFilePrefix: Buffer, slot: number, handle: number): ChunkHeader | undefined {
  const start = slot * headerSlotStrideBytes;
  if (sumFilePrefix.length < start + headerBytes) return undefined;
  const buf = sumFilePrefix.subarray(start, start + headerBytes);
  if (!buf.subarray(field.magic, field.magic + headerMagic.length).equals(headerMagic)) return undefined;
  if (buf.readBigUInt64LE(field.headerSum) !== xxh64(buf.subarray(0, field.headerSum))) return undefined;
  if (buf.readUInt8(field.formatVersion) !== chunkFormatVersion) return undefined;
  if (buf.readUInt8(field.reserved) !== 0 || buf.readUInt16LE(field.reserved + 1) !== 0) return undefined;
  if (buf.readUInt32LE(field.blockBytes) !== blockBytes) return undefined;
  const storedHandle = safeNumber(buf.readBigUInt64LE(field.handle));
  const seq = safeNumber(buf.readBigUInt64LE(field.seq));
  const chunkVersion = safeNumber(buf.readBigUInt64LE(field.chunkVersion));
  const durableLength = safeNumber(buf.readBigUInt64LE(field.durableLength));
  const tailSum = buf.readBigUInt64LE(field.tailSum);
  if (storedHandle !== handle || seq === undefined || chunkVersion === undefined || durableLength === undefined) {
    return undefined;
  }
  if (seq < 1 || seq % headerSlotCount !== slot) return undefined;
  if (durableLength > limits.chunkBytesMax) return undefined;
  if (durableLength % blockBytes === 0 && tailSum !== 0n) return undefined;
  return { handle, seq, chunkVersion, durableLength, tailSum };
}

/** The valid header with the highest seq among the slots, or undefined if there is none. */
export function newestHeader(sumFilePrefix: Buffer, handle: number): ChunkHeader | undefined {
  let best: ChunkHeader | undefined;
  for (let slot = 0; slot < headerSlotCount; slot++) {
    const h = decodeHeaderSlot(sumFilePrefix, slot, handle);
    if (h && (!best || h.seq > best.seq)) best = h;
  }
  return best;
}

/** Block sums as stored in the block-sum region. */
export function encodeBlockSums(sums: readonly bigint[]): Buffer {
  const buf = Buffer.allocUnsafe(sums.length * blockSumBytes);
  for (let i = 0; i < sums.length; i++) buf.writeBigUInt64LE(sums[i]!, i * blockSumBytes);
  return buf;
}

// ---- names ----

export const chunksDirName = 'chunks';
export const indexDirName = 'index';
export const tmpSuffix = '.tmp';

/** A handle as it appears in file names: 16 lowercase hex digits, so names sort by handle. */
export function handleName(handle: number): string {
  return handle.toString(16).padStart(16, '0');
}

const chunkFileRe = /^([0-9a-f]{16})\.(chk|sum|rid)$/;

/** Parses `<16 hex>.chk` / `.sum` / `.rid` (record-id sidecar); undefined for anything else (including `.tmp` files). */
export function parseChunkFileName(name: string): { handle: number; kind: 'chk' | 'sum' | 'rid' } | undefined {
  const m = chunkFileRe.exec(name);
  if (!m) return undefined;
  const handle = Number.parseInt(m[1]!, 16);
  if (!Number.isSafeInteger(handle)) return undefined;
  return { handle, kind: m[2] as 'chk' | 'sum' | 'rid' };
}

/** The shard directory name of a handle: its low byte in two hex digits (= the last two digits of its name). */
export function shardName(handle: number): string {
  return (handle % 256).toString(16).padStart(2, '0');
}

export interface ChunkPaths {
  shardDir: string;
  chk: string;
  sum: string;
  /** Record-id sidecar of an append chunk (optional file). */
  rid: string;
  chkTmp: string;
  sumTmp: string;
}

export function chunkPaths(dataDir: string, handle: number): ChunkPaths {
  const shardDir = path.join(dataDir, chunksDirName, shardName(handle));
  const base = path.join(shardDir, handleName(handle));
  return {
    shardDir,
    chk: `${base}.chk`,
    sum: `${base}.sum`,
    rid: `${base}.rid`,
    chkTmp: `${base}.chk${tmpSuffix}`,
    sumTmp: `${base}.sum${tmpSuffix}`,
  };
}
