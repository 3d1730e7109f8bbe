/**
 * A request body as the handlers see it: the decoded bytes (aws-chunked undone), with
 * every digest the request declares (Content-MD5, x-amz-content-sha256,
 * x-amz-checksum-* in a header or the trailer) computed on the way, and one verify step
 * after the last byte. Every body goes through here (PUT, DeleteObjects, CreateBucket),
 * so no handler can skip a check.
 *
 * Invariants: the decoded length is the declared one (Content-Length, or
 * x-amz-decoded-content-length for aws-chunked), or the body fails; verified() resolves
 * only when every declared digest matched. Callers make nothing visible before it does.
 */
import type { IncomingMessage } from 'node:http';
import { limits } from '../../common/limits';
import { decodeAwsChunked } from './aws-chunked';
import { BodyDigests, isChecksumAlgorithm, verifyDigests, type BodyDigestResult, type ChecksumAlgorithm, type DeclaredDigests } from './checksums';
import { S3Error } from './s3-error';
import { EMPTY_SHA256, type AuthResult } from './sigv4';

export interface RequestBody {
  /** Decoded bytes; iterate once, to the end. */
  source: AsyncGenerator<Buffer>;
  declaredLength: number;
  /** After `source` ended: the digests, all declared ones checked (throws BadDigest & co). */
  verified(): Promise<BodyDigestResult>;
}

function header(headers: Map<string, string[]>, name: string): string | undefined {
  return headers.get(name)?.join(',');
}

function declaredChecksum(headers: Map<string, string[]>): DeclaredDigests['checksum'] {
  let found: DeclaredDigests['checksum'];
  for (const [name, values] of headers) {
    if (!name.startsWith('x-amz-checksum-') || name === 'x-amz-checksum-mode' || name === 'x-amz-checksum-type' || name === 'x-amz-checksum-algorithm') continue;
    const algorithm = name.slice('x-amz-checksum-'.length);
    if (!isChecksumAlgorithm(algorithm)) throw new S3Error('InvalidRequest', 400, `Unknown checksum header ${name}`);
    if (found) throw new S3Error('InvalidRequest', 400, 'Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.');
    found = { algorithm, value: values.join(',') };
  }
  const trailer = header(headers, 'x-amz-trailer');
  if (trailer !== undefined) {
    const algorithm = trailer.trim().toLowerCase().replace(/^x-amz-checksum-/, '');
    if (!trailer.trim().toLowerCase().startsWith('x-amz-checksum-') || !isChecksumAlgorithm(algorithm)) {
      throw new S3Error('InvalidRequest', 400, `The value of x-amz-trailer is not a checksum header: ${trailer}`);
    }
    if (found) throw new S3Error('InvalidRequest', 400, 'Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.');
    found = { algorithm, value: undefined };
  }
  const sdk = header(headers, 'x-amz-sdk-checksum-algorithm')?.toLowerCase();
  if (found === undefined && sdk !== undefined) {
    if (!isChecksumAlgorithm(sdk)) throw new S3Error('InvalidRequest', 400, `Unknown x-amz-sdk-checksum-algorithm ${sdk}`);
    return undefined; // named but carrying no value: nothing to verify; computed below as asked
  }
  return found;
}

function lengthOf(headers: Map<string, string[]>, name: string): number | undefined {
  const text = header(headers, name);
  if (text === undefined) return undefined;
  if (!/^\d{1,16}$/.test(text)) throw new S3Error('InvalidArgument', 400, `${name} is not a number`);
  return Number(text);
}

/** The body of `req`, decoded and checked as its auth and headers say; `maxBytes` bounds it. */
export function requestBody(req: IncomingMessage, headers: Map<string, string[]>, auth: AuthResult, maxBytes: number): RequestBody {
  const chunked = auth.payload.kind === 'chunked';
  const declaredLength = chunked ? lengthOf(headers, 'x-amz-decoded-content-length') : lengthOf(headers, 'content-length');
  if (declaredLength === undefined) {
    throw new S3Error('MissingContentLength', 411, chunked ? 'aws-chunked uploads need x-amz-decoded-content-length' : 'You must provide the Content-Length HTTP header.');
  }
  if (declaredLength > maxBytes) throw new S3Error('EntityTooLarge', 400, `Your proposed upload exceeds the maximum allowed size (${maxBytes} bytes)`);
  const checksum = declaredChecksum(headers);
  const sdk = header(headers, 'x-amz-sdk-checksum-algorithm')?.toLowerCase();
  const algorithm: ChecksumAlgorithm | undefined = checksum?.algorithm ?? (sdk !== undefined && isChecksumAlgorithm(sdk) ? sdk : undefined);
  if (checksum?.value === undefined && checksum !== undefined && !(chunked && (auth.payload as { trailer: boolean }).trailer)) {
    throw new S3Error('InvalidRequest', 400, 'x-amz-trailer needs an aws-chunked body with a trailer');
  }
  const md5 = header(headers, 'content-md5');
  if (md5 !== undefined && Buffer.from(md5, 'base64').length !== 16) throw new S3Error('InvalidDigest', 400, 'The Content-MD5 you specified was invalid.');
  const declared: DeclaredDigests = {
    contentMd5Base64: md5,
    sha256Hex: auth.payload.kind === 'sha256' ? auth.payload.hex : undefined,
    checksum,
  };
  const digests = new BodyDigests(declared.sha256Hex !== undefined, algorithm);
  let ended = false;
  const raw: AsyncIterable<Buffer> = req;
  const decoded = auth.payload.kind === 'chunked'
    ? decodeAwsChunked(raw, {
      signer: auth.payload.signer, trailer: auth.payload.trailer,
      onTrailers: (trailers) => {
        if (checksum && checksum.value === undefined) checksum.value = trailers.get(`x-amz-checksum-${checksum.algorithm}`);
      },
    })
    : raw;
  async function* source(): AsyncGenerator<Buffer> {
    for await (const piece of decoded) {
      if (digests.bytes + piece.length > declaredLength!) throw new S3Error('IncompleteBody', 400, 'The body is longer than its declared length');
      digests.update(piece);
      yield piece;
    }
    if (digests.bytes !== declaredLength) {
      throw new S3Error('IncompleteBody', 400, `You did not provide the number of bytes specified by the Content-Length HTTP header (${digests.bytes} of ${declaredLength})`);
    }
    ended = true;
  }
  return {
    source: source(),
    declaredLength,
    async verified() {
      if (!ended) throw new S3Error('IncompleteBody', 400, 'The body was not read to its end');
      const got = await digests.digest();
      verifyDigests(declared, got);
      return got;
    },
  };
}

/** Reads a small body whole (XML requests), through the same checks. */
export async function readSmallBody(req: IncomingMessage, headers: Map<string, string[]>, auth: AuthResult): Promise<Buffer> {
  // HTTP/1.1: no Content-Length and no Transfer-Encoding is no body (a bare CreateBucket).
  if (!headers.has('content-length') && !headers.has('transfer-encoding') && auth.payload.kind !== 'chunked') {
    if (auth.payload.kind === 'sha256' && auth.payload.hex !== EMPTY_SHA256) {
      throw new S3Error('XAmzContentSHA256Mismatch', 400, 'The provided \'x-amz-content-sha256\' header does not match what was computed.');
    }
    return Buffer.alloc(0);
  }
  const body = requestBody(req, headers, auth, limits.s3XmlBodyBytesMax);
  const parts: Buffer[] = [];
  for await (const piece of body.source) parts.push(Buffer.from(piece));
  await body.verified();
  return Buffer.concat(parts);
}
