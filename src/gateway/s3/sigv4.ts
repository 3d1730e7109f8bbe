/**
 * AWS Signature Version 4 for S3: the one check every request passes, whether it is
 * signed in the Authorization header or in the query (presigned), and whatever its body
 * (a SHA-256, UNSIGNED-PAYLOAD, or aws-chunked with signed chunks or an unsigned trailer).
 * Pure: the caller gives the request's method, raw path, raw query and headers, the time
 * and the secret lookup; the answer says who signed and how the body must be verified
 * (aws-chunked.ts checks chunk and trailer signatures with the ChunkSigner it returns).
 *
 * Invariants:
 * - A request passes only if its signature matches the one we compute with the signer's
 *   secret; comparisons are constant-time.
 * - Every x-amz-* header the request carries is signed (so nothing that changes what is
 *   stored can be added in flight), and so is host.
 * - The signed time is within limits.s3ClockSkewMs of ours (header) or the presigned URL
 *   is live: X-Amz-Date ≤ now + skew and now ≤ X-Amz-Date + X-Amz-Expires ≤ 7 days.
 */
import crypto from 'node:crypto';
import { limits } from '../../common/limits';
import { S3Error } from './s3-error';

export const EMPTY_SHA256 = crypto.createHash('sha256').update('').digest('hex');
const ALGORITHM = 'AWS4-HMAC-SHA256';

export interface SignedRequest {
  method: string;
  /** The path as received, percent-encoded. */
  rawPath: string;
  /** The query as received, without the `?`. */
  rawQuery: string;
  /** Lower-case header name → its values in the order received. */
  headers: Map<string, string[]>;
}

/** Signs the chunks and the trailer of an aws-chunked body, chained from the request's signature. */
export class ChunkSigner {
  constructor(private readonly signingKey: Buffer, private readonly amzDate: string, private readonly scope: string, readonly seedSignature: string) {}

  chunk(previous: string, dataSha256Hex: string): string {
    return hmacHex(this.signingKey, ['AWS4-HMAC-SHA256-PAYLOAD', this.amzDate, this.scope, previous, EMPTY_SHA256, dataSha256Hex].join('\n'));
  }

  trailer(previous: string, trailerText: string): string {
    return hmacHex(this.signingKey, ['AWS4-HMAC-SHA256-TRAILER', this.amzDate, this.scope, previous, sha256Hex(trailerText)].join('\n'));
  }
}

export type Payload =
  | { kind: 'sha256'; hex: string }
  | { kind: 'unsigned' }
  | { kind: 'chunked'; signer: ChunkSigner | undefined; trailer: boolean };

export interface AuthResult {
  accessKeyId: string;
  payload: Payload;
  presigned: boolean;
}

export type LookupSecret = (accessKeyId: string) => string | undefined;

function hmac(key: Buffer | string, data: string): Buffer {
  return crypto.createHmac('sha256', key).update(data, 'utf8').digest();
}

function hmacHex(key: Buffer, data: string): string {
  return crypto.createHmac('sha256', key).update(data, 'utf8').digest('hex');
}

export function sha256Hex(data: string | Buffer): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}

export function signingKey(secret: string, date: string, region: string, service: string): Buffer {
  return hmac(hmac(hmac(hmac('AWS4' + secret, date), region), service), 'aws4_request');
}

function sameHex(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

/** Percent-decodes to bytes (`+` stays `+`); a malformed escape is an error, not a guess. */
export function percentDecode(text: string): Buffer {
  if (!text.includes('%')) return Buffer.from(text, 'utf8');
  const out: number[] = [];
  const raw = Buffer.from(text, 'utf8');
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i]!;
    if (b !== 0x25) { out.push(b); continue; }
    const hex = raw.subarray(i + 1, i + 3).toString('latin1');
    if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw new S3Error('InvalidURI', 400, 'Couldn\'t parse the specified URI.');
    out.push(parseInt(hex, 16));
    i += 2;
  }
  return Buffer.from(out);
}

/** AWS's URI encoding: every byte but A-Z a-z 0-9 - _ . ~ (and `/` when keepSlash) as %XX. */
export function uriEncode(bytes: Buffer | string, keepSlash: boolean): string {
  const b = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes;
  let out = '';
  for (const c of b) {
    if ((c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f || c === 0x2e || c === 0x7e || (keepSlash && c === 0x2f)) {
      out += String.fromCharCode(c);
    } else {
      out += '%' + c.toString(16).toUpperCase().padStart(2, '0');
    }
  }
  return out;
}

/** Query parameters in order, decoded (names and values as UTF-8 text, bytes kept for signing). */
export function parseQuery(rawQuery: string): { name: Buffer; value: Buffer }[] {
  if (rawQuery === '') return [];
  return rawQuery.split('&').filter((p) => p !== '').map((p) => {
    const i = p.indexOf('=');
    return i < 0 ? { name: percentDecode(p), value: Buffer.alloc(0) } : { name: percentDecode(p.slice(0, i)), value: percentDecode(p.slice(i + 1)) };
  });
}

function canonicalQuery(rawQuery: string, skip: string | undefined): string {
  const pairs = parseQuery(rawQuery)
    .filter((p) => skip === undefined || p.name.toString('utf8') !== skip)
    .map((p) => [uriEncode(p.name, false), uriEncode(p.value, false)] as const);
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([n, v]) => `${n}=${v}`).join('&');
}

