/**
 * S3 Express-style append (PutObject + x-amz-write-offset-bytes) and multipart complete
 * without copying (ConcatFiles), through the AWS SDK v3 against a real cluster; an
 * aborted upload's chunks leave the disks once GC runs.
 */
import t, { type Test } from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import {
  S3Client, CreateBucketCommand, PutObjectCommand, GetObjectCommand, HeadObjectCommand,
  CreateMultipartUploadCommand, UploadPartCommand, CompleteMultipartUploadCommand, AbortMultipartUploadCommand,
} from '@aws-sdk/client-s3';
import { cluster, chunkFile, eventually, patterned, MiB } from './helpers';
import { keyToPath } from '../../src/gateway/s3';
import type { DevCluster } from '../../src/dev/cluster';

function s3For(t: Test, c: DevCluster): S3Client {
  const creds = JSON.parse(fs.readFileSync(path.join(c.dataDir, 'credentials.json'), 'utf8')) as { accessKeyId: string; secretAccessKey: string };
  const s3 = new S3Client({ endpoint: c.endpoints().s3, region: 'us-east-1', forcePathStyle: true, credentials: creds });
  t.teardown(() => s3.destroy());
  return s3;
}

async function body(stream: unknown): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of stream as AsyncIterable<Buffer>) parts.push(Buffer.from(p));
  return Buffer.concat(parts);
}

