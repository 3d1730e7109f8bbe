/**
 * Reads a range of a file: chunk by chunk, each from one replica, failing over to the
 * next replica (from the byte where the last one stopped) on an error or a CORRUPT
 * answer. When every known replica failed, locations are refreshed from the master once.
 *
 * Invariant: bytes are yielded in file order, exactly once each, and only bytes that a
 * chunkserver verified against its block checksums.
 */
import { GfsError } from '../common/errors';
import type { Logger } from '../common/log';
import type { ChunkInfo, FileInfo } from '../../gen/gfs';
import type { MasterConn } from './master-conn';
import { readReplica } from './chunk-reader';

export async function* readFileRange(
  master: MasterConn, info: FileInfo, start: number, end: number, log: Logger,
): AsyncGenerator<Buffer> {
  if (start < 0 || end > info.size || start > end) {
    throw new GfsError('INVALID_ARGUMENT', `range ${start}-${end} is outside ${info.path} (${info.size} bytes)`);
  }
  let chunks = info.chunks;
  for (let i = 0; i < chunks.length; i++) {
    const c = chunks[i]!;
    const from = Math.max(start, c.offset);
    const to = Math.min(end, c.offset + c.length);
    if (from >= to) continue;
    let pos = from;
    let refreshed = false;
    const tried = new Set<string>();
    let lastError: GfsError | undefined;
    while (pos < to) {
      const replica = pickReplica(chunks[i]!, tried);
      if (!replica) {
        if (refreshed) {
          throw lastError ?? new GfsError('UNAVAILABLE', `no live replica of chunk ${c.handle} of ${info.path}`);
        }
        refreshed = true;
        tried.clear();
        const fresh = await master.call('stat', { path: info.path });
        if (fresh.inode !== info.inode) throw new GfsError('NO_SUCH_FILE', `${info.path} was replaced while reading`);
        chunks = fresh.chunks;
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
