/**
 * Object operations: PutObject, GetObject/HeadObject, DeleteObject, DeleteObjects,
 * CopyObject.
 *
 * Invariants:
 * - A put or copy streams into a new unsealed file that becomes visible only after the
 *   whole body arrived and every declared digest matched (GfsClient.put's
 *   beforeComplete); otherwise it is aborted and the old object (if any) stays.
 * - The ETag (MD5 of the body) and the x-amz-checksum-* value are computed on the way
 *   and stored in the file's metadata as it completes; a GET returns them unchanged.
 * - A GET streams exactly the version it stat'ed (the headers it sent describe the bytes).
 * - Conditions are never ignored: a write's If-None-Match: * and If-Match are decided by
 *   the master as it completes (atomic); what cannot be decided is refused (501).
 */
import { pipeline } from 'node:stream/promises';
import type { FileInfo } from '../../client';
import { limits } from '../../common/limits';
import { CHECKSUM_ALGORITHMS, isChecksumAlgorithm, BodyDigests, type ChecksumAlgorithm } from './checksums';
import { etagOf, header, requireBucket, sendXml, statObject, type S3Context } from './context';
import { checkBucketName, keyToPath } from './keys';
import { requestBody, readSmallBody } from './request-body';
import { S3Error } from './s3-error';
import { percentDecode } from './sigv4';
import { el, parseDeleteRequest, XML_HEAD, XMLNS } from './xml';

/** Headers stored with an object and returned by GET/HEAD as they were given. */
const STORED_HEADERS = ['cache-control', 'content-disposition', 'content-encoding', 'content-language', 'expires'];

/** The metadata a PUT or a REPLACE copy gives an object, from its headers. */
export function storedMetadata(ctx: S3Context): { contentType: string; metadata: Record<string, string> } {
  const metadata: Record<string, string> = {};
  let userBytes = 0;
  for (const [name, values] of ctx.headers) {
    const value = values.join(',');
    if (name.startsWith('x-amz-meta-')) {
      userBytes += name.length - 'x-amz-meta-'.length + Buffer.byteLength(value);
      metadata[name] = value;
    } else if (STORED_HEADERS.includes(name)) {
      const v = name === 'content-encoding' ? value.split(',').map((s) => s.trim()).filter((s) => s !== 'aws-chunked' && s !== '').join(',') : value;
      if (v !== '') metadata[name] = v;
    }
  }
  if (userBytes > limits.s3UserMetadataBytesMax) {
    throw new S3Error('MetadataTooLarge', 400, `Your metadata headers exceed the maximum allowed metadata size (${limits.s3UserMetadataBytesMax} bytes)`);
  }
  return { contentType: header(ctx, 'content-type') ?? 'binary/octet-stream', metadata };
}

/** How a write may replace what is at its key. */
export interface WriteCondition { replace: boolean; replacesInode?: number }

/**
 * A write's If-None-Match / If-Match, decided by the master as the write completes:
 * If-None-Match: * is a create that may not replace (ALREADY_EXISTS → 412); If-Match
 * names the version (by ETag) it may replace, and the master completes only if that
 * version (its inode) is still there (PRECONDITION_FAILED → 412). Never ignored.
 */
export async function writeCondition(ctx: S3Context, bucket: string, key: string): Promise<WriteCondition> {
  const ifMatch = header(ctx, 'if-match');
  const ifNoneMatch = header(ctx, 'if-none-match');
  if (ifNoneMatch !== undefined && ifNoneMatch.trim() !== '*') throw new S3Error('NotImplemented', 501, 'A write with If-None-Match supports only *');
  if (ifMatch !== undefined && ifNoneMatch !== undefined) throw new S3Error('NotImplemented', 501, 'A write with both If-Match and If-None-Match is not supported');
  if (ifNoneMatch !== undefined) return { replace: false };
  if (ifMatch === undefined) return { replace: true };
  const info = await statObject(ctx, bucket, key);
  if (!etagMatches(ifMatch, etagOf(info))) throw new S3Error('PreconditionFailed', 412, 'At least one of the pre-conditions you specified did not hold', { Condition: 'If-Match' });
  return { replace: true, replacesInode: info.inode };
}

function checksumHeaders(metadata: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of CHECKSUM_ALGORITHMS) {
    const v = metadata[`x-amz-checksum-${a}`];
    if (v !== undefined) { out[`x-amz-checksum-${a}`] = v; out['x-amz-checksum-type'] = 'FULL_OBJECT'; }
  }
  return out;
}

