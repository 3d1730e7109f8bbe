/**
 * Follows a stream (docs/LOG-STREAMS.md, "Streams, segments and retention"): its
 * segments one after the other, each followed as a log (log-follower.ts), offsets in
 * stream offsets (a segment's base, from its name, plus the offset in it). When a
 * segment is sealed and read to its end the next one is found by listing the stream,
 * waiting on the stream's Watch (an event on every roll and chunk) when it does not
 * exist yet.
 *
 * Invariants:
 * - Pieces are yielded in stream order, each byte once: a segment starts where the
 *   previous one ended (the master makes the next base at least the previous end), and
 *   each segment is followed from `pos - base`.
 * - Bytes that retention already dropped are skipped, not waited for: following resumes
 *   at the oldest segment kept (the offsets show the jump).
 * - The iterator never ends by itself (a stream rolls on); it ends on abort, or fails
 *   when the stream is deleted.
 */
import { FileState, type FileInfo } from '../../gen/gfs';
import { limits } from '../common/limits';
import { parseSegmentName } from '../common/segment-name';
import type { Clock } from '../common/clock';
import type { Logger } from '../common/log';
import type { MasterConn } from './master-conn';
import { followLog, type FollowOptions, type FollowPiece } from './log-follower';
import { LogWatch } from './log-watch';

interface Segment { path: string; base: number; sealed: boolean; size: number }

export async function* followStream(conn: MasterConn, path: string, opts: FollowOptions, clock: Clock, log: Logger): AsyncGenerator<FollowPiece> {
  const signal = opts.signal;
  const watch = new LogWatch(conn, path, clock, log);
  let pos = opts.fromOffset;
  try {
    for (;;) {
      if (signal?.aborted) return;
      const seen = watch.events;
      const segments = await listSegments(conn, path);
      pos ??= segments[0]?.base ?? 0;
      let current: Segment | undefined;
      for (const s of segments) if (s.base <= pos) current = s;
      if (current === undefined && segments.length > 0) {
        log.info({ path, from: pos, oldest: segments[0]!.base }, 'follow: bytes before the oldest segment were dropped by retention');
        pos = segments[0]!.base;
        continue;
      }
      const finished = current !== undefined && current.sealed && pos >= current.base + current.size;
      if (current === undefined || finished) {
        const next = segments.find((s) => s.base > (current?.base ?? -1) && s.base >= pos!);
        if (next !== undefined && current !== undefined) { pos = Math.max(pos, next.base); continue; }
        await watch.changed(seen, limits.followRecheckMs, signal); // the next segment is not there yet
        continue;
      }
      const base = current.base;
      for await (const p of followLog(conn, current.path, { fromOffset: pos - base, signal }, clock, log)) {
        yield { offset: base + p.offset, data: p.data };
        pos = base + p.offset + p.data.length;
      }
    }
  } finally {
    watch.close();
  }
}

/** The stream's segments, oldest first (their names sort by time), with base offsets. */
async function listSegments(conn: MasterConn, path: string): Promise<Segment[]> {
  const out: Segment[] = [];
  let startAfter = '';
  for (;;) {
    const res = await conn.call('list', { path, recursive: false, limit: 0, startAfter });
    for (const f of res.entries) {
      const seg = segmentOf(f);
      if (seg) out.push(seg);
    }
    if (!res.truncated || res.entries.length === 0) break;
    startAfter = res.entries[res.entries.length - 1]!.path;
  }
  return out.sort((a, b) => a.base - b.base);
}

function segmentOf(f: FileInfo): Segment | undefined {
  if (f.isDir) return undefined;
  const parsed = parseSegmentName(f.path.slice(f.path.lastIndexOf('/') + 1));
  if (parsed === undefined) return undefined;
  return { path: f.path, base: parsed.baseOffset, sealed: f.state === FileState.FILE_STATE_SEALED, size: f.size };
}
