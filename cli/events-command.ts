/**
 * `gfsctl events [-f] [--since REV] [--json]`: the leader's recent cluster events
 * (docs/EVENTS.md), oldest first; with --json one JSON object per line, exactly as
 * published on NATS. A consumer that missed events on NATS runs this with the id of the
 * last one it processed to fill the gap.
 *
 * Invariant: it never prints a partial history as if it were whole. When events after
 * --since are no longer kept, it prints none, says where the history starts and how to
 * reconcile, and exits 1.
 */
import { type Command, InvalidArgumentError } from 'commander';
import type { AdminClient } from '../src/client';
import { limits } from '../src/common/limits';
import { parsePosition, type ClusterEvent } from '../src/events';

export interface EventsCommandDeps {
  runAdmin: (fn: (a: AdminClient) => Promise<void>) => () => Promise<void>;
  json: () => boolean;
}

function positionOption(v: string): string {
  try {
    parsePosition(v);
  } catch {
    throw new InvalidArgumentError('expected REV (a WAL index, e.g. 1042) or REV.SEQ (an event id, e.g. 1042.3)');
  }
  return v.trim();
}

/** One line for a person: id, time, kind, then the data as key=value. */
function eventLine(e: ClusterEvent): string {
  const data = Object.entries(e.data).map(([k, v]) => `${k}=${typeof v === 'string' ? JSON.stringify(v) : String(v)}`).join(' ');
  return `${e.id.padEnd(12)} ${new Date(e.timeMs).toISOString()}  ${e.kind.padEnd(15)} ${data}\n`;
}

export function gapMessage(since: string, horizon: string): string {
  return `events after ${since} are no longer kept: the leader's history starts after ${horizon} ` +
    `(it keeps the last ${limits.eventsHistoryMax} events, and only since its last restart or failover). ` +
    `Reconcile from the current state (gfsctl status, gfsctl nodes, gfsctl ls -R, gfsctl fsck), then continue with --since ${horizon}`;
}

export function registerEventsCommand(program: Command, deps: EventsCommandDeps): void {
  program.command('events')
    .description('cluster events the leader keeps, oldest first (docs/EVENTS.md); -f follows new ones')
    .option('-f, --follow', 'keep printing new events as they happen')
    .option('--since <rev>', 'only events after this: REV (a WAL index) or REV.SEQ (the id of the last event you processed)', positionOption)
    .action((o: { follow?: boolean; since?: string }) => deps.runAdmin(async (a) => {
      let since = o.since ?? '';
      for (;;) {
        const page = await a.events({ since, waitMs: o.follow ? limits.eventsWaitMaxMs : 0 });
        if (page.gap) throw new Error(gapMessage(since, page.horizon));
        for (const text of page.events) {
          const e = JSON.parse(text) as ClusterEvent;
          process.stdout.write(deps.json() ? `${text}\n` : eventLine(e));
          since = e.id;
        }
        if (!o.follow && !page.more) return;
      }
    })());
}
