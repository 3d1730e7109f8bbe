/**
 * Bucket operations (a bucket is a gfs namespace: the top-level directory) and the
 * listings: ListBuckets, CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation,
 * GetBucketVersioning, ListObjects V1 and V2.
 *
 * Invariant: DeleteBucket removes only a bucket without objects (BucketNotEmpty
 * otherwise); what it removes then is directories that hold no file.
 */
import { limits } from '../../common/limits';
import { etagOf, requireBucket, sendXml, type S3Context } from './context';
import { decodeToken, encodeToken, listObjects, type ListPage } from './listing';
import { readSmallBody } from './request-body';
import { S3Error } from './s3-error';
import { uriEncode } from './sigv4';
import { el, XML_HEAD, XMLNS } from './xml';

const OWNER = '<Owner><ID>gfs</ID><DisplayName>gfs</DisplayName></Owner>';

export async function listBuckets(ctx: S3Context): Promise<void> {
  const buckets: string[] = [];
  let startAfter = '';
  for (;;) {
    const res = await ctx.client.list('/', { startAfter });
    for (const e of res.entries) {
      startAfter = e.path;
      if (e.isDir) buckets.push(`<Bucket>${el('Name', e.path.slice(1))}${el('CreationDate', new Date(e.mtimeMs).toISOString())}</Bucket>`);
    }
    if (!res.truncated) break;
  }
  sendXml(ctx, 200, `${XML_HEAD}<ListAllMyBucketsResult xmlns="${XMLNS}">${OWNER}<Buckets>${buckets.join('')}</Buckets></ListAllMyBucketsResult>`);
}

export async function createBucket(ctx: S3Context, bucket: string): Promise<void> {
  await readSmallBody(ctx.req, ctx.headers, ctx.auth); // CreateBucketConfiguration: only a location we do not act on
  try {
    const info = await ctx.client.stat(`/${bucket}`);
    if (info.isDir) throw new S3Error('BucketAlreadyOwnedByYou', 409, 'Your previous request to create the named bucket succeeded and you already own it.', { BucketName: bucket });
    throw new S3Error('BucketAlreadyExists', 409, 'The requested bucket name is not available.', { BucketName: bucket });
  } catch (e) {
    if ((e as { code?: string }).code !== 'NO_SUCH_FILE') throw e;
  }
  await ctx.client.mkdir(`/${bucket}`);
  ctx.res.writeHead(200, { location: `/${bucket}`, 'content-length': 0 });
  ctx.res.end();
}

export async function headBucket(ctx: S3Context, bucket: string): Promise<void> {
  await requireBucket(ctx, bucket);
  ctx.res.writeHead(200, { 'x-amz-bucket-region': ctx.region, 'content-length': 0 });
  ctx.res.end();
}

export async function deleteBucket(ctx: S3Context, bucket: string): Promise<void> {
  await requireBucket(ctx, bucket);
  // Any file at all (an object, or one put there by other means) keeps the bucket.
  let startAfter = '';
  for (;;) {
    const res = await ctx.client.list(`/${bucket}`, { recursive: true, limit: 1000, startAfter });
    for (const e of res.entries) {
      if (!e.isDir) throw new S3Error('BucketNotEmpty', 409, 'The bucket you tried to delete is not empty', { BucketName: bucket });
      startAfter = e.path;
    }
    if (!res.truncated) break;
  }
  try {
    await ctx.client.delete(`/${bucket}`, { recursive: true });
  } catch (e) {
    if ((e as { code?: string }).code !== 'NO_SUCH_FILE') throw e;
  }
  ctx.res.writeHead(204);
  ctx.res.end();
}

export async function getBucketLocation(ctx: S3Context, bucket: string): Promise<void> {
  await requireBucket(ctx, bucket);
  const region = ctx.region === 'us-east-1' ? '' : ctx.region;
  sendXml(ctx, 200, `${XML_HEAD}<LocationConstraint xmlns="${XMLNS}">${region}</LocationConstraint>`);
}