async function failure(p: Promise<unknown>): Promise<{ name: string; status: number | undefined }> {
  try {
    await p;
  } catch (e) {
    return { name: (e as Error).name, status: (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode };
  }
  return { name: 'no error', status: 200 };
}

/** Chunk files on any chunkserver's disk for these handles. */
function filesOf(c: DevCluster, handles: number[]): string[] {
  return c.chunkservers.flatMap((p) => handles.map((h) => chunkFile(p.dataDir, h))).filter((f) => fs.existsSync(f));
}

t.test('s3 append and copy-free multipart on a real cluster', async (t) => {
  const { cluster: c, client } = await cluster(t, { heartbeatIntervalMs: 200, safeModeMinMs: 1000, trashPeriodMs: 1500, orphanGraceMs: 1500, s3UploadExpiryMs: 5000 });
  const s3 = s3For(t, c);
  await s3.send(new CreateBucketCommand({ Bucket: 'logs' }));

  await t.test('append: offset 0 creates, sequential appends, a wrong offset stores nothing, HEAD/GET see the committed length', async (t) => {
    const records = [patterned(1000, 1), patterned(70_000, 2), Buffer.from('third\n')];
    let size = 0;
    for (const [i, r] of records.entries()) {
      const out = await s3.send(new PutObjectCommand({ Bucket: 'logs', Key: 'app/events', Body: r, WriteOffsetBytes: size }));
      size += r.length;
      t.equal(out.Size, size, `append ${i + 1}: the object's new size`);
    }
    const wrong = await failure(s3.send(new PutObjectCommand({ Bucket: 'logs', Key: 'app/events', Body: 'late', WriteOffsetBytes: 1000 })));
    t.same(wrong, { name: 'InvalidWriteOffset', status: 400 }, 'an offset that is not the size: InvalidWriteOffset');
    const past = await failure(s3.send(new PutObjectCommand({ Bucket: 'logs', Key: 'app/events', Body: 'x', WriteOffsetBytes: size + 1 })));
    t.equal(past.name, 'InvalidWriteOffset');
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'logs', Key: 'app/events' }));
    t.equal(head.ContentLength, size, 'HEAD: the committed length, nothing from the refused appends');
    const got = await s3.send(new GetObjectCommand({ Bucket: 'logs', Key: 'app/events' }));
    t.ok((await body(got.Body)).equals(Buffer.concat(records)), 'GET: exactly the appended bytes, in order');
    t.equal(got.ETag, head.ETag);
    const info = await client.stat(keyToPath('logs', 'app/events'));
    t.ok(info.log, 'the object is a gfs log');
    t.equal(info.state, 1, 'still open for appends (committed length from the primary)');

    // A retried request (the same append at the same offset) is stored once and answered as the first.
    const retried = new PutObjectCommand({ Bucket: 'logs', Key: 'app/events', Body: 'once', WriteOffsetBytes: size });
    const first = await s3.send(retried);
    const second = await s3.send(retried);
    t.equal(first.Size, size + 4);
    t.equal(second.Size, size + 4, 'the retry answers with the first copy\'s result');
    t.equal((await s3.send(new HeadObjectCommand({ Bucket: 'logs', Key: 'app/events' }))).ContentLength, size + 4, 'stored once');
    // Another writer that also thought the size was `size`: same record id, other bytes.
    const rival = await failure(s3.send(new PutObjectCommand({ Bucket: 'logs', Key: 'app/events', Body: 'rival', WriteOffsetBytes: size })));
    t.same(rival, { name: 'InvalidWriteOffset', status: 400 }, 'a different body at a taken offset is refused');
    const all = await body((await s3.send(new GetObjectCommand({ Bucket: 'logs', Key: 'app/events' }))).Body);
    t.ok(all.equals(Buffer.concat([...records, Buffer.from('once')])), 'exactly the accepted appends, each once');

    const missing = await failure(s3.send(new PutObjectCommand({ Bucket: 'logs', Key: 'nope', Body: 'x', WriteOffsetBytes: 5 })));
    t.equal(missing.name, 'NoSuchKey', 'an offset past 0 on a missing key');
    await s3.send(new PutObjectCommand({ Bucket: 'logs', Key: 'plain', Body: 'sealed object' }));
    const plain = await failure(s3.send(new PutObjectCommand({ Bucket: 'logs', Key: 'plain', Body: 'x', WriteOffsetBytes: 13 })));
    t.same(plain, { name: 'InvalidRequest', status: 400 }, 'an object not made by appends is not appendable');
    const meta = await failure(s3.send(new PutObjectCommand({ Bucket: 'logs', Key: 'app/events', Body: 'x', WriteOffsetBytes: size + 4, Metadata: { a: 'b' } })));
    t.equal(meta.name, 'InvalidRequest', 'user metadata with a write offset');
  });

  await t.test('multipart: complete joins the parts\' chunks (no copy), ETag -N, bytes equal', async (t) => {
    const sizes = [5 * MiB, 5 * MiB, 5 * MiB, 123_457];
    const parts = sizes.map((n, i) => patterned(n, 10 + i));
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'logs', Key: 'big/obj', ContentType: 'application/x-big', Metadata: { m: '1' } }));
    const etags: string[] = [];
    for (const [i, p] of parts.entries()) {
      etags.push((await s3.send(new UploadPartCommand({ Bucket: 'logs', Key: 'big/obj', UploadId, PartNumber: i + 1, Body: p }))).ETag!);
    }
    const partHandles: number[] = [];
    for (let i = 1; i <= parts.length; i++) {
      const info = await client.stat(`/logs/.s3-uploads/${UploadId}/part-${String(i).padStart(5, '0')}`);
      partHandles.push(...info.chunks.map((ch) => ch.handle));
    }
    const chunksBefore = (await client.status()).chunks;
    const done = await s3.send(new CompleteMultipartUploadCommand({
      Bucket: 'logs', Key: 'big/obj', UploadId, MultipartUpload: { Parts: etags.map((ETag, i) => ({ PartNumber: i + 1, ETag })) },
    }));
    const md5s = Buffer.concat(etags.map((e) => Buffer.from(e.replace(/"/g, ''), 'hex')));
    t.equal(done.ETag, `"${crypto.createHash('md5').update(md5s).digest('hex')}-4"`);
    const obj = await client.stat(keyToPath('logs', 'big/obj'));
    t.same(obj.chunks.map((ch) => ch.handle), partHandles, 'the object\'s chunks ARE the parts\' chunks (no data copied)');
    t.same(obj.chunks.map((ch) => ch.length), sizes, 'chunks of any length: the parts\' lengths');
    t.equal((await client.status()).chunks, chunksBefore, 'no chunk was added');
    t.equal(obj.checksum, '', 'no whole-file xxh64 for a concatenation');
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'logs', Key: 'big/obj' }));
    t.equal(head.ContentLength, sizes.reduce((a, b) => a + b, 0));
    t.equal(head.ETag, done.ETag);
    t.equal(head.ContentType, 'application/x-big');
    t.same(head.Metadata, { m: '1' });
    t.ok((await body((await s3.send(new GetObjectCommand({ Bucket: 'logs', Key: 'big/obj' }))).Body)).equals(Buffer.concat(parts)), 'bytes equal');
    const range = await s3.send(new GetObjectCommand({ Bucket: 'logs', Key: 'big/obj', Range: `bytes=${5 * MiB - 10}-${5 * MiB + 9}` }));
    t.ok((await body(range.Body)).equals(Buffer.concat(parts).subarray(5 * MiB - 10, 5 * MiB + 10)), 'a range across a part boundary');
    t.equal((await client.list(`/logs/.s3-uploads`).catch(() => ({ entries: [] }))).entries.length, 0, 'the upload left nothing behind');
    const fsck = await eventually(async () => { const f = await client.admin.fsck('/'); return f.healthy ? f : undefined; }, 15_000, 'fsck healthy');
    t.equal(fsck!.files.length, 0, 'fsck finds nothing wrong with chunks that end anywhere');
  });

  await t.test('abort: the parts\' chunks leave every disk once GC runs', async (t) => {
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'logs', Key: 'gone' }));
    for (let i = 1; i <= 2; i++) {
      await s3.send(new UploadPartCommand({ Bucket: 'logs', Key: 'gone', UploadId, PartNumber: i, Body: patterned(MiB, 30 + i) }));
    }
    const handles: number[] = [];
    for (let i = 1; i <= 2; i++) handles.push(...(await client.stat(`/logs/.s3-uploads/${UploadId}/part-0000${i}`)).chunks.map((ch) => ch.handle));
    t.ok(filesOf(c, handles).length >= handles.length, 'the parts are on disk');
    await s3.send(new AbortMultipartUploadCommand({ Bucket: 'logs', Key: 'gone', UploadId }));
    await eventually(() => filesOf(c, handles).length === 0, 30_000, 'the aborted parts\' chunk files deleted by GC');
    t.pass('no chunk file of the aborted upload is left');
    t.equal((await client.trash()).entries.filter((e) => e.path.includes(UploadId!)).length, 0, 'nothing of it in trash');
  });

  await t.test('never completed: the gateway aborts the upload after its expiry, GC deletes its chunks', async (t) => {
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'logs', Key: 'forgotten' }));
    await s3.send(new UploadPartCommand({ Bucket: 'logs', Key: 'forgotten', UploadId, PartNumber: 1, Body: patterned(MiB, 40) }));
    const handles = (await client.stat(`/logs/.s3-uploads/${UploadId}/part-00001`)).chunks.map((ch) => ch.handle);
    t.ok(filesOf(c, handles).length > 0, 'the part is on disk');
    await eventually(() => filesOf(c, handles).length === 0, 40_000, 'the forgotten upload\'s chunk files deleted');
    const stat = await failure(client.stat(`/logs/.s3-uploads/${UploadId}`));
    t.equal(stat.name !== 'no error', true, 'the upload directory is gone');
    t.ok((await body((await s3.send(new GetObjectCommand({ Bucket: 'logs', Key: 'big/obj' }))).Body)).length > 15 * MiB, 'completed objects are untouched');
  });

  await t.test('awscli v2: s3 cp of a 20 MiB file is a multipart upload joined without copying', async (t) => {
    const creds = JSON.parse(fs.readFileSync(path.join(c.dataDir, 'credentials.json'), 'utf8')) as { accessKeyId: string; secretAccessKey: string };
    const env = { ...process.env, AWS_ACCESS_KEY_ID: creds.accessKeyId, AWS_SECRET_ACCESS_KEY: creds.secretAccessKey, AWS_DEFAULT_REGION: 'us-east-1', AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null' };
    const dir = fs.mkdtempSync(path.join(c.dataDir, 'awscli-'));
    const local = path.join(dir, 'twenty.bin');
    const bytes = patterned(20 * MiB, 50);
    fs.writeFileSync(local, bytes);
    const aws = (...args: string[]) => promisify(execFile)('/usr/bin/aws', ['--endpoint-url', c.endpoints().s3, ...args], { env, timeout: 120_000 });
    await aws('s3', 'cp', local, 's3://logs/cli/twenty.bin');
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'logs', Key: 'cli/twenty.bin' }));
    t.match(head.ETag, /^"[0-9a-f]{32}-3"$/, 'a 3-part multipart ETag (awscli\'s 8 MiB parts)');
    const obj = await client.stat(keyToPath('logs', 'cli/twenty.bin'));
    t.same(obj.chunks.map((ch) => ch.length), [8 * MiB, 8 * MiB, 4 * MiB], 'the object is the three parts\' chunks');
    await aws('s3', 'cp', 's3://logs/cli/twenty.bin', path.join(dir, 'back.bin'));
    t.ok(fs.readFileSync(path.join(dir, 'back.bin')).equals(bytes), 'bytes equal');
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
