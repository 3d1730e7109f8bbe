/**
 * Baseline: the ceiling of re-replication on this machine. Healing copies a chunk from
 * one disk to another (read, write, fsync); here, with one disk, the same bytes are
 * copied from one file into a new file on the same disk: a streamed read into a write,
 * one fdatasync at the end. The source is written and made durable first, then the page
 * cache is dropped (when we may), so the copy reads from disk as a clone of old data
 * does.
 *
 * Runs in the bench process: one reader and one writer need no separate event loops.
 */
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pipeline } from 'node:stream/promises';
import { dropPageCache, type CacheState } from '../lib/page-cache';
import { makeTempDir, removeTempDir } from '../lib/temp-dirs';
import { MiB, mibPerSec } from '../lib/units';
import { DurableFileWriter, writePatternFile } from './durable-file-writer';

export interface RawCopyResult {
  totalBytes: number;
  elapsedMs: number;
  mibPerSec: number;
  /** Of the source when the copy started. */
  cache: CacheState;
}

/** 1 MiB reads, as a chunkserver's replicate pieces. */
const readHighWaterBytes = 1 * MiB;

export async function runRawCopy(totalBytes: number): Promise<RawCopyResult> {
  const dir = makeTempDir('raw-copy');
  try {
    const sourcePath = join(dir, 'source.dat');
    await writePatternFile(sourcePath, totalBytes);
    const cache = dropPageCache();
    const startedAtMs = performance.now();
    // No sync until the end: the copy's one durability point, the cheapest a copy can be.
    const target = await DurableFileWriter.create(join(dir, 'copy.dat'), Number.POSITIVE_INFINITY);
    await pipeline(createReadStream(sourcePath, { highWaterMark: readHighWaterBytes }), target);
    const elapsedMs = performance.now() - startedAtMs;
    if (target.writtenBytes !== totalBytes) {
      throw new Error(`raw copy: wrote ${target.writtenBytes} of ${totalBytes} bytes`);
    }
    return { totalBytes, elapsedMs, mibPerSec: mibPerSec(totalBytes, elapsedMs), cache };
  } finally {
    removeTempDir(dir);
  }
}
