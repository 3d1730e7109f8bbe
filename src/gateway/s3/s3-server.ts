/**
 * The gateway's S3 listener (DESIGN §10): parses a request (virtual-host or path-style
 * bucket, opaque key), authenticates it (sigv4.ts: one path for header, presigned and
 * chunked signing), then routes it to a bucket or object operation. Every error is S3's
 * XML with a RequestId.
 *
 * Invariants:
 * - Parse, authenticate, act, in that order: nothing reaches the cluster before the
 *   signature was checked, and a request that fails a check changes nothing.
 * - No request can crash the process: every handler's failure becomes an error answer
 *   (or, once the answer has started, a closed connection).
 * - A request whose body did not arrive whole gets `Connection: close`: the connection
 *   is not read on after a body we gave up on.
 */
import http from 'node:http';
import crypto from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Counter, type Registry } from 'prom-client';
import type { GfsClient } from '../../client';
import { splitHostPort } from '../../common/admin-http';
import { systemClock, type Clock } from '../../common/clock';
import type { Logger } from '../../common/log';
import { header, type S3Context } from './context';
import { checkBucketName } from './keys';
import { S3Error } from './s3-error';
import { authenticate, EMPTY_SHA256, parseQuery, percentDecode, type LookupSecret } from './sigv4';
import { errorXml } from './xml';
import { copyObject, deleteObject, deleteObjects, getObject, putObject } from './objects';
import { appendObject, WRITE_OFFSET_HEADER } from './append';
import { UploadSweeper } from './upload-sweeper';
import { limits } from '../../common/limits';
import {
  createBucket, deleteBucket, getBucketLocation, getBucketVersioning, headBucket, listBuckets, listObjectsHandler,
} from './buckets';
import {
  abortMultipartUpload, completeMultipartUpload, createMultipartUpload, listMultipartUploads, listParts, uploadPart,
} from './multipart';

export interface S3ServerOptions {
  listen: string;
  client: GfsClient;
  /** The secret of an access key id, or undefined if there is no such key. */
  lookupSecret: LookupSecret;
  log: Logger;
  registry?: Registry;
  /** The region GetBucketLocation names; requests may sign with any. */
  region?: string;
  /** Host names under which `<bucket>.<domain>` is a virtual-host bucket (default: localhost). */
  domains?: string[];
  clock?: Clock;
  /** Bytes per chunk of new objects (tests); default the cluster's. */
  chunkBytes?: number;
  /** Never-completed multipart uploads are aborted this long after they started (limits.s3UploadExpiryMs). */
  uploadExpiryMs?: number;
  /**
   * After the signature is verified: may this key do this (tokens' scopes, rates;
   * src/gateway/auth.ts)? Throws to refuse; returns the audit name of the caller.
   */
  authorize?: (r: { accessKeyId: string; method: string; bucket: string | undefined; key: string | undefined; address: string }) => string;
  /** One audit line per request, with the name authorize returned ('' before it ran). */
  audit?: (r: { token: string; action: string; method: string; path: string; status: number; ms: number }) => void;
}

/** Subresources we do not serve: asked for, they get NotImplemented rather than a wrong answer. */
const UNSUPPORTED = ['acl', 'policy', 'cors', 'lifecycle', 'tagging', 'website', 'replication', 'encryption', 'logging', 'notification',
  'object-lock', 'retention', 'legal-hold', 'torrent', 'restore', 'select', 'accelerate', 'requestPayment', 'analytics', 'inventory',
  'metrics', 'ownershipControls', 'publicAccessBlock', 'intelligent-tiering', 'attributes', 'versions'];

export class S3Server {
  private server: http.Server | undefined;
  private readonly clock: Clock;
  private readonly requests: Counter | undefined;
  private sweeper: UploadSweeper | undefined;
  addr = '';

