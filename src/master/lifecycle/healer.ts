/**
 * The healing driver: each tick it settles what chunkservers confirmed, asks the pure
 * planner (heal-plan.ts) what to do next within the bandwidth budget, and queues the
 * commands; it also keeps the progress figures (rate, ETA) for status and /metrics.
 *
 * Invariants:
 * - An ETA is given only from a real rate (at least repairEtaRateMinBytesPerSec) and is
 *   at most repairEtaMaxMs; otherwise it is unknown, never a huge number.
 * - Nothing is queued while `active` is false (safe mode, not leader, stopping); the
 *   plan is still computed so status and fsck stay truthful.
 * - Bytes scheduled for cloning never exceed the cluster repair bandwidth over time
 *   (token bucket with a burst of one second, and at least one chunk).
 */
import type { RepairProgress } from '../../../gen/gfs';
import { limits } from '../../common/limits';
import { TokenBucket } from '../../common/token-bucket';
import { cloneDeadlineMs, type PendingClone } from './chunk-commands';
import type { DriverHost } from './driver-host';
import { emptyHealingSummary, planHealing, type HealNode, type HealingSummary } from './heal-plan';

export interface HealerOptions {
  repairBytesPerSec: number;
  repairClonesMax: number;
  sourcesPerNodeMax: number;
  targetsPerNodeMax: number;
  fillCapRatio: number;
}

export interface HealerHost extends DriverHost {
  /** Replicas to trim first from an over-replicated chunk (a rebalance move's source). */
  trimFirst?: (handle: number) => ReadonlySet<string> | undefined;
  random: () => number;
  /** A clone completed: the chunk has one more healthy replica (a cluster event). */
  onCloned?: (c: PendingClone) => void;
}


export class Healer {
  private readonly bucket: TokenBucket;
  private summary: HealingSummary = emptyHealingSummary();
  private readonly recent: { atMonoMs: number; bytes: number }[] = [];
  completedTotal = 0;
  completedBytesTotal = 0;
  failedTotal = 0;
  deletesTotal = 0;

  constructor(private readonly host: HealerHost, private readonly opts: HealerOptions) {
    const burst = Math.max(opts.repairBytesPerSec, limits.chunkBytesMax);
    this.bucket = new TokenBucket(opts.repairBytesPerSec, burst, () => host.clock.monoMs());
  }

  get lastSummary(): HealingSummary { return this.summary; }

  /** One healing round. Returns the summary of the chunk table it saw. */
  tick(active: boolean, now: number): HealingSummary {
    const { registry, outbox, log } = this.host;
    const settled = outbox.settle(now, {
      holds: (id, h) => registry.holds(id, h),
      healthyOn: (h, id) => this.host.healthyOn(h, id),
      usable: (id) => { const n = registry.nodes.get(id); return n !== undefined && n.alive; },
    });
    for (const c of settled.completed) {
      this.completedTotal++;
      this.completedBytesTotal += c.length;
      this.recent.push({ atMonoMs: now, bytes: c.length });
      log.info({ handle: c.handle, source: c.sourceNodeId, target: c.targetNodeId, bytes: c.length, ms: Math.round(now - c.queuedMonoMs) }, 'replica cloned');
      this.host.onCloned?.(c);
    }
    for (const c of settled.failed) this.noteFailure(c, 'timed out or a node it needs is gone');
    for (const d of settled.expiredDeletes) log.warn({ handle: d.handle, node: d.nodeId, reason: d.reason }, 'delete not confirmed in time; will decide again');

    const nodes: HealNode[] = [...registry.nodes.values()].map((n) => ({
      id: n.id, zone: n.zone, capacityBytes: n.capacityBytes, freeBytes: n.freeBytes, openWrites: n.openWrites,
      readBytesPerSec: n.readBytesPerSec, writeBytesPerSec: n.writeBytesPerSec,
      usable: n.alive && n.reported, draining: this.host.draining(n.id), suspect: n.suspect !== '',
    }));
    const inflight = outbox.inflightClones();
    const plan = planHealing({
      chunks: this.host.chunks(),
      replicasOf: this.host.replicasOf,
      nodes,
      inflight: inflight.map((c) => ({ handle: c.handle, sourceNodeId: c.sourceNodeId, targetNodeId: c.targetNodeId, bytes: c.length })),
      deletingOf: (h) => outbox.deletingOf(h),
      budget: {
        clonesMax: active ? Math.max(0, this.opts.repairClonesMax - inflight.length) : 0,
        bytesMax: active ? this.bucket.available() : 0,
        sourcesPerNodeMax: this.opts.sourcesPerNodeMax,
        targetsPerNodeMax: this.opts.targetsPerNodeMax,
        fillCapRatio: this.opts.fillCapRatio,
      },
      random: this.host.random,
      trimFirst: this.host.trimFirst,
    });
    this.summary = plan.summary;
    if (!active) return plan.summary;
    for (const c of plan.clones) {
      const deadline = cloneDeadlineMs(now, c.length);
      // The last copy of a chunk is copied at full speed whatever clients are doing.
      if (outbox.queueClone({ ...c, deadlineMonoMs: deadline, urgent: c.healthy <= 1 }, now)) {
        this.bucket.take(c.length);
        log.info({ handle: c.handle, source: c.sourceNodeId, target: c.targetNodeId, healthy: c.healthy, goal: c.goal }, 'cloning replica');
      }
    }
    for (const d of plan.deletes) {
      if (outbox.queueDelete({ nodeId: d.nodeId, handle: d.handle, version: d.version, reason: d.reason, detail: d.detail }, now)) {
        this.deletesTotal++;
        log.info({ handle: d.handle, node: d.nodeId, reason: d.reason, detail: d.detail }, 'deleting replica');
      }
    }
    return plan.summary;
  }

