/**
 * A chunk's record-id sidecar `<name>.rid` (FORMAT.md): one entry per appended record,
 * (chunk offset, length, writer, seq), in chunk order. Every replica of an append chunk
 * writes it; the chunk writer fsyncs it with the data, before the header that makes the
 * data durable (ChunkWriter.setBeforeHeader), so every record below the durable length
 * has its entry on disk.
 *
 * Invariants: entries are appended in offset order and never overlap; entries past the
 * chunk's durable length were never acknowledged and are cut (at start-up, on TRUNCATE,
 * when a writer closes without syncing); a torn trailing entry is cut too.
 */
import fs from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { RECORD_ID_FIXED_BYTES, decodeRecordIds, type RecordIdEntry } from '../../dataplane/record-ids';
import { dirname } from 'node:path';
import { errnoCode, fsyncDir, writeFully } from '../file-io';

export class RidSidecar {
  private pending: Buffer[] = [];
  private size: number;
  private writing: Promise<void> = Promise.resolve();

  private constructor(private readonly file: FileHandle, size: number) {
    this.size = size;
  }

  /** Opens (creating if needed) the sidecar, first cutting entries past `durableLength`. */
  static async open(path: string, durableLength: number): Promise<RidSidecar> {
    const existed = await fs.stat(path).then(() => true, (e) => { if (errnoCode(e) === 'ENOENT') return false; throw e; });
    if (existed) await cutSidecar(path, durableLength);
    const file = await fs.open(path, 'a+');
    try {
      // A new file's name must be durable before any entry in it counts.
      if (!existed) await fsyncDir(dirname(path));
      const size = (await file.stat()).size;
      return new RidSidecar(file, size);
    } catch (e) {
      await file.close();
      throw e;
    }
  }

  /** Queues encoded entries (a RIDS payload); written by the next flush. */
  append(encoded: Buffer): void {
    if (encoded.length > 0) this.pending.push(Buffer.from(encoded)); // a copy: frame buffers are recycled
  }

  /** Writes what was queued and makes it durable (runs before the chunk header's write). */
  flush(): Promise<void> {
    const parts = this.pending;
    this.pending = [];
    const run = this.writing.then(async () => {
      if (parts.length > 0) {
        this.size += await writeFully(this.file, parts, this.size);
      }
      await this.file.datasync();
    });
    this.writing = run.catch(() => undefined);
    return run;
  }

  /** Drops what was not flushed and closes the file (the caller cuts entries past the durable length). */
  async close(): Promise<void> {
    this.pending = [];
    await this.writing;
    await this.file.close();
  }
}

/** Reads every complete entry of a sidecar (none if there is no sidecar). */
export async function readSidecar(path: string): Promise<RecordIdEntry[]> {
  const buf = await sidecarBytes(path);
  return buf === undefined ? [] : decodeRecordIds(buf).entries;
}

/** The sidecar's bytes, or undefined when the chunk has none. */
async function sidecarBytes(path: string): Promise<Buffer | undefined> {
  try {
    return await fs.readFile(path);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw e;
  }
}

/**
 * Cuts the sidecar after its last entry that ends at or below `length` (and any torn
 * tail), durably. Returns the entries kept. No sidecar: nothing to do.
 */
export async function cutSidecar(path: string, length: number): Promise<RecordIdEntry[]> {
  const buf = await sidecarBytes(path);
  if (buf === undefined) return [];
  const { entries, validBytes } = decodeRecordIds(buf);
  let keepBytes = 0;
  let keep = 0;
  for (const e of entries) {
    if (e.offset + e.length > length) break;
    keepBytes += RECORD_ID_FIXED_BYTES + Buffer.byteLength(e.writer);
    keep++;
  }
  if (keepBytes < buf.length || validBytes < buf.length) {
    const file = await fs.open(path, 'r+');
    try {
      await file.truncate(keepBytes);
      await file.datasync();
    } finally {
      await file.close();
    }
  }
  return entries.slice(0, keep);
}
