/**
 * Computes the per-64 KiB block sums of a chunk as its bytes arrive in arbitrary
 * pieces. Aligned full blocks are hashed straight from the caller's buffer (or take a
 * sum that was already verified); only a partial block is copied, into a one-block
 * tail buffer, so it can be extended by the next bytes.
 */
import assert from 'node:assert/strict';
import { xxh64 } from '../common/checksum';
import { blockBytes } from './chunk-format';

export class BlockSummer {
  /** Bytes summed so far (the chunk offset of the next byte). */
  private summedBytes: number;
  /** The trailing partial block; its first `tailBytes` bytes are valid. */
  private readonly tail = Buffer.allocUnsafe(blockBytes);
  private tailBytes: number;
  /** Sums of full blocks completed since the last takeBlockSums(), in block order. */
  private completed: bigint[] = [];

  /**
   * Starts at chunk offset `startBytes`; `tailBlockBytes` must hold the bytes of the
   * partial block that ends there (empty when `startBytes` is block-aligned).
   */
  constructor(startBytes = 0, tailBlockBytes: Buffer = Buffer.alloc(0)) {
    assert.equal(tailBlockBytes.length, startBytes % blockBytes, 'the tail holds exactly the partial block');
    this.summedBytes = startBytes;
    this.tailBytes = tailBlockBytes.length;
    tailBlockBytes.copy(this.tail);
  }

  get length(): number {
    return this.summedBytes;
  }

  /**
   * Adds `data` at the end. `verifiedBlockSums[i]`, when set, is the already-verified
   * sum of piece i (data split at block boundaries) and piece i is one aligned full block.
   */
  update(data: Buffer, verifiedBlockSums?: readonly (bigint | undefined)[]): void {
    let dataOffset = 0;
    let piece = 0;
    while (dataOffset < data.length) {
      const offsetInBlock = this.summedBytes % blockBytes;
      const pieceBytes = Math.min(data.length - dataOffset, blockBytes - offsetInBlock);
      if (offsetInBlock === 0 && pieceBytes === blockBytes) {
        this.completed.push(verifiedBlockSums?.[piece] ?? xxh64(data.subarray(dataOffset, dataOffset + pieceBytes)));
      } else {
        assert.equal(this.tailBytes, offsetInBlock);
        data.copy(this.tail, this.tailBytes, dataOffset, dataOffset + pieceBytes);
        this.tailBytes += pieceBytes;
        if (this.tailBytes === blockBytes) {
          this.completed.push(xxh64(this.tail));
          this.tailBytes = 0;
        }
      }
      dataOffset += pieceBytes;
      this.summedBytes += pieceBytes;
      piece++;
    }
  }

  /** Removes and returns the sums of the blocks completed since the last call. */
  takeBlockSums(): bigint[] {
    const sums = this.completed;
    this.completed = [];
    return sums;
  }

  /** xxh64 of the current partial block, or 0n when the length is block-aligned (the header's tail sum). */
  tailSum(): bigint {
    return this.tailBytes === 0 ? 0n : xxh64(this.tail.subarray(0, this.tailBytes));
  }
}

/**
 * Calls `visit` for each piece of a `dataBytes`-long append at chunk offset
 * `chunkOffset`, split at block boundaries: the pieces pieceSums refer to.
 */
export function forEachPiece(chunkOffset: number, dataBytes: number,
  visit: (dataOffset: number, pieceBytes: number, alignedFullBlock: boolean) => void): number {
  let dataOffset = 0;
  let pieces = 0;
  while (dataOffset < dataBytes) {
    const offsetInBlock = (chunkOffset + dataOffset) % blockBytes;
    const pieceBytes = Math.min(dataBytes - dataOffset, blockBytes - offsetInBlock);
    visit(dataOffset, pieceBytes, offsetInBlock === 0 && pieceBytes === blockBytes);
    dataOffset += pieceBytes;
    pieces++;
  }
  return pieces;
}

/** The pieceSums that accompany an append of `data` at chunk offset `chunkOffset`. */
export function pieceSumsOf(chunkOffset: number, data: Buffer): bigint[] {
  const sums: bigint[] = [];
  forEachPiece(chunkOffset, data.length, (dataOffset, pieceBytes) => {
    sums.push(xxh64(data.subarray(dataOffset, dataOffset + pieceBytes)));
  });
  return sums;
}