export async function putStream(ctx: S3Context, path: string, source: AsyncIterable<Buffer>, opts: WriteCondition & {
  contentType: string; metadata: Record<string, string>;
  finish: (size: number) => Promise<Record<string, string>>;
}): Promise<FileInfo> {
  try {
    return await ctx.client.put(source, path, {
      force: opts.replace, replacesInode: opts.replacesInode, contentType: opts.contentType, metadata: opts.metadata, chunkBytes: ctx.chunkBytes,
      beforeComplete: opts.finish,
    });
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ALREADY_EXISTS') throw new S3Error('PreconditionFailed', 412, 'At least one of the pre-conditions you specified did not hold', { Condition: 'If-None-Match' });
    if (code === 'PRECONDITION_FAILED') throw new S3Error('PreconditionFailed', 412, 'At least one of the pre-conditions you specified did not hold', { Condition: 'If-Match' });
    throw e;
  }
}

/** Streams the request body into `path` (an object or a part), verified before it is visible; its ETag and checksum headers. */
export async function uploadBody(ctx: S3Context, path: string, opts: WriteCondition & { contentType: string; metadata: Record<string, string> }): Promise<{ etag: string; checksums: Record<string, string> }> {
  const body = requestBody(ctx.req, ctx.headers, ctx.auth, limits.s3PutBytesMax);
  let added: Record<string, string> = {};
  await putStream(ctx, path, body.source, {
    ...opts,
    finish: async () => {
      const got = await body.verified();
      added = { etag: `"${got.md5Hex}"` };
      if (got.checksum) added[`x-amz-checksum-${got.checksum.algorithm}`] = got.checksum.value;
      return added;
    },
  });
  return { etag: added['etag']!, checksums: checksumHeaders(added) };
}

export async function putObject(ctx: S3Context, bucket: string, key: string): Promise<void> {
  const path = keyToPath(bucket, key);
  const { contentType, metadata } = storedMetadata(ctx);
  await requireBucket(ctx, bucket);
  const condition = await writeCondition(ctx, bucket, key);
  const { etag, checksums } = await uploadBody(ctx, path, { ...condition, contentType, metadata });
  ctx.res.writeHead(200, { etag, ...checksums, 'content-length': 0 });
  ctx.res.end();
}

type Verdict = 'ok' | 304 | 412;

