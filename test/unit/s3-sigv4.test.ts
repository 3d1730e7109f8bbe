/**
 * SigV4 as the S3 gateway checks it, against requests the real AWS SDK v3 produced
 * (header-signed, presigned, aws-chunked with an unsigned checksum trailer) and AWS's
 * own published example of signed chunks; tampering with any signed part is refused.
 */
import t from 'tap';
import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import { S3Client, PutObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { authenticate, signingKey, type SignedRequest, type AuthResult } from '../../src/gateway/s3/sigv4';
import { decodeAwsChunked } from '../../src/gateway/s3/aws-chunked';
import { BodyDigests } from '../../src/gateway/s3/checksums';

const ID = 'AKIDEXAMPLE0000000001';
const SECRET = 'secret/Example+Key0000000000000000000000';
const lookup = (id: string) => (id === ID ? SECRET : undefined);

interface Captured { method: string; path: string; query: Record<string, string | string[] | null>; headers: Record<string, string>; body: unknown }

/** An S3Client whose requests are captured instead of sent; every answer is an empty 200. */
function capturingClient(): { s3: S3Client; sent: Captured[] } {
  const sent: Captured[] = [];
  const s3 = new S3Client({
    endpoint: 'http://127.0.0.1:9000', region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: ID, secretAccessKey: SECRET },
    requestHandler: {
      handle: async (request: Captured) => {
        let body = request.body;
        if (body && typeof (body as AsyncIterable<Buffer>)[Symbol.asyncIterator] === 'function') {
          const parts: Buffer[] = [];
          for await (const p of body as AsyncIterable<Buffer>) parts.push(Buffer.from(p));
          body = Buffer.concat(parts);
        }
        sent.push({ ...request, body });
        return { response: { statusCode: 200, headers: { etag: '"x"' }, body: Readable.from([]) } };
      },
    } as never,
  });
  return { s3, sent };
}

