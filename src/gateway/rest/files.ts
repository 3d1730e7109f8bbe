/**
 * Whole files over REST: streamed PUT, GET with one Range, HEAD, DELETE.
 *
 * Invariants:
 * - Memory does not grow with the body: an upload is pulled from the socket only as
 *   fast as the client library's write window drains, a download is piped with the
 *   response's backpressure (stream.pipeline), so either side may be arbitrarily large.
 * - An upload is visible only when all of it arrived and was written: a client that
 *   hangs up early (or sends fewer bytes than its Content-Length) makes the request
 *   stream fail, the writer aborts the file, and nothing, not even a partial file or
 *   a replaced old version, changes.
 */
import type http from 'node:http';
import { pipeline } from 'node:stream/promises';
import { GfsError } from '../../common/errors';
import { limits } from '../../common/limits';
import type { FileInfo } from '../../client';
import type { RestContext } from './context';
import { intParam, sendJson } from './http-util';
import { contentRange, parseRange } from './range';

/** A file's public description: paths relative to its namespace. */
export function fileJson(info: FileInfo): Record<string, unknown> {
  const [, ns, ...rest] = info.path.split('/');
  return {
    namespace: ns, path: rest.join('/'), size: info.size, isDir: info.isDir, mtimeMs: info.mtimeMs,
    contentType: info.contentType, checksum: info.checksum, replication: info.replication,
    log: info.log, metadata: info.metadata,
  };
}

/** The namespace must exist: files are not created in a namespace nobody made. */
export async function requireNamespace(ctx: RestContext, ns: string): Promise<void> {
  let info: FileInfo;
  try {
    info = await ctx.client.stat(`/${ns}`);
  } catch (e) {
    if (e instanceof GfsError && e.code === 'NO_SUCH_FILE') throw new GfsError('NO_SUCH_FILE', `namespace "${ns}" does not exist`);
    throw e;
  }
  if (!info.isDir) throw new GfsError('NOT_A_DIRECTORY', `"/${ns}" is not a namespace`);
}

const META_PREFIX = 'x-gfs-meta-';

export async function putFile(ctx: RestContext, req: http.IncomingMessage, res: http.ServerResponse, ns: string, path: string, query: URLSearchParams): Promise<void> {
  await requireNamespace(ctx, ns);
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (k.startsWith(META_PREFIX) && typeof v === 'string') metadata[k.slice(META_PREFIX.length)] = v;
  }
  const replication = query.has('replication') ? intParam(query, 'replication', 1, limits.replicationMax, 0) : undefined;
  const counter = ctx.bytesReceived;
  const body = (async function* () {
    try {
      for await (const piece of req) {
        counter.inc((piece as Buffer).length);
        yield piece as Buffer;
      }
    } catch (e) {
      throw new GfsError('INVALID_ARGUMENT', `the upload ended before its body was complete (${(e as Error).message})`, { cause: e });
    }
    // Node ends the stream early (no error) when the socket closed mid-body in some
    // versions; a short body must never be stored as if it were whole.
    if (!req.complete) throw new GfsError('INVALID_ARGUMENT', 'the upload ended before its body was complete');
  })();
  const release = await ctx.uploads.acquire();
  const info = await ctx.client.put(body, path, {
    // If-None-Match: * creates only (ALREADY_EXISTS when the name is taken); otherwise a PUT replaces.
    force: req.headers['if-none-match'] !== '*',
    replication,
    contentType: req.headers['content-type'] ?? '',
    metadata,
  }).finally(release);
  const etag = etagOf(info);
  sendJson(res, 201, fileJson(info), etag ? { etag } : {});
}

function etagOf(info: FileInfo): string | undefined {
  return info.checksum ? `"${info.checksum}"` : undefined;
}

function fileHeaders(info: FileInfo): http.OutgoingHttpHeaders {
  const h: http.OutgoingHttpHeaders = {
    'content-type': info.contentType || 'application/octet-stream',
    'accept-ranges': 'bytes',
    'last-modified': new Date(info.mtimeMs).toUTCString(),
  };
  const etag = etagOf(info);
  if (etag) h.etag = etag;
  if (info.log) h['x-gfs-log'] = '1';
  for (const [k, v] of Object.entries(info.metadata ?? {})) h[META_PREFIX + k] = v;
  return h;
}

/** GET or HEAD of a file; an open log answers with its committed length. */
export async function getFile(ctx: RestContext, req: http.IncomingMessage, res: http.ServerResponse, path: string): Promise<void> {
  const info = await ctx.client.stat(path);
  if (info.isDir) throw new GfsError('IS_A_DIRECTORY', `${info.path} is a directory (list it with ?list)`);
  const size = info.size;
  const range = parseRange(req.headers.range, size);
  const headers = fileHeaders(info);
  if (range.kind === 'unsatisfiable') {
    const err = new GfsError('INVALID_ARGUMENT', `range "${req.headers.range}" is outside the file (${size} bytes)`);
    const body = JSON.stringify({ error: { code: 'INVALID_ARGUMENT', message: err.message } });
    res.writeHead(416, { 'content-range': `bytes */${size}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-gfs-error-code': 'INVALID_ARGUMENT' });
    res.end(req.method === 'HEAD' ? undefined : body);
    return;
  }
  const [start, end, status] = range.kind === 'partial' ? [range.start, range.end, 206] : [0, size, 200];
  if (status === 206) headers['content-range'] = contentRange(start, end, size);
  headers['content-length'] = end - start;
  if (req.method === 'HEAD' || end === start) {
    res.writeHead(status, headers);
    res.end();
    return;
  }
  const counter = ctx.bytesSent;
  const release = await ctx.downloads.acquire();
  try {
    res.writeHead(status, headers);
    const source = ctx.client.createReadStream(path, { start, end, onProgress: (n) => counter.inc(n) });
    await pipeline(source, res);
  } finally {
    release();
  }
}

export async function deleteFile(ctx: RestContext, res: http.ServerResponse, path: string, query: URLSearchParams): Promise<void> {
  await ctx.client.delete(path, { recursive: query.has('recursive') });
  res.writeHead(204);
  res.end();
}
