/**
 * The rebalancing driver: runs rounds of the pure planner (balance-plan.ts) automatically
 * (every balanceIntervalMs, only while healing is idle) or on demand (`gfsctl
 * balance`), queues each move as a clone, and tells healing which replica to trim once
 * the clone is in (the move's source). Keeps the progress figures.
 *
 * Invariants:
 * - A move is a clone then a trim: the chunk has goal + 1 healthy replicas in between,
 *   never fewer than before.
 * - Nothing starts while `active` is false (safe mode, not leader).
 * - At most one move per chunk is tracked at a time.
 *
 * Nodes are handed to the planner with their recent disk I/O and their open writes plus
 * the clones they are copying in, so moves avoid (and postpone around) busy disks.
 */
import type { BalanceProgress } from '../../../gen/gfs';
import { limits } from '../../common/limits';
import { cloneDeadlineMs } from './chunk-commands';
import type { DriverHost } from './driver-host';
import { planRebalance, type BalanceMove, type BalancePlan } from './balance-plan';

export interface BalancerOptions {
  /** 0 disables automatic rounds (gfsctl balance still runs one). */
  thresholdRatio: number;
  intervalMs: number;
  movesMax: number;
  perNodeMax: number;
  fillCapRatio: number;
}

export type BalancerHost = DriverHost;

interface TrackedMove extends BalanceMove {
  startedMonoMs: number;
  cloned: boolean;
}


export class Balancer {
  private readonly moves = new Map<number, TrackedMove>();
  private lastRoundMonoMs = -Infinity;
  private lastPlan: BalancePlan | undefined;
  private lastPostponed = '';
  private readonly recent: { atMonoMs: number; bytes: number }[] = [];
  completedMoves = 0;
  movedBytes = 0;

  constructor(private readonly host: BalancerHost, readonly opts: BalancerOptions) {}

  get automatic(): boolean { return this.opts.thresholdRatio > 0; }

  /** The replica healing should trim first for this chunk (the source of its move). */
  trimFirst(handle: number): ReadonlySet<string> | undefined {
    const m = this.moves.get(handle);
    return m ? new Set([m.sourceNodeId]) : undefined;
  }

  /** One lifecycle tick: settle moves; maybe start an automatic round. */
  tick(active: boolean, healingIdle: boolean, now: number): void {
    this.settle(now);
    if (!active || !this.automatic || !healingIdle) return;
    if (now - this.lastRoundMonoMs < this.opts.intervalMs) return;
    this.round(this.opts.thresholdRatio, false);
  }

  /** Plans a round; unless dryRun, starts its moves. */
  round(thresholdRatio: number, dryRun: boolean): BalancePlan {
    const { registry, outbox, clock, log } = this.host;
    const now = clock.monoMs();
    if (!dryRun) this.lastRoundMonoMs = now;
    const inflight = outbox.inflightClones();
    const ours = [...this.moves.values()].filter((m) => !m.cloned).length;
    const plan = planRebalance({
      nodes: [...registry.nodes.values()].map((n) => ({
        id: n.id, zone: n.zone, capacityBytes: n.capacityBytes, freeBytes: n.freeBytes, openWrites: n.openWrites + n.replicating,
        readBytesPerSec: n.readBytesPerSec, writeBytesPerSec: n.writeBytesPerSec,
        usable: n.alive && n.reported && n.suspect === '', draining: this.host.draining(n.id),
      })),
      chunks: this.host.chunks(),
      replicasOf: this.host.replicasOf,
      deletingOf: (h) => outbox.deletingOf(h),
      inflight: inflight.map((c) => ({ handle: c.handle, sourceNodeId: c.sourceNodeId, targetNodeId: c.targetNodeId, bytes: c.length })),
      finishing: [...this.moves.values()].filter((m) => m.cloned),
    }, {
      thresholdRatio, fillCapRatio: this.opts.fillCapRatio,
      movesMax: Math.max(0, this.opts.movesMax - ours), perNodeMax: this.opts.perNodeMax,
    });
    this.lastPlan = plan;
    if (dryRun) return plan;
    const postponed = plan.postponedNodeIds.join(',');
    if (postponed !== this.lastPostponed) {
      // Said once per change, not every round: a hot node may stay hot for minutes.
      if (postponed) log.info({ nodes: plan.postponedNodeIds }, 'rebalance: moves involving nodes with hot disk I/O postponed');
      this.lastPostponed = postponed;
    }
    for (const m of plan.moves) {
      const deadline = cloneDeadlineMs(now, m.length);
      if (!outbox.queueClone({ ...m, deadlineMonoMs: deadline }, now)) continue;
      this.moves.set(m.handle, { ...m, startedMonoMs: now, cloned: false });
      log.info({ handle: m.handle, source: m.sourceNodeId, target: m.targetNodeId, bytes: m.length }, 'rebalance: moving replica');
    }
    return plan;
  }

  progress(): BalanceProgress {
    const now = this.host.clock.monoMs();
    while (this.recent.length > 0 && now - this.recent[0]!.atMonoMs > limits.balanceRateWindowMs) this.recent.shift();
    const rate = this.recent.reduce((s, r) => s + r.bytes, 0) / (limits.balanceRateWindowMs / 1000);
    const fills = (this.lastPlan?.nodes ?? []).filter((n) => n.role !== 'excluded').map((n) => n.fillRatio);
    const bytesToMove = this.lastPlan?.bytesToMove ?? 0;
    return {
      automatic: this.automatic,
      thresholdRatio: this.opts.thresholdRatio,
      meanFillRatio: this.lastPlan?.meanFillRatio ?? 0,
      maxFillRatio: fills.length ? Math.max(...fills) : 0,
      minFillRatio: fills.length ? Math.min(...fills) : 0,
      inflightMoves: this.moves.size,
      completedMoves: this.completedMoves,
      movedBytes: this.movedBytes,
      bytesToMove,
      etaMs: bytesToMove > 0 && rate > 0 ? Math.round((bytesToMove / rate) * 1000) : 0,
    };
  }

  /** Confirms moves (the source replica is gone), forgets failed or stuck ones. */
  private settle(now: number): void {
    const { registry, outbox, log } = this.host;
    const running = new Set(outbox.inflightClones().map((c) => `${c.handle}/${c.targetNodeId}`));
    for (const [handle, m] of this.moves) {
      const targetHas = this.host.healthyOn(handle, m.targetNodeId);
      if (targetHas) m.cloned = true;
      if (m.cloned && !registry.holds(m.sourceNodeId, handle)) {
        this.moves.delete(handle);
        this.completedMoves++;
        this.movedBytes += m.length;
        this.recent.push({ atMonoMs: now, bytes: m.length });
        log.info({ handle, source: m.sourceNodeId, target: m.targetNodeId }, 'rebalance: replica moved');
      } else if (!m.cloned && !running.has(`${handle}/${m.targetNodeId}`)) {
        this.moves.delete(handle); // the clone failed; a later round decides again
      } else if (now - m.startedMonoMs > limits.balanceMoveTimeoutCommands * limits.chunkCommandTimeoutMs) {
        this.moves.delete(handle);
        log.warn({ handle, source: m.sourceNodeId, target: m.targetNodeId }, 'rebalance: move did not finish in time; dropped');
      }
    }
  }
}