function encodeQuery(query: Record<string, string | string[] | null>): string {
  return Object.entries(query).map(([k, v]) => (v === null ? encodeURIComponent(k) : `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)).join('&');
}

function toSigned(c: Captured): SignedRequest {
  const headers = new Map<string, string[]>();
  for (const [k, v] of Object.entries(c.headers)) headers.set(k.toLowerCase(), [v]);
  if (!headers.has('host')) headers.set('host', ['127.0.0.1:9000']);
  return { method: c.method, rawPath: c.path, rawQuery: encodeQuery(c.query ?? {}), headers };
}

function withHeader(r: SignedRequest, name: string, value: string): SignedRequest {
  const headers = new Map(r.headers);
  headers.set(name, [value]);
  return { ...r, headers };
}

function code(fn: () => unknown): string {
  try { fn(); return 'ok'; } catch (e) { return (e as { code?: string }).code ?? String(e); }
}

async function decode(body: Buffer, auth: AuthResult): Promise<{ data: Buffer; trailers: Map<string, string> }> {
  assertChunked(auth);
  let trailers = new Map<string, string>();
  const parts: Buffer[] = [];
  const source = (async function* () { for (let i = 0; i < body.length; i += 1000) yield body.subarray(i, i + 1000); })();
  for await (const p of decodeAwsChunked(source, { signer: auth.payload.signer, trailer: auth.payload.trailer, onTrailers: (m) => { trailers = m; } })) parts.push(Buffer.from(p));
  return { data: Buffer.concat(parts), trailers };
}

function assertChunked(auth: AuthResult): asserts auth is AuthResult & { payload: { kind: 'chunked' } } {
  if (auth.payload.kind !== 'chunked') throw new Error(`not chunked: ${auth.payload.kind}`);
}

t.test('sigv4: a header-signed PutObject from the SDK passes; any signed change is refused', async (t) => {
  const { s3, sent } = capturingClient();
  await s3.send(new PutObjectCommand({ Bucket: 'b', Key: 'dir/a b+c', Body: Buffer.from('hello'), Metadata: { m: 'v' } }));
  const req = toSigned(sent[0]!);
  const auth = authenticate(req, Date.now(), lookup);
  t.equal(auth.accessKeyId, ID);
  t.equal(auth.presigned, false);
  t.equal(code(() => authenticate(withHeader(req, 'x-amz-meta-m', 'other'), Date.now(), lookup)), 'SignatureDoesNotMatch');
  t.equal(code(() => authenticate(withHeader(req, 'x-amz-meta-new', 'x'), Date.now(), lookup)), 'AccessDenied', 'an unsigned x-amz-* header');
  t.equal(code(() => authenticate({ ...req, rawPath: '/b/dir/a%20b%2Bd' }, Date.now(), lookup)), 'SignatureDoesNotMatch');
  t.equal(code(() => authenticate(req, Date.now(), () => 'wrong')), 'SignatureDoesNotMatch');
  t.equal(code(() => authenticate(req, Date.now(), () => undefined)), 'InvalidAccessKeyId');
  t.equal(code(() => authenticate(req, Date.now() + 16 * 60_000, lookup)), 'RequestTimeTooSkewed');
  t.equal(code(() => authenticate(req, Date.now() - 16 * 60_000, lookup)), 'RequestTimeTooSkewed');
  const noAuth = new Map(req.headers);
  noAuth.delete('authorization');
  t.equal(code(() => authenticate({ ...req, headers: noAuth }, Date.now(), lookup)), 'AccessDenied');
});

t.test('sigv4: a streamed PutObject (STREAMING-UNSIGNED-PAYLOAD-TRAILER) decodes and its trailer checksum is the body\'s', async (t) => {
  const { s3, sent } = capturingClient();
  const data = crypto.randomBytes(150_000);
  await s3.send(new PutObjectCommand({ Bucket: 'b', Key: 'k', Body: Readable.from([data.subarray(0, 70_000), data.subarray(70_000)]), ContentLength: data.length, ChecksumAlgorithm: 'CRC32C' }));
  const c = sent[0]!;
  t.equal(c.headers['x-amz-content-sha256'], 'STREAMING-UNSIGNED-PAYLOAD-TRAILER');
  const auth = authenticate(toSigned(c), Date.now(), lookup);
  const { data: decoded, trailers } = await decode(c.body as Buffer, auth);
  t.ok(decoded.equals(data), 'the decoded body is what was sent');
  t.equal(Number(c.headers['x-amz-decoded-content-length']), data.length);
  const digests = new BodyDigests(false, 'crc32c');
  digests.update(data);
  t.equal(trailers.get('x-amz-checksum-crc32c'), (await digests.digest()).checksum!.value, 'our CRC32C equals the SDK\'s');
  // The trailer names are signed; changing the announced algorithm breaks the signature.
  t.equal(code(() => authenticate(withHeader(toSigned(c), 'x-amz-trailer', 'x-amz-checksum-sha256'), Date.now(), lookup)), 'SignatureDoesNotMatch');
  // A truncated body is an error, never a shorter object.
  await t.rejects(decode((c.body as Buffer).subarray(0, 100_000), auth), /ended/);
});

t.test('sigv4: presigned GET from the SDK passes until it expires; tampering and >7 days are refused', async (t) => {
  const { s3 } = capturingClient();
  const now = Date.now();
  const url = new URL(await getSignedUrl(s3, new GetObjectCommand({ Bucket: 'b', Key: 'a/x y+z' }), { expiresIn: 300 }));
  const req: SignedRequest = { method: 'GET', rawPath: url.pathname, rawQuery: url.search.slice(1), headers: new Map([['host', [url.host]]]) };
  const auth = authenticate(req, now, lookup);
  t.equal(auth.presigned, true);
  t.equal(auth.payload.kind, 'unsigned');
  t.equal(code(() => authenticate(req, now + 301_000, lookup)), 'AccessDenied', 'expired');
  t.equal(code(() => authenticate({ ...req, rawPath: url.pathname.replace('x', 'z') }, now, lookup)), 'SignatureDoesNotMatch');
  t.equal(code(() => authenticate({ ...req, method: 'DELETE' }, now, lookup)), 'SignatureDoesNotMatch');
  t.equal(code(() => authenticate({ ...req, rawQuery: req.rawQuery.replace('X-Amz-Expires=300', 'X-Amz-Expires=604801') }, now, lookup)), 'AuthorizationQueryParametersError');
  t.equal(code(() => authenticate({ ...req, rawQuery: req.rawQuery.replace('X-Amz-Expires=300', 'X-Amz-Expires=3000') }, now, lookup)), 'SignatureDoesNotMatch');
});

t.test('sigv4: signed aws-chunked body, AWS\'s published example (66560 bytes of "a" in 64 KiB chunks)', async (t) => {
  const secret = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
  const headers = new Map<string, string[]>([
    ['host', ['s3.amazonaws.com']],
    ['x-amz-date', ['20130524T000000Z']],
    ['x-amz-storage-class', ['REDUCED_REDUNDANCY']],
    ['authorization', ['AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9']],
    ['x-amz-content-sha256', ['STREAMING-AWS4-HMAC-SHA256-PAYLOAD']],
    ['content-encoding', ['aws-chunked']],
    ['x-amz-decoded-content-length', ['66560']],
    ['content-length', ['66824']],
  ]);
  const req: SignedRequest = { method: 'PUT', rawPath: '/examplebucket/chunkObject.txt', rawQuery: '', headers };
  const now = Date.UTC(2013, 4, 24, 0, 1, 0);
  const auth = authenticate(req, now, (id) => (id === 'AKIAIOSFODNN7EXAMPLE' ? secret : undefined));
  const sigs = ['ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648', '0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497', 'b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9'];
  const chunk = (size: number, sig: string) => Buffer.concat([Buffer.from(`${size.toString(16)};chunk-signature=${sig}\r\n`), Buffer.alloc(size, 'a'), Buffer.from('\r\n')]);
  const body = Buffer.concat([chunk(65536, sigs[0]!), chunk(1024, sigs[1]!), chunk(0, sigs[2]!)]);
  t.equal(body.length, 66824, 'the example\'s encoded length');
  const { data } = await decode(body, auth);
  t.equal(data.length, 66560);
  // One flipped byte in the second chunk fails that chunk's signature.
  const bad = Buffer.from(body);
  bad[65536 + 200] = 0x62;
  await t.rejects(decode(bad, auth), { message: /chunk signature/ });
});

t.test('sigv4: signed chunks with a signed trailer (STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER)', async (t) => {
  // Signed here by a straight transcription of the spec, independent of the gateway's code.
  const amzDate = '20240101T000000Z';
  const scope = '20240101/us-east-1/s3/aws4_request';
  const key = signingKey(SECRET, '20240101', 'us-east-1', 's3');
  const hmac = (s: string) => crypto.createHmac('sha256', key).update(s).digest('hex');
  const sha = (b: Buffer | string) => crypto.createHash('sha256').update(b).digest('hex');
  const headers = new Map<string, string[]>([
    ['host', ['h']], ['x-amz-date', [amzDate]], ['x-amz-content-sha256', ['STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER']],
    ['x-amz-trailer', ['x-amz-checksum-crc32']], ['x-amz-decoded-content-length', ['5']],
  ]);
  const signed = 'host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-trailer';
  const canonical = ['PUT', '/b/k', '', `host:h\nx-amz-content-sha256:STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER\nx-amz-date:${amzDate}\nx-amz-decoded-content-length:5\nx-amz-trailer:x-amz-checksum-crc32\n`, signed, 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER'].join('\n');
  const seed = hmac(['AWS4-HMAC-SHA256', amzDate, scope, sha(canonical)].join('\n'));
  headers.set('authorization', [`AWS4-HMAC-SHA256 Credential=${ID}/${scope}, SignedHeaders=${signed}, Signature=${seed}`]);
  const empty = sha('');
  const c1 = hmac(['AWS4-HMAC-SHA256-PAYLOAD', amzDate, scope, seed, empty, sha('hello')].join('\n'));
  const c0 = hmac(['AWS4-HMAC-SHA256-PAYLOAD', amzDate, scope, c1, empty, empty].join('\n'));
  const trailer = 'x-amz-checksum-crc32:NhCmhg==\n';
  const ts = hmac(['AWS4-HMAC-SHA256-TRAILER', amzDate, scope, c0, sha(trailer)].join('\n'));
  const body = Buffer.from(`5;chunk-signature=${c1}\r\nhello\r\n0;chunk-signature=${c0}\r\nx-amz-checksum-crc32:NhCmhg==\r\nx-amz-trailer-signature:${ts}\r\n\r\n`);
  const auth = authenticate({ method: 'PUT', rawPath: '/b/k', rawQuery: '', headers }, Date.UTC(2024, 0, 1), lookup);
  const { data, trailers } = await decode(body, auth);
  t.equal(data.toString(), 'hello');
  t.equal(trailers.get('x-amz-checksum-crc32'), 'NhCmhg==');
  await t.rejects(decode(Buffer.from(body.toString().replace('NhCmhg==', 'AAAAAA==')), auth), { message: /trailer signature/ });
});
