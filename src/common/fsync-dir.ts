/**
 * Directory fsync, the one step every crash-safe file operation here ends with: a new
 * name (create, rename) or a removed one (unlink) is durable only once the directory
 * holding it is synced. The WAL and the chunk store both use this one.
 */
import fs from 'node:fs/promises';

/** Makes the directory entries (creations, renames, unlinks) in `dir` durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
