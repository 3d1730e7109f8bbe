/**
 * An S3 error answer: S3's code, the HTTP status and a message. Errors that gfs itself
 * raises (GfsError) are turned into one through the table in common/errors.ts.
 */
import { ERROR_TABLE, GfsError } from '../../common/errors';

export class S3Error extends Error {
  constructor(readonly code: string, readonly status: number, message: string, readonly extra: Record<string, string> = {}) {
    super(message);
  }

  static from(e: unknown): S3Error {
    if (e instanceof S3Error) return e;
    if (e instanceof GfsError) {
      const row = ERROR_TABLE[e.code];
      // S3 throttles with 503 SlowDown (SDKs back off on it); REST answers 429.
      return new S3Error(row.s3, e.code === 'SLOW_DOWN' ? 503 : row.http, e.message);
    }
    return new S3Error('InternalError', 500, 'We encountered an internal error. Please try again.');
  }
}
