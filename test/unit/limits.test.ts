import t from 'tap';
import { limits } from '../../src/common/limits';
import { durationText, parseDurationMs, parseSizeBytes, sizeText } from '../../src/common/units';
import { replicationDefaults } from '../../src/master/replication/replica';

// These are the defaults the processes run with: cli/gfs.ts and the servers read them
// from limits, so a relation checked here holds for what runs.

t.test('limits: a record append is at most a quarter of a chunk', async (t) => {
  t.ok(limits.recordBytesMax <= limits.chunkBytesMax / 4);
});

t.test('limits: the lease outlives a heartbeat interval several times over', async (t) => {
  t.ok(limits.leaseMs >= 5 * limits.heartbeatIntervalMs);
  t.ok(limits.deadAfterMs >= 3 * limits.heartbeatIntervalMs);
});

t.test('limits: a chunk is a whole number of checksum blocks and read pieces', async (t) => {
  t.equal(limits.chunkBytesMax % limits.blockBytes, 0);
  t.equal(limits.readPieceBytes % limits.blockBytes, 0);
  t.equal(limits.chunkBytesMax % limits.readPieceBytes, 0);
});

t.test('limits: an append DATA frame and a writer id fit their frame and field', async (t) => {
  t.ok(limits.appendDataFrameBytes + 8 * (limits.appendDataFrameBytes / limits.blockBytes + 1) + 1024 <= limits.frameBytesMax);
  t.ok(limits.appendWriterIdBytesMax <= 255, 'a sidecar entry stores the writer length in a byte');
});

t.test('limits: a data frame holds a read piece plus its header', async (t) => {
  t.ok(limits.frameBytesMax >= limits.readPieceBytes + 1024);
  t.ok(limits.writeWindowBytes <= limits.chunkBytesMax);
});

t.test('limits: a heartbeat that times out has not yet made its node dead', async (t) => {
  const timeoutMs = Math.max(limits.heartbeatTimeoutMinMs, limits.heartbeatIntervalMs * limits.heartbeatTimeoutIntervals);
  t.ok(timeoutMs >= limits.heartbeatIntervalMs, 'a heartbeat may take a whole interval');
  t.ok(3 * timeoutMs <= limits.deadAfterMs, 'several heartbeats can time out before a node is declared dead');
  t.ok(timeoutMs < limits.rpcTimeoutMs);
});

t.test('limits: the lifecycle waits for reports before it judges, and ticks within a heartbeat', async (t) => {
  t.ok(limits.lifecycleTickMs < limits.heartbeatIntervalMs, 'a command waits at most one heartbeat');
  t.ok(limits.safeModeMinMs >= 3 * limits.heartbeatIntervalMs, 'safe mode lasts several heartbeats');
  t.ok(limits.safeModeMinMs <= limits.deadAfterMs, 'safe mode lasts at most dead-after');
  t.ok(limits.chunkCommandTimeoutMs >= 3 * limits.heartbeatIntervalMs, 'a command has several heartbeats to be confirmed');
  t.ok(limits.fullReportIntervalMs >= 10 * limits.heartbeatIntervalMs, 'full reports are rare next to deltas');
  t.ok(limits.orphanGraceMs >= limits.deadAfterMs, 'a replica on a node that reports late is not an orphan yet');
  t.ok(limits.balanceIntervalMs >= limits.heartbeatIntervalMs, 'a balance round sees the moves of the last one reported');
});

t.test('limits: background copies and the scrubber stay under their caps', async (t) => {
  t.ok(limits.replicateBytesPerSecBusy <= limits.replicateBytesPerSec);
  t.ok(limits.scrubBytesPerSecMin <= limits.scrubBytesPerSec);
  t.ok(limits.foregroundWindowMs <= limits.heartbeatIntervalMs, 'busy means busy since the last heartbeat');
  t.ok(limits.clusterBusyHeartbeats >= 2, 'one lost heartbeat does not flip the cluster to idle');
  t.ok(limits.syncEveryBytes <= limits.writeWindowBytes / 4, 'syncs overlap with streaming');
  t.ok(limits.writeBehindFlushBytes < limits.chunkBytesMax && limits.importFlushEveryBytes < limits.chunkBytesMax);
});

