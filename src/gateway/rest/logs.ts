/**
 * Log files over REST (issue 10, docs/LOG-STREAMS.md):
 *
 * - `POST /v1/files/{ns}/{path}?append`: the body is one record; with `?batch` or
 *   `Content-Type: application/x-ndjson` it is newline-delimited records (each keeps
 *   its "\n", so the log's bytes are the bodies' bytes). `?create` makes the log when
 *   it does not exist. `X-Gfs-Record-Id: writer:seq` makes the append exactly-once
 *   (a batch numbers its records seq, seq+1, ...); `X-Gfs-Expected-Offset: N` stores
 *   nothing unless the log's length is N (412 PRECONDITION_FAILED). Answers
 *   `{offset}` or `{offsets: [...]}`.
 * - `GET ...?follow[&from=N]`: the log from offset N (default 0) and everything
 *   appended after, until the client goes away. With `Accept: text/event-stream`:
 *   server-sent events (sse.ts), resuming from `Last-Event-ID`; otherwise the raw
 *   bytes, chunked.
 *
 * Invariants: a request body is bounded (a single record by recordBytesMax, a batch
 * by restAppendBatchBytesMax) before it is buffered; a follow writes only as fast as
 * the client reads (it waits for 'drain') and stops reading the log when the client
 * goes away.
 */
import type http from 'node:http';
import { once } from 'node:events';
import { GfsError } from '../../common/errors';
import { limits } from '../../common/limits';
import type { RestContext } from './context';
import { readBody, sendJson } from './http-util';
import { requireNamespace } from './files';
import { SseFramer } from './sse';

interface RecordId { writer: string; seq: number }

function parseRecordId(text: string | undefined): RecordId | undefined {
  if (text === undefined) return undefined;
  const m = /^([^:\s]+):(\d{1,15})$/.exec(text.trim());
  if (!m || Buffer.byteLength(m[1]!) > limits.appendWriterIdBytesMax) throw new GfsError('INVALID_ARGUMENT', `X-Gfs-Record-Id must be writer:seq (a writer of at most ${limits.appendWriterIdBytesMax} bytes, seq a whole number), not "${text}"`);
  return { writer: m[1]!, seq: Number(m[2]) };
}

function parseOffset(text: string | undefined, what: string): number | undefined {
  if (text === undefined || text === '') return undefined;
  if (!/^\d{1,15}$/.test(text.trim())) throw new GfsError('INVALID_ARGUMENT', `${what} must be a whole number, not "${text}"`);
  return Number(text.trim());
}

/** Newline-delimited records, each with its "\n" (a last line without one is a record too). */
export function splitRecords(body: Buffer): Buffer[] {
  const records: Buffer[] = [];
  let from = 0;
  while (from < body.length) {
    const nl = body.indexOf(0x0a, from);
    const end = nl === -1 ? body.length : nl + 1;
    records.push(body.subarray(from, end));
    from = end;
  }
  return records;
}

