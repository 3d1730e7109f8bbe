/**
 * Multipart upload: CreateMultipartUpload, UploadPart, UploadPartCopy, ListParts,
 * AbortMultipartUpload, CompleteMultipartUpload, ListMultipartUploads.
 *
 * An upload lives in `/<bucket>/.s3-uploads/<uploadId>/`: a record file `upload` (empty;
 * the key, content type and stored headers in its metadata) and one file per part,
 * `part-NNNNN`, each put like an object (its MD5 and checksum verified before it is
 * visible). `.s3-uploads` can never be a key's path (a `.` in a key is coded `%2E`,
 * docs/S3-KEYS.md), so listings never show it; it does keep DeleteBucket from removing a
 * bucket with uploads in progress.
 *
 * Complete copies nothing: the master's ConcatFiles makes the object of the parts'
 * chunks, in order (the part files vanish, their chunks are the object's), atomically
 * with the write conditions; then the upload's record is removed. An aborted upload is
 * deleted (to trash, purged after the trash period, its chunks then reclaimed by GC).
 * The object has no whole-file xxh64 (a concatenation's parts end anywhere in a chunk).
 *
 * Invariants: an upload id is 32 lower-case hex digits (anything else is NoSuchUpload,
 * never a path); the object appears only when every listed part was found with its ETag
 * and the master joined them; the ETag is the MD5 of the parts' MD5s with `-N`.
 */
import crypto from 'node:crypto';
import type { FileInfo } from '../../client';
import { limits } from '../../common/limits';
import { etagOf, header, requireBucket, sendXml, statObject, type S3Context } from './context';
import { checkBucketName, keyToPath } from './keys';
import { evaluateConditions, parseCopySource, putStream, storedMetadata, uploadBody, writeCondition } from './objects';
import { readSmallBody } from './request-body';
import { S3Error } from './s3-error';
import { el, XML_HEAD, XMLNS } from './xml';

export const UPLOADS_DIR = '.s3-uploads';
export const UPLOAD_RECORD = 'upload';
const RECORD = UPLOAD_RECORD;
const KEY_FIELD = 's3-multipart-key';

function uploadDir(bucket: string, uploadId: string): string {
  if (!/^[0-9a-f]{32}$/.test(uploadId)) throw new S3Error('NoSuchUpload', 404, 'The specified upload does not exist.', { UploadId: uploadId });
  checkBucketName(bucket);
  return `/${bucket}/${UPLOADS_DIR}/${uploadId}`;
}

function partPath(dir: string, n: number): string {
  return `${dir}/part-${String(n).padStart(5, '0')}`;
}

/** The upload's record, checked to belong to this key. */
async function loadUpload(ctx: S3Context, bucket: string, key: string, uploadId: string): Promise<{ dir: string; record: FileInfo }> {
  const dir = uploadDir(bucket, uploadId);
  try {
    const record = await ctx.client.stat(`${dir}/${RECORD}`);
    if (!record.isDir && record.metadata[KEY_FIELD] === key) return { dir, record };
  } catch (e) {
    if ((e as { code?: string }).code !== 'NO_SUCH_FILE') throw e;
  }
  await requireBucket(ctx, bucket);
  throw new S3Error('NoSuchUpload', 404, 'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.', { UploadId: uploadId });
}

async function removeUpload(ctx: S3Context, bucket: string, dir: string): Promise<void> {
  await ctx.client.delete(dir, { recursive: true }).catch(() => undefined);
  await ctx.client.delete(`/${bucket}/${UPLOADS_DIR}`).catch(() => undefined); // only if empty
}

