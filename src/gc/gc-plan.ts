/**
 * Garbage-collection decisions (DESIGN §8), pure: which trashed files to purge, which
 * pending writes are abandoned, and which unreferenced replicas ("orphans") may be
 * deleted. The driver (collector.ts) turns them into WAL ops and heartbeat DELETEs.
 *
 * Invariants:
 * - GC never deletes a chunk that metadata references. A handle is an orphan candidate
 *   only if no file references it and it is below nextHandle (a handle from the future
 *   belongs to an allocation this master has not applied yet); it is deleted only after
 *   it stayed a candidate for the whole grace period, and it is checked again against
 *   metadata at the moment of deciding (orphanDeletes) and of issuing (the master).
 * - Handles are never reused, so once unreferenced (and durable) a handle never becomes
 *   referenced again: the grace clock of a candidate is never wrong in the unsafe way.
 * - Grace is measured on the monotonic clock of this master from when it first saw the
 *   candidate, so wall-clock skew cannot shorten it, and a new leader starts it afresh.
 * - Trash expiry uses wall time (deletion times are in the WAL and must mean the same
 *   on every master); skew can only move a purge, and a purge deletes nothing by itself:
 *   the chunks it releases still wait out the orphan grace.
 */

export interface TrashedFile {
  inode: number;
  path: string;
  deletedAtMs: number;
}

export interface Due<T> {
  item: T;
  /** 0 when due now. */
  dueInMs: number;
}

/** Trashed files whose trash period is over (oldest first), and when the others will be. */
export function trashExpiry<T extends TrashedFile>(trash: readonly T[], nowWallMs: number, trashPeriodMs: number): { due: T[]; waiting: Due<T>[] } {
  const due: T[] = [];
  const waiting: Due<T>[] = [];
  for (const f of trash) {
    const dueInMs = f.deletedAtMs + trashPeriodMs - nowWallMs;
    if (dueInMs <= 0) due.push(f);
    else waiting.push({ item: f, dueInMs });
  }
  return { due, waiting };
}

export interface PendingWrite {
  inode: number;
  path: string;
  /** Time since the writer last did anything this master saw. */
  idleMs: number;
}

/** Pending writes whose writer has been silent longer than the timeout. */
export function abandonedWrites<T extends PendingWrite>(pending: readonly T[], timeoutMs: number): { due: T[]; waiting: Due<T>[] } {
  const due: T[] = [];
  const waiting: Due<T>[] = [];
  for (const p of pending) {
    if (p.idleMs >= timeoutMs) due.push(p);
    else waiting.push({ item: p, dueInMs: timeoutMs - p.idleMs });
  }
  return { due, waiting };
}

/** Handles some chunkserver reports that no file references and that are not from the future. */
export function orphanCandidates(
  reported: Iterable<number>, isReferenced: (handle: number) => boolean, nextHandle: number,
): Set<number> {
  const out = new Set<number>();
  for (const h of reported) if (h < nextHandle && !isReferenced(h)) out.add(h);
  return out;
}

/**
 * When each orphan candidate was first seen (monotonic ms). A handle leaves the tracker
 * as soon as it is no longer a candidate (its replicas are gone), so a handle that is
 * reported again later starts a fresh grace period.
 */
export class OrphanTracker {
  private readonly since = new Map<number, number>();

  /** `candidates` is the full current set: new ones start their grace now, missing ones are dropped. */
  update(candidates: ReadonlySet<number>, nowMonoMs: number): void {
    for (const h of this.since.keys()) if (!candidates.has(h)) this.since.delete(h);
    for (const h of candidates) if (!this.since.has(h)) this.since.set(h, nowMonoMs);
  }

  sinceMs(handle: number): number | undefined {
    return this.since.get(handle);
  }

  entries(): [handle: number, sinceMonoMs: number][] {
    return [...this.since.entries()].sort((a, b) => a[1] - b[1] || a[0] - b[0]);
  }

  get size(): number { return this.since.size; }

  clear(): void { this.since.clear(); }
}

/**
 * Orphans whose grace is over, checked once more against metadata: still unreferenced,
 * still below nextHandle. This is the list the driver may turn into DELETEs.
 */
export function orphanDeletes(
  tracker: OrphanTracker, nowMonoMs: number, graceMs: number, isReferenced: (handle: number) => boolean, nextHandle: number,
): number[] {
  const out: number[] = [];
  for (const [handle, since] of tracker.entries()) {
    if (nowMonoMs - since < graceMs) continue;
    if (handle >= nextHandle || isReferenced(handle)) continue;
    out.push(handle);
  }
  return out;
}
