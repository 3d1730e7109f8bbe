/**
 * Cheap, incompressible-looking test data: one random pool of 8 MiB, emitted one MiB
 * at a time with the MiB's index stamped at its start, so no two MiB are identical
 * (a store that deduplicates or compresses cannot cheat) yet producing a GiB costs
 * only a memcpy per MiB.
 */
import { randomBytes } from 'node:crypto';
import { MiB } from './units';

const poolBytes = 8 * MiB;
const pieceBytes = 1 * MiB;
let pool: Buffer | undefined;

function randomPool(): Buffer {
  pool ??= randomBytes(poolBytes);
  return pool;
}

/**
 * Each piece is a fresh buffer rather than a view of the pool: a consumer may keep
 * pieces after it has sent them (the gfs client keeps a write window to replay on a
 * new chunk), so reusing memory would silently change data it still holds.
 */
export function patternPiece(pieceIndex: number, bytes: number = pieceBytes): Buffer {
  const source = randomPool();
  const offset = (pieceIndex * pieceBytes) % poolBytes;
  const piece = Buffer.allocUnsafe(bytes);
  source.copy(piece, 0, offset, offset + bytes);
  if (bytes >= 8) piece.writeBigUInt64BE(BigInt(pieceIndex), 0);
  return piece;
}

export function* patternPieces(totalBytes: number): Generator<Buffer> {
  let pieceIndex = 0;
  for (let emittedBytes = 0; emittedBytes < totalBytes; emittedBytes += pieceBytes) {
    yield patternPiece(pieceIndex++, Math.min(pieceBytes, totalBytes - emittedBytes));
  }
}

/** The same data as an async iterable, the shape GfsClient.put accepts. */
export async function* patternSource(totalBytes: number): AsyncGenerator<Buffer> {
  yield* patternPieces(totalBytes);
}