export async function createMultipartUpload(ctx: S3Context, bucket: string, key: string): Promise<void> {
  const { contentType, metadata } = storedMetadata(ctx);
  const algorithm = header(ctx, 'x-amz-checksum-algorithm');
  await requireBucket(ctx, bucket);
  const uploadId = crypto.randomBytes(16).toString('hex');
  const dir = uploadDir(bucket, uploadId);
  await ctx.client.put(new Uint8Array(0), `${dir}/${RECORD}`, { contentType, metadata: { ...metadata, [KEY_FIELD]: key } });
  sendXml(ctx, 200, `${XML_HEAD}<InitiateMultipartUploadResult xmlns="${XMLNS}">${el('Bucket', bucket)}${el('Key', key)}${el('UploadId', uploadId)}</InitiateMultipartUploadResult>`,
    algorithm ? { 'x-amz-checksum-algorithm': algorithm } : {});
}

function partNumberOf(ctx: S3Context): number {
  const text = ctx.query.get('partNumber') ?? '';
  const n = /^\d{1,5}$/.test(text) ? Number(text) : 0;
  if (n < 1 || n > limits.s3PartsMax) throw new S3Error('InvalidArgument', 400, `Part number must be an integer between 1 and ${limits.s3PartsMax}, inclusive`, { ArgumentName: 'partNumber' });
  return n;
}

export async function uploadPart(ctx: S3Context, bucket: string, key: string): Promise<void> {
  const n = partNumberOf(ctx);
  const { dir } = await loadUpload(ctx, bucket, key, ctx.query.get('uploadId')!);
  if (ctx.headers.has('x-amz-copy-source')) return uploadPartCopy(ctx, partPath(dir, n));
  const { etag, checksums } = await uploadBody(ctx, partPath(dir, n), { replace: true, contentType: 'application/octet-stream', metadata: {} });
  ctx.res.writeHead(200, { etag, ...checksums, 'content-length': 0 });
  ctx.res.end();
}

/** UploadPartCopy: the part is (a range of) an existing object, streamed, its MD5 computed on the way. */
async function uploadPartCopy(ctx: S3Context, path: string): Promise<void> {
  if (ctx.req.headers['content-length'] !== undefined && ctx.req.headers['content-length'] !== '0') throw new S3Error('InvalidRequest', 400, 'A copy request has no body');
  const source = parseCopySource(header(ctx, 'x-amz-copy-source')!);
  const info = await statObject(ctx, source.bucket, source.key);
  if (evaluateConditions(info, (n) => header(ctx, n), 'x-amz-copy-source-') !== 'ok') {
    throw new S3Error('PreconditionFailed', 412, 'At least one of the pre-conditions you specified did not hold');
  }
  const rangeText = header(ctx, 'x-amz-copy-source-range');
  const range = rangeText === undefined ? undefined : /^bytes=(\d{1,16})-(\d{1,16})$/.exec(rangeText.trim());
  if (rangeText !== undefined && (!range || Number(range[1]) > Number(range[2]) || Number(range[2]) >= info.size)) {
    throw new S3Error('InvalidArgument', 400, 'The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy', { ArgumentName: 'x-amz-copy-source-range' });
  }
  const start = range ? Number(range[1]) : 0;
  const end = range ? Number(range[2]) + 1 : info.size;
  const md5 = crypto.createHash('md5');
  const reader = ctx.client.openRead(info, { start, end });
  async function* hashed(): AsyncGenerator<Buffer> {
    for await (const piece of reader) { md5.update(piece as Buffer); yield piece as Buffer; }
  }
  let etag = '';
  const part = await putStream(ctx, path, hashed(), {
    replace: true, contentType: 'application/octet-stream', metadata: {},
    finish: async (size) => {
      if (size !== end - start) throw new S3Error('InternalError', 500, 'The source changed while it was copied');
      etag = `"${md5.digest('hex')}"`;
      return { etag };
    },
  });
  sendXml(ctx, 200, `${XML_HEAD}<CopyPartResult xmlns="${XMLNS}">${el('LastModified', new Date(part.mtimeMs).toISOString())}${el('ETag', etag)}</CopyPartResult>`);
}