  /** A chunkserver reported that a REPLICATE failed. */
  cloneFailed(targetNodeId: string, handle: number): PendingClone | undefined {
    const c = this.host.outbox.cloneFailed(targetNodeId, handle);
    if (c) this.noteFailure(c, 'the target reported a failure');
    return c;
  }

  progress(): RepairProgress {
    const now = this.host.clock.monoMs();
    while (this.recent.length > 0 && now - this.recent[0]!.atMonoMs > limits.repairRateWindowMs) this.recent.shift();
    const windowBytes = this.recent.reduce((s, r) => s + r.bytes, 0);
    const completedPerSec = windowBytes / (limits.repairRateWindowMs / 1000);
    // What the chunkservers are copying in right now (their heartbeats' byte counters):
    // it moves as soon as clones start, long before the first one completes.
    let livePerSec = 0;
    for (const n of this.host.registry.alive()) livePerSec += n.replicateRate.bytesPerSec;
    const bytesPerSec = Math.max(completedPerSec, livePerSec);
    const inflight = this.host.outbox.inflightClones();
    const inflightBytes = inflight.reduce((s, c) => s + c.length, 0);
    const remaining = this.summary.queuedBytes + inflightBytes;
    const etaMs = repairEtaMs(remaining, bytesPerSec);
    return {
      queuedChunks: this.summary.queuedChunks,
      queuedBytes: this.summary.queuedBytes,
      inflightChunks: inflight.length,
      inflightBytes,
      bytesPerSec,
      etaMs: etaMs ?? 0,
      etaKnown: etaMs !== undefined,
      unrepairableChunks: this.summary.unrepairable.size,
      unrepairableReasons: reasonCounts(this.summary.unrepairable),
      missingChunks: this.summary.missing,
      corruptReplicas: this.summary.corruptReplicas,
      staleReplicas: this.summary.staleReplicas,
      overReplicated: this.summary.overReplicated,
      completedTotal: this.completedTotal,
      failedTotal: this.failedTotal,
      underReplicated: this.summary.underReplicated,
    };
  }

  /** Why healing cannot fix this chunk now ('' when it can, or it needs nothing). */
  unrepairableReason(handle: number): string {
    return this.summary.unrepairable.get(handle) ?? '';
  }

  private noteFailure(c: PendingClone, why: string): void {
    this.failedTotal++;
    this.host.log.warn({ handle: c.handle, source: c.sourceNodeId, target: c.targetNodeId, why }, 'clone failed; will plan again');
  }
}

/**
 * The repair ETA, only from a real rate: enough bytes copied recently or a live rate
 * worth the name. A rate decaying toward zero (nothing moves) gives no ETA rather than
 * an absurd one; undefined = unknown.
 */
export function repairEtaMs(remainingBytes: number, bytesPerSec: number): number | undefined {
  if (remainingBytes <= 0) return 0;
  if (!(bytesPerSec >= limits.repairEtaRateMinBytesPerSec)) return undefined;
  const eta = Math.round((remainingBytes / bytesPerSec) * 1000);
  return eta <= limits.repairEtaMaxMs ? eta : undefined;
}

/** "<n> chunks: <reason>" per distinct reason, most common first. */
function reasonCounts(byHandle: ReadonlyMap<number, string>): string[] {
  const counts = new Map<string, number>();
  for (const r of byHandle.values()) counts.set(r, (counts.get(r) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, limits.unrepairableReasonsMax)
    .map(([r, n]) => `${n} chunk${n === 1 ? '' : 's'}: ${r}`);
}
