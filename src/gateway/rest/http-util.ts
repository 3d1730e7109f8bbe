/**
 * Small pieces every REST handler shares: JSON answers, bounded request bodies,
 * paths and numbers from URLs.
 */
import type http from 'node:http';
import { GfsError } from '../../common/errors';
import { normalizeFilePath, normalizePath } from '../../common/paths';

export function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** Reads a whole request body of at most `maxBytes` (TOO_LARGE beyond, before buffering it). */
export async function readBody(req: http.IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > maxBytes) {
    throw new GfsError('TOO_LARGE', `body of ${declared} bytes is over the ${maxBytes} byte limit`);
  }
  const parts: Buffer[] = [];
  let total = 0;
  for await (const piece of req) {
    total += (piece as Buffer).length;
    if (total > maxBytes) throw new GfsError('TOO_LARGE', `body is over the ${maxBytes} byte limit`);
    parts.push(piece as Buffer);
  }
  return Buffer.concat(parts, total);
}

/** A URL path's segments, percent-decoded (INVALID_PATH on a bad escape). */
export function decodeSegments(rawPath: string): string[] {
  return rawPath.split('/').filter((s) => s !== '').map((s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      throw new GfsError('INVALID_PATH', `bad percent-encoding in "${s}"`);
    }
  });
}

/** A namespace name: exactly one valid path component. */
export function namespacePath(ns: string): string {
  const p = normalizePath(`/${ns}`);
  if (p === '/' || p.indexOf('/', 1) !== -1) throw new GfsError('INVALID_PATH', `"${ns}" is not a namespace name`);
  return p;
}

/** `/ns/rest...` from the segments after /v1/files (the namespace is the first). */
export function filePath(segments: string[]): { ns: string; path: string } {
  if (segments.length < 2) throw new GfsError('INVALID_PATH', 'a file URL is /v1/files/{namespace}/{path}');
  const ns = segments[0]!;
  namespacePath(ns);
  return { ns, path: normalizeFilePath('/' + segments.join('/')) };
}

/** A query parameter that must be a whole number in [min, max], or `fallback` when absent. */
export function intParam(query: URLSearchParams, name: string, min: number, max: number, fallback: number): number {
  const text = query.get(name);
  if (text === null || text === '') return fallback;
  if (!/^\d+$/.test(text)) throw new GfsError('INVALID_ARGUMENT', `${name} must be a whole number, not "${text}"`);
  const n = Number(text);
  if (n < min || n > max) throw new GfsError('INVALID_ARGUMENT', `${name} must be from ${min} to ${max}, not ${text}`);
  return n;
}