async function listPartFiles(ctx: S3Context, dir: string): Promise<Map<number, FileInfo>> {
  const parts = new Map<number, FileInfo>();
  let startAfter = '';
  for (;;) {
    const res = await ctx.client.list(dir, { startAfter });
    for (const e of res.entries) {
      startAfter = e.path;
      const m = /\/part-(\d{5})$/.exec(e.path);
      if (m && !e.isDir) parts.set(Number(m[1]), e);
    }
    if (!res.truncated) return parts;
  }
}

export async function listParts(ctx: S3Context, bucket: string, key: string): Promise<void> {
  const uploadId = ctx.query.get('uploadId')!;
  const { dir } = await loadUpload(ctx, bucket, key, uploadId);
  const marker = Number(ctx.query.get('part-number-marker') ?? '0') || 0;
  const maxParts = Math.min(Math.max(Number(ctx.query.get('max-parts') ?? '1000') || 1000, 0), 1000);
  const all = [...(await listPartFiles(ctx, dir)).entries()].filter(([n]) => n > marker).sort((a, b) => a[0] - b[0]);
  const page = all.slice(0, maxParts);
  const truncated = all.length > page.length;
  const parts = page.map(([n, info]) => `<Part>${el('PartNumber', n)}${el('LastModified', new Date(info.mtimeMs).toISOString())}${el('ETag', etagOf(info))}${el('Size', info.size)}</Part>`).join('');
  sendXml(ctx, 200, `${XML_HEAD}<ListPartsResult xmlns="${XMLNS}">${el('Bucket', bucket)}${el('Key', key)}${el('UploadId', uploadId)}`
    + `${el('PartNumberMarker', marker)}${el('NextPartNumberMarker', page.length > 0 ? page[page.length - 1]![0] : marker)}${el('MaxParts', maxParts)}${el('IsTruncated', truncated)}`
    + `<StorageClass>STANDARD</StorageClass>${parts}</ListPartsResult>`);
}

export async function abortMultipartUpload(ctx: S3Context, bucket: string, key: string): Promise<void> {
  const { dir } = await loadUpload(ctx, bucket, key, ctx.query.get('uploadId')!);
  await removeUpload(ctx, bucket, dir);
  ctx.res.writeHead(204);
  ctx.res.end();
}