  constructor(private readonly opts: S3ServerOptions) {
    this.clock = opts.clock ?? systemClock;
    this.requests = opts.registry
      ? new Counter({ name: 'gfs_gateway_s3_requests_total', help: 'S3 requests by operation and status', labelNames: ['op', 'status'], registers: [opts.registry] })
      : undefined;
  }

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => { void this.handle(req, res); });
    this.server.on('clientError', (_err, socket) => { socket.destroy(); });
    const { host, port } = splitHostPort(this.opts.listen);
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, host, () => resolve());
    });
    this.addr = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${(this.server.address() as AddressInfo).port}`;
    this.opts.log.info({ s3: this.addr }, 's3 serving');
    this.sweeper = new UploadSweeper(this.opts.client, this.opts.uploadExpiryMs ?? limits.s3UploadExpiryMs, this.clock, this.opts.log);
    this.sweeper.start();
  }

  async stop(): Promise<void> {
    await this.sweeper?.stop();
    await new Promise<void>((resolve) => { this.server?.closeAllConnections(); this.server ? this.server.close(() => resolve()) : resolve(); });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    // A client that goes away surfaces as an error of whoever reads or writes next; an
    // 'error' event with no listener would end the process.
    req.on('error', () => undefined);
    res.on('error', () => undefined);
    const requestId = crypto.randomBytes(8).toString('hex').toUpperCase();
    res.setHeader('x-amz-request-id', requestId);
    res.setHeader('server', 'gfs');
    let op = 'unknown';
    let resource = '/';
    let caller = 'invalid';
    const started = this.clock.monoMs();
    try {
      const url = req.url ?? '/';
      const q = url.indexOf('?');
      const rawPath = q < 0 ? url : url.slice(0, q);
      const rawQuery = q < 0 ? '' : url.slice(q + 1);
      if (!rawPath.startsWith('/')) throw new S3Error('InvalidURI', 400, 'Couldn\'t parse the specified URI.');
      const headers = new Map<string, string[]>();
      for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
        const name = req.rawHeaders[i]!.toLowerCase();
        const list = headers.get(name);
        if (list) list.push(req.rawHeaders[i + 1]!); else headers.set(name, [req.rawHeaders[i + 1]!]);
      }
      const { bucket, key } = this.target(rawPath, headers.get('host')?.[0] ?? '');
      resource = bucket === undefined ? '/' : `/${bucket}${key === undefined ? '' : `/${key}`}`;
      const query = new Map<string, string>();
      for (const p of parseQuery(rawQuery)) query.set(utf8(p.name), utf8(p.value));
      const nowMs = this.clock.nowMs();
      const auth = authenticate({ method: req.method ?? 'GET', rawPath, rawQuery, headers }, nowMs, this.opts.lookupSecret);
      if (this.opts.authorize) {
        caller = this.opts.authorize({ accessKeyId: auth.accessKeyId, method: req.method ?? 'GET', bucket, key, address: req.socket.remoteAddress ?? '' });
      }
      const ctx: S3Context = {
        req, res, client: this.opts.client, log: this.opts.log, requestId, method: req.method ?? 'GET', bucket, key, query, headers, auth, nowMs,
        region: this.opts.region ?? 'us-east-1', chunkBytes: this.opts.chunkBytes,
      };
      op = await this.route(ctx);
      this.requests?.inc({ op, status: String(res.statusCode) });
    } catch (e) {
      const err = S3Error.from(e);
      if (!(e instanceof S3Error)) this.opts.log.warn({ err: (e as Error).message, requestId, op }, 's3 request failed');
      this.requests?.inc({ op, status: String(err.status) });
      this.fail(req, res, err, resource, requestId);
    }
    this.opts.audit?.({ token: caller, action: op, method: req.method ?? '', path: resource, status: res.statusCode, ms: Math.round(this.clock.monoMs() - started) });
    if (!req.complete) {
      // The body was not read to its end (an early error): close rather than read on.
      res.once('finish', () => req.socket.destroy());
    }
  }

  private fail(req: http.IncomingMessage, res: http.ServerResponse, err: S3Error, resource: string, requestId: string): void {
    if (res.headersSent) { res.destroy(); return; }
    const body = req.method === 'HEAD' ? '' : errorXml(err.code, err.message, resource, requestId, err.extra);
    const h: Record<string, string | number> = { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) };
    if (!req.complete) h['connection'] = 'close';
    if (err.code === 'InvalidRange' && err.extra['ActualObjectSize']) h['content-range'] = `bytes */${err.extra['ActualObjectSize']}`;
    res.writeHead(err.status, h);
    res.end(body);
  }

  /** The bucket and key a request names: virtual host first, then the path. */
  private target(rawPath: string, host: string): { bucket: string | undefined; key: string | undefined } {
    const hostname = host.replace(/:\d+$/, '').toLowerCase();
    let bucket: string | undefined;
    let keyPart: string;
    const domain = (this.opts.domains ?? ['localhost']).find((d) => hostname.endsWith('.' + d));
    if (domain !== undefined) {
      bucket = hostname.slice(0, -(domain.length + 1));
      keyPart = rawPath.slice(1);
    } else {
      const slash = rawPath.indexOf('/', 1);
      const first = slash < 0 ? rawPath.slice(1) : rawPath.slice(1, slash);
      keyPart = slash < 0 ? '' : rawPath.slice(slash + 1);
      if (first !== '') bucket = utf8Strict(percentDecode(first));
    }
    if (bucket !== undefined) checkBucketName(bucket);
    const key = keyPart === '' ? undefined : utf8Strict(percentDecode(keyPart));
    if (bucket === undefined && key !== undefined) throw new S3Error('InvalidURI', 400, 'Couldn\'t parse the specified URI.');
    return { bucket, key };
  }

  private async route(ctx: S3Context): Promise<string> {
    const { method, bucket, key, query } = ctx;
    for (const sub of UNSUPPORTED) {
      if (query.has(sub)) throw new S3Error('NotImplemented', 501, `The ${sub} subresource is not implemented`);
    }
    const bodyless = method === 'GET' || method === 'HEAD' || method === 'DELETE';
    if (bodyless) this.refuseBody(ctx);
    if (bucket === undefined) {
      if (method === 'GET') { await listBuckets(ctx); return 'ListBuckets'; }
      throw new S3Error('MethodNotAllowed', 405, 'The specified method is not allowed against this resource.');
    }
    // The AWS SDK names the operation in `x-id`; it selects nothing.
    const plain = [...query.keys()].every((k) => k === 'x-id');
    if (key === undefined) {
      if (method === 'PUT' && plain) { await createBucket(ctx, bucket); return 'CreateBucket'; }
      if (method === 'HEAD') { await headBucket(ctx, bucket); return 'HeadBucket'; }
      if (method === 'DELETE' && plain) { await deleteBucket(ctx, bucket); return 'DeleteBucket'; }
      if (method === 'POST' && query.has('delete')) { await deleteObjects(ctx, bucket); return 'DeleteObjects'; }
      if (method === 'GET') {
        if (query.has('location')) { await getBucketLocation(ctx, bucket); return 'GetBucketLocation'; }
        if (query.has('versioning')) { await getBucketVersioning(ctx, bucket); return 'GetBucketVersioning'; }
        if (query.has('uploads')) { await listMultipartUploads(ctx, bucket); return 'ListMultipartUploads'; }
        await listObjectsHandler(ctx, bucket);
        return query.get('list-type') === '2' ? 'ListObjectsV2' : 'ListObjects';
      }
      throw new S3Error('MethodNotAllowed', 405, 'The specified method is not allowed against this resource.');
    }
    if (query.has('uploadId')) {
      if (method === 'PUT' && query.has('partNumber')) { await uploadPart(ctx, bucket, key); return ctx.headers.has('x-amz-copy-source') ? 'UploadPartCopy' : 'UploadPart'; }
      if (method === 'GET') { await listParts(ctx, bucket, key); return 'ListParts'; }
      if (method === 'DELETE') { await abortMultipartUpload(ctx, bucket, key); return 'AbortMultipartUpload'; }
      if (method === 'POST') { await completeMultipartUpload(ctx, bucket, key); return 'CompleteMultipartUpload'; }
      throw new S3Error('MethodNotAllowed', 405, 'The specified method is not allowed against this resource.');
    }
    if (method === 'POST' && query.has('uploads')) { await createMultipartUpload(ctx, bucket, key); return 'CreateMultipartUpload'; }
    if (method === 'PUT') {
      if (ctx.headers.has('x-amz-copy-source')) { await copyObject(ctx, bucket, key); return 'CopyObject'; }
      if (ctx.headers.has(WRITE_OFFSET_HEADER)) await appendObject(ctx, bucket, key);
      else await putObject(ctx, bucket, key);
      return 'PutObject';
    }
    if (method === 'GET' || method === 'HEAD') { await getObject(ctx, bucket, key, method === 'HEAD'); return method === 'GET' ? 'GetObject' : 'HeadObject'; }
    if (method === 'DELETE') { await deleteObject(ctx, bucket, key); return 'DeleteObject'; }
    throw new S3Error('MethodNotAllowed', 405, 'The specified method is not allowed against this resource.');
  }

  /** Operations without a body: one that comes anyway is refused; a signed empty body must hash as empty. */
  private refuseBody(ctx: S3Context): void {
    const length = header(ctx, 'content-length');
    if ((length !== undefined && length !== '0') || ctx.headers.has('transfer-encoding')) {
      throw new S3Error('UnexpectedContent', 400, 'This request does not support content');
    }
    if (ctx.auth.payload.kind === 'sha256' && ctx.auth.payload.hex !== EMPTY_SHA256) {
      throw new S3Error('XAmzContentSHA256Mismatch', 400, 'The provided \'x-amz-content-sha256\' header does not match what was computed.');
    }
  }
}

function utf8(b: Buffer): string {
  return b.toString('utf8');
}

/** Bucket names and keys must be valid UTF-8 (a bad byte would silently become U+FFFD). */
function utf8Strict(b: Buffer): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(b);
  } catch {
    throw new S3Error('InvalidURI', 400, 'Couldn\'t parse the specified URI: it is not valid UTF-8.');
  }
}
