/**
 * The admin JSON the dashboard (/ui) reads:
 *
 *   GET /v1/admin/overview                 health, masters, chunkservers, repair, balance, fsck
 *   GET /v1/admin/events[?since=C][&wait=1] recent events; with wait, a long poll for new ones
 *
 * Both answer from the gateway's own caches (admin-overview.ts, admin-events.ts), so the
 * masters' load does not grow with the number of browsers.
 *
 * Invariant: only the router calls these, after it authorized the request as an admin.
 */
import type http from 'node:http';
import { Counter, type Registry } from 'prom-client';
import { limits } from '../../common/limits';
import type { RestContext } from './context';
import { intParam, sendJson } from './http-util';
import { OverviewCache } from './admin-overview';
import { EventFeed } from './admin-events';

export class AdminApi {
  private readonly overviews: OverviewCache;
  private readonly feed: EventFeed;

  constructor(ctx: RestContext, registry: Registry) {
    const calls = new Counter({
      name: 'gfs_gateway_admin_master_calls_total', help: 'Calls the dashboard endpoints made to the masters, by call (shared by every browser)',
      labelNames: ['call'], registers: [registry],
    });
    const admin = ctx.client.admin;
    this.overviews = new OverviewCache({
      statusAll: () => admin.statusAll(), nodes: () => admin.nodes(), fsck: (p) => admin.fsck(p),
    }, ctx.clock, calls);
    this.feed = new EventFeed({
      source: { events: (o) => admin.events(o) }, clock: ctx.clock, log: ctx.log, onCall: (call) => calls.inc({ call }),
    });
  }

  async overview(res: http.ServerResponse): Promise<void> {
    sendJson(res, 200, await this.overviews.get(), { 'cache-control': 'no-store' });
  }

  async events(req: http.IncomingMessage, res: http.ServerResponse, q: URLSearchParams): Promise<void> {
    const since = q.has('since') && q.get('since') !== '' ? intParam(q, 'since', 0, Number.MAX_SAFE_INTEGER, 0) : undefined;
    const wait = q.get('wait') === '1' || q.get('wait') === 'true';
    const gone = new AbortController();
    const onClose = () => gone.abort();
    res.once('close', onClose);
    try {
      const page = await this.feed.page(since, wait, gone.signal, limits.uiEventsWaitMs);
      if (!gone.signal.aborted) sendJson(res, 200, page, { 'cache-control': 'no-store' });
    } finally {
      res.off('close', onClose);
    }
  }

  stop(): void {
    this.feed.stop();
  }
}
