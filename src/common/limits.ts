/**
 * Every limit and default in one place, each with the reason for its value.
 * test/unit/limits.test.ts checks the relations between them.
 */
const KiB = 1024;
const MiB = 1024 * KiB;

export const limits = {
  /** GFS's chunk size: big enough that metadata stays small, small enough to spread load. */
  chunkBytesMax: 64 * MiB,
  /** Checksum granularity: a read verifies at most one extra 64 KiB around what it asks. */
  blockBytes: 64 * KiB,
  /** A record append pads at most a quarter of a chunk, so waste stays bounded (GFS §3.3). */
  recordBytesMax: 16 * MiB,
  /** Default replication factor: survives two failures. */
  replicationDefault: 3,
  replicationMax: 16,

  /** Path limits (DESIGN §3). */
  pathBytesMax: 4096,
  pathComponentBytesMax: 255,

  /** Chunkserver heartbeat period: the basis of failure detection. */
  heartbeatIntervalMs: 1000,
  /** A chunkserver silent this long is dead and its replicas stop being served. */
  deadAfterMs: 30_000,
  /** Full chunk report period; deltas in between. */
  fullReportIntervalMs: 60_000,
  /** Primary lease; renewed through heartbeats, so it outlives many heartbeat intervals. */
  leaseMs: 60_000,

  /** WAL: a segment rolls over past this size. */
  walSegmentBytes: 64 * MiB,
  /** WAL: a single record larger than this is a programming error or an attack. */
  walRecordBytesMax: 4 * MiB,
  /** Checkpoint after this many records since the last one. */
  checkpointEveryRecords: 100_000,

  /** Data plane: a frame larger than this is refused before it is buffered. */
  frameBytesMax: 1 * MiB + 4 * KiB,
  /** Data plane: header JSON bound. */
  frameHeaderBytesMax: 16 * KiB,
  /**
   * Data plane: bytes a writer keeps in flight before it waits for a sync ack; the
   * client keeps them to replay on a new chunk if a replica fails.
   */
  writeWindowBytes: 32 * MiB,
  /**
   * Data plane: the client asks for a durable ack (fdatasync on every replica) this often;
   * a quarter of the window, so syncs overlap with streaming and the window never stalls.
   */
  syncEveryBytes: 8 * MiB,
  /** Read stream piece: large enough to amortise a syscall and a verify, small enough for the socket. */
  readPieceBytes: 1 * MiB,

  /** gRPC control calls time out after this; retries go to another master. */
  rpcTimeoutMs: 10_000,
  /** Data-plane socket idle timeout. */
  dataIdleTimeoutMs: 30_000,
  /** Client retries of a retryable error before it gives up. */
  clientRetries: 8,

  /** A pending (unsealed) put whose writer went silent this long is abandoned. */
  pendingFileTimeoutMs: 3_600_000,
  /** Trash keeps deleted files this long before purge. */
  trashPeriodMs: 24 * 3_600_000,
  /** Recent request ids remembered for exactly-once retries. */
  requestIdsMax: 100_000,
} as const;

export type Limits = typeof limits;