export async function getBucketVersioning(ctx: S3Context, bucket: string): Promise<void> {
  await requireBucket(ctx, bucket);
  sendXml(ctx, 200, `${XML_HEAD}<VersioningConfiguration xmlns="${XMLNS}"/>`);
}

function maxKeysOf(ctx: S3Context): number {
  const text = ctx.query.get('max-keys');
  if (text === undefined) return limits.s3ListKeysMax;
  if (!/^\d{1,10}$/.test(text)) throw new S3Error('InvalidArgument', 400, 'Provided max-keys not an integer or within integer range', { ArgumentName: 'max-keys', ArgumentValue: text });
  return Math.min(Number(text), limits.s3ListKeysMax);
}

function listBody(ctx: S3Context, page: ListPage, encode: (s: string) => string): string {
  const contents = page.contents.map(({ key, info }) => '<Contents>' + el('Key', encode(key))
    + el('LastModified', new Date(info.mtimeMs).toISOString()) + el('ETag', etagOf(info)) + el('Size', info.size)
    + (ctx.query.get('fetch-owner') === 'true' || ctx.query.get('list-type') !== '2' ? OWNER : '')
    + el('StorageClass', 'STANDARD') + '</Contents>').join('');
  const prefixes = page.prefixes.map((p) => `<CommonPrefixes>${el('Prefix', encode(p))}</CommonPrefixes>`).join('');
  return contents + prefixes;
}

export async function listObjectsHandler(ctx: S3Context, bucket: string): Promise<void> {
  const v2 = ctx.query.get('list-type') === '2';
  const prefix = ctx.query.get('prefix') ?? '';
  const delimiter = ctx.query.get('delimiter') ?? '';
  const encoding = ctx.query.get('encoding-type');
  if (encoding !== undefined && encoding !== 'url') throw new S3Error('InvalidArgument', 400, 'Invalid Encoding Method specified in Request', { ArgumentName: 'encoding-type' });
  const encode = encoding === 'url' ? (s: string) => uriEncode(s, true) : (s: string) => s;
  const maxKeys = maxKeysOf(ctx);
  await requireBucket(ctx, bucket);
  let after: { key: string; isPrefix: boolean } | undefined;
  const token = ctx.query.get('continuation-token');
  const startAfter = ctx.query.get('start-after');
  const marker = ctx.query.get('marker');
  if (v2 && token !== undefined) after = decodeToken(token);
  else if (v2 && startAfter) after = { key: startAfter, isPrefix: false };
  else if (!v2 && marker) after = { key: marker, isPrefix: delimiter !== '' && marker.startsWith(prefix) && marker.endsWith(delimiter) && marker.length > prefix.length };
  let page: ListPage;
  try {
    page = await listObjects(ctx.client, bucket, { prefix, delimiter, after, maxKeys });
  } catch (e) {
    // A prefix or marker no key can have (too long, U+FFFD) lists nothing.
    if (e instanceof S3Error && (e.code === 'KeyTooLongError' || e.code === 'InvalidArgument')) page = { contents: [], prefixes: [], truncated: false, next: undefined };
    else throw e;
  }
  const common = el('Name', bucket) + el('Prefix', encode(prefix)) + (delimiter === '' ? '' : el('Delimiter', encode(delimiter)))
    + el('MaxKeys', maxKeys) + (encoding ? el('EncodingType', encoding) : '') + el('IsTruncated', page.truncated);
  let head: string;
  if (v2) {
    head = common + el('KeyCount', page.contents.length + page.prefixes.length)
      + (token !== undefined ? el('ContinuationToken', token) : '')
      + (page.truncated && page.next ? el('NextContinuationToken', encodeToken(page.next)) : '')
      + (startAfter !== undefined ? el('StartAfter', encode(startAfter)) : '');
  } else {
    head = common + el('Marker', encode(marker ?? '')) + (page.truncated && page.next ? el('NextMarker', encode(page.next.key)) : '');
  }
  sendXml(ctx, 200, `${XML_HEAD}<ListBucketResult xmlns="${XMLNS}">${head}${listBody(ctx, page, encode)}</ListBucketResult>`);
}
