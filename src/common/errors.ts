/**
 * Operating errors: expected, handled, and carried across process boundaries by
 * their stable `code`. Programmer errors are `assert` failures and are never caught.
 *
 * One table maps each code to its gRPC status, HTTP status and S3 error code; the
 * client maps a gRPC status back to the same GfsError. Codes are stable across
 * releases; messages may change.
 */
import { status as GrpcStatus, Metadata, type ServiceError } from '@grpc/grpc-js';

export const ERROR_TABLE = {
  INVALID_ARGUMENT: { grpc: GrpcStatus.INVALID_ARGUMENT, http: 400, s3: 'InvalidArgument' },
  INVALID_PATH: { grpc: GrpcStatus.INVALID_ARGUMENT, http: 400, s3: 'InvalidObjectName' },
  NO_SUCH_FILE: { grpc: GrpcStatus.NOT_FOUND, http: 404, s3: 'NoSuchKey' },
  ALREADY_EXISTS: { grpc: GrpcStatus.ALREADY_EXISTS, http: 409, s3: 'PreconditionFailed' },
  NOT_A_DIRECTORY: { grpc: GrpcStatus.FAILED_PRECONDITION, http: 409, s3: 'InvalidRequest' },
  IS_A_DIRECTORY: { grpc: GrpcStatus.FAILED_PRECONDITION, http: 409, s3: 'InvalidRequest' },
  DIRECTORY_NOT_EMPTY: { grpc: GrpcStatus.FAILED_PRECONDITION, http: 409, s3: 'BucketNotEmpty' },
  FILE_NOT_WRITABLE: { grpc: GrpcStatus.FAILED_PRECONDITION, http: 409, s3: 'InvalidRequest' },
  NO_SPACE: { grpc: GrpcStatus.RESOURCE_EXHAUSTED, http: 507, s3: 'ServiceUnavailable' },
  NO_CHUNKSERVERS: { grpc: GrpcStatus.UNAVAILABLE, http: 503, s3: 'ServiceUnavailable' },
  NOT_LEADER: { grpc: GrpcStatus.UNAVAILABLE, http: 503, s3: 'ServiceUnavailable' },
  UNAVAILABLE: { grpc: GrpcStatus.UNAVAILABLE, http: 503, s3: 'ServiceUnavailable' },
  SAFE_MODE: { grpc: GrpcStatus.UNAVAILABLE, http: 503, s3: 'ServiceUnavailable' },
  TIMEOUT: { grpc: GrpcStatus.DEADLINE_EXCEEDED, http: 504, s3: 'RequestTimeout' },
  CORRUPT: { grpc: GrpcStatus.DATA_LOSS, http: 500, s3: 'InternalError' },
  CHECKSUM_MISMATCH: { grpc: GrpcStatus.DATA_LOSS, http: 400, s3: 'BadDigest' },
  NO_SUCH_CHUNK: { grpc: GrpcStatus.NOT_FOUND, http: 404, s3: 'NoSuchKey' },
  STALE_VERSION: { grpc: GrpcStatus.FAILED_PRECONDITION, http: 409, s3: 'InternalError' },
  LEASE_EXPIRED: { grpc: GrpcStatus.FAILED_PRECONDITION, http: 409, s3: 'InternalError' },
  // An append's expectedOffset did not match the log's length: nothing was stored.
  PRECONDITION_FAILED: { grpc: GrpcStatus.FAILED_PRECONDITION, http: 412, s3: 'PreconditionFailed' },
  // An append chunk cannot take this record (it ended, or the record does not fit): append to the next chunk.
  CHUNK_FULL: { grpc: GrpcStatus.FAILED_PRECONDITION, http: 409, s3: 'InternalError' },
  // An append reached a chunkserver that is not (or no longer) the chunk's primary.
  NOT_PRIMARY: { grpc: GrpcStatus.FAILED_PRECONDITION, http: 409, s3: 'InternalError' },
  STALE_EPOCH: { grpc: GrpcStatus.FAILED_PRECONDITION, http: 409, s3: 'InternalError' },
  PERMISSION_DENIED: { grpc: GrpcStatus.PERMISSION_DENIED, http: 403, s3: 'AccessDenied' },
  // A namespace's byte or file quota would be passed: nothing was written (Ceph RGW's
  // QuotaExceeded, HTTP 403; MinIO answers a quota refusal with a 4xx as well).
  QUOTA_EXCEEDED: { grpc: GrpcStatus.RESOURCE_EXHAUSTED, http: 403, s3: 'QuotaExceeded' },
  // Too many requests for one token (per-token rate limit at the gateway).
  SLOW_DOWN: { grpc: GrpcStatus.RESOURCE_EXHAUSTED, http: 429, s3: 'SlowDown' },
  UNAUTHENTICATED: { grpc: GrpcStatus.UNAUTHENTICATED, http: 401, s3: 'AccessDenied' },
  TOO_LARGE: { grpc: GrpcStatus.OUT_OF_RANGE, http: 413, s3: 'EntityTooLarge' },
  PROTOCOL: { grpc: GrpcStatus.INTERNAL, http: 500, s3: 'InternalError' },
  IO_ERROR: { grpc: GrpcStatus.INTERNAL, http: 500, s3: 'InternalError' },
  INTERNAL: { grpc: GrpcStatus.INTERNAL, http: 500, s3: 'InternalError' },
} as const;

