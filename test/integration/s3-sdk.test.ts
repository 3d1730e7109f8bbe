/**
 * The S3 API through the real AWS SDK v3 (default settings: its default checksums,
 * aws-chunked streaming), against a real cluster started by `gfs dev`'s code.
 */
import t, { type Test } from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import net from 'node:net';
import { Readable } from 'node:stream';
import {
  S3Client, CreateBucketCommand, HeadBucketCommand, ListBucketsCommand, DeleteBucketCommand, GetBucketLocationCommand,
  PutObjectCommand, GetObjectCommand, HeadObjectCommand, DeleteObjectCommand, DeleteObjectsCommand, CopyObjectCommand,
  ListObjectsV2Command, ListObjectsCommand, type ListObjectsV2CommandOutput,
  CreateMultipartUploadCommand, UploadPartCommand, ListPartsCommand, ListMultipartUploadsCommand, CompleteMultipartUploadCommand, AbortMultipartUploadCommand, UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { cluster, patterned } from './helpers';
import { keyToPath } from '../../src/gateway/s3';

async function s3Cluster(t: Test) {
  const { cluster: c, client, dir } = await cluster(t);
  const creds = JSON.parse(fs.readFileSync(path.join(c.dataDir, 'credentials.json'), 'utf8')) as { accessKeyId: string; secretAccessKey: string };
  const endpoint = c.endpoints().s3;
  const s3 = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey } });
  t.teardown(() => s3.destroy());
  return { c, client, dir, s3, endpoint, creds };
}

async function body(stream: unknown): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of stream as AsyncIterable<Buffer>) parts.push(Buffer.from(p));
  return Buffer.concat(parts);
}

async function rejectsWith(t: Test, p: Promise<unknown>, name: string): Promise<void> {
  try {
    await p;
    t.fail(`expected ${name}`);
  } catch (e) {
    t.equal((e as Error).name, name, `fails with ${name}`);
  }
}

async function rejectsStatus(t: Test, p: Promise<unknown>, code: number): Promise<void> {
  try {
    await p;
    t.fail(`expected HTTP ${code}`);
  } catch (e) {
    t.equal(status(e), code, `fails with HTTP ${code} (${(e as Error).name})`);
  }
}

