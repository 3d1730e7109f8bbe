/**
 * Streams' rolls and retention (docs/LOG-STREAMS.md, "Streams, segments and retention"):
 * given each stream's policy, its active segment and its sealed segments, and the time,
 * which active segments to roll and which sealed segments to drop. A pure function: no
 * I/O, no clock (now is an argument), so tests and the simulation drive it directly;
 * the driver (stream-keeper.ts) gathers the views and carries the plan out.
 *
 * Rules:
 * - Roll: the active segment rolls when it holds at least rollBytes, or when it was
 *   created at least rollAgeMs ago, whether or not anyone appends (so an idle stream's
 *   data still ends up in a sealed segment that retention can drop). An empty active
 *   segment rolls by age too: it then holds nothing and retention drops it soon.
 * - Retention by age: a sealed segment is dropped once its NEWEST byte is older than
 *   retentionAgeMs, i.e. retentionAgeMs after it was sealed (Kafka's rule). So no byte is
 *   dropped before its retention ends, and the oldest byte of a segment outlives it by
 *   at most the segment's life (one roll interval) plus a tick.
 * - Retention by bytes: sealed segments are dropped oldest first while the stream
 *   (sealed segments + the active one) holds more than retentionBytes. retentionBytes is
 *   a ceiling ("max bytes"), not a floor: the stream may keep less than it.
 *
 * Invariants (asserted):
 * - The active segment is never dropped.
 * - Drops are a prefix of the sealed segments, oldest first: a segment is dropped only
 *   if every older one is.
 * - After the drops, no sealed segment is past its age and the stream holds at most
 *   retentionBytes or has no sealed segment left.
 */
import assert from 'node:assert/strict';

/** A stream's policy; 0 means "never" (roll) or "keep" (retention). */
export interface StreamPolicyView {
  rollBytes: number;
  rollAgeMs: number;
  retentionAgeMs: number;
  retentionBytes: number;
}

export interface ActiveSegmentView {
  inode: number;
  path: string;
  /** Bytes committed so far (sealed chunks + the open chunk's committed length, as last learned). */
  bytes: number;
  createdMs: number;
}

export interface SealedSegmentView {
  inode: number;
  path: string;
  bytes: number;
  /** When it was sealed (rolled): the time of its newest byte at the latest. */
  sealedMs: number;
}

export interface StreamView {
  path: string;
  policy: StreamPolicyView;
  active?: ActiveSegmentView;
  /** Oldest first (segment names sort by time, so by name). */
  sealed: SealedSegmentView[];
}

export type RollReason = 'bytes' | 'age';
export type DropReason = 'age' | 'bytes';

export interface RollDecision {
  stream: string;
  inode: number;
  path: string;
  reason: RollReason;
}

export interface DropDecision {
  stream: string;
  inode: number;
  path: string;
  bytes: number;
  reason: DropReason;
}

export interface StreamPlan {
  roll: RollDecision[];
  drop: DropDecision[];
}

/** Why the active segment must roll now, or undefined. */
export function rollReason(policy: StreamPolicyView, active: ActiveSegmentView | undefined, nowMs: number): RollReason | undefined {
  if (active === undefined) return undefined;
  if (policy.rollBytes > 0 && active.bytes >= policy.rollBytes) return 'bytes';
  if (policy.rollAgeMs > 0 && nowMs - active.createdMs >= policy.rollAgeMs) return 'age';
  return undefined;
}

/** The sealed segments retention drops now, oldest first (a prefix of view.sealed). */
export function retentionDrops(view: StreamView, nowMs: number): DropDecision[] {
  const { policy, sealed } = view;
  const drops: DropDecision[] = [];
  let total = (view.active?.bytes ?? 0) + sealed.reduce((sum, s) => sum + s.bytes, 0);
  let newestMs = 0;
  for (const s of sealed) {
    // A segment's newest byte is no older than the one before it (it was created after
    // that one sealed); the running max keeps that true across a wall-clock step back.
    newestMs = Math.max(newestMs, s.sealedMs);
    let reason: DropReason | undefined;
    if (policy.retentionAgeMs > 0 && nowMs - newestMs >= policy.retentionAgeMs) reason = 'age';
    else if (policy.retentionBytes > 0 && total > policy.retentionBytes) reason = 'bytes';
    // Oldest first: once one segment stays, every newer one stays too.
    if (reason === undefined) break;
    drops.push({ stream: view.path, inode: s.inode, path: s.path, bytes: s.bytes, reason });
    total -= s.bytes;
  }
  assertRetained(view, drops, nowMs, total);
  return drops;
}

/** Every stream's rolls and drops at `nowMs`. */
export function planStreams(streams: Iterable<StreamView>, nowMs: number): StreamPlan {
  const plan: StreamPlan = { roll: [], drop: [] };
  for (const view of streams) {
    assertOrdered(view);
    const reason = rollReason(view.policy, view.active, nowMs);
    if (reason !== undefined) plan.roll.push({ stream: view.path, inode: view.active!.inode, path: view.active!.path, reason });
    plan.drop.push(...retentionDrops(view, nowMs));
  }
  return plan;
}

/** Bytes (and segments) retention will free at `nowMs` with no roll first: for gc --dry-run and df. */
export function retentionDue(streams: Iterable<StreamView>, nowMs: number): { bytes: number; segments: number } {
  let bytes = 0;
  let segments = 0;
  for (const view of streams) {
    for (const d of retentionDrops(view, nowMs)) {
      bytes += d.bytes;
      segments++;
    }
  }
  return { bytes, segments };
}

function assertOrdered(view: StreamView): void {
  for (let i = 1; i < view.sealed.length; i++) {
    assert.ok(view.sealed[i - 1]!.path < view.sealed[i]!.path, `segments of ${view.path} are not oldest first`);
  }
}

function assertRetained(view: StreamView, drops: DropDecision[], nowMs: number, total: number): void {
  const { policy, sealed } = view;
  for (let i = 0; i < drops.length; i++) {
    assert.equal(drops[i]!.inode, sealed[i]!.inode, 'retention drops the oldest segments first');
    assert.notEqual(drops[i]!.inode, view.active?.inode, 'retention never drops the active segment');
  }
  const kept = sealed.slice(drops.length);
  if (policy.retentionAgeMs > 0 && kept.length > 0) {
    const newestMs = Math.max(kept[0]!.sealedMs, ...sealed.slice(0, drops.length).map((s) => s.sealedMs));
    assert.ok(nowMs - newestMs < policy.retentionAgeMs, 'the oldest kept sealed segment is past its age');
  }
  if (policy.retentionBytes > 0) assert.ok(kept.length === 0 || total <= policy.retentionBytes, 'the stream keeps more than its bytes');
}
