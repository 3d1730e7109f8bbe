/**
 * The dashboard's live events (GET /v1/admin/events): one feed per gateway follows the
 * leader's event history (the Events long poll, docs/EVENTS.md) and keeps the last
 * limits.uiEventsKept events; browsers long-poll the gateway, never the master.
 *
 * Browsers page with the gateway's own cursor (a count of the events this feed kept),
 * not with master positions. Where the feed itself lost events (the leader no longer kept
 * what followed its place, or it restarts after being idle) it spends a cursor on a hole,
 * so a browser whose cursor is before a hole is told `gap`, once.
 *
 * Invariants:
 * - Kept events are in strictly growing master position, each kept once: an event at or
 *   before the last kept one is skipped (a backfill after a failover or a gap repeats some).
 * - Cursors strictly grow by one per kept event or hole; `cursor` is the last one given out.
 * - At most one call to the masters is outstanding; the feed runs only while some
 *   browser asked within limits.uiEventsIdleMs.
 * - A page never claims completeness it does not have: when events after the browser's
 *   cursor were dropped, lost in a hole, or the cursor is from another feed, it says `gap`.
 */
import type { EventsResponse } from '../../client';
import { sleep, type Clock } from '../../common/clock';
import { GfsError } from '../../common/errors';
import { limits } from '../../common/limits';
import type { Logger } from '../../common/log';
import { EVENT_FORMAT_VERSION, comparePositions, parsePosition, type ClusterEvent, type EventPosition } from '../../events';

export interface EventsSource {
  events(opts: { since?: string; limit?: number; waitMs?: number }): Promise<EventsResponse>;
}

export interface EventsPage {
  /** Oldest first, each with its gateway cursor. */
  events: (ClusterEvent & { cursor: number })[];
  /** Ask again with this as `since`. */
  cursor: number;
  /** Events between the browser's cursor and these were not kept (or it came from another feed): start the list anew. */
  gap: boolean;
}

export interface EventFeedOptions {
  source: EventsSource;
  clock: Clock;
  log: Logger;
  keptMax?: number;
  /** The feed's long poll at the leader; inside the gateway client's call timeout. */
  masterWaitMs?: number;
  idleMs?: number;
  backfillRevs?: number;
  retryMs?: number;
  /** Browsers long-polling at once; beyond, UNAVAILABLE (they retry after a pause, not at once). */
  waitersMax?: number;
  /** Counts each call to the masters (by purpose). */
  onCall?: (call: string) => void;
}

/** Pages a backfill reads at most: the rest of a very busy history is skipped (the page says so with gap). */
const BACKFILL_PAGES_MAX = 20;

export class EventFeed {
  private readonly kept: (ClusterEvent & { cursor: number })[] = [];
  /** Cursors spent on losses, after the first kept event (older ones are covered by it). */
  private holes: number[] = [];
  private cursor = 0;
  private last: EventPosition | undefined;
  /** The master position to ask after; undefined = place lost, backfill first. */
  private since: string | undefined;
  private running = false;
  private stopped = false;
  private lastAskedMs = 0;
  private primed: Promise<void> | undefined;
  private markPrimed: (() => void) | undefined;
  private readonly waiters = new Set<() => void>();
  private readonly opts: Required<Omit<EventFeedOptions, 'onCall'>> & Pick<EventFeedOptions, 'onCall'>;

  constructor(options: EventFeedOptions) {
    this.opts = {
      keptMax: limits.uiEventsKept, masterWaitMs: limits.uiEventsMasterWaitMs, idleMs: limits.uiEventsIdleMs,
      backfillRevs: limits.uiEventsBackfillRevs, retryMs: limits.uiEventsRetryMs, waitersMax: limits.uiEventsWaitersMax, ...options,
    };
  }

  /**
   * Events after `since` (a cursor from an earlier page; undefined = every kept event).
   * With `wait`, a page that would be empty waits for an event, up to waitMs or `signal`.
   */
  async page(since: number | undefined, wait: boolean, signal?: AbortSignal, waitMs = limits.uiEventsWaitMs): Promise<EventsPage> {
    this.lastAskedMs = this.opts.clock.monoMs();
    this.ensureRunning();
    // The first page after the feed starts waits for its backfill (bounded like any wait).
    if (this.primed !== undefined) await this.bounded(this.primed, waitMs, signal);
    let out = this.after(since);
    if (out.events.length === 0 && !out.gap && wait) {
      // An empty answer now would have the browser ask again at once: a busy loop.
      if (this.waiters.size >= this.opts.waitersMax) throw new GfsError('UNAVAILABLE', `${this.waiters.size} dashboards are already waiting for events here; retry shortly`);
      await this.bounded(new Promise<void>((resolve) => {
        const wake = () => { this.waiters.delete(wake); resolve(); };
        this.waiters.add(wake);
        signal?.addEventListener('abort', wake, { once: true });
      }), waitMs, signal);
      out = this.after(since);
    }
    return out;
  }

