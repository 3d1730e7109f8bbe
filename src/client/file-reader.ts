/**
 * Reads a range of a file: chunk by chunk, each from one replica, failing over to the
 * next replica (from the byte where the last one stopped) on an error or a CORRUPT
 * answer. When every known replica failed, locations are refreshed from the master once.
 * While one chunk is being consumed, the next one is already being fetched (from
 * another replica where there is one), up to `readaheadBytes`.
 *
 * Invariant: bytes are yielded in file order, exactly once each, and only bytes that a
 * chunkserver verified against its block checksums.
 */
import { GfsError } from '../common/errors';
import { limits } from '../common/limits';
import { sleep, systemClock } from '../common/clock';
import type { Logger } from '../common/log';
import type { ChunkInfo, FileInfo } from '../../gen/gfs';
import type { MasterConn } from './master-conn';
import { readReplica } from '../dataplane';

export async function* readFileRange(
  master: MasterConn, info: FileInfo, start: number, end: number, log: Logger,
): AsyncGenerator<Buffer> {
  if (start < 0 || end > info.size || start > end) {
    throw new GfsError('INVALID_ARGUMENT', `range ${start}-${end} is outside ${info.path} (${info.size} bytes)`);
  }
  const wanted = info.chunks
    .map((c, i) => ({ i, from: Math.max(start, c.offset), to: Math.min(end, c.offset + c.length) }))
    .filter((w) => w.from < w.to);
  const locations = new Locations(master, info);
  let current: Prefetcher | undefined;
  let next: Prefetcher | undefined;
  try {
    for (let k = 0; k < wanted.length; k++) {
      const w = wanted[k]!;
      current = next ?? new Prefetcher(readChunkRange(locations, w.i, w.from, w.to, log), limits.readaheadBytes);
      next = k + 1 < wanted.length
        ? new Prefetcher(readChunkRange(locations, wanted[k + 1]!.i, wanted[k + 1]!.from, wanted[k + 1]!.to, log), limits.readaheadBytes)
        : undefined;
      yield* current.drain();
    }
  } finally {
    // Also when the consumer stops early: close the sockets still open.
    await Promise.all([current?.cancel(), next?.cancel()]);
  }
}

/** The file's chunk locations, refreshed from the master at most once per read. */
class Locations {
  private refreshed: Promise<ChunkInfo[]> | undefined;
  constructor(private readonly master: MasterConn, private readonly info: FileInfo) {}

  chunk(i: number): ChunkInfo { return this.info.chunks[i]!; }

  /** Fresh locations from the master, shared by every chunk of the read unless `again`. */
  async refresh(i: number, again = false): Promise<ChunkInfo | undefined> {
    if (again) this.refreshed = undefined;
    this.refreshed ??= this.master.call('stat', { path: this.info.path }).then((fresh) => {
      if (fresh.inode !== this.info.inode) throw new GfsError('NO_SUCH_FILE', `${this.info.path} was replaced while reading`);
      return fresh.chunks;
    });
    return (await this.refreshed)[i];
  }
}

async function* readChunkRange(locations: Locations, i: number, from: number, to: number, log: Logger): AsyncGenerator<Buffer> {
  let c = locations.chunk(i);
  let pos = from;
  let refreshes = 0;
  const tried = new Set<string>();
  let lastError: GfsError | undefined;
  while (pos < to) {
    const replica = pickReplica(c, tried);
    if (!replica) {
      // No location at all is what a master shows right after it starts, until the
      // chunkservers report: wait for them a little. Every location failing is not.
      const waitForReports = c.replicas.length === 0 && refreshes < limits.clientRetries;
      if (refreshes > 0 && !waitForReports) throw lastError ?? new GfsError('UNAVAILABLE', `no live replica of chunk ${c.handle}`);
      if (refreshes > 0) await sleep(systemClock, Math.min(limits.clientBackoffMaxMs, limits.clientLocationWaitBaseMs * 2 ** refreshes));
      refreshes++;
      tried.clear();
      const fresh = await locations.refresh(i, refreshes > 1);
      if (!fresh || fresh.handle !== c.handle) throw new GfsError('NO_SUCH_FILE', `chunk ${c.handle} is no longer part of the file`);
      c = fresh;
      continue;
    }
    tried.add(replica.nodeId);
    try {
      for await (const piece of readReplica(replica.addr, c.handle, c.version, pos - c.offset, to - pos)) {
        pos += piece.length;
        yield piece;
      }
    } catch (e) {
      lastError = e instanceof GfsError ? e : new GfsError('IO_ERROR', String(e));
      log.warn({ handle: c.handle, replica: replica.addr, code: lastError.code, err: lastError.message }, 'replica read failed; trying another');
    }
  }
}

/** Spreads reads over replicas by handle, skipping ones already tried. */
function pickReplica(c: ChunkInfo, tried: Set<string>): ChunkInfo['replicas'][number] | undefined {
  const n = c.replicas.length;
  for (let k = 0; k < n; k++) {
    const r = c.replicas[(c.handle + k) % n]!;
    if (!tried.has(r.nodeId)) return r;
  }
  return undefined;
}

/**
 * Pulls from a source eagerly into a buffer of at most `maxBytes`, so the next chunk's
 * bytes are on their way while the current one is consumed. Past the limit it stops
 * pulling, and TCP flow control holds the sender.
 */
class Prefetcher {
  private readonly pieces: Buffer[] = [];
  private bufferedBytes = 0;
  private done = false;
  private error: unknown;
  private wake: (() => void) | undefined;
  private pulling: Promise<void> | undefined;
  private cancelled = false;

  constructor(private readonly source: AsyncGenerator<Buffer>, private readonly maxBytes: number) {
    this.pull();
  }

  private pull(): void {
    if (this.pulling || this.done || this.cancelled || this.bufferedBytes >= this.maxBytes) return;
    this.pulling = (async () => {
      try {
        while (!this.cancelled && this.bufferedBytes < this.maxBytes) {
          const r = await this.source.next();
          if (r.done) { this.done = true; break; }
          this.pieces.push(r.value);
          this.bufferedBytes += r.value.length;
          this.notify();
        }
      } catch (e) {
        this.error = e;
        this.done = true;
      } finally {
        this.pulling = undefined;
        this.notify();
      }
    })();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  async *drain(): AsyncGenerator<Buffer> {
    for (;;) {
      const piece = this.pieces.shift();
      if (piece) {
        this.bufferedBytes -= piece.length;
        this.pull();
        yield piece;
        continue;
      }
      if (this.done) {
        if (this.error) throw this.error;
        return;
      }
      this.pull();
      await new Promise<void>((resolve) => { this.wake = resolve; });
    }
  }

  async cancel(): Promise<void> {
    this.cancelled = true;
    await this.pulling;
    await this.source.return(undefined);
  }
}
