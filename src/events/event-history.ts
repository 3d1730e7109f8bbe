/**
 * The recent events a master keeps for `gfsctl events --since` (docs/EVENTS.md): a
 * bounded ring in position order, fed whether or not NATS is reachable, so a consumer
 * that missed events on NATS (an outage, a slow link, a restart of its own) fills the
 * gap from here.
 *
 * Invariants:
 * - Positions in the ring strictly grow.
 * - `horizon` is a position such that every event recorded after it is still in the
 *   ring: it moves forward when the oldest event is dropped (the ring is full) or the
 *   history restarts (a checkpoint install). A question about an earlier position is
 *   answered with `gap`, never with a partial list that looks complete.
 */
import assert from 'node:assert/strict';
import type { Clock, Timer } from '../common/clock';
import { comparePositions, positionText, type ClusterEvent, type EventPosition } from './event-types';

export interface HistoryPage {
  events: ClusterEvent[];
  /** Events after `since` are no longer all kept. */
  gap: boolean;
  horizon: EventPosition;
  /** The newest event kept, if any. */
  latest?: EventPosition;
  /** The page was cut at its limit: ask again after its last event. */
  more: boolean;
}

export class EventHistory {
  private readonly ring: (ClusterEvent | undefined)[];
  private head = 0;
  private count = 0;
  private horizonAt: EventPosition;
  private readonly waiters = new Set<() => void>();

  constructor(readonly capacity: number, horizon: EventPosition) {
    assert.ok(Number.isSafeInteger(capacity) && capacity > 0);
    this.ring = new Array<ClusterEvent | undefined>(capacity);
    this.horizonAt = horizon;
  }

  get horizon(): EventPosition { return this.horizonAt; }
  get size(): number { return this.count; }

  private at(i: number): ClusterEvent {
    return this.ring[(this.head + i) % this.capacity]!;
  }

  latest(): EventPosition | undefined {
    return this.count === 0 ? undefined : this.at(this.count - 1);
  }

  record(e: ClusterEvent): void {
    const last = this.latest() ?? this.horizonAt;
    assert.ok(comparePositions(e, last) > 0, `event ${e.id} is not after ${positionText(last)}`);
    if (this.count === this.capacity) {
      const oldest = this.at(0);
      this.horizonAt = { rev: oldest.rev, seq: oldest.seq };
      this.ring[this.head] = undefined;
      this.head = (this.head + 1) % this.capacity;
      this.count--;
    }
    this.ring[(this.head + this.count) % this.capacity] = e;
    this.count++;
    for (const wake of [...this.waiters]) wake();
  }

  /** Forgets everything: only events after `horizon` will be known (a checkpoint was installed). */
  restart(horizon: EventPosition): void {
    const last = this.latest();
    if (last && comparePositions(horizon, last) < 0) horizon = last;
    this.ring.fill(undefined);
    this.head = 0;
    this.count = 0;
    this.horizonAt = horizon;
  }

  /** Up to `limit` events after `since`, oldest first. */
  after(since: EventPosition, limit: number): HistoryPage {
    const page = { horizon: this.horizonAt, latest: this.latest(), more: false };
    if (comparePositions(since, this.horizonAt) < 0) return { ...page, events: [], gap: true };
    // Binary search for the first event after `since`.
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (comparePositions(this.at(mid), since) > 0) hi = mid;
      else lo = mid + 1;
    }
    const events: ClusterEvent[] = [];
    for (let i = lo; i < this.count && events.length < limit; i++) events.push(this.at(i));
    return { ...page, events, gap: false, more: lo + events.length < this.count };
  }

  /** Resolves once an event after `since` is kept, or after `timeoutMs`, whichever is first. */
  waitAfter(since: EventPosition, timeoutMs: number, clock: Clock): Promise<void> {
    const last = this.latest();
    if ((last && comparePositions(last, since) > 0) || timeoutMs <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      let timer: Timer | undefined;
      const wake = () => {
        this.waiters.delete(wake);
        timer?.cancel();
        resolve();
      };
      this.waiters.add(wake);
      timer = clock.after(timeoutMs, wake);
    });
  }

  /** Wakes every long poll (the master is stopping). */
  wakeAll(): void {
    for (const wake of [...this.waiters]) wake();
  }
}
