/**
 * Follows a log (docs/LOG-STREAMS.md, "Follow"): reads what is already there from the
 * replicas (the file reader), then the open chunk from its primary, pushed as it
 * commits (followChunk), and when that chunk ends (FOLLOW_END) or its primary is lost,
 * learns the next chunk from the master's Watch stream (or a Stat, which also makes the
 * master seal a chunk whose primary it cannot reach).
 *
 * Invariants:
 * - Pieces are yielded in file order, each byte exactly once: every piece starts at
 *   `pos`, the end of the previous one; a pushed piece that overlaps what was already
 *   yielded is trimmed, one that would leave a gap is a PROTOCOL error.
 * - Only committed bytes are yielded (a replica serves no byte past the durable length
 *   of a sealed chunk, a primary pushes only committed ones), so nothing yielded is ever
 *   taken back. A chunk whose primary said FOLLOW_END is read from replicas only past
 *   the length that FOLLOW_END named once the master sealed it (a seal bumps its
 *   version): until then a replica may hold bytes no replica acknowledged, which the
 *   seal cuts.
 * - The iterator ends when the log is sealed and every byte was yielded, or on abort.
 *   A stream is followed segment by segment by stream-follower.ts, each through here.
 */
import { FileState, type ChunkInfo, type FileInfo } from '../../gen/gfs';
import { GfsError } from '../common/errors';
import { limits } from '../common/limits';
import type { Clock } from '../common/clock';
import type { Logger } from '../common/log';
import { followChunk } from '../dataplane';
import type { MasterConn } from './master-conn';
import { readFileRange } from './file-reader';
import { LogWatch } from './log-watch';
import { asGfsError } from './log-appender';

export interface FollowOptions {
  /** File offset to start at (default 0); must be at a record boundary to see whole records. */
  fromOffset?: number;
  signal?: AbortSignal;
}

export interface FollowPiece {
  /** File offset of data[0]. */
  offset: number;
  data: Buffer;
}

