/**
 * One S3 request after parsing and authentication: what every handler gets. Handlers
 * act only through this (and the GfsClient), so parse → authenticate → act is the only
 * order a request can take.
 */
import crypto from 'node:crypto';
import type http from 'node:http';
import type { FileInfo, GfsClient } from '../../client';
import type { Logger } from '../../common/log';
import { keyToPath } from './keys';
import { S3Error } from './s3-error';
import type { AuthResult } from './sigv4';

export interface S3Context {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  client: GfsClient;
  log: Logger;
  requestId: string;
  method: string;
  bucket: string | undefined;
  key: string | undefined;
  /** Decoded query parameters (last one wins). */
  query: Map<string, string>;
  /** Lower-case header name → values in order. */
  headers: Map<string, string[]>;
  auth: AuthResult;
  nowMs: number;
  region: string;
  /** Bytes per chunk for new objects (tests use small chunks); undefined: the cluster's. */
  chunkBytes: number | undefined;
}

export function header(ctx: S3Context, name: string): string | undefined {
  return ctx.headers.get(name)?.join(',');
}

/** The bucket's directory exists (NoSuchBucket otherwise). */
export async function requireBucket(ctx: S3Context, bucket: string): Promise<void> {
  try {
    const info = await ctx.client.stat(`/${bucket}`);
    if (info.isDir) return;
  } catch (e) {
    if ((e as { code?: string }).code !== 'NO_SUCH_FILE') throw e;
  }
  throw new S3Error('NoSuchBucket', 404, 'The specified bucket does not exist', { BucketName: bucket });
}

/** The object's current version (NoSuchKey / NoSuchBucket otherwise). */
export async function statObject(ctx: S3Context, bucket: string, key: string): Promise<FileInfo> {
  try {
    const info = await ctx.client.stat(keyToPath(bucket, key));
    if (!info.isDir) return info;
  } catch (e) {
    if ((e as { code?: string }).code !== 'NO_SUCH_FILE') throw e;
  }
  await requireBucket(ctx, bucket);
  throw new S3Error('NoSuchKey', 404, 'The specified key does not exist.', { Key: key });
}

export function etagOf(info: FileInfo): string {
  if (info.log) return logEtag(info.path, info.size);
  return info.metadata['etag'] ?? `"${info.checksum || info.inode}"`;
}

export function sendXml(ctx: S3Context, status: number, body: string, headers: Record<string, string> = {}): void {
  ctx.res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body), ...headers });
  ctx.res.end(body);
}

/** An appendable object's (a log's) ETag: it changes with every append (its path's hash and its size). */
export function logEtag(path: string, size: number): string {
  return `"${crypto.createHash('md5').update(path).digest('hex').slice(0, 16)}.${size.toString(16)}"`;
}
