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
  /** A heartbeat RPC gives up after this many heartbeat intervals, so a slow master delays at most the next round or two... */
  heartbeatTimeoutIntervals: 2,
  /** ...and never sooner than this: a short --heartbeat-interval must not fail every call on a busy master. */
  heartbeatTimeoutMinMs: 2_000,
  /** A heartbeat's disk I/O rates average this long: smooths one burst, yet a cooled node takes chunks again within a balance interval or two. */
  ioRateWindowMs: 10_000,
  /** A node that moved client bytes this recently counts as busy: background copies yield to it. */
  foregroundWindowMs: 1_000,
  /** The master's "cluster busy" flag is believed this many heartbeats: it repeats it while clients keep going. */
  clusterBusyHeartbeats: 2,

  /** Master election lease in etcd: a dead leader is replaced within about this long. */
  electionTtlMs: 5_000,
  /** etcd grants leases in whole seconds, at least one. */
  electionTtlMinMs: 1_000,
  /** Connecting to etcd gives up after this: well under the TTL, so a dead endpoint costs one retry, not the lease. */
  electionDialTimeoutMs: 2_000,
  /** The members are read this many times per TTL: a new leader is seen within a tenth of a failover. */
  electionPollsPerTtl: 10,
  /** ...but never more often than this, whatever the TTL: polling is load on etcd. */
  electionPollIntervalMinMs: 100,
  /**
   * A leader stops serving this long before its etcd lease could expire: covers
   * clock-rate error and a keepalive answered late...
   */
  electionSafetyMarginMs: 1_000,
  /** ...and at most this share of a (short) TTL, so a leader still serves most of its lease. */
  electionSafetyMarginTtlRatio: 0.2,
  /**
   * A failed campaign is retried after this, doubling per failure (with jitter) up to
   * campaignBackoffMaxMs: etcd back after a blip is used at once...
   */
  campaignBackoffMinMs: 250,
  /**
   * ...and a master without etcd tries every few seconds, not in a loop: a group left
   * without etcd once spun at 50 % CPU each and grew to GBs (issue 9 item 4)...
   */
  campaignBackoffMaxMs: 5_000,
  /** ...and at most this share of the TTL, so once etcd is back a leader is elected about as fast as after a leader's death. */
  campaignBackoffMaxTtlRatio: 0.5,
  /** Each backoff is drawn from [1 - this, 1] of its nominal value, so masters that failed together retry apart. */
  campaignBackoffJitterRatio: 0.5,
  /** Repeated election warnings (lease lost, etcd unreachable) are logged at most this often; the rest go to debug. */
  electionWarnIntervalMs: 5_000,
  /** Primary lease; renewed through heartbeats, so it outlives many heartbeat intervals. */
  leaseMs: 60_000,

  /** WAL: a segment rolls over past this size. */
  walSegmentBytes: 64 * MiB,
  /** WAL: a single record larger than this is a programming error or an attack. */
  walRecordBytesMax: 4 * MiB,
  /** Checkpoint after this many records since the last one. */
  checkpointEveryRecords: 100_000,
  /** WAL: the next segment is preallocated once the current one is this full, so it is ready before it is needed. */
  walPreallocateAtRatio: 0.5,
  /** WAL and checkpoint sequential I/O (reads, hashing, zero fill) in pieces this big: few syscalls, bounded memory. */
  walIoPieceBytes: 1 * MiB,
  /** WAL: a segment's zero tail is scanned in pieces this big (compared against a zero buffer of this size). */
  walZeroScanBytes: 64 * KiB,

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
  /** A reader fetches the next chunk this far ahead (from another replica) while consuming the current one. */
  readaheadBytes: 16 * MiB,
  /** Read stream piece: large enough to amortise a syscall and a verify, small enough for the socket. */
  readPieceBytes: 1 * MiB,
  /**
   * Chunkserver write-behind: after this many bytes an fdatasync starts in the background,
   * so the kernel never holds a whole chunk of dirty pages and the acknowledged sync only
   * has the last few MiB left to flush.
   */
  writeBehindFlushBytes: 8 * MiB,
  /** A replica import (clone) flushes what it wrote this often, in the background, for the same reason. */
  importFlushEveryBytes: 8 * MiB,
  /** Piece writes of one import in flight at once: keeps the disk queue full without buffering a chunk. */
  importWritesInFlightMax: 4,

  /** gRPC control calls time out after this; retries go to another master. */
  rpcTimeoutMs: 10_000,
  /** Control-plane gRPC messages: a full chunk report of a big node fits, an attack does not. */
  grpcMessageBytesMax: 64 * MiB,
  /** gRPC keepalive ping period: a half-open connection to a dead master is noticed within seconds. */
  grpcKeepaliveMs: 10_000,
  /** ...and a ping unanswered this long closes the connection. */
  grpcKeepaliveTimeoutMs: 5_000,
  /** Reconnect quickly after a master restarts: gRPC's own backoff grows to minutes. */
  grpcReconnectBackoffMinMs: 200,
  grpcReconnectBackoffMaxMs: 2_000,
  /** Replication messages between masters may carry a whole metadata image. */
  replicationMessageBytesMax: 512 * MiB,
  /** Masters redial a peer fast: the replication core retransmits every heartbeat and wants the link back within a few. */
  replicationReconnectBackoffMinMs: 100,
  replicationReconnectBackoffMaxMs: 1_000,
  /** A replication message undelivered this long is dropped: the core retransmits what matters on its heartbeat. */
  replicationDeliverTimeoutMs: 5_000,
  /** Data-plane socket idle timeout. */
  dataIdleTimeoutMs: 30_000,
  /** Client: idle write connections kept per chunkserver for the next put (16 small puts in flight reuse theirs). */
  dataConnsIdlePerNodeMax: 32,
  /**
   * Client: how long a surviving replica may take to seal a chunk after its chain failed
   * (it first closes the write still open there); a replica slower than this is left
   * unsealed, so it becomes stale and is re-replicated, which is safe.
   */
  sealTimeoutMs: 5_000,
  /** Client: how long chunk locations of a sealed file are reused without asking the master. */
  locationCacheMs: 5_000,
  locationCacheEntriesMax: 10_000,
  /** Client retries of a retryable error before it gives up. */
  clientRetries: 8,

  /** A pending (unsealed) put whose writer went silent this long is abandoned. */
  pendingFileTimeoutMs: 3_600_000,
  /** Trash keeps deleted files this long before purge. */
  trashPeriodMs: 24 * 3_600_000,
  /** Recent request ids remembered for exactly-once retries. */
  requestIdsMax: 100_000,

  // ---- chunk lifecycle: healing, scrubbing, GC (DESIGN §4, §6, §8) ----

  /** The master's healing and GC decisions run this often: well under a heartbeat, so a command waits at most one heartbeat. */
  lifecycleTickMs: 500,
  /**
   * Safe mode lasts at least this long after start or failover: several heartbeat
   * intervals, so every live chunkserver has sent its full report before the master
   * judges a chunk under-replicated or orphaned.
   */
  safeModeMinMs: 5_000,
  /**
   * ...and until this fraction of the chunks with data has a reported healthy replica
   * (HDFS's 0.999). It lasts at most dead-after: a chunkserver that has not reported by
   * then would be declared dead anyway, so healing without it is what should happen.
   */
  safeModeChunkFraction: 0.999,
  /**
   * An unreferenced replica is deleted only after it was seen unreferenced this long: it
   * covers chunkservers that report late, a metadata op not yet durable everywhere, and
   * an operator who wants to look first. GFS used days; an hour is long for all of these.
   */
  orphanGraceMs: 3_600_000,
  /**
   * Cluster-wide re-replication bandwidth (bytes scheduled per second). With per-node
   * limits below, 1 GiB lost heals in seconds while foreground traffic keeps most of
   * each disk.
   */
  repairBytesPerSec: 512 * MiB,
  /** Clones running at once in the whole cluster: enough to use every node's disk. */
  repairClonesMax: 64,
  /** Clones one node may serve as source at once (assigned: queued at targets or running). */
  repairSourcesPerNodeMax: 4,
  /**
   * Clones assigned to one node at once. It runs replicateConcurrencyMax of them and
   * queues the rest, so the next copy starts the moment one ends instead of a heartbeat
   * later, when the master would send the next command.
   */
  repairTargetsPerNodeMax: 4,
  /**
   * Copies a chunkserver runs at once. Two keep a disk busy; with more, every copy
   * crawls and no chunk gets back to its goal early (the heal benchmark saw 15 clones
   * at 6-9 MiB/s each), which defeats most-endangered-first.
   */
  replicateConcurrencyMax: 2,
  /**
   * Per-chunkserver copy rate for REPLICATE (token bucket on bytes received): about a
   * quarter of a disk's sequential bandwidth, so reads and writes keep the rest.
   */
  replicateBytesPerSec: 128 * MiB,
  /**
   * ...and while the node served client reads or chain writes in the last second, copies
   * into and out of it run at most this fast: background work yields to foreground work
   * (the heal benchmark measured puts at 27 % of their idle rate under a full-speed heal).
   */
  replicateBytesPerSecBusy: 16 * MiB,
  /**
   * A clone slower than this is presumed stuck and re-planned (its timeout is length /
   * this, at least the command timeout). Low: under client load a copy may wait behind
   * others at the busy rate, shared, and re-planning it would only waste what it copied.
   */
  repairCloneRateMinBytesPerSec: 1 * MiB,
  /** A DELETE or REPLICATE not confirmed by a heartbeat within this is forgotten and re-planned. */
  chunkCommandTimeoutMs: 30_000,
  /**
   * The scrubber re-verifies every chunk once per this period (Ceph's deep scrub is
   * weekly): 10 TB a node is ~17 MB/s, a small share of a disk, and a latent bad block
   * is found long before a second failure makes it the last copy.
   */
  scrubIntervalMs: 7 * 24 * 3_600_000,
  /** The scrubber never reads faster than this, whatever the interval asks. */
  scrubBytesPerSec: 64 * MiB,
  /** ...and never paces slower than this, so small stores finish a pass early and rest. */
  scrubBytesPerSecMin: 1 * MiB,
  /**
   * The rebalancer moves replicas off nodes whose fill is this far above the mean (HDFS's
   * balancer default is 10 points too): closer than that, moving data costs more I/O
   * than the imbalance does.
   */
  balanceThresholdRatio: 0.1,
  /** Automatic rebalance rounds this often, and only while healing has nothing to do. */
  balanceIntervalMs: 10_000,
  /** Moves running at once in the cluster: balancing is background work, healing comes first. */
  balanceMovesMax: 8,
  /** Moves one node takes part in at once. */
  balanceMovesPerNodeMax: 2,
  /**
   * Disk I/O below this (bytes/s, reads + writes) is noise: it never makes a node hot and
   * weighs little in placement. It sits well above what the balancer's own moves cause on
   * a node (balanceMovesPerNodeMax chunks per balanceIntervalMs, about 13 MiB/s), so
   * balancing does not postpone itself.
   */
  ioFloorBytesPerSec: 32 * MiB,
  /** The most free-space ratio a node's I/O can outweigh in placement: 10 points, the balance threshold's size. */
  ioPenaltyMax: 0.1,
  /** A node doing this many times the cluster's mean I/O (and above the floor) is hot: no balancing moves involve it. */
  ioHotRatio: 2,
  /** Nodes are never filled past this by placement, healing or balancing. */
  fillCapRatio: 0.95,
  /**
   * In safe mode an allocation waits at most this long for enough chunkservers to check
   * in (a few heartbeats), well under the client's RPC timeout.
   */
  allocateWaitForNodesMs: 3_000,
  /** Inodes purged in one WAL record: keeps the record far below walRecordBytesMax. */
  purgeInodesPerOpMax: 1_000,
  /** fsck lists at most this many files with problems in one answer (it says when it cut). */
  fsckFilesMax: 10_000,
  /** gc --dry-run lists at most this many items in one answer. */
  gcItemsMax: 10_000,

  // ---- ports and addresses of the servers (cli/gfs.ts; gfs dev uses the same layout) ----

  /** A master's gRPC port when --listen is not given. */
  masterPortDefault: 7000,
  /** A chunkserver's data-plane port when --listen is not given (gfs dev: base + 101..). */
  chunkserverPortDefault: 7101,
  /** The gateway's REST port when --rest is not given (gfs dev: base + 1080). */
  restPortDefault: 8080,
  /**
   * A master's admin HTTP port is its listen port plus this when --admin is not given
   * (7000 → 7080, gfs dev's layout), so two masters on one host never share one.
   */
  masterAdminPortOffset: 80,
  /** A chunkserver's admin port is its listen port plus this (7101 → 7201, gfs dev's layout). */
  chunkserverAdminPortOffset: 100,
  /** gfs dev puts the REST port at base + this, the top of its layout (base + 101.. chunkservers, + 201.. their admin ports). */
  devRestPortOffset: 1080,
  /** gfs dev runs at most this many chunkservers: more would run their ports into their admin ports (+101.. vs +201..). */
  devChunkserversMax: 99,

  // ---- data-dir lock and the gfs dev supervisor (DESIGN §12) ----
  /** Rounds of "the lock is stale, replace it" before giving up: each round loses only to another starter. */
  dataDirLockAttemptsMax: 20,
  /** Pause between those rounds, so a starter racing us can finish its takeover. */
  dataDirLockRetryMs: 25,
  /** A takeover mutex this old is from a starter that died inside a few system calls. */
  dataDirTakeoverStaleMs: 10_000,
  /** gfs dev waits this long before restarting a child that died, doubling on each death... */
  devRestartBackoffMinMs: 500,
  /** ...up to this: a child that keeps crashing is retried twice a minute, not in a loop. */
  devRestartBackoffMaxMs: 30_000,
  /** A child that stayed up this long is healthy again: its next death waits the minimum. */
  devRestartStableMs: 60_000,
  /** gfs dev polls a master's /status this often while it waits for chunkservers to register. */
  devPollIntervalMs: 100,
  /** A child that has not printed its ready line by then is killed: a server starts in well under a second. */
  devChildReadyTimeoutMs: 30_000,
  /** A child asked to stop (SIGTERM) gets this long to close its files before SIGKILL. */
  devStopGraceMs: 5_000,

  // ---- client library: admin surface (src/client/admin.ts) ----

  /** statusAll gives up on one master after this: a live one answers in milliseconds, a dead one must not hold up the rest. */
  statusAllTimeoutMs: 3_000,

  // ---- master process, RPC service and lifecycle drivers (issue 8, helper A) ----
  /** gRPC messages the master accepts: a full chunk report of a large chunkserver fits. */
  masterGrpcMessageBytesMax: 512 * MiB,
  /** A standalone master makes itself leader at once; this only bounds a broken log's recovery. */
  standaloneServingTimeoutMs: 30_000,
  /** How often start() polls the log for serving: short, start-up latency is what tests wait on. */
  servingPollMs: 10,
  /** The master's housekeeping tick (dead nodes, checkpoints) runs deadAfter/this often... */
  masterTicksPerDeadAfter: 4,
  /** ...but never less often than this (a node's death is noticed within a second)... */
  masterTickMaxMs: 1_000,
  /** ...nor more often than this (the tick walks the registry). */
  masterTickMinMs: 100,
  /** The next lifecycle round waits this many times the last round's run time: ~10% of a core at most. */
  lifecycleCpuShareInverse: 10,
  /** How often the etcd lease's validity is copied into the replication core: well under its TTL. */
  electionLeasePollMs: 100,
  /** In safe mode an allocation re-checks for enough chunkservers this often. */
  allocateWaitPollMs: 100,
  /** A list without a limit answers at most this many entries. */
  listEntriesDefault: 10_000,
  /** No list answers more than this many entries, whatever it asks (bounded message size). */
  listEntriesMax: 100_000,
  /** The repair rate (and so the ETA) is averaged over this window: smooths chunk-sized steps. */
  repairRateWindowMs: 10_000,
  /** The rebalance rate is averaged over this window: moves are rarer than clones. */
  balanceRateWindowMs: 60_000,
  /** A rebalance move not finished within this many command timeouts is dropped and decided again. */
  balanceMoveTimeoutCommands: 4,
  /** Random jitter added to placement scores (free-space ratio): spreads near-equal nodes, never outweighs 5 points of free space. */
  placementJitterRatio: 0.05,
  /** Each open write costs a node this much free-space ratio in placement... */
  placementOpenWritePenalty: 0.02,
  /** ...up to this much: a busy node is avoided, a much emptier one still wins. */
  placementOpenWritesPenaltyMax: 0.5,
  /** Each open write makes a rebalance target look this much fuller: a tie-breaker only. */
  balanceOpenWriteWeight: 0.01,
  /** The live clone rate a node's heartbeats give is averaged over this: three heartbeats. */
  replicateRateWindowMs: 3_000,

  // ---- client and gfsctl (src/client/master-conn.ts, src/client/retry-policy.ts, cli/gfsctl.ts) ----
  /**
   * Client: a master call keeps following the leader and retrying this long before it
   * gives up: several elections (each about electionTtlMs plus a round of promises) fit.
   */
  clientCallDeadlineMs: 30_000,
  /** Client: first retry backoff; doubled per failure, with full jitter. */
  clientBackoffBaseMs: 50,
  /** Client: backoff ceiling: a new leader serves within a second or two, so waits stay short. */
  clientBackoffMaxMs: 1_000,
  /** Client read: first wait for a chunk's locations after a master (re)start; doubled per try, capped at clientBackoffMaxMs. */
  clientLocationWaitBaseMs: 100,
  /** Client write: wait before re-allocating with every exclusion forgotten (a node may be back). */
  clientAllocRetryWaitMs: 500,
  /** gfsctl decommission --wait asks for progress this often: a heartbeat round moves it. */
  decommissionPollMs: 1_000,

  // ---- metadata input bounds (src/master/meta-state.ts) ----
  /** Longest request id, in UTF-16 units: ids are client-made random strings (16-32 hex), so the id table stays small. */
  requestIdLengthMax: 128,
  /** Longest chunkserver id a decommission names: ids are 16 hex chars; the bound keeps a bad argument out of the log. */
  nodeIdLengthMax: 128,

  // ---- status and repair that tell the truth (issue 9, items 7-9)
  /** Below this recent repair rate (bytes/s) the ETA is "unknown": a decaying rate gives absurd ETAs. */
  repairEtaRateMinBytesPerSec: 64 * 1024,
  /** An ETA beyond this is no estimate (and must stay far below Number.MAX_SAFE_INTEGER): reported unknown. */
  repairEtaMaxMs: 30 * 24 * 3600_000,
  /** Distinct unrepairable reasons listed in status: enough to explain, small enough to read. */
  unrepairableReasonsMax: 5,

  // ---- logs and streams (issue 10, docs/LOG-STREAMS.md)
  /** An append chunk's primary lease (DESIGN §4): renewed by heartbeats, so ten beats may be missed before it lapses. */
  appendLeaseMs: 10_000,
  /** Records per writer whose offsets a sealed chunk keeps for exactly-once retries; also the client's in-flight cap per writer. */
  appendDedupPerWriter: 1024,
  /** How long a stat waits for an open log's primary before sealing its chunk to learn the length. */
  appendStatTimeoutMs: 1_000,
  /** Records a primary orders into one group commit (one write, one fsync per replica). */
  appendBatchRecordsMax: 4096,
  /** Bytes a primary orders into one group commit. */
  appendBatchBytesMax: 1 * MiB,
  /** Appends a client keeps in flight on one connection to a primary. */
  appendInFlightMax: 1024,
  /** A record's writer id (sidecar entry, RIDS frame): a short random name; 64 bytes bounds both. */
  appendWriterIdBytesMax: 64,
  /** Chunk data per DATA frame a primary forwards: a batch pipelines down the chain in a few frames. */
  appendDataFrameBytes: 512 * KiB,
  /** Pushed pieces a follower buffers for a slow consumer before it stops reading its socket. */
  followQueueMax: 8,
  /** Writers whose last records a log remembers: bounds a log's metadata (each keeps up to appendDedupPerWriter records). */
  appendWritersPerLogMax: 256,
  /** Watch streams one master serves at once: each holds a gRPC stream and a listener. */
  watchersMax: 10_000,
  /** A watcher this far behind (bytes queued on its stream) is cut off; it watches again and gets the state anew. */
  watchQueueBytesMax: 1 * MiB,
  /** One replica's answer to a seal step (SEAL, TRUNCATE) or a LEASE: a dead node must not hold a seal up for long. */
  appendSealReplicaTimeoutMs: 2_000,
  /** Lease grants tried on fresh placements before AppendTarget gives up (each failed primary is avoided). */
  appendGrantAttemptsMax: 2,
  /** Streams: the lifecycle checks rolls and retention this often; data outlives retention by at most a roll plus this. */
  streamTickMs: 1_000,
  /** Client: an append the primary has not answered this long means the primary is gone; retrying elsewhere is exactly-once, so this only bounds a stall. */
  appendAckTimeoutMs: 10_000,
  /** Client: a record unanswered this long after it was first sent fails with the last error (the master's call deadline covers each ask). */
  appendRetryDeadlineMs: 60_000,
  /** Follow: with no Watch event, the log's state is asked for again this often (a Watch stream that broke without an error). */
  followRecheckMs: 1_000,
  /** Client: retried records asked about at once after a seal kept some (a full dedup window in 16 round trips, not 1024). */
  appendProbeParallel: 64,
  /** Segments a stream's watch event lists (the newest): enough for a follower to find its next segment, bounded for a stream with years of them. */
  streamWatchSegmentsMax: 1000,

  // ---- cluster events over NATS (issue 14 item 3, docs/EVENTS.md)
  /** Events waiting for NATS in one process: a slow or absent NATS costs at most this much memory; the oldest are dropped first. */
  eventsQueueMax: 10_000,
  /** Recent events the leader keeps for `gfsctl events --since` (~300 bytes of heap each, ~15 MiB; measured): older ones are reconciled from state. */
  eventsHistoryMax: 50_000,
  /** Events one Events call returns at most: a page stays far below the gRPC message cap. */
  eventsPageMax: 1_000,
  /** Longest an Events call waits for a new event (long poll): well inside one client attempt (rpcTimeoutMs). */
  eventsWaitMaxMs: 5_000,
  /** First wait before connecting to NATS again; doubles per failure up to the max, with jitter. */
  natsReconnectMinMs: 200,
  /** Longest wait between NATS connection attempts: a NATS that comes back is used within this. */
  natsReconnectMaxMs: 5_000,
  /** One NATS connect attempt gives up after this (the publisher retries; nothing waits for it). */
  natsConnectTimeoutMs: 2_000,
  /** NATS pings this often; two unanswered pings mark the connection dead and start a reconnect. */
  natsPingIntervalMs: 5_000,
  /** Events handed to the NATS client before a round trip confirms the server took them: a slow NATS backs up into the bounded queue, never into the client's unbounded buffer. */
  natsInFlightMax: 1_000,
  /** On stop, queued events get this long to reach NATS before the connection closes. */
  natsStopFlushMs: 1_000,

  // ---- gateway (REST, DESIGN §10)
  /**
   * A gateway's master call follows the leader this long: a failover (about electionTtlMs
   * plus a round of promises) fits, so HTTP clients do not see one; under the clients' 30 s.
   */
  gatewayMasterDeadlineMs: 15_000,
  /** Request line plus headers: generous for real clients (long paths, a token, S3 signatures), tiny next to memory. */
  restHeaderBytesMax: 16 * KiB,
  /** A client has this long to send its whole header block (slowloris). */
  restHeadersTimeoutMs: 30_000,
  /** A connection silent this long in either direction is closed; streaming bodies and follows keep it busy. */
  restIdleTimeoutMs: 120_000,
  /** Idle keep-alive connections are closed after this. */
  restKeepAliveMs: 5_000,
  /** Concurrent connections per gateway: each may hold a write window or a readahead, so memory stays bounded. */
  restConnectionsMax: 1_024,
  /** Uploads one gateway runs at once: each holds a client write window (writeWindowBytes), so this bounds their memory. */
  restUploadsMax: 16,
  /** Downloads one gateway runs at once: each holds up to a readahead (readaheadBytes). Follows are bounded by connections. */
  restDownloadsMax: 64,
  /** Requests waiting for one of those slots; beyond, UNAVAILABLE (503) at once. */
  restSlotWaitersMax: 1_024,
  /** A JSON or small request body (namespace create) larger than this is refused. */
  restJsonBodyBytesMax: 64 * KiB,
  /** A list page without ?limit answers this many entries... */
  restListLimitDefault: 1_000,
  /** ...and never more than this, whatever it asks (the answer is built in memory). */
  restListLimitMax: 10_000,
  /** Entries one list request may skip (outside the prefix, directories of a flat listing) before it answers truncated with a cursor: bounds its time. */
  restListScanMax: 100_000,
  /** A batch append body (?batch, newline-delimited) larger than this is refused: it is buffered to split it into records. */
  restAppendBatchBytesMax: 16 * MiB,
  /** An SSE follow sends a comment this often when no record arrives, so proxies and clients see a live stream. */
  restFollowKeepaliveMs: 15_000,
  /** A follow's partial line is flushed as one event past this many bytes: a line is buffered until its newline. */
  restFollowLineBytesMax: 1 * MiB,

  // ---- S3 gateway (src/gateway/s3, docs/S3-KEYS.md)
  /** The gateway's S3 port when --s3 is not given (gfs dev: base + 2000, so 9000 by default). */
  s3PortDefault: 9000,
  /** gfs dev puts the S3 port at base + this. */
  devS3PortOffset: 2000,
  /** S3's own key limit: 1024 UTF-8 bytes; coded, it still fits pathBytesMax. */
  s3KeyBytesMax: 1024,
  /** S3's limit on one PUT or one part (larger objects need multipart). */
  s3PutBytesMax: 5 * 1024 * MiB,
  /** S3's limit on a multipart object (5 TiB). */
  s3MultipartBytesMax: 5 * 1024 * 1024 * MiB,
  /** XML request bodies (DeleteObjects of 1000 keys of 1 KiB, CreateBucket): read whole, so bounded. */
  s3XmlBodyBytesMax: 2 * MiB,
  /** S3's limit on user metadata (x-amz-meta-* names and values together). */
  s3UserMetadataBytesMax: 2 * 1024,
  /** DeleteObjects names at most this many keys (S3's limit). */
  s3DeleteKeysMax: 1000,
  /** ListObjects answers at most this many keys and prefixes per page (S3's limit). */
  s3ListKeysMax: 1000,
  /** Entries a listing asks of the master per List call: a page of keys in one round trip. */
  s3ListScanEntries: 1000,
  /** DeleteObjects deletes this many keys at a time: enough to hide master round trips, few enough to be gentle. */
  s3DeleteConcurrency: 8,
  /** S3's limit on parts: numbered 1..10000. */
  s3PartsMax: 10_000,
  /** S3's limit on parts: each but the last at least 5 MiB (keeps part lists short). */
  s3PartBytesMin: 5 * MiB,
  /** A multipart upload never completed is aborted this long after it started (S3's AbortIncompleteMultipartUpload rule, for every bucket); its chunks then go the way of deleted files. */
  s3UploadExpiryMs: 7 * 24 * 3600_000,
  /** The expired-upload sweep runs at least this often (and every expiry / 4 when that is shorter). */
  s3UploadSweepMaxIntervalMs: 3600_000,
  /** SigV4: a request's time may be this far from ours (S3's RequestTimeTooSkewed bound). */
  s3ClockSkewMs: 15 * 60_000,
  /** A presigned URL lives at most this long (S3's 7 days). */
  s3PresignExpiresMaxSec: 7 * 24 * 3600,
  /** An aws-chunked chunk header or trailer line longer than this is malformed (a signature is 64 hex). */
  s3ChunkLineBytesMax: 4 * 1024,
  /** Bytes of aws-chunked trailer lines in all. */
  s3TrailerBytesMax: 16 * 1024,

  // ---- ConcatFiles (S3 multipart complete without copying)
  /** Files one ConcatFiles joins at most: S3's 10,000 parts; the op (and its WAL record) stays bounded. */
  concatPartsMax: 10_000,
  // ---- tokens and namespaces (DESIGN §11, src/master/auth/)
  /** gfs dev waits this long for the master's bootstrap credentials (a leader, then one commit). */
  devCredentialsWaitMs: 30_000,
  /** Live and revoked tokens kept in the metadata: each is a few hundred bytes of every snapshot and every gateway's cache. */
  tokensMax: 10_000,
  /** Grants (namespace, scopes) one token may carry: a token is checked per request by a scan of them. */
  tokenGrantsMax: 64,
  /** A token's free-text description, in bytes: it is logged and shown by token ls. */
  tokenDescriptionBytesMax: 256,
  /** Namespaces with settings (visibility, quota): the whole table goes to every gateway each refresh. */
  namespacesMax: 10_000,
  /** A gateway refreshes its copy of the master's token table this often: a revocation takes effect within it (plus one call). */
  gatewayAuthRefreshMs: 1_000,
  /** ...and this often when it follows the cluster's token and namespace events over NATS: the events carry changes at once; this reconciles what was lost. */
  gatewayAuthReconcileMs: 30_000,
  /** ...and at most this often on a miss (an unknown token or key), so garbage tokens cannot hammer the master. */
  gatewayAuthMissRefreshMs: 200,
  /** Requests per second one token may make through one gateway by default (gfs gateway --token-rate). */
  gatewayTokenRatePerSec: 200,
  /** ...with bursts of this many. */
  gatewayTokenBurst: 400,
  /** Per-token rate buckets one gateway remembers; the least recently used goes when more tokens call. */
  gatewayTokenBucketsMax: 10_000,

  // ---- dashboard (/ui) and its admin JSON (issue 14 item 4)
  /** One master call of the gateway's client, per attempt: short, since a browser or an S3 SDK is waiting on it. */
  gatewayRpcTimeoutMs: 5_000,
  /** The dashboard refreshes this often, and the gateway caches its overview this long: any number of browsers cost one master round per period. */
  uiRefreshMs: 2_000,
  /** The overview's fsck summary is this old at most: fsck walks every chunk, so it runs less often than the overview. */
  uiFsckRefreshMs: 10_000,
  /** Problem files the overview names from an fsck (the counts cover them all). */
  uiFsckFilesShown: 10,
  /** Recent events the gateway keeps for dashboards (one feed from the leader, shared by every browser). */
  uiEventsKept: 200,
  /** A dashboard's events long poll is answered after this at the latest, well inside restIdleTimeoutMs. */
  uiEventsWaitMs: 20_000,
  /** Browsers waiting on the events long poll at once; beyond, UNAVAILABLE (the page retries after a pause). */
  uiEventsWaitersMax: 256,
  /** The gateway's long poll at the leader for new events: well inside its client's 5 s call timeout. */
  uiEventsMasterWaitMs: 2_500,
  /** The gateway stops following the leader's events when no dashboard asked for this long. */
  uiEventsIdleMs: 60_000,
  /** A feed that starts (or lost its place) backfills the events of this many recent WAL entries, not the leader's whole history. */
  uiEventsBackfillRevs: 10_000,
  /** Wait before the feed asks the masters again after a failed call. */
  uiEventsRetryMs: 1_000,
} as const;

export type Limits = typeof limits;
