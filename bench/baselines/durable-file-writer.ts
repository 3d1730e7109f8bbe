/**
 * A file Writable for the baselines: gathers incoming pieces (64 KiB socket reads)
 * into writes of at least `writeBatchBytes` issued as one writev, fdatasyncs every
 * `syncEveryBytes`, and fdatasyncs once more before 'finish'. So 'finish' means
 * durable, as a chunkserver's ack does.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { limits } from '../../src/common/limits';
import { patternPieces } from '../lib/pattern-source';
import { MiB } from '../lib/units';

type Callback = (error?: Error | null) => void;

/**
 * Each write is a round trip through libuv's thread pool; at one per 64 KiB socket
 * read those wake-ups cost more CPU than the copy, so pieces are gathered first.
 */
const writeBatchBytes = 1 * MiB;
const unsyncedHighWaterBytes = 8 * MiB;

export class DurableFileWriter extends Writable {
  writtenBytes = 0;
  private bytesSinceSync = 0;
  private batch: Buffer[] = [];
  private batchBytes = 0;

  private constructor(private readonly handle: FileHandle, private readonly syncEveryBytes: number) {
    // Buffer up to one sync interval, so the stream keeps flowing in while a sync runs;
    // with no sync until the end, a few batches are enough.
    super({ highWaterMark: Number.isFinite(syncEveryBytes) ? syncEveryBytes : unsyncedHighWaterBytes });
  }

  /** `syncEveryBytes` may be Infinity: one fdatasync, at the end. */
  static async create(path: string, syncEveryBytes: number): Promise<DurableFileWriter> {
    return new DurableFileWriter(await open(path, 'w'), syncEveryBytes);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: Callback): void {
    this.gather([chunk], callback);
  }

  /** Node hands over everything that queued while the previous write was in flight. */
  override _writev(chunks: { chunk: Buffer }[], callback: Callback): void {
    this.gather(chunks.map(({ chunk }) => chunk), callback);
  }

  override _final(callback: Callback): void {
    this.writeBatch()
      .then(() => this.handle.datasync())
      .then(() => this.handle.close())
      .then(() => callback(), callback);
  }

  override _destroy(error: Error | null, callback: Callback): void {
    // close() of an already closed handle resolves, so this is safe after _final.
    this.handle.close().then(() => callback(error), () => callback(error));
  }

  /** A small batch is accepted at once; a full one is acknowledged once written. */
  private gather(buffers: Buffer[], callback: Callback): void {
    for (const buffer of buffers) {
      this.batch.push(buffer);
      this.batchBytes += buffer.length;
    }
    if (this.batchBytes < writeBatchBytes) {
      callback();
      return;
    }
    this.writeBatch().then(() => callback(), callback);
  }

  private async writeBatch(): Promise<void> {
    const buffers = this.batch;
    const bytes = this.batchBytes;
    this.batch = [];
    this.batchBytes = 0;
    if (bytes === 0) return;
    const { bytesWritten } = await this.handle.writev(buffers);
    // A regular file only writes short on a full disk or an I/O error.
    if (bytesWritten !== bytes) throw new Error(`short write: ${bytesWritten} of ${bytes} bytes`);
    this.writtenBytes += bytes;
    this.bytesSinceSync += bytes;
    if (this.bytesSinceSync >= this.syncEveryBytes) {
      this.bytesSinceSync = 0;
      await this.handle.datasync();
    }
  }
}

/** Writes `totalBytes` of the pattern to `filePath`, durably: the source file of a read or copy baseline. */
export async function writePatternFile(filePath: string, totalBytes: number): Promise<void> {
  const file = await DurableFileWriter.create(filePath, limits.syncEveryBytes);
  // Readable.from + pipeline: the generator is only pulled as fast as the disk takes it.
  await pipeline(Readable.from(patternPieces(totalBytes)), file);
}