function canonicalPath(rawPath: string): string {
  return rawPath.split('/').map((seg) => uriEncode(percentDecode(seg), false)).join('/');
}

function canonicalHeaderValue(values: string[]): string {
  return values.map((v) => v.trim().replace(/\s+/g, ' ')).join(',');
}

function parseAmzDate(text: string | undefined): number | undefined {
  const m = text === undefined ? null : /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  if (!m) return undefined;
  const ms = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
  return Number.isFinite(ms) ? ms : undefined;
}

interface Credential { accessKeyId: string; date: string; region: string; service: string; scope: string }

function parseCredential(text: string): Credential {
  const parts = text.split('/');
  if (parts.length !== 5 || parts[4] !== 'aws4_request' || !/^\d{8}$/.test(parts[1]!)) {
    throw new S3Error('AuthorizationHeaderMalformed', 400, `The authorization header is malformed; the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".`);
  }
  if (parts[3] !== 's3') throw new S3Error('AuthorizationHeaderMalformed', 400, `The authorization header is malformed; incorrect service "${parts[3]}". This endpoint belongs to "s3".`);
  return { accessKeyId: parts[0]!, date: parts[1]!, region: parts[2]!, service: parts[3]!, scope: parts.slice(1).join('/') };
}

function one(req: SignedRequest, name: string): string | undefined {
  const v = req.headers.get(name);
  return v === undefined ? undefined : v.join(',');
}

function payloadOf(declared: string | undefined, presigned: boolean): Payload | 'unsupported' {
  if (declared === undefined) return presigned ? { kind: 'unsigned' } : 'unsupported';
  if (/^[0-9a-f]{64}$/.test(declared)) return { kind: 'sha256', hex: declared };
  if (declared === 'UNSIGNED-PAYLOAD') return { kind: 'unsigned' };
  if (declared === 'STREAMING-UNSIGNED-PAYLOAD-TRAILER') return { kind: 'chunked', signer: undefined, trailer: true };
  return 'unsupported';
}

/**
 * Checks a request's SigV4 signature (header or presigned). Throws S3Error
 * (AccessDenied, SignatureDoesNotMatch, RequestTimeTooSkewed, InvalidAccessKeyId, ...).
 */