export type ErrorCode = keyof typeof ERROR_TABLE;

export class GfsError extends Error {
  readonly code: ErrorCode;
  /** Extra structured detail, e.g. the leader address for NOT_LEADER. */
  readonly detail: Record<string, string>;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; detail?: Record<string, string> }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GfsError';
    this.code = code;
    this.detail = options?.detail ?? {};
  }

  /** Whether a client may retry the same request (possibly elsewhere). */
  get retryable(): boolean {
    return this.code === 'NOT_LEADER' || this.code === 'UNAVAILABLE' || this.code === 'TIMEOUT' ||
      this.code === 'SAFE_MODE';
  }
}

export function isGfsError(e: unknown, code?: ErrorCode): e is GfsError {
  return e instanceof GfsError && (code === undefined || e.code === code);
}

const CODE_KEY = 'gfs-code';

/** Turns any thrown value into a gRPC ServiceError carrying the GfsError code. */
export function toGrpcError(e: unknown): Partial<ServiceError> {
  const err = e instanceof GfsError ? e : new GfsError('INTERNAL', e instanceof Error ? e.message : String(e));
  const metadata = new Metadata();
  metadata.set(CODE_KEY, err.code);
  for (const [k, v] of Object.entries(err.detail)) metadata.set(`gfs-detail-${k.toLowerCase()}`, v);
  return { code: ERROR_TABLE[err.code].grpc, details: err.message, metadata };
}

/** Maps a gRPC error back to a GfsError (transport failures become UNAVAILABLE/TIMEOUT). */
export function fromGrpcError(e: unknown, target?: string): GfsError {
  if (e instanceof GfsError) return e;
  const se = e as Partial<ServiceError>;
  const code = se.metadata?.get(CODE_KEY)?.[0];
  if (typeof code === 'string' && code in ERROR_TABLE) {
    const detail: Record<string, string> = {};
    for (const [k, v] of Object.entries(se.metadata!.getMap())) {
      if (k.startsWith('gfs-detail-')) detail[k.slice('gfs-detail-'.length)] = String(v);
    }
    return new GfsError(code as ErrorCode, se.details ?? se.message ?? code, { detail });
  }
  const where = target ? ` (${target})` : '';
  if (se.code === GrpcStatus.DEADLINE_EXCEEDED) return new GfsError('TIMEOUT', `request timed out${where}`, { cause: e });
  if (se.code === GrpcStatus.UNAVAILABLE) return new GfsError('UNAVAILABLE', `cannot reach master${where}: ${se.details ?? ''}`.trim(), { cause: e });
  return new GfsError('INTERNAL', se.details ?? se.message ?? String(e), { cause: e });
}
