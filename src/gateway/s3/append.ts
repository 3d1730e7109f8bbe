/**
 * Append to an object, as S3 Express One Zone does it: PutObject with
 * `x-amz-write-offset-bytes: N` appends the body to the object if N is its current size;
 * N = 0 on a missing key creates it. Such an object is a gfs log (docs/LOG-STREAMS.md):
 * the body is ONE record, appended through the record-append path, so HEAD and GET of it
 * show and return its committed length (every acknowledged append, nothing more).
 *
 * Errors, as S3 Express answers them: N that is not the size → InvalidWriteOffset (400,
 * nothing stored: the primary checks N against the log's end as it orders the record);
 * an empty body, or user metadata with an offset → InvalidRequest (400); N > 0 on a
 * missing key → NoSuchKey. gfs only: an object that was not created by an append (a
 * sealed ordinary file) is not appendable (InvalidRequest); a body over the record limit
 * (limits.recordBytesMax, and a quarter of the chunk size) → EntityTooLarge; the body's
 * digests (Content-MD5, x-amz-checksum-*) are checked before anything is appended but no
 * whole-object checksum is stored for a log.
 *
 * Invariants:
 * - Exactly once, with bounded exactly-once memory: the record's id is {writer: a hash
 *   of bucket and key (one writer per object), seq: N + 1}. A successful append at N is
 *   the only record ever stored at N, so the id names it; a retried request finds it
 *   stored (the primary's or the master's dup answer) and is answered as the first was.
 *   Another request with the same N is told apart by its bytes: on a dup answer the
 *   gateway reads [N, N + length) back and answers InvalidWriteOffset unless they are
 *   this body's bytes.
 * - Nothing is appended before the whole body arrived and its digests matched.
 */
import crypto from 'node:crypto';
import { limits } from '../../common/limits';
import { header, logEtag, requireBucket, type S3Context } from './context';
import { keyToPath } from './keys';
import { requestBody } from './request-body';
import { S3Error } from './s3-error';

export const WRITE_OFFSET_HEADER = 'x-amz-write-offset-bytes';

function invalidWriteOffset(): S3Error {
  return new S3Error('InvalidWriteOffset', 400, 'The write offset value that you specified does not match the current object size.');
}

/** The record id of an append at `offset`: the same for every retry of it, and for no other stored record. */
export function appendRecordId(bucket: string, key: string, offset: number): { writer: string; seq: number } {
  const digest = crypto.createHash('sha256').update(`${bucket}\0${key}`).digest('hex');
  return { writer: `s3-${digest.slice(0, 40)}`, seq: offset + 1 };
}

/** True if the log holds exactly `record` at `offset` (a dup answer: this request's retry, or another body). */
async function storedThere(ctx: S3Context, path: string, offset: number, record: Buffer): Promise<boolean> {
  const info = await ctx.client.stat(path);
  if (info.size < offset + record.length) return false;
  const pieces: Buffer[] = [];
  for await (const p of ctx.client.openRead(info, { start: offset, end: offset + record.length })) pieces.push(p as Buffer);
  return Buffer.concat(pieces).equals(record);
}

export async function appendObject(ctx: S3Context, bucket: string, key: string): Promise<void> {
  const text = header(ctx, WRITE_OFFSET_HEADER)!.trim();
  if (!/^\d{1,16}$/.test(text)) throw new S3Error('InvalidArgument', 400, `${WRITE_OFFSET_HEADER} must be a whole number of bytes`, { ArgumentName: WRITE_OFFSET_HEADER });
  const offset = Number(text);
  if ([...ctx.headers.keys()].some((h) => h.startsWith('x-amz-meta-'))) {
    throw new S3Error('InvalidRequest', 400, 'Cannot specify both a write offset value and user-defined object metadata for existing objects.');
  }
  if (ctx.headers.has('if-match') || ctx.headers.has('if-none-match')) {
    throw new S3Error('NotImplemented', 501, 'A write with a write offset does not take If-Match or If-None-Match: the offset is the condition');
  }
  await requireBucket(ctx, bucket);
  const path = keyToPath(bucket, key);
  const body = requestBody(ctx.req, ctx.headers, ctx.auth, limits.recordBytesMax);
  const pieces: Buffer[] = [];
  for await (const piece of body.source) pieces.push(piece);
  await body.verified();
  const record = Buffer.concat(pieces);
  if (record.length === 0) throw new S3Error('InvalidRequest', 400, 'Request body cannot be empty when \'write offset\' is specified.');
  let ack;
  try {
    ack = await ctx.client.append(path, record, { create: offset === 0, expectedOffset: offset, recordId: appendRecordId(bucket, key, offset) });
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'PRECONDITION_FAILED') throw invalidWriteOffset();
    if (code === 'NO_SUCH_FILE') throw new S3Error('NoSuchKey', 404, 'The specified key does not exist.', { Key: key });
    if (code === 'FILE_NOT_WRITABLE') throw new S3Error('InvalidRequest', 400, 'The object is not appendable: only objects created by an append (write offset 0) take appends, until they are sealed');
    if (code === 'TOO_LARGE') throw new S3Error('EntityTooLarge', 400, 'One append is one record: at most the record limit (a quarter of a chunk)');
    throw e;
  }
  // A dup: the record stored at N is this request's (a retry) only if it holds these bytes.
  if (ack.offset !== offset || (ack.dup === true && !(await storedThere(ctx, path, offset, record)))) throw invalidWriteOffset();
  ctx.res.writeHead(200, { etag: logEtag(path, offset + record.length), 'x-amz-object-size': String(offset + record.length), 'content-length': 0 });
  ctx.res.end();
}