t.test('limits: the election lease outlives the replication heartbeat and the safety margin; a campaign backs off at most a TTL', async (t) => {
  t.ok(limits.electionTtlMs >= limits.electionTtlMinMs && limits.electionTtlMs % 1000 === 0, 'etcd leases are whole seconds, at least one');
  t.ok(limits.electionTtlMs >= 10 * replicationDefaults.heartbeatIntervalMs, 'followers hear the leader many times per lease');
  t.ok(limits.electionSafetyMarginMs <= limits.electionTtlMs * limits.electionSafetyMarginTtlRatio, 'a leader serves most of its lease');
  t.ok(limits.electionTtlMs / limits.electionPollsPerTtl >= limits.electionPollIntervalMinMs, 'the default TTL polls at its planned rate');
  t.ok(limits.electionDialTimeoutMs < limits.electionTtlMs, 'a dead etcd endpoint costs less than a lease');
  const backoffMaxMs = Math.min(limits.campaignBackoffMaxMs, limits.electionTtlMs * limits.campaignBackoffMaxTtlRatio);
  t.ok(limits.campaignBackoffMinMs * 2 <= backoffMaxMs, 'the backoff grows');
  t.ok(backoffMaxMs <= limits.electionTtlMs, 'once etcd is back, a leader is elected within about two TTLs');
  t.ok(limits.campaignBackoffMaxTtlRatio > 0 && limits.campaignBackoffMaxTtlRatio <= 1);
  t.ok(limits.campaignBackoffMinMs >= limits.electionPollIntervalMinMs, 'a failing campaign costs no more than polling');
  t.ok(limits.campaignBackoffJitterRatio > 0 && limits.campaignBackoffJitterRatio < 1, 'masters that failed together retry apart, and never at once');
  t.ok(limits.electionWarnIntervalMs >= limits.campaignBackoffMaxMs, 'a master without etcd logs a warning at most once per attempt');
  t.ok(limits.replicationDeliverTimeoutMs <= limits.electionTtlMs, 'an undelivered message is dropped within a lease');
});

t.test('limits: default ports and their admin ports never collide, for up to 20 servers of a kind', async (t) => {
  const kinds = {
    master: limits.masterPortDefault,
    'master admin': limits.masterPortDefault + limits.masterAdminPortOffset,
    chunkserver: limits.chunkserverPortDefault,
    'chunkserver admin': limits.chunkserverPortDefault + limits.chunkserverAdminPortOffset,
  };
  t.equal(limits.restPortDefault, limits.masterPortDefault + limits.devRestPortOffset, 'gfs dev at its default base port uses the default REST port');
  t.ok(101 + limits.devChunkserversMax <= 201, 'gfs dev chunkserver ports stay below their admin ports');
  const owner = new Map<number, string>([[limits.restPortDefault, 'rest']]);
  for (const [kind, first] of Object.entries(kinds)) {
    for (let i = 0; i < 20; i++) {
      t.notOk(owner.has(first + i), `${kind} ${i + 1} at ${first + i} is free of ${owner.get(first + i)}`);
      owner.set(first + i, kind);
    }
  }
});

t.test('limits: every duration and size default prints as text that parses back to itself (what --help shows is what runs)', async (t) => {
  for (const [name, value] of Object.entries(limits)) {
    if (name.endsWith('Ms')) t.equal(parseDurationMs(durationText(value)), value, `${name}: ${durationText(value)}`);
    if (name.endsWith('Bytes') || name.endsWith('BytesMax') || name.endsWith('BytesPerSec')) t.equal(parseSizeBytes(sizeText(value)), value, `${name}: ${sizeText(value)}`);
  }
});

t.test('limits: an events long poll ends well inside one client attempt, and the queue and history are bounded', async (t) => {
  t.ok(limits.eventsWaitMaxMs * 2 <= limits.rpcTimeoutMs);
  t.ok(limits.eventsPageMax <= limits.eventsHistoryMax);
  t.ok(limits.natsReconnectMinMs < limits.natsReconnectMaxMs);
  t.ok(limits.eventsQueueMax > 0 && limits.eventsHistoryMax > 0);
});

t.test('limits: the client asks about retried records within one dedup window, and gives a record longer than a lease', async (t) => {
  t.ok(limits.appendProbeParallel >= 1 && limits.appendProbeParallel <= limits.appendDedupPerWriter, 'a probe round stays inside the window');
  t.ok(limits.appendRetryDeadlineMs > limits.appendLeaseMs + limits.appendAckTimeoutMs, 'a record outlives a lapsed lease and a timed-out primary');
  t.ok(limits.followRecheckMs < limits.appendLeaseMs, 'a follower rechecks well within a lease');
});

t.test('limits: the dashboard waits at the leader inside one gateway call, answers browsers inside the idle timeout, and runs fsck no more often than it refreshes', async (t) => {
  t.ok(limits.uiEventsMasterWaitMs * 2 <= limits.gatewayRpcTimeoutMs);
  t.ok(limits.uiEventsMasterWaitMs <= limits.eventsWaitMaxMs);
  t.ok(limits.uiEventsWaitMs * 2 <= limits.restIdleTimeoutMs);
  t.ok(limits.uiFsckRefreshMs >= limits.uiRefreshMs);
  t.ok(limits.uiEventsIdleMs > limits.uiEventsWaitMs, 'a browser long-polling keeps the feed running');
  t.ok(limits.uiEventsWaitersMax <= limits.restConnectionsMax);
});