export function authenticate(req: SignedRequest, nowMs: number, lookupSecret: LookupSecret): AuthResult {
  const authorization = one(req, 'authorization');
  const query = new Map(parseQuery(req.rawQuery).map((p) => [p.name.toString('utf8'), p.value.toString('utf8')]));
  const presigned = query.has('X-Amz-Signature') || query.has('X-Amz-Credential') || query.has('X-Amz-Algorithm');
  if (authorization !== undefined && presigned) throw new S3Error('InvalidArgument', 400, 'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified');
  if (authorization === undefined && !presigned) throw new S3Error('AccessDenied', 403, 'Anonymous access is not allowed; sign the request (AWS Signature Version 4)');

  let credentialText: string;
  let signedHeaders: string[];
  let signature: string;
  let amzDate: string | undefined;
  if (authorization !== undefined) {
    if (!authorization.startsWith(ALGORITHM + ' ')) {
      throw new S3Error('InvalidRequest', 400, 'The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.');
    }
    const fields = new Map<string, string>();
    for (const part of authorization.slice(ALGORITHM.length + 1).split(',')) {
      const i = part.indexOf('=');
      if (i > 0) fields.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
    }
    credentialText = fields.get('Credential') ?? '';
    signedHeaders = (fields.get('SignedHeaders') ?? '').split(';');
    signature = fields.get('Signature') ?? '';
    if (credentialText === '' || signature === '' || signedHeaders[0] === '') {
      throw new S3Error('AuthorizationHeaderMalformed', 400, 'The authorization header is malformed; it needs Credential, SignedHeaders and Signature.');
    }
    amzDate = one(req, 'x-amz-date');
  } else {
    if (query.get('X-Amz-Algorithm') !== ALGORITHM) throw new S3Error('AuthorizationQueryParametersError', 400, 'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"');
    credentialText = query.get('X-Amz-Credential') ?? '';
    signedHeaders = (query.get('X-Amz-SignedHeaders') ?? '').split(';');
    signature = query.get('X-Amz-Signature') ?? '';
    amzDate = query.get('X-Amz-Date');
    if (credentialText === '' || signature === '' || signedHeaders[0] === '' || !query.has('X-Amz-Expires')) {
      throw new S3Error('AuthorizationQueryParametersError', 400, 'Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.');
    }
  }
  const cred = parseCredential(credentialText);
  const dateMs = parseAmzDate(amzDate);
  if (dateMs === undefined) throw new S3Error('AccessDenied', 403, 'AWS authentication requires a valid X-Amz-Date (YYYYMMDDTHHMMSSZ)');
  if (amzDate!.slice(0, 8) !== cred.date) throw new S3Error('SignatureDoesNotMatch', 403, 'The date of the credential scope does not match X-Amz-Date');
  if (presigned) {
    const expires = query.get('X-Amz-Expires')!;
    const seconds = /^\d{1,7}$/.test(expires) ? Number(expires) : NaN;
    if (!(seconds >= 1 && seconds <= limits.s3PresignExpiresMaxSec)) {
      throw new S3Error('AuthorizationQueryParametersError', 400, `X-Amz-Expires must be between 1 and ${limits.s3PresignExpiresMaxSec} seconds`);
    }
    if (dateMs > nowMs + limits.s3ClockSkewMs) throw new S3Error('AccessDenied', 403, 'Request is not valid yet');
    if (nowMs > dateMs + seconds * 1000) throw new S3Error('AccessDenied', 403, 'Request has expired', { Expires: new Date(dateMs + seconds * 1000).toISOString(), ServerTime: new Date(nowMs).toISOString() });
  } else if (Math.abs(nowMs - dateMs) > limits.s3ClockSkewMs) {
    throw new S3Error('RequestTimeTooSkewed', 403, 'The difference between the request time and the current time is too large.', { RequestTime: amzDate!, ServerTime: new Date(nowMs).toISOString() });
  }

  const signedSet = new Set(signedHeaders);
  if (!signedSet.has('host')) throw new S3Error('AccessDenied', 403, 'The host header must be signed');
  for (const name of req.headers.keys()) {
    if (name.startsWith('x-amz-') && !signedSet.has(name) && !(presigned && name === 'x-amz-content-sha256')) {
      throw new S3Error('AccessDenied', 403, `There were headers present in the request which were not signed: ${name}`);
    }
  }
  for (const name of signedHeaders) {
    if (!req.headers.has(name)) throw new S3Error('SignatureDoesNotMatch', 403, `Signed header ${name} is missing from the request`);
  }

  const declared = presigned ? (query.get('X-Amz-Content-Sha256') ?? 'UNSIGNED-PAYLOAD') : one(req, 'x-amz-content-sha256');
  if (!presigned && declared === undefined) throw new S3Error('InvalidRequest', 400, 'Missing required header for this request: x-amz-content-sha256');
  const canonical = [
    req.method,
    canonicalPath(req.rawPath),
    canonicalQuery(req.rawQuery, presigned ? 'X-Amz-Signature' : undefined),
    signedHeaders.map((h) => `${h}:${canonicalHeaderValue(req.headers.get(h)!)}\n`).join(''),
    signedHeaders.join(';'),
    declared!,
  ].join('\n');
  const stringToSign = [ALGORITHM, amzDate!, cred.scope, sha256Hex(canonical)].join('\n');

  const secret = lookupSecret(cred.accessKeyId);
  if (secret === undefined) throw new S3Error('InvalidAccessKeyId', 403, 'The AWS Access Key Id you provided does not exist in our records.');
  const key = signingKey(secret, cred.date, cred.region, cred.service);
  const expected = hmacHex(key, stringToSign);
  if (!sameHex(expected, signature)) {
    throw new S3Error('SignatureDoesNotMatch', 403, 'The request signature we calculated does not match the signature you provided. Check your key and signing method.');
  }

  let payload: Payload | 'unsupported';
  if (declared === 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD' || declared === 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER') {
    payload = { kind: 'chunked', signer: new ChunkSigner(key, amzDate!, cred.scope, signature), trailer: declared.endsWith('-TRAILER') };
  } else {
    payload = payloadOf(declared, presigned);
  }
  if (payload === 'unsupported') {
    if (declared?.startsWith('STREAMING-AWS4-ECDSA')) throw new S3Error('NotImplemented', 501, 'SigV4a (ECDSA) signing is not implemented');
    throw new S3Error('InvalidArgument', 400, 'x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER], or a valid sha256 value.');
  }
  return { accessKeyId: cred.accessKeyId, payload, presigned };
}