export async function* followLog(conn: MasterConn, path: string, opts: FollowOptions, clock: Clock, log: Logger): AsyncGenerator<FollowPiece> {
  const signal = opts.signal;
  let pos = opts.fromOffset ?? 0;
  if (!Number.isSafeInteger(pos) || pos < 0) throw new GfsError('INVALID_ARGUMENT', `fromOffset must be a whole number >= 0, not ${pos}`);
  const watch = new LogWatch(conn, path, clock, log);
  /**
   * Chunks whose primary said FOLLOW_END (no longer open, whatever a stale FileInfo says):
   * the version followed and the file offset where the primary's committed bytes ended.
   */
  const ended = new Map<number, { version: number; end: number }>();
  /** Open chunk → the replica that answered FOLLOW (its primary). */
  const primaries = new Map<number, string>();
  try {
    let seen = watch.events;
    let info = await conn.call('stat', { path });
    for (;;) {
      if (signal?.aborted) return;
      if (info.isDir) throw new GfsError('IS_A_DIRECTORY', `${path} is a directory (following a stream is not supported here)`);
      const sealed = info.state === FileState.FILE_STATE_SEALED;
      if (sealed && pos > info.size) throw new GfsError('INVALID_ARGUMENT', `offset ${pos} is past the end of ${path} (${info.size} bytes)`);
      // A file that is not a log (a put in progress) has no primary to follow: wait for its seal.
      const open = sealed || !info.log ? undefined : openChunk(info, ended);
      // Never past what the chunk list covers: a size the chunks do not add up to (a
      // master's bug) must make the follower wait, not spin on an empty read.
      const last = info.chunks[info.chunks.length - 1];
      const covered = last ? last.offset + last.length : 0;
      let doneEnd = Math.min(open ? open.offset : info.size, info.size, covered);
      // An ended chunk the master has not sealed yet (same version): only what its primary pushed.
      const endedLast = last === undefined ? undefined : ended.get(last.handle);
      if (!sealed && endedLast !== undefined && endedLast.version === last!.version) doneEnd = Math.min(doneEnd, endedLast.end);
      if (pos < doneEnd) {
        // Bytes of chunks that no longer change: from any replica.
        for await (const piece of readFileRange(conn, info, pos, doneEnd, log)) {
          yield { offset: pos, data: piece };
          pos += piece.length;
          if (signal?.aborted) return;
        }
        continue;
      }
      if (sealed) {
        if (pos >= info.size) return; // a stream's follower goes on with its next segment
      }
      if (open && pos >= open.offset) {
        // A stat lists replicas by health, not primary first: the one that answers FOLLOW
        // is the primary (the others say NOT_PRIMARY at once); start with the last one found.
        const candidates = orderByGuess(open, primaries.get(open.handle));
        let lost = false;
        for (const addr of candidates) {
          lost = false;
          let got = false;
          try {
            for await (const m of followChunk(addr, open.handle, open.version, pos - open.offset, signal)) {
              got = true;
              primaries.set(open.handle, addr);
              if ('end' in m) {
                // Every committed byte was pushed before FOLLOW_END: pos is at its length.
                if (open.offset + m.end !== pos) throw new GfsError('PROTOCOL', `follow: chunk ${open.handle} ended at ${open.offset + m.end}, pushed up to ${pos}`);
                ended.set(open.handle, { version: open.version, end: pos });
                break;
              }
              const data = trimToPos(open.offset + m.offset, m.data, pos);
              if (data.length > 0) {
                yield { offset: pos, data };
                pos += data.length;
              }
            }
          } catch (e) {
            if (signal?.aborted) return;
            const err = asGfsError(e);
            if (err.code === 'PROTOCOL') throw err;
            lost = true;
            if (!got && err.code === 'NOT_PRIMARY') continue; // not this one: try the next replica
            log.info({ path, handle: open.handle, replica: addr, code: err.code }, 'follow: lost the primary; asking the master');
          }
          break;
        }
        if (signal?.aborted) return;
        if (lost) {
          // Stat makes the master seal a chunk whose primary it cannot reach.
          await watch.changed(seen, limits.followRecheckMs, signal);
          seen = watch.events;
          info = await conn.call('stat', { path });
        } else {
          info = await conn.call('stat', { path });
        }
        continue;
      }
      // Nothing to read now: wait until the log changes.
      await watch.changed(seen, limits.followRecheckMs, signal);
      if (signal?.aborted) return;
      const changed = watch.events > seen;
      seen = watch.events;
      info = changed && watch.latest ? newer(info, watch.latest) : await conn.call('stat', { path });
    }
  } finally {
    watch.close();
  }
}

/** The log's open chunk: its last one, unless the file is sealed or that chunk said it ended. */
function openChunk(info: FileInfo, ended: ReadonlyMap<number, unknown>): ChunkInfo | undefined {
  const last = info.chunks[info.chunks.length - 1];
  if (!last || ended.has(last.handle) || last.replicas.length === 0) return undefined;
  return last;
}

/** The chunk's replica addresses, the guessed primary first. */
function orderByGuess(chunk: ChunkInfo, guess: string | undefined): string[] {
  const addrs = chunk.replicas.map((r) => r.addr);
  return guess !== undefined && addrs.includes(guess) ? [guess, ...addrs.filter((a) => a !== guess)] : addrs;
}

/** A pushed piece cut to start at `pos`: the overlap was yielded already; a gap is a bug somewhere. */
function trimToPos(offset: number, data: Buffer, pos: number): Buffer {
  if (offset > pos) throw new GfsError('PROTOCOL', `follow: pushed bytes start at ${offset}, after ${pos}: a gap`);
  return offset + data.length <= pos ? data.subarray(0, 0) : data.subarray(pos - offset);
}

/** Watch events carry the master's view; keep the one that knows more. */
function newer(current: FileInfo, event: FileInfo): FileInfo {
  if (event.inode !== current.inode) return event;
  if (event.state === FileState.FILE_STATE_SEALED) return event;
  return event.chunks.length > current.chunks.length || event.size >= current.size ? event : current;
}
