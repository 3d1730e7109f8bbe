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

interface DirState { handle?: Promise<fs.FileHandle>; running?: Promise<void>; next?: Promise<void> }

/**
 * Directory fsyncs for a store that creates files at a high rate: each directory's
 * handle stays open (one open and close per file created cost as much as the sync), and
 * concurrent requests for one directory share syncs, group-commit style.
 *
 * Invariant: sync(dir) resolves only after an fsync of `dir` that started after the
 * call, so every entry made in `dir` before the call is durable. A request arriving
 * while a sync runs waits for the next one, which every such request shares.
 */
export class DirSyncer {
  private readonly dirs = new Map<string, DirState>();
  private closed = false;

  /** Directories whose handle is kept open; bounded by the directories the store uses. */
  get openDirs(): number { return this.dirs.size; }

  sync(dir: string): Promise<void> {
    if (this.closed) return fsyncDir(dir);
    let s = this.dirs.get(dir);
    if (!s) { s = {}; this.dirs.set(dir, s); }
    if (s.next) return s.next;
    if (!s.running) return this.start(s, dir);
    const state = s;
    const next = s.running.then(() => undefined, () => undefined).then(() => {
      state.next = undefined;
      return this.start(state, dir);
    });
    s.next = next;
    return next;
  }

  /** Closes the kept handles; later syncs open and close their own. */
  async close(): Promise<void> {
    this.closed = true;
    const states = [...this.dirs.values()];
    this.dirs.clear();
    await Promise.allSettled(states.map(async (s) => {
      await Promise.allSettled([s.running, s.next]);
      if (s.handle) await (await s.handle).close();
    }));
  }

  private start(s: DirState, dir: string): Promise<void> {
    const p = this.syncOnce(s, dir);
    s.running = p;
    const clear = (): void => { if (s.running === p) s.running = undefined; };
    p.then(clear, clear);
    return p;
  }

  private async syncOnce(s: DirState, dir: string): Promise<void> {
    s.handle ??= fs.open(dir, 'r');
    const opening = s.handle;
    try {
      await (await opening).sync();
    } catch (e) {
      // Drop the handle (a failed open, or a directory replaced): the next sync reopens.
      if (s.handle === opening) s.handle = undefined;
      void opening.then((h) => h.close(), () => undefined).catch(() => undefined);
      throw e;
    }
  }
}
