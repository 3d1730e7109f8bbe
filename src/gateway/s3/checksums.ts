/**
 * The digests of a request body, computed while it streams: MD5 (the ETag, and
 * Content-MD5), SHA-256 (x-amz-content-sha256), and the x-amz-checksum-* algorithm the
 * client asked for (CRC32, CRC32C, CRC64NVME, SHA1, SHA256), in S3's encodings.
 *
 * Node has MD5, SHA and CRC32 (zlib.crc32) but neither CRC32C nor CRC64NVME: those come
 * from @aws-crypto/crc32c and @aws-sdk/crc64-nvme, the pure-JS implementations the AWS
 * SDK itself uses to compute what we verify, so both sides agree bit for bit.
 */
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import { Crc32c } from '@aws-crypto/crc32c';
import { Crc64Nvme } from '@aws-sdk/crc64-nvme';
import { S3Error } from './s3-error';

export const CHECKSUM_ALGORITHMS = ['crc32', 'crc32c', 'crc64nvme', 'sha1', 'sha256'] as const;
export type ChecksumAlgorithm = typeof CHECKSUM_ALGORITHMS[number];

interface Running { update(data: Buffer): void; digest(): Promise<string> }

function u32(n: number): string {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b.toString('base64');
}

function running(algorithm: ChecksumAlgorithm): Running {
  switch (algorithm) {
    case 'crc32': {
      let v = 0;
      return { update: (d) => { v = zlib.crc32(d, v); }, digest: async () => u32(v) };
    }
    case 'crc32c': {
      const c = new Crc32c();
      return { update: (d) => { c.update(d); }, digest: async () => u32(c.digest()) };
    }
    case 'crc64nvme': {
      const c = new Crc64Nvme();
      return { update: (d) => { c.update(d); }, digest: async () => Buffer.from(await c.digest()).toString('base64') };
    }
    case 'sha1':
    case 'sha256': {
      const h = crypto.createHash(algorithm);
      return { update: (d) => { h.update(d); }, digest: async () => h.digest('base64') };
    }
  }
}

export function isChecksumAlgorithm(name: string): name is ChecksumAlgorithm {
  return (CHECKSUM_ALGORITHMS as readonly string[]).includes(name);
}

export interface BodyDigestResult {
  md5Hex: string;
  sha256Hex: string | undefined;
  /** The x-amz-checksum-* value of the algorithm asked for (base64). */
  checksum: { algorithm: ChecksumAlgorithm; value: string } | undefined;
  bytes: number;
}

export class BodyDigests {
  private readonly md5 = crypto.createHash('md5');
  private readonly sha256: crypto.Hash | undefined;
  private readonly checksum: Running | undefined;
  bytes = 0;

  constructor(wantSha256: boolean, private readonly algorithm: ChecksumAlgorithm | undefined) {
    this.sha256 = wantSha256 ? crypto.createHash('sha256') : undefined;
    this.checksum = algorithm === undefined ? undefined : running(algorithm);
  }

  update(data: Buffer): void {
    this.md5.update(data);
    this.sha256?.update(data);
    this.checksum?.update(data);
    this.bytes += data.length;
  }

  async digest(): Promise<BodyDigestResult> {
    return {
      md5Hex: this.md5.digest('hex'),
      sha256Hex: this.sha256?.digest('hex'),
      checksum: this.algorithm === undefined ? undefined : { algorithm: this.algorithm, value: await this.checksum!.digest() },
      bytes: this.bytes,
    };
  }
}

/** What a request declares its body's digests to be; checked against BodyDigestResult. */
export interface DeclaredDigests {
  contentMd5Base64?: string;
  sha256Hex?: string;
  checksum?: { algorithm: ChecksumAlgorithm; value: string | undefined /* in the trailer */ };
}

const NAMES: Record<ChecksumAlgorithm, string> = { crc32: 'CRC32', crc32c: 'CRC32C', crc64nvme: 'CRC64NVME', sha1: 'SHA1', sha256: 'SHA256' };

/** Throws the S3 error for the first declared digest that the body does not match. */
export function verifyDigests(declared: DeclaredDigests, got: BodyDigestResult): void {
  if (declared.sha256Hex !== undefined && declared.sha256Hex !== got.sha256Hex) {
    throw new S3Error('XAmzContentSHA256Mismatch', 400, 'The provided \'x-amz-content-sha256\' header does not match what was computed.');
  }
  if (declared.contentMd5Base64 !== undefined && declared.contentMd5Base64 !== Buffer.from(got.md5Hex, 'hex').toString('base64')) {
    throw new S3Error('BadDigest', 400, 'The Content-MD5 you specified did not match what we received.');
  }
  if (declared.checksum !== undefined) {
    const { algorithm, value } = declared.checksum;
    if (value === undefined) throw new S3Error('InvalidRequest', 400, `The x-amz-checksum-${algorithm} trailer was announced but not sent`);
    if (got.checksum?.value !== value) {
      throw new S3Error('BadDigest', 400, `The ${NAMES[algorithm]} you specified did not match the calculated checksum.`);
    }
  }
}