function parseComplete(body: string): { n: number; etag: string }[] {
  if (/<!DOCTYPE|<!ENTITY/i.test(body) || !/<CompleteMultipartUpload[\s>]/.test(body)) throw new S3Error('MalformedXML', 400, 'The XML you provided was not well-formed or did not validate against our published schema.');
  const parts: { n: number; etag: string }[] = [];
  for (const m of body.matchAll(/<Part>([\s\S]*?)<\/Part>/g)) {
    const n = /<PartNumber>\s*(\d{1,5})\s*<\/PartNumber>/.exec(m[1]!);
    const etag = /<ETag>([\s\S]*?)<\/ETag>/.exec(m[1]!);
    if (!n || !etag) throw new S3Error('MalformedXML', 400, 'A Part needs PartNumber and ETag');
    parts.push({ n: Number(n[1]), etag: etag[1]!.replace(/&quot;/g, '"').replace(/"/g, '').trim() });
    if (parts.length > limits.s3PartsMax) throw new S3Error('MalformedXML', 400, 'Too many parts');
  }
  if (parts.length === 0) throw new S3Error('MalformedXML', 400, 'You must specify at least one part');
  return parts;
}

export async function completeMultipartUpload(ctx: S3Context, bucket: string, key: string): Promise<void> {
  const uploadId = ctx.query.get('uploadId')!;
  const body = await readSmallBody(ctx.req, ctx.headers, ctx.auth);
  const { dir, record } = await loadUpload(ctx, bucket, key, uploadId);
  const condition = await writeCondition(ctx, bucket, key);
  const wanted = parseComplete(body.toString('utf8'));
  const have = await listPartFiles(ctx, dir);
  const chosen: FileInfo[] = [];
  const md5s: Buffer[] = [];
  for (const [i, p] of wanted.entries()) {
    if (i > 0 && p.n <= wanted[i - 1]!.n) throw new S3Error('InvalidPartOrder', 400, 'The list of parts was not in ascending order. The parts list must be specified in order by part number.');
    const info = have.get(p.n);
    const etag = info ? etagOf(info).replace(/"/g, '') : '';
    if (!info || etag !== p.etag) throw new S3Error('InvalidPart', 400, 'One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not have matched the part\'s entity tag.', { PartNumber: String(p.n) });
    if (i < wanted.length - 1 && info.size < limits.s3PartBytesMin) throw new S3Error('EntityTooSmall', 400, 'Your proposed upload is smaller than the minimum allowed object size.', { PartNumber: String(p.n) });
    chosen.push(info); // its inode names it to the master: a part replaced since is refused
    md5s.push(Buffer.from(etag, 'hex'));
  }
  const size = chosen.reduce((a, f) => a + f.size, 0);
  if (size > limits.s3MultipartBytesMax) throw new S3Error('EntityTooLarge', 400, 'Your proposed upload exceeds the maximum allowed size');
  const etag = `"${crypto.createHash('md5').update(Buffer.concat(md5s)).digest('hex')}-${chosen.length}"`;
  const metadata: Record<string, string> = { ...record.metadata, etag };
  delete metadata[KEY_FIELD];
  try {
    // The master joins the parts' chunk lists (no data is copied) and the parts vanish,
    // atomically with the If-None-Match / If-Match decision.
    await ctx.client.concat(keyToPath(bucket, key), chosen, {
      force: condition.replace, replacesInode: condition.replacesInode, contentType: record.contentType, metadata,
    });
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ALREADY_EXISTS') throw new S3Error('PreconditionFailed', 412, 'At least one of the pre-conditions you specified did not hold', { Condition: 'If-None-Match' });
    if (code === 'PRECONDITION_FAILED') throw new S3Error('PreconditionFailed', 412, 'At least one of the pre-conditions you specified did not hold', { Condition: 'If-Match' });
    if (code === 'NO_SUCH_FILE') throw new S3Error('InvalidPart', 400, 'One or more of the specified parts could not be found (another Complete or an Abort of this upload may have consumed them).');
    throw e;
  }
  await removeUpload(ctx, bucket, dir);
  sendXml(ctx, 200, `${XML_HEAD}<CompleteMultipartUploadResult xmlns="${XMLNS}">${el('Location', `/${bucket}/${key}`)}${el('Bucket', bucket)}${el('Key', key)}${el('ETag', etag)}</CompleteMultipartUploadResult>`);
}

export async function listMultipartUploads(ctx: S3Context, bucket: string): Promise<void> {
  await requireBucket(ctx, bucket);
  const uploads: string[] = [];
  let res;
  try {
    res = await ctx.client.list(`/${bucket}/${UPLOADS_DIR}`, { limit: limits.s3ListKeysMax });
  } catch (e) {
    if ((e as { code?: string }).code !== 'NO_SUCH_FILE') throw e;
  }
  for (const e of res?.entries ?? []) {
    if (!e.isDir) continue;
    const uploadId = e.path.slice(e.path.lastIndexOf('/') + 1);
    try {
      const record = await ctx.client.stat(`${e.path}/${RECORD}`);
      const key = record.metadata[KEY_FIELD];
      const prefix = ctx.query.get('prefix') ?? '';
      if (key !== undefined && key.startsWith(prefix)) {
        uploads.push(`<Upload>${el('Key', key)}${el('UploadId', uploadId)}${el('Initiated', new Date(record.mtimeMs).toISOString())}<StorageClass>STANDARD</StorageClass></Upload>`);
      }
    } catch { /* an upload being aborted */ }
  }
  sendXml(ctx, 200, `${XML_HEAD}<ListMultipartUploadsResult xmlns="${XMLNS}">${el('Bucket', bucket)}<KeyMarker/><UploadIdMarker/>${el('MaxUploads', limits.s3ListKeysMax)}${el('IsTruncated', false)}${uploads.join('')}</ListMultipartUploadsResult>`);
}
