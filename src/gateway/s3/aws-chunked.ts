/**
 * Decodes an `aws-chunked` body: `hex-size[;chunk-signature=SIG]\r\n DATA \r\n` ... a
 * zero-size chunk, then trailer lines (`x-amz-checksum-crc32:...`, and with signed
 * chunks `x-amz-trailer-signature:SIG`) and an empty line.
 *
 * Invariants:
 * - Data is yielded as it arrives (bounded memory: a chunk is never gathered whole);
 *   with signed chunks each chunk's signature is checked when its data ends, so a bad
 *   chunk fails the body before it can be made visible by the caller (who commits only
 *   once the generator has returned).
 * - Lines are bounded (limits.s3ChunkLineBytesMax, s3TrailerBytesMax); a body that ends
 *   early or has bytes after its last line is an error, never a shorter object.
 */
import crypto from 'node:crypto';
import { limits } from '../../common/limits';
import { S3Error } from './s3-error';
import type { ChunkSigner } from './sigv4';

const CRLF = Buffer.from('\r\n');

function malformed(what: string): S3Error {
  return new S3Error('IncompleteBody', 400, `The aws-chunked body is malformed: ${what}`);
}

/** A reader of lines and byte runs over a stream of buffers. */
class ByteReader {
  private buf: Buffer = Buffer.alloc(0);
  private ended = false;
  private readonly it: AsyncIterator<Buffer>;

  constructor(source: AsyncIterable<Buffer>) {
    this.it = source[Symbol.asyncIterator]();
  }

  private async fill(): Promise<boolean> {
    if (this.ended) return false;
    const r = await this.it.next();
    if (r.done) { this.ended = true; return false; }
    const piece = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
    this.buf = this.buf.length === 0 ? piece : Buffer.concat([this.buf, piece]);
    return true;
  }

  /** The next line without its CRLF; undefined at a clean end of the body. */
  async line(max: number): Promise<string | undefined> {
    for (;;) {
      const i = this.buf.indexOf(CRLF);
      if (i >= 0) {
        if (i > max) throw malformed('a line is too long');
        const text = this.buf.subarray(0, i).toString('latin1');
        this.buf = this.buf.subarray(i + 2);
        return text;
      }
      if (this.buf.length > max + 1) throw malformed('a line is too long');
      if (!(await this.fill())) {
        if (this.buf.length === 0) return undefined;
        throw malformed('the body ended inside a line');
      }
    }
  }

  /** Exactly n bytes, in pieces as they arrive. */
  async *take(n: number): AsyncGenerator<Buffer> {
    while (n > 0) {
      if (this.buf.length === 0 && !(await this.fill())) throw malformed('the body ended inside a chunk');
      const piece = this.buf.subarray(0, Math.min(n, this.buf.length));
      this.buf = this.buf.subarray(piece.length);
      n -= piece.length;
      yield piece;
    }
  }

  /** True if nothing but the end of the stream is left. */
  async atEnd(): Promise<boolean> {
    while (this.buf.length === 0) if (!(await this.fill())) return true;
    return false;
  }
}

export interface ChunkedOptions {
  /** Set for STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]: every chunk's signature is checked. */
  signer: ChunkSigner | undefined;
  /** Trailer lines follow the last chunk. */
  trailer: boolean;
  /** Receives the trailer headers (lower-case names) before the generator returns. */
  onTrailers: (trailers: Map<string, string>) => void;
}

export async function* decodeAwsChunked(source: AsyncIterable<Buffer>, opts: ChunkedOptions): AsyncGenerator<Buffer> {
  const reader = new ByteReader(source);
  let previous = opts.signer?.seedSignature ?? '';
  for (;;) {
    const header = await reader.line(limits.s3ChunkLineBytesMax);
    if (header === undefined) throw malformed('the body ended before its last chunk');
    const semi = header.indexOf(';');
    const sizeText = semi < 0 ? header : header.slice(0, semi);
    if (!/^[0-9a-fA-F]{1,12}$/.test(sizeText)) throw malformed('a chunk size is not hexadecimal');
    const size = parseInt(sizeText, 16);
    let signature: string | undefined;
    if (opts.signer) {
      const m = /^chunk-signature=([0-9a-f]{64})$/.exec(semi < 0 ? '' : header.slice(semi + 1));
      if (!m) throw new S3Error('SignatureDoesNotMatch', 403, 'A chunk has no chunk-signature');
      signature = m[1]!;
    }
    const hash = opts.signer ? crypto.createHash('sha256') : undefined;
    for await (const piece of reader.take(size)) {
      hash?.update(piece);
      yield piece;
    }
    if (opts.signer) {
      const expected = opts.signer.chunk(previous, hash!.digest('hex'));
      if (expected !== signature) throw new S3Error('SignatureDoesNotMatch', 403, 'A chunk signature does not match');
      previous = signature!;
    }
    if (size === 0) break;
    const end = await reader.line(0);
    if (end !== '') throw malformed('a chunk is not followed by CRLF');
  }
  const trailers = new Map<string, string>();
  if (opts.trailer) {
    let bytes = 0;
    let trailerText = '';
    let trailerSignature: string | undefined;
    for (;;) {
      const line = await reader.line(limits.s3ChunkLineBytesMax);
      if (line === undefined || line === '') break;
      bytes += line.length;
      if (bytes > limits.s3TrailerBytesMax) throw malformed('the trailer is too long');
      const i = line.indexOf(':');
      if (i <= 0) throw malformed('a trailer line has no name');
      const name = line.slice(0, i).trim().toLowerCase();
      const value = line.slice(i + 1).trim();
      if (name === 'x-amz-trailer-signature') { trailerSignature = value; continue; }
      trailers.set(name, value);
      trailerText += `${name}:${value}\n`;
    }
    if (opts.signer) {
      if (trailerSignature === undefined || opts.signer.trailer(previous, trailerText) !== trailerSignature) {
        throw new S3Error('SignatureDoesNotMatch', 403, 'The trailer signature does not match');
      }
    }
  } else {
    const last = await reader.line(0);
    if (last !== '' && last !== undefined) throw malformed('the last chunk is not followed by CRLF');
  }
  if (!(await reader.atEnd())) throw malformed('bytes follow the last chunk');
  opts.onTrailers(trailers);
}
