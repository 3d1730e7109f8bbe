/** Relations between the chunk-lifecycle limits (src/common/limits.ts). */
import t from 'tap';
import { limits } from '../../src/common/limits';

t.test('limits: safe mode outlasts several heartbeats, so every live chunkserver has reported', async (t) => {
  t.ok(limits.safeModeMinMs >= 3 * limits.heartbeatIntervalMs);
  t.ok(limits.safeModeChunkFraction > 0 && limits.safeModeChunkFraction <= 1);
});

t.test('limits: a command is re-planned only after several heartbeats and lifecycle ticks went by', async (t) => {
  t.ok(limits.chunkCommandTimeoutMs >= 10 * limits.heartbeatIntervalMs);
  t.ok(limits.lifecycleTickMs <= limits.heartbeatIntervalMs, 'a decision waits at most one heartbeat for delivery');
});

t.test('limits: the orphan grace covers late reports: a node declared dead and back, and a full report', async (t) => {
  t.ok(limits.orphanGraceMs >= limits.deadAfterMs + limits.fullReportIntervalMs);
  t.ok(limits.orphanGraceMs >= limits.chunkCommandTimeoutMs);
});

t.test('limits: repair can move a whole chunk at once, and per-node limits fit under the cluster ones', async (t) => {
  t.ok(limits.repairBytesPerSec >= limits.replicateBytesPerSec, 'one node alone never exceeds the cluster budget');
  t.ok(limits.repairClonesMax >= limits.repairTargetsPerNodeMax);
  t.ok(limits.repairCloneRateMinBytesPerSec < limits.replicateBytesPerSec / limits.repairTargetsPerNodeMax,
    'a clone sharing a node with others is not presumed stuck');
});

t.test('limits: the scrubber paces between its floor and its cap, and a pass fits its interval at the cap', async (t) => {
  t.ok(limits.scrubBytesPerSecMin < limits.scrubBytesPerSec);
  // 10 TB a node verified within the interval at the cap.
  t.ok(limits.scrubBytesPerSec * (limits.scrubIntervalMs / 1000) >= 10e12);
});

t.test('limits: a purge record stays far below the WAL record bound', async (t) => {
  t.ok(limits.purgeInodesPerOpMax * 10 < limits.walRecordBytesMax / 10);
});