  stop(): void {
    this.stopped = true;
    this.wakeAll();
  }

  private after(since: number | undefined): EventsPage {
    const first = this.kept[0]?.cursor ?? this.cursor + 1;
    if (since === undefined) return { events: [...this.kept], cursor: this.cursor, gap: false };
    if (since > this.cursor || since < first - 1 || this.holes.some((h) => h > since)) {
      return { events: [...this.kept], cursor: this.cursor, gap: true };
    }
    return { events: this.kept.filter((e) => e.cursor > since), cursor: this.cursor, gap: false };
  }

  /** The feed lost events here: browsers from before it are told. */
  private hole(): void {
    this.holes.push(++this.cursor);
    this.wakeAll();
  }

  private async bounded(p: Promise<void>, ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return;
    let timer: { cancel(): void } | undefined;
    let onAbort: (() => void) | undefined;
    await Promise.race([
      p,
      new Promise<void>((resolve) => {
        timer = this.opts.clock.after(ms, resolve);
        onAbort = resolve;
        signal?.addEventListener('abort', onAbort, { once: true });
      }),
    ]);
    timer?.cancel();
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  }

  private wakeAll(): void {
    for (const wake of [...this.waiters]) wake();
  }

  private ensureRunning(): void {
    if (this.running || this.stopped) return;
    this.running = true;
    // A restart after idling: what happened meanwhile may be beyond the backfill.
    if (this.since !== undefined) this.hole();
    this.since = undefined;
    this.primed = new Promise((resolve) => { this.markPrimed = resolve; });
    void this.run().finally(() => {
      this.running = false;
      this.markPrimed?.();
      this.primed = undefined;
    });
  }

  private async run(): Promise<void> {
    while (!this.stopped && this.opts.clock.monoMs() - this.lastAskedMs < this.opts.idleMs) {
      try {
        if (this.since === undefined) {
          await this.backfill();
          this.markPrimed?.();
          this.primed = undefined;
          continue;
        }
        this.opts.onCall?.('events');
        const page = await this.opts.source.events({ since: this.since, waitMs: this.opts.masterWaitMs });
        if (page.gap) {
          // The leader no longer keeps what follows our place (a failover or a burst): start again from the recent past.
          this.hole();
          this.since = undefined;
          continue;
        }
        this.keep(page);
      } catch (e) {
        if (this.stopped) return;
        this.opts.log.debug({ err: e }, 'dashboard event feed: events call failed; retrying');
        // A failing master must not keep the first page waiting for a backfill that cannot come.
        this.markPrimed?.();
        await sleep(this.opts.clock, this.opts.retryMs);
      }
    }
  }

  /** Finds a place in the recent past: the events of the last backfillRevs WAL entries. */
  private async backfill(): Promise<void> {
    this.opts.onCall?.('events');
    const head = await this.opts.source.events({ since: '', limit: 1 });
    if (head.latest === '') {
      this.since = ''; // none kept yet: '' asks from the leader's horizon on
      return;
    }
    const latest = parsePosition(head.latest);
    let since = String(Math.max(0, latest.rev - this.opts.backfillRevs));
    for (let pages = 0; pages < BACKFILL_PAGES_MAX; pages++) {
      this.opts.onCall?.('events');
      const page = await this.opts.source.events({ since });
      if (page.gap) {
        since = page.horizon;
        continue;
      }
      since = this.keep(page) ?? since;
      if (!page.more) break;
    }
    this.since = since;
  }

  /** Keeps a page's new events; answers the id of its last event (the place to ask after). */
  private keep(page: EventsResponse): string | undefined {
    let lastId: string | undefined;
    let added = 0;
    for (const text of page.events) {
      let e: ClusterEvent;
      try {
        e = JSON.parse(text) as ClusterEvent;
      } catch {
        this.opts.log.warn({ text: text.slice(0, 200) }, 'dashboard event feed: an event is not JSON; skipped');
        continue;
      }
      lastId = e.id;
      if (e.v !== EVENT_FORMAT_VERSION) continue;
      const at = { rev: e.rev, seq: e.seq };
      if (this.last !== undefined && comparePositions(at, this.last) <= 0) continue;
      this.last = at;
      this.kept.push({ ...e, cursor: ++this.cursor });
      added++;
    }
    if (this.kept.length > this.opts.keptMax) this.kept.splice(0, this.kept.length - this.opts.keptMax);
    const first = this.kept[0]?.cursor ?? 0;
    this.holes = this.holes.filter((h) => h > first);
    if (added > 0) this.wakeAll();
    if (lastId !== undefined) this.since = lastId;
    return lastId;
  }
}