export async function appendRoute(ctx: RestContext, req: http.IncomingMessage, res: http.ServerResponse, ns: string, path: string, query: URLSearchParams): Promise<void> {
  const batch = query.has('batch') || (req.headers['content-type'] ?? '').split(';')[0]!.trim() === 'application/x-ndjson';
  const recordId = parseRecordId(header(req, 'x-gfs-record-id'));
  const expected = parseOffset(header(req, 'x-gfs-expected-offset'), 'X-Gfs-Expected-Offset');
  const create = query.has('create');
  if (create) await requireNamespace(ctx, ns);
  const body = await readBody(req, batch ? limits.restAppendBatchBytesMax : limits.recordBytesMax);
  ctx.bytesReceived.inc(body.length);
  if (!batch) {
    if (body.length === 0) throw new GfsError('INVALID_ARGUMENT', 'an empty record cannot be appended');
    const { offset } = await ctx.client.append(path, body, { recordId, expectedOffset: expected, create });
    return sendJson(res, 200, { offset });
  }
  const records = splitRecords(body);
  if (records.length === 0) throw new GfsError('INVALID_ARGUMENT', 'the batch holds no record');
  if (records.some((r) => r.length > limits.recordBytesMax)) throw new GfsError('TOO_LARGE', `a record is over ${limits.recordBytesMax} bytes`);
  // One writer for the batch with every record in flight at once: it sends them in
  // sequence order, so they land in body order, batched into few group commits. With
  // an expected offset each record must start where the one before it ends.
  const writer = ctx.client.appender(path, {
    create, writerId: recordId?.writer, firstSeq: recordId?.seq, resumed: recordId !== undefined,
  });
  let next = expected;
  const answers = records.map((r) => {
    const p = writer.append(r, { expectedOffset: next });
    if (next !== undefined) next += r.length;
    return p;
  });
  const settled = await Promise.allSettled(answers);
  await writer.close();
  const offsets: number[] = [];
  for (const s of settled) {
    if (s.status === 'fulfilled') {
      offsets.push(s.value.offset);
      continue;
    }
    if (offsets.length === 0) throw s.reason;
    const err = s.reason instanceof GfsError ? s.reason : new GfsError('INTERNAL', (s.reason as Error).message);
    throw new GfsError(err.code, `${err.message} (after ${offsets.length} of ${records.length} records were appended at ${offsets.join(',')})`);
  }
  sendJson(res, 200, { offsets });
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export async function followRoute(ctx: RestContext, req: http.IncomingMessage, res: http.ServerResponse, path: string, query: URLSearchParams): Promise<void> {
  const sse = (req.headers.accept ?? '').includes('text/event-stream');
  const requested = (sse ? parseOffset(header(req, 'last-event-id'), 'Last-Event-ID') : undefined) ?? parseOffset(query.get('from') ?? undefined, 'from');
  const info = await ctx.client.stat(path);
  // A stream directory is followed across its segments, in stream offsets, from its
  // oldest kept byte unless asked otherwise; a log from 0.
  const stream = info.isDir && info.stream !== undefined;
  if (info.isDir && !stream) throw new GfsError('IS_A_DIRECTORY', `${info.path} is a directory`);
  if (!stream && requested !== undefined && requested > info.size) throw new GfsError('INVALID_ARGUMENT', `from ${requested} is past the end of the log (${info.size} bytes)`);
  const from = requested ?? (stream ? undefined : 0);
  // A follow may be quiet for hours: the idle timeout does not apply, TCP keepalive
  // finds a peer that vanished without closing.
  req.socket.setTimeout(0);
  req.socket.setKeepAlive(true, limits.restFollowKeepaliveMs);
  const abort = new AbortController();
  const stop = () => abort.abort();
  res.once('close', stop);
  res.writeHead(200, sse
    ? { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' }
    : { 'content-type': 'application/octet-stream', ...(from === undefined ? {} : { 'x-gfs-from-offset': String(from) }) });
  res.flushHeaders();
  let framer: SseFramer | undefined;
  let quietSince = ctx.clock.monoMs();
  const keepalive = sse
    ? ctx.clock.every(limits.restFollowKeepaliveMs, () => {
      if (ctx.clock.monoMs() - quietSince >= limits.restFollowKeepaliveMs && !res.writableEnded) res.write(': keepalive\n\n');
    })
    : undefined;
  let at: number | undefined = from;
  try {
    for await (const piece of ctx.client.follow(path, { fromOffset: from, signal: abort.signal })) {
      at ??= piece.offset; // a stream followed from its oldest kept byte
      if (piece.offset !== at) throw new GfsError('INTERNAL', `follow jumped from offset ${at} to ${piece.offset}`);
      framer ??= new SseFramer(at, limits.restFollowLineBytesMax);
      const text = sse ? framer.push(piece.data, at) : undefined;
      at += piece.data.length;
      ctx.bytesSent.inc(piece.data.length);
      const ok = sse ? (text === '' ? true : res.write(text)) : res.write(piece.data);
      quietSince = ctx.clock.monoMs();
      if (!ok) await Promise.race([once(res, 'drain'), once(res, 'close')]);
      if (abort.signal.aborted) break;
    }
    // The log was sealed: everything was sent (a last line without a newline too).
    if (!res.writableEnded) res.end(sse && framer ? framer.flush() : undefined);
  } catch (e) {
    if (abort.signal.aborted) return; // the client went away: nothing to answer
    throw e;
  } finally {
    keepalive?.cancel();
    res.off('close', stop);
    abort.abort();
  }
}
