/**
 * Small filesystem steps the WAL needs to be crash-safe: full writes at a position,
 * directory fsync after a name appears or disappears, and create-beside-then-rename.
 */
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { fsyncDir } from '../common/fsync-dir';

/** write() may return short on a regular file in theory; loop until every byte is down. */
export async function writeFully(fh: FileHandle, data: Uint8Array, position: number): Promise<void> {
  let written = 0;
  while (written < data.length) {
    const { bytesWritten } = await fh.write(data, written, data.length - written, position + written);
    written += bytesWritten;
  }
}

/** One directory fsync for the whole code base (the chunk store's too). */
export { fsyncDir } from '../common/fsync-dir';

/** mkdir -p, with the parents' entries made durable when something was created. */
export async function ensureDir(dir: string): Promise<void> {
  const firstCreated = await fsp.mkdir(dir, { recursive: true });
  if (firstCreated === undefined) return;
  // Every directory from the first created one down to `dir` is new: sync each parent.
  let current = path.resolve(dir);
  const stop = path.dirname(path.resolve(firstCreated));
  while (current !== stop) {
    current = path.dirname(current);
    await fsyncDir(current);
  }
}

/**
 * Writes `parts` to `finalPath` so that a crash leaves either the whole file or none:
 * write a temporary file beside it, fsync it, rename over the final name, fsync the
 * directory. `afterRename` runs between the rename and the directory fsync (a failpoint).
 */
export async function writeFileAtomically(
  finalPath: string,
  tempPath: string,
  parts: readonly Uint8Array[],
  afterRename?: () => Promise<void>,
): Promise<void> {
  const fh = await fsp.open(tempPath, 'w');
  try {
    let position = 0;
    for (const part of parts) {
      await writeFully(fh, part, position);
      position += part.length;
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fsp.rename(tempPath, finalPath);
  if (afterRename) await afterRename();
  await fsyncDir(path.dirname(finalPath));
}

export async function unlinkIfPresent(file: string): Promise<boolean> {
  try {
    await fsp.unlink(file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}
