/**
 * Small positional-I/O helpers for the chunk store: whole writes and reads that
 * survive short transfers, directory fsync (common's, re-exported), and the mapping of
 * Node errors to GfsError codes (ENOSPC is NO_SPACE, everything else unexpected is
 * IO_ERROR).
 */
import fs from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { GfsError } from '../common/errors';

/**
 * pwritev(2) accepts at most IOV_MAX (1024 on Linux) buffers per call; stay well below
 * so a burst of small appends still coalesces into a few syscalls.
 */
export const writeBuffersMax = 512;

/** Writes all of `buffers` at `position`, resuming after a short write. */
export async function writeFully(file: FileHandle, buffers: Buffer[], position: number): Promise<number> {
  let pending = buffers.filter((b) => b.length > 0);
  let at = position;
  while (pending.length > 0) {
    const { bytesWritten } = pending.length === 1
      ? await file.write(pending[0]!, 0, pending[0]!.length, at)
      : await file.writev(pending, at);
    if (bytesWritten <= 0) throw new GfsError('IO_ERROR', `write made no progress at offset ${at}`);
    at += bytesWritten;
    // Drop what was written; a partially written buffer continues from where it stopped.
    let skip = bytesWritten;
    while (pending.length > 0 && skip >= pending[0]!.length) skip -= pending.shift()!.length;
    if (skip > 0) pending[0] = pending[0]!.subarray(skip);
  }
  return at - position;
}

/** Reads into all of `buf` from `position`; returns the bytes read, fewer only at end of file. */
export async function readFully(file: FileHandle, buf: Buffer, position: number): Promise<number> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await file.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

/** One directory fsync for the whole code base (the WAL's too). */
export { fsyncDir, DirSyncer } from '../common/fsync-dir';

export function errnoCode(e: unknown): string | undefined {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Node errors become GfsErrors; a GfsError passes through unchanged. */
export function toStoreError(e: unknown, what: string): GfsError {
  if (e instanceof GfsError) return e;
  const code = errnoCode(e);
  if (code === 'ENOSPC' || code === 'EDQUOT') return new GfsError('NO_SPACE', `${what}: disk full`, { cause: e });
  return new GfsError('IO_ERROR', `${what}: ${(e as Error)?.message ?? String(e)}`, { cause: e });
}

/** unlink that treats "already gone" as success. */
export async function unlinkIfExists(file: string): Promise<boolean> {
  try {
    await fs.unlink(file);
    return true;
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return false;
    throw e;
  }
}