function etagMatches(list: string, etag: string): boolean {
  const bare = etag.replace(/^W\//, '').replace(/"/g, '');
  return list.split(',').some((t) => { const v = t.trim().replace(/^W\//, '').replace(/"/g, ''); return v === '*' || v === bare; });
}

/** RFC 7232 order, as S3 applies it: If-Match, else If-Unmodified-Since; If-None-Match, else If-Modified-Since. */
export function evaluateConditions(info: FileInfo, get: (name: string) => string | undefined, prefix = ''): Verdict {
  const etag = etagOf(info);
  const modifiedSec = Math.floor(info.mtimeMs / 1000);
  const date = (name: string) => { const v = get(prefix + name); const t = v === undefined ? NaN : Date.parse(v); return Number.isNaN(t) ? undefined : Math.floor(t / 1000); };
  const ifMatch = get(prefix + 'if-match');
  if (ifMatch !== undefined) {
    if (!etagMatches(ifMatch, etag)) return 412;
  } else {
    const since = date('if-unmodified-since');
    if (since !== undefined && modifiedSec > since) return 412;
  }
  const ifNoneMatch = get(prefix + 'if-none-match');
  if (ifNoneMatch !== undefined) {
    if (etagMatches(ifNoneMatch, etag)) return 304;
  } else {
    const since = date('if-modified-since');
    if (since !== undefined && modifiedSec <= since) return 304;
  }
  return 'ok';
}

/** One `bytes=` range: undefined to send everything (absent, malformed or several), or unsatisfiable. */
export function parseRange(text: string | undefined, size: number): { start: number; end: number } | undefined | 'unsatisfiable' {
  if (text === undefined) return undefined;
  const m = /^bytes=(\d{0,16})-(\d{0,16})$/.exec(text.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  if (start >= size) return 'unsatisfiable';
  const end = m[2] === '' ? size - 1 : Number(m[2]);
  if (end < start) return undefined;
  return { start, end: Math.min(end, size - 1) };
}

function objectHeaders(ctx: S3Context, info: FileInfo, withChecksums: boolean): Record<string, string> {
  const h: Record<string, string> = {
    etag: etagOf(info),
    'last-modified': new Date(info.mtimeMs).toUTCString(),
    'content-type': info.contentType || 'binary/octet-stream',
    'accept-ranges': 'bytes',
  };
  for (const [name, value] of Object.entries(info.metadata)) {
    if (name.startsWith('x-amz-meta-') || STORED_HEADERS.includes(name)) h[name] = value;
  }
  if (withChecksums) Object.assign(h, checksumHeaders(info.metadata));
  // Presigned GETs may override what the answer says (S3's response-* parameters).
  for (const name of ['content-type', 'content-language', 'expires', 'cache-control', 'content-disposition', 'content-encoding']) {
    const v = ctx.query.get(`response-${name}`);
    if (v !== undefined) h[name] = v;
  }
  return h;
}

export async function getObject(ctx: S3Context, bucket: string, key: string, head: boolean): Promise<void> {
  if (ctx.query.has('partNumber') && ctx.query.get('partNumber') !== '1') throw new S3Error('InvalidPartNumber', 416, 'The requested partnumber is not satisfiable');
  const info = await statObject(ctx, bucket, key);
  const verdict = evaluateConditions(info, (n) => header(ctx, n));
  if (verdict === 412) throw new S3Error('PreconditionFailed', 412, 'At least one of the pre-conditions you specified did not hold');
  if (verdict === 304) {
    ctx.res.writeHead(304, { etag: etagOf(info), 'last-modified': new Date(info.mtimeMs).toUTCString() });
    ctx.res.end();
    return;
  }
  const range = parseRange(header(ctx, 'range'), info.size);
  if (range === 'unsatisfiable') {
    throw new S3Error('InvalidRange', 416, 'The requested range is not satisfiable', { RangeRequested: header(ctx, 'range')!, ActualObjectSize: String(info.size) });
  }
  const checksumMode = header(ctx, 'x-amz-checksum-mode')?.toUpperCase() === 'ENABLED';
  const h = objectHeaders(ctx, info, checksumMode && range === undefined);
  const start = range?.start ?? 0;
  const end = range ? range.end + 1 : info.size;
  h['content-length'] = String(end - start);
  if (range) h['content-range'] = `bytes ${range.start}-${range.end}/${info.size}`;
  ctx.res.writeHead(range ? 206 : 200, h);
  if (head || end === start) { ctx.res.end(); return; }
  await pipeline(ctx.client.openRead(info, { start, end }), ctx.res);
}

/** Removes the piece directories a long key left, bottom up, while they are empty. */
async function pruneEmptyDirs(ctx: S3Context, bucket: string, path: string): Promise<void> {
  const floor = `/${bucket}`;
  for (let dir = path.slice(0, path.lastIndexOf('/')); dir.length > floor.length; dir = dir.slice(0, dir.lastIndexOf('/'))) {
    try {
      await ctx.client.delete(dir);
    } catch {
      return; // not empty (or gone): a directory above it is not empty either
    }
  }
}

async function deleteKey(ctx: S3Context, bucket: string, key: string): Promise<void> {
  const path = keyToPath(bucket, key);
  try {
    const info = await ctx.client.stat(path);
    if (info.isDir) return; // not an object: a directory made by other means stays
    await ctx.client.delete(path);
  } catch (e) {
    if ((e as { code?: string }).code !== 'NO_SUCH_FILE') throw e;
    return;
  }
  await pruneEmptyDirs(ctx, bucket, path);
}

export async function deleteObject(ctx: S3Context, bucket: string, key: string): Promise<void> {
  await requireBucket(ctx, bucket);
  await deleteKey(ctx, bucket, key);
  ctx.res.writeHead(204);
  ctx.res.end();
}


export async function deleteObjects(ctx: S3Context, bucket: string): Promise<void> {
  if (header(ctx, 'content-md5') === undefined && ![...ctx.headers.keys()].some((h) => h.startsWith('x-amz-checksum-') || h === 'x-amz-trailer')) {
    throw new S3Error('InvalidRequest', 400, 'Missing required header for this request: Content-MD5 or x-amz-checksum-*');
  }
  const body = await readSmallBody(ctx.req, ctx.headers, ctx.auth);
  const { keys, quiet } = parseDeleteRequest(body.toString('utf8'), limits.s3DeleteKeysMax);
  await requireBucket(ctx, bucket);
  const results: string[] = new Array(keys.length);
  for (let i = 0; i < keys.length; i += limits.s3DeleteConcurrency) {
    await Promise.all(keys.slice(i, i + limits.s3DeleteConcurrency).map(async (key, j) => {
      try {
        await deleteKey(ctx, bucket, key);
        results[i + j] = quiet ? '' : `<Deleted>${el('Key', key)}</Deleted>`;
      } catch (e) {
        const err = S3Error.from(e);
        results[i + j] = `<Error>${el('Key', key)}${el('Code', err.code)}${el('Message', err.message)}</Error>`;
      }
    }));
  }
  sendXml(ctx, 200, `${XML_HEAD}<DeleteResult xmlns="${XMLNS}">${results.join('')}</DeleteResult>`);
}

/** `x-amz-copy-source`: `[/]bucket/key[?versionId=null]`, percent-encoded. */
export function parseCopySource(text: string): { bucket: string; key: string } {
  let t = text.trim();
  const q = t.indexOf('?');
  if (q >= 0) {
    const version = t.slice(q + 1);
    if (version !== 'versionId=null' && version !== '') throw new S3Error('NotImplemented', 501, 'Versioned copy sources are not supported');
    t = t.slice(0, q);
  }
  let decoded: string;
  try {
    decoded = new TextDecoder('utf-8', { fatal: true }).decode(percentDecode(t));
  } catch (e) {
    if (e instanceof S3Error) throw e;
    throw new S3Error('InvalidArgument', 400, 'Copy Source must be valid UTF-8');
  }
  if (decoded.startsWith('/')) decoded = decoded.slice(1);
  const slash = decoded.indexOf('/');
  if (slash <= 0 || slash === decoded.length - 1) throw new S3Error('InvalidArgument', 400, 'Copy Source must mention the source bucket and key: sourcebucket/sourcekey', { ArgumentName: 'x-amz-copy-source' });
  const bucket = decoded.slice(0, slash);
  checkBucketName(bucket);
  return { bucket, key: decoded.slice(slash + 1) };
}

export async function copyObject(ctx: S3Context, bucket: string, key: string): Promise<void> {
  const source = parseCopySource(header(ctx, 'x-amz-copy-source')!);
  const directive = (header(ctx, 'x-amz-metadata-directive') ?? 'COPY').toUpperCase();
  if (directive !== 'COPY' && directive !== 'REPLACE') throw new S3Error('InvalidArgument', 400, 'Unknown metadata directive.');
  if (ctx.headers.has('x-amz-tagging-directive') || ctx.headers.has('x-amz-copy-source-range')) {
    throw new S3Error('NotImplemented', 501, 'Tagging directives and copy ranges are not implemented');
  }
  if (ctx.req.headers['content-length'] !== undefined && ctx.req.headers['content-length'] !== '0') {
    throw new S3Error('InvalidRequest', 400, 'A copy request has no body');
  }
  const sameObject = source.bucket === bucket && source.key === key;
  if (sameObject && directive === 'COPY') {
    throw new S3Error('InvalidRequest', 400, 'This copy request is illegal because it is trying to copy an object to itself without changing the object\'s metadata, storage class, website redirect location or encryption attributes.');
  }
  const info = await statObject(ctx, source.bucket, source.key);
  if (evaluateConditions(info, (n) => header(ctx, n), 'x-amz-copy-source-') !== 'ok') {
    throw new S3Error('PreconditionFailed', 412, 'At least one of the pre-conditions you specified did not hold');
  }
  await requireBucket(ctx, bucket);
  const condition = await writeCondition(ctx, bucket, key);
  const stored = directive === 'REPLACE' ? storedMetadata(ctx) : { contentType: info.contentType, metadata: { ...info.metadata } };
  for (const name of Object.keys(stored.metadata)) if (name === 'etag' || name.startsWith('x-amz-checksum-')) delete stored.metadata[name];
  // The copy keeps the source's checksum algorithm unless the request names another.
  const asked = header(ctx, 'x-amz-checksum-algorithm')?.toLowerCase();
  if (asked !== undefined && !isChecksumAlgorithm(asked)) throw new S3Error('InvalidRequest', 400, `Unknown checksum algorithm ${asked}`);
  const algorithm: ChecksumAlgorithm | undefined = asked ?? CHECKSUM_ALGORITHMS.find((a) => info.metadata[`x-amz-checksum-${a}`] !== undefined);
  const digests = new BodyDigests(false, algorithm);
  const reader = ctx.client.openRead(info);
  async function* counted(): AsyncGenerator<Buffer> {
    for await (const piece of reader) { digests.update(piece as Buffer); yield piece as Buffer; }
  }
  let added: Record<string, string> = {};
  const copied = await putStream(ctx, keyToPath(bucket, key), counted(), {
    ...condition, contentType: stored.contentType, metadata: stored.metadata,
    finish: async (size) => {
      if (size !== info.size) throw new S3Error('InternalError', 500, 'The source changed while it was copied');
      const got = await digests.digest();
      added = { etag: `"${got.md5Hex}"` };
      if (got.checksum) added[`x-amz-checksum-${got.checksum.algorithm}`] = got.checksum.value;
      return added;
    },
  });
  const checksums = checksumHeaders(added);
  const checksumXml = Object.entries(checksums).filter(([n]) => n !== 'x-amz-checksum-type')
    .map(([n, v]) => el(`Checksum${n.slice('x-amz-checksum-'.length).toUpperCase()}`, v)).join('');
  sendXml(ctx, 200, `${XML_HEAD}<CopyObjectResult xmlns="${XMLNS}">${el('LastModified', new Date(copied.mtimeMs).toISOString())}${el('ETag', added['etag'])}${checksumXml}</CopyObjectResult>`);
}
