/**
 * gfsctl's log commands: `append` (each input line one record, one writer id per
 * invocation, so a line the client library retries is stored once) and `tail` (the
 * last lines, or from an offset, then with -f every record as it is committed).
 *
 * Invariants:
 * - append: at most limits.appendDedupPerWriter lines are read ahead of their
 *   acknowledgement (the input is not read further meanwhile); the offsets returned are
 *   in input order; the first failure stops the reading and is what the command reports.
 * - tail: bytes are written in log order, each once, honouring stdout's backpressure.
 */
import readline from 'node:readline';
import { once } from 'node:events';
import type { GfsClient } from '../src/client';
import { GfsError } from '../src/common/errors';
import { limits } from '../src/common/limits';
import { parseSegmentName } from '../src/common/segment-name';

/** tail -n reads the log backwards in pieces this big until it has seen N line ends. */
const TAIL_SCAN_BYTES = 64 * 1024;

/**
 * Appends every line of `openInput()` as a record. With `ndjson` the input (a file) is
 * read twice: first to check every line is JSON, so a bad line fails the command before
 * anything is appended.
 */
export async function appendLines(c: GfsClient, remote: string, openInput: () => NodeJS.ReadableStream,
  opts: { create?: boolean; ndjson?: boolean }): Promise<number[]> {
  if (opts.ndjson) await checkNdjson(openInput());
  const input = openInput();
  const appender = c.appender(remote, { create: opts.create });
  const offsets: number[] = [];
  let failure: unknown;
  let inFlight = 0;
  let wake: (() => void) | undefined;
  const settled = () => { inFlight--; const w = wake; wake = undefined; w?.(); };
  const rl = readline.createInterface({ input, crlfDelay: Infinity });
  try {
    for await (const line of rl) {
      if (failure) break;
      if (opts.ndjson && line.trim() === '') continue;
      const index = offsets.length;
      offsets.push(-1);
      inFlight++;
      appender.append(`${line}\n`).then((ack) => { offsets[index] = ack.offset; settled(); }, (e: unknown) => { failure ??= e; settled(); });
      while (inFlight >= limits.appendDedupPerWriter && !failure) await new Promise<void>((r) => { wake = r; });
    }
  } finally {
    rl.close();
    while (inFlight > 0) await new Promise<void>((r) => { wake = r; });
    await appender.close().catch(() => undefined);
  }
  if (failure) throw failure;
  return offsets;
}

async function checkNdjson(input: NodeJS.ReadableStream): Promise<void> {
  const rl = readline.createInterface({ input, crlfDelay: Infinity });
  let lineNo = 0;
  try {
    for await (const line of rl) {
      lineNo++;
      if (line.trim() === '') continue;
      try { JSON.parse(line); } catch {
        throw new GfsError('INVALID_ARGUMENT', `line ${lineNo} of the records file is not JSON; nothing was appended`);
      }
    }
  } finally {
    rl.close();
  }
}

export async function tailLog(c: GfsClient, remote: string, out: NodeJS.WritableStream,
  opts: { follow?: boolean; lines?: number; from?: number; signal?: AbortSignal }): Promise<void> {
  const info = await c.stat(remote);
  if (info.isDir && info.stream) return tailStream(c, remote, out, opts);
  if (info.isDir) throw new GfsError('IS_A_DIRECTORY', `${remote} is a directory`);
  const start = opts.from ?? await startOfLastLines(c, remote, info.size, opts.lines ?? 10);
  if (!opts.follow) {
    if (start > info.size) throw new GfsError('INVALID_ARGUMENT', `offset ${start} is past the end of ${remote} (${info.size} bytes)`);
    if (start < info.size) await c.get(remote, out, { start, end: info.size });
    return;
  }
  for await (const piece of c.follow(remote, { fromOffset: start, signal: opts.signal })) {
    if (!out.write(piece.data)) await once(out, 'drain');
  }
}

/**
 * tail of a stream, in stream offsets: -n looks for the last lines in its newest
 * segment that holds any (a roll starts a segment at a record boundary); without -f
 * it prints up to the end of every segment as listed now.
 */
async function tailStream(c: GfsClient, remote: string, out: NodeJS.WritableStream,
  opts: { follow?: boolean; lines?: number; from?: number; signal?: AbortSignal }): Promise<void> {
  const segments = (await c.list(remote)).entries
    .map((e) => ({ path: e.path, size: e.size, base: parseSegmentName(e.path.slice(e.path.lastIndexOf('/') + 1))?.baseOffset }))
    .filter((s): s is { path: string; size: number; base: number } => s.base !== undefined)
    .sort((a, b) => a.base - b.base);
  let start = opts.from;
  if (start === undefined) {
    const newest = [...segments].reverse().find((s) => s.size > 0);
    start = newest === undefined ? (segments[segments.length - 1]?.base ?? 0)
      : newest.base + await startOfLastLines(c, newest.path, newest.size, opts.lines ?? 10);
  }
  if (opts.follow) {
    for await (const piece of c.follow(remote, { fromOffset: start, signal: opts.signal })) {
      if (!out.write(piece.data)) await once(out, 'drain');
    }
    return;
  }
  for (const s of segments) {
    const from = Math.max(start, s.base) - s.base;
    if (from < s.size) await c.get(s.path, out, { start: from, end: s.size });
  }
}

/** The file offset where the last `n` lines start (a final line end is not a line of its own). */
async function startOfLastLines(c: GfsClient, remote: string, size: number, n: number): Promise<number> {
  if (n === 0) return size;
  let end = size;
  let seen = 0;
  while (end > 0) {
    const from = Math.max(0, end - TAIL_SCAN_BYTES);
    const parts: Buffer[] = [];
    for await (const p of c.createReadStream(remote, { start: from, end })) parts.push(p as Buffer);
    const buf = Buffer.concat(parts);
    for (let i = buf.length - 1; i >= 0; i--) {
      if (buf[i] !== 0x0a || from + i === size - 1) continue;
      if (++seen === n) return from + i + 1;
    }
    end = from;
  }
  return 0;
}