function status(e: unknown): number | undefined {
  return (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

t.test('s3: AWS SDK v3 against a real cluster', async (t) => {
  const { client, s3, endpoint, creds } = await s3Cluster(t);

  await t.test('buckets: create, head, list, location, 404 for a missing one, 409 when not empty', async (t) => {
    await s3.send(new CreateBucketCommand({ Bucket: 'photos' }));
    await s3.send(new HeadBucketCommand({ Bucket: 'photos' }));
    const list = await s3.send(new ListBucketsCommand({}));
    t.ok(list.Buckets?.some((b) => b.Name === 'photos'));
    const loc = await s3.send(new GetBucketLocationCommand({ Bucket: 'photos' }));
    t.notOk(loc.LocationConstraint);
    await rejectsStatus(t, s3.send(new HeadBucketCommand({ Bucket: 'nope-bucket' })), 404);
    await rejectsWith(t, s3.send(new CreateBucketCommand({ Bucket: 'photos' })), 'BucketAlreadyOwnedByYou');
    await rejectsStatus(t, s3.send(new CreateBucketCommand({ Bucket: 'Bad_Name' })), 400);
    await s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'a', Body: 'x' }));
    await rejectsWith(t, s3.send(new DeleteBucketCommand({ Bucket: 'photos' })), 'BucketNotEmpty');
    await s3.send(new DeleteObjectCommand({ Bucket: 'photos', Key: 'a' }));
    await s3.send(new DeleteBucketCommand({ Bucket: 'photos' }));
    await rejectsStatus(t, s3.send(new HeadBucketCommand({ Bucket: 'photos' })), 404);
  });

  await s3.send(new CreateBucketCommand({ Bucket: 'data' }));

  await t.test('objects: put/get/head/delete with metadata, ETag = MD5, ranges, conditionals', async (t) => {
    const bytes = patterned(300_000, 1);
    const put = await s3.send(new PutObjectCommand({
      Bucket: 'data', Key: 'dir/file.bin', Body: bytes, ContentType: 'application/x-test', CacheControl: 'max-age=60',
      Metadata: { color: 'blue' },
    }));
    const md5 = (await import('node:crypto')).createHash('md5').update(bytes).digest('hex');
    t.equal(put.ETag, `"${md5}"`);
    const got = await s3.send(new GetObjectCommand({ Bucket: 'data', Key: 'dir/file.bin' }));
    t.ok((await body(got.Body)).equals(bytes), 'bytes equal');
    t.equal(got.ETag, `"${md5}"`);
    t.equal(got.ContentType, 'application/x-test');
    t.equal(got.CacheControl, 'max-age=60');
    t.same(got.Metadata, { color: 'blue' });
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'data', Key: 'dir/file.bin' }));
    t.equal(head.ContentLength, bytes.length);
    const range = await s3.send(new GetObjectCommand({ Bucket: 'data', Key: 'dir/file.bin', Range: 'bytes=1000-1999' }));
    t.equal(range.ContentRange, `bytes 1000-1999/${bytes.length}`);
    t.ok((await body(range.Body)).equals(bytes.subarray(1000, 2000)));
    const tail = await s3.send(new GetObjectCommand({ Bucket: 'data', Key: 'dir/file.bin', Range: 'bytes=-10' }));
    t.ok((await body(tail.Body)).equals(bytes.subarray(bytes.length - 10)));
    await rejectsWith(t, s3.send(new GetObjectCommand({ Bucket: 'data', Key: 'dir/file.bin', Range: `bytes=${bytes.length}-` })), 'InvalidRange');
    await rejectsStatus(t, s3.send(new GetObjectCommand({ Bucket: 'data', Key: 'dir/file.bin', IfMatch: '"nope"' })), 412);
    await rejectsStatus(t, s3.send(new GetObjectCommand({ Bucket: 'data', Key: 'dir/file.bin', IfNoneMatch: `"${md5}"` })), 304);
    await rejectsWith(t, s3.send(new GetObjectCommand({ Bucket: 'data', Key: 'missing' })), 'NoSuchKey');
    await rejectsWith(t, s3.send(new GetObjectCommand({ Bucket: 'no-such-bucket', Key: 'x' })), 'NoSuchBucket');
    // PUT If-None-Match: * is decided by the master: the second one fails, the first stays.
    await s3.send(new PutObjectCommand({ Bucket: 'data', Key: 'once', Body: 'first', IfNoneMatch: '*' }));
    await rejectsStatus(t, s3.send(new PutObjectCommand({ Bucket: 'data', Key: 'once', Body: 'second', IfNoneMatch: '*' })), 412);
    t.equal((await body((await s3.send(new GetObjectCommand({ Bucket: 'data', Key: 'once' }))).Body)).toString(), 'first');
    // PUT If-Match: the master completes only if the version that matched is still there.
    const first = await s3.send(new HeadObjectCommand({ Bucket: 'data', Key: 'once' }));
    await rejectsStatus(t, s3.send(new PutObjectCommand({ Bucket: 'data', Key: 'once', Body: 'third', IfMatch: '"x"' })), 412);
    const second = await s3.send(new PutObjectCommand({ Bucket: 'data', Key: 'once', Body: 'second', IfMatch: first.ETag }));
    await rejectsStatus(t, s3.send(new PutObjectCommand({ Bucket: 'data', Key: 'once', Body: 'stale', IfMatch: first.ETag })), 412);
    t.equal((await body((await s3.send(new GetObjectCommand({ Bucket: 'data', Key: 'once' }))).Body)).toString(), 'second');
    t.equal((await s3.send(new HeadObjectCommand({ Bucket: 'data', Key: 'once' }))).ETag, second.ETag);
    await rejectsStatus(t, s3.send(new PutObjectCommand({ Bucket: 'data', Key: 'never', Body: 'x', IfMatch: first.ETag })), 404);
    await s3.send(new DeleteObjectCommand({ Bucket: 'data', Key: 'dir/file.bin' }));
    await rejectsStatus(t, s3.send(new HeadObjectCommand({ Bucket: 'data', Key: 'dir/file.bin' })), 404);
  });

  await t.test('a streamed body (aws-chunked with a checksum trailer) and every checksum algorithm round-trip', async (t) => {
    const bytes = patterned(200_000, 2);
    for (const algo of ['CRC32', 'CRC32C', 'CRC64NVME', 'SHA1', 'SHA256'] as const) {
      const key = `sum/${algo}`;
      const put = await s3.send(new PutObjectCommand({
        Bucket: 'data', Key: key, Body: Readable.from([bytes.subarray(0, 70_000), bytes.subarray(70_000)]), ContentLength: bytes.length, ChecksumAlgorithm: algo,
      }));
      const field = `Checksum${algo}` as const;
      t.ok(put[field], `${algo} echoed on PUT`);
      const got = await s3.send(new GetObjectCommand({ Bucket: 'data', Key: key, ChecksumMode: 'ENABLED' }));
      t.equal(got[field], put[field], `${algo} stored and returned`);
      t.ok((await body(got.Body)).equals(bytes));
    }
  });

  await t.test('odd keys live side by side and list exactly as S3 lists them', async (t) => {
    await s3.send(new CreateBucketCommand({ Bucket: 'odd' }));
    const keys = ['a', 'a/b', 'a//b', 'a/./b', 'a/../b', 'dir/', '../escape', '%2e%2e/x', 'back\\slash', 'nul\u0000byte', 'space key', 'ü/ñ', 'x'.repeat(300), 'x'.repeat(300) + '/y'];
    for (const [i, key] of keys.entries()) await s3.send(new PutObjectCommand({ Bucket: 'odd', Key: key, Body: `v${i}` }));
    const all: string[] = [];
    let token: string | undefined;
    do {
      const page: ListObjectsV2CommandOutput = await s3.send(new ListObjectsV2Command({ Bucket: 'odd', MaxKeys: 4, ContinuationToken: token }));
      for (const o of page.Contents ?? []) all.push(o.Key!);
      token = page.NextContinuationToken;
    } while (token);
    const sorted = [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    t.same(all, sorted, 'every key once, in UTF-8 byte order, across pages of 4');
    for (const [i, key] of keys.entries()) {
      t.equal((await body((await s3.send(new GetObjectCommand({ Bucket: 'odd', Key: key }))).Body)).toString(), `v${i}`, `key ${JSON.stringify(key.slice(0, 20))}`);
      t.ok(keyToPath('odd', key).startsWith('/odd/'), 'its path is under the bucket');
    }
    // Nothing escaped the bucket: the namespace root holds only the buckets.
    const roots = (await client.list('/')).entries.map((e) => e.path).sort();
    t.same(roots, ['/data', '/odd']); // 'photos' was deleted

    const v2 = await s3.send(new ListObjectsV2Command({ Bucket: 'odd', Delimiter: '/' }));
    t.same((v2.CommonPrefixes ?? []).map((p) => p.Prefix), ['%2e%2e/', '../', 'a/', 'dir/', 'xxx'.slice(0, 0) + 'x'.repeat(300) + '/', 'ü/'].sort((x, y) => Buffer.compare(Buffer.from(x!), Buffer.from(y!))));
    t.same((v2.Contents ?? []).map((o) => o.Key), ['a', 'back\\slash', 'nul\u0000byte', 'space key', 'x'.repeat(300)]);
    const nested = await s3.send(new ListObjectsV2Command({ Bucket: 'odd', Prefix: 'a/', Delimiter: '/' }));
    t.same((nested.Contents ?? []).map((o) => o.Key), ['a/b']);
    t.same((nested.CommonPrefixes ?? []).map((p) => p.Prefix), ['a/../', 'a/./', 'a//']);
    // Pages of one prefix each: no prefix twice.
    const seen: string[] = [];
    token = undefined;
    do {
      const page: ListObjectsV2CommandOutput = await s3.send(new ListObjectsV2Command({ Bucket: 'odd', Prefix: 'a', Delimiter: '/', MaxKeys: 1, ContinuationToken: token }));
      seen.push(...(page.Contents ?? []).map((o) => o.Key!), ...(page.CommonPrefixes ?? []).map((p) => p.Prefix!));
      token = page.NextContinuationToken;
    } while (token);
    t.same(seen, ['a', 'a/']);
    const zero = await s3.send(new ListObjectsV2Command({ Bucket: 'odd', MaxKeys: 0 }));
    t.equal(zero.KeyCount, 0);
    const after = await s3.send(new ListObjectsV2Command({ Bucket: 'odd', StartAfter: 'nul\u0000byte' }));
    t.same((after.Contents ?? []).map((o) => o.Key), sorted.filter((k) => Buffer.compare(Buffer.from(k), Buffer.from('nul\u0000byte')) > 0));
    const v1 = await s3.send(new ListObjectsCommand({ Bucket: 'odd', Delimiter: '/', MaxKeys: 2 }));
    t.equal(v1.IsTruncated, true);
    t.same((v1.CommonPrefixes ?? []).map((p) => p.Prefix), ['%2e%2e/', '../']);
    const v1b = await s3.send(new ListObjectsCommand({ Bucket: 'odd', Delimiter: '/', MaxKeys: 2, Marker: v1.NextMarker }));
    t.same([...(v1b.Contents ?? []).map((o) => o.Key), ...(v1b.CommonPrefixes ?? []).map((p) => p.Prefix)].sort(), ['a', 'a/']);
    const url = await s3.send(new ListObjectsV2Command({ Bucket: 'odd', Prefix: 'space', EncodingType: 'url' }));
    t.same((url.Contents ?? []).map((o) => o.Key), ['space%20key']);
  });

  await t.test('copy (also onto itself to change metadata) and DeleteObjects', async (t) => {
    await s3.send(new PutObjectCommand({ Bucket: 'data', Key: 'src', Body: 'copy me', ContentType: 'text/plain', Metadata: { k: 'v' } }));
    const copy = await s3.send(new CopyObjectCommand({ Bucket: 'odd', Key: 'copied', CopySource: 'data/src' }));
    t.ok(copy.CopyObjectResult?.ETag);
    const got = await s3.send(new GetObjectCommand({ Bucket: 'odd', Key: 'copied' }));
    t.equal((await body(got.Body)).toString(), 'copy me');
    t.same(got.Metadata, { k: 'v' });
    await rejectsWith(t, s3.send(new CopyObjectCommand({ Bucket: 'data', Key: 'src', CopySource: 'data/src' })), 'InvalidRequest');
    await s3.send(new CopyObjectCommand({ Bucket: 'data', Key: 'src', CopySource: 'data/src', MetadataDirective: 'REPLACE', ContentType: 'text/x-new', Metadata: { k: 'w' } }));
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'data', Key: 'src' }));
    t.equal(head.ContentType, 'text/x-new');
    t.same(head.Metadata, { k: 'w' });
    await rejectsStatus(t, s3.send(new CopyObjectCommand({ Bucket: 'data', Key: 'evil', CopySource: 'data/../odd/copied' })), 404);
    await rejectsStatus(t, s3.send(new CopyObjectCommand({ Bucket: 'data', Key: 'evil', CopySource: '..%2fodd/copied' })), 400);

    const del = await s3.send(new DeleteObjectsCommand({ Bucket: 'odd', Delete: { Objects: [{ Key: 'a' }, { Key: 'a/b' }, { Key: 'never-was' }, { Key: 'x'.repeat(300) + '/y' }] } }));
    t.same((del.Deleted ?? []).map((d) => d.Key).sort(), ['a', 'a/b', 'never-was', 'x'.repeat(300) + '/y']);
    await rejectsStatus(t, s3.send(new HeadObjectCommand({ Bucket: 'odd', Key: 'a/b' })), 404);
    await s3.send(new HeadObjectCommand({ Bucket: 'odd', Key: 'a//b' }));
  });

  await t.test('presigned GET works, and expires', async (t) => {
    await s3.send(new PutObjectCommand({ Bucket: 'data', Key: 'shared file', Body: 'hello presigned' }));
    const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: 'data', Key: 'shared file' }), { expiresIn: 60 });
    const res = await fetch(url);
    t.equal(res.status, 200);
    t.equal(await res.text(), 'hello presigned');
    const putUrl = await getSignedUrl(s3, new PutObjectCommand({ Bucket: 'data', Key: 'presigned put' }), { expiresIn: 60 });
    const put = await fetch(putUrl, { method: 'PUT', body: 'uploaded with a presigned URL' });
    t.equal(put.status, 200, await put.clone().text());
    t.equal((await body((await s3.send(new GetObjectCommand({ Bucket: 'data', Key: 'presigned put' }))).Body)).toString(), 'uploaded with a presigned URL');
    await s3.send(new PutObjectCommand({ Bucket: 'data', Key: 'empty', Body: '' }));
    const empty = await s3.send(new GetObjectCommand({ Bucket: 'data', Key: 'empty' }));
    t.equal((await body(empty.Body)).length, 0, 'an empty object');
    t.equal(empty.ETag, '"d41d8cd98f00b204e9800998ecf8427e"');
    const tampered = await fetch(url.replace('shared%20file', 'src'));
    t.equal(tampered.status, 403);
    const old = await getSignedUrl(s3, new GetObjectCommand({ Bucket: 'data', Key: 'shared file' }), { expiresIn: 1, signingDate: new Date(Date.now() - 10_000) });
    const expired = await fetch(old);
    t.equal(expired.status, 403);
    t.match(await expired.text(), /Request has expired/);
  });

  await t.test('multipart: create, upload parts, list, complete (ETag md5-of-md5s -N), abort, too-small parts refused', async (t) => {
    const crypto = await import('node:crypto');
    const p1 = patterned(5 * 1024 * 1024, 3);
    const p2 = patterned(123_457, 4);
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'data', Key: 'big/object', ContentType: 'application/x-big', Metadata: { part: 'yes' } }));
    const e1 = (await s3.send(new UploadPartCommand({ Bucket: 'data', Key: 'big/object', UploadId, PartNumber: 1, Body: p1 }))).ETag!;
    const e2 = (await s3.send(new UploadPartCommand({ Bucket: 'data', Key: 'big/object', UploadId, PartNumber: 2, Body: p2 }))).ETag!;
    const parts = await s3.send(new ListPartsCommand({ Bucket: 'data', Key: 'big/object', UploadId }));
    t.same((parts.Parts ?? []).map((p) => [p.PartNumber, p.Size, p.ETag]), [[1, p1.length, e1], [2, p2.length, e2]]);
    // UploadPartCopy: a range of an existing object as part 3 of another upload.
    const other = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'data', Key: 'big/copied' }));
    const c1 = await s3.send(new UploadPartCopyCommand({ Bucket: 'data', Key: 'big/copied', UploadId: other.UploadId, PartNumber: 1, CopySource: 'data/src', CopySourceRange: 'bytes=0-3' }));
    await s3.send(new CompleteMultipartUploadCommand({ Bucket: 'data', Key: 'big/copied', UploadId: other.UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: c1.CopyPartResult!.ETag }] } }));
    t.equal((await body((await s3.send(new GetObjectCommand({ Bucket: 'data', Key: 'big/copied' }))).Body)).toString(), 'copy', 'the copied range');
    const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: 'data' }));
    t.same((uploads.Uploads ?? []).map((u) => [u.Key, u.UploadId]), [['big/object', UploadId]]);
    const listedBefore = await s3.send(new ListObjectsV2Command({ Bucket: 'data', Prefix: 'big/object' }));
    t.equal(listedBefore.KeyCount, 0, 'nothing visible before Complete');
    await rejectsWith(t, s3.send(new CompleteMultipartUploadCommand({ Bucket: 'data', Key: 'big/object', UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: '"0000"' }] } })), 'InvalidPart');
    const done = await s3.send(new CompleteMultipartUploadCommand({ Bucket: 'data', Key: 'big/object', UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: e1 }, { PartNumber: 2, ETag: e2 }] } }));
    const md5s = Buffer.concat([e1, e2].map((e) => Buffer.from(e.replace(/"/g, ''), 'hex')));
    t.equal(done.ETag, `"${crypto.createHash('md5').update(md5s).digest('hex')}-2"`);
    const got = await s3.send(new GetObjectCommand({ Bucket: 'data', Key: 'big/object' }));
    t.ok((await body(got.Body)).equals(Buffer.concat([p1, p2])), 'the parts, joined');
    t.equal(got.ContentType, 'application/x-big');
    t.same(got.Metadata, { part: 'yes' });
    t.equal((await s3.send(new ListMultipartUploadsCommand({ Bucket: 'data' }))).Uploads?.length ?? 0, 0, 'the upload is gone');
    await rejectsWith(t, s3.send(new ListPartsCommand({ Bucket: 'data', Key: 'big/object', UploadId })), 'NoSuchUpload');

    const small = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'data', Key: 'big/small' }));
    const s1 = (await s3.send(new UploadPartCommand({ Bucket: 'data', Key: 'big/small', UploadId: small.UploadId, PartNumber: 1, Body: 'tiny' }))).ETag!;
    const s2 = (await s3.send(new UploadPartCommand({ Bucket: 'data', Key: 'big/small', UploadId: small.UploadId, PartNumber: 2, Body: 'tiny' }))).ETag!;
    await rejectsWith(t, s3.send(new CompleteMultipartUploadCommand({ Bucket: 'data', Key: 'big/small', UploadId: small.UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: s1 }, { PartNumber: 2, ETag: s2 }] } })), 'EntityTooSmall');
    await s3.send(new AbortMultipartUploadCommand({ Bucket: 'data', Key: 'big/small', UploadId: small.UploadId }));
    await rejectsWith(t, s3.send(new UploadPartCommand({ Bucket: 'data', Key: 'big/small', UploadId: small.UploadId, PartNumber: 3, Body: 'x' })), 'NoSuchUpload');
    await rejectsWith(t, s3.send(new UploadPartCommand({ Bucket: 'data', Key: 'big/small', UploadId: '../../odd', PartNumber: 1, Body: 'x' })), 'NoSuchUpload');
    await rejectsStatus(t, s3.send(new HeadObjectCommand({ Bucket: 'data', Key: 'big/small' })), 404);
  });

  await t.test('virtual-host buckets: <bucket>.localhost names the bucket', async (t) => {
    const port = Number(new URL(endpoint).port);
    // *.localhost need not resolve here: connect to 127.0.0.1 and keep the signed Host.
    const vhost = new S3Client({
      endpoint: `http://localhost:${port}`, region: 'us-east-1', forcePathStyle: false, credentials: { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey },
      requestHandler: {
        handle: (r: { method: string; path: string; query?: Record<string, string | null>; headers: Record<string, string>; body?: unknown }) => new Promise((resolve, reject) => {
          const q = Object.entries(r.query ?? {}).map(([k, v]) => (v === null ? encodeURIComponent(k) : `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)).join('&');
          const req = http.request({ host: '127.0.0.1', port, method: r.method, path: r.path + (q ? `?${q}` : ''), headers: r.headers }, (res) => {
            resolve({ response: { statusCode: res.statusCode, headers: res.headers, body: res } });
          });
          req.on('error', reject);
          const b = r.body as { pipe?: (w: http.ClientRequest) => void } | undefined;
          if (b && typeof b.pipe === 'function') b.pipe(req); else req.end(r.body as Buffer | string | undefined);
        }),
      } as never,
    });
    t.teardown(() => vhost.destroy());
    await vhost.send(new PutObjectCommand({ Bucket: 'data', Key: 'vhost/key', Body: 'via virtual host' }));
    t.equal((await body((await s3.send(new GetObjectCommand({ Bucket: 'data', Key: 'vhost/key' }))).Body)).toString(), 'via virtual host');
    const listed = await vhost.send(new ListObjectsV2Command({ Bucket: 'data', Prefix: 'vhost/' }));
    t.same((listed.Contents ?? []).map((o) => o.Key), ['vhost/key']);
  });

  await t.test('malformed requests get errors, and the gateway serves on', async (t) => {
    const { hostname, port } = new URL(endpoint);
    const raw = (text: string) => new Promise<string>((resolve) => {
      const sock = net.connect(Number(port), hostname, () => sock.end(text));
      let out = '';
      sock.on('data', (d) => { out += d.toString('latin1'); });
      sock.on('error', () => resolve(out));
      sock.on('close', () => resolve(out));
    });
    t.match(await raw('GET /data/%ZZ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 400[\s\S]*InvalidURI/);
    t.match(await raw('GET /data/%FF%FE HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 400[\s\S]*InvalidURI/);
    t.match(await raw('GET /data/k HTTP/1.1\r\nHost: x\r\nAuthorization: AWS4-HMAC-SHA256 garbage\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 400[\s\S]*AuthorizationHeaderMalformed/);
    t.match(await raw('GET /data/k HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 403[\s\S]*AccessDenied[\s\S]*<RequestId>/);
    t.match(await raw('GET /data/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=a%2F20200101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20200101T000000Z&X-Amz-Expires=99999999&X-Amz-SignedHeaders=host&X-Amz-Signature=00 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 400/);
    t.match(await raw(`GET /data/k HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`), /^HTTP\/1\.1 431|^$/);
    await raw('\x00\x01garbage\r\n\r\n');
    await raw('PUT /data/k HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nshort');
    const head = await s3.send(new HeadBucketCommand({ Bucket: 'data' }));
    t.equal(head.$metadata.httpStatusCode, 200, 'still serving');
  });

  await t.test('a forged signature, a wrong checksum or a truncated upload change nothing', async (t) => {
    const forged = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: creds.accessKeyId, secretAccessKey: 'wrong-secret' } });
    t.teardown(() => forged.destroy());
    await s3.send(new PutObjectCommand({ Bucket: 'data', Key: 'keep', Body: 'original' }));
    await rejectsWith(t, forged.send(new PutObjectCommand({ Bucket: 'data', Key: 'keep', Body: 'forged' })), 'SignatureDoesNotMatch');
    await rejectsWith(t, forged.send(new DeleteObjectCommand({ Bucket: 'data', Key: 'keep' })), 'SignatureDoesNotMatch');
    await rejectsWith(t, s3.send(new PutObjectCommand({ Bucket: 'data', Key: 'keep', Body: 'bad sum', ChecksumCRC32: 'AAAAAA==' })), 'BadDigest');
    await rejectsWith(t, s3.send(new PutObjectCommand({ Bucket: 'data', Key: 'keep', Body: 'bad md5', ContentMD5: 'AAAAAAAAAAAAAAAAAAAAAA==' })), 'BadDigest');
    t.equal((await body((await s3.send(new GetObjectCommand({ Bucket: 'data', Key: 'keep' }))).Body)).toString(), 'original');

    // A client that sends half of what it announced, then hangs up: nothing appears.
    const url = new URL(await getSignedUrl(s3, new PutObjectCommand({ Bucket: 'data', Key: 'truncated' }), { expiresIn: 60 }));
    await new Promise<void>((resolve) => {
      const req = http.request({ host: url.hostname, port: url.port, path: url.pathname + url.search, method: 'PUT', headers: { 'content-length': 100_000 } });
      req.on('error', () => resolve());
      req.on('response', (r) => { t.fail(`the gateway answered ${r.statusCode} before the body ended`); r.on('error', () => resolve()); r.resume(); r.on('end', resolve); });
      req.write(Buffer.alloc(50_000, 1), () => setTimeout(() => { req.destroy(); resolve(); }, 300));
    });
    await new Promise((r) => setTimeout(r, 500));
    await rejectsStatus(t, s3.send(new HeadObjectCommand({ Bucket: 'data', Key: 'truncated' })), 404);
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: 'data', Prefix: 'trunc' }));
    t.equal(listed.KeyCount, 0);
  });
});
