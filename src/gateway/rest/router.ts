/**
 * The REST API's routes (DESIGN §10): authentication, dispatch, and one metrics line
 * per request.
 *
 *   /healthz /readyz /metrics                       open (probes, Prometheus)
 *   GET  /v1/status                                 cluster status
 *   GET  /v1/namespaces                             list namespaces
 *   PUT|GET|DELETE /v1/namespaces/{ns}
 *   PUT|GET|HEAD|DELETE /v1/files/{ns}/{path}       whole files (GET/HEAD with Range)
 *   GET  /v1/files/{ns}/{prefix}?list               listing (delimiter, limit, cursor)
 *   POST /v1/files/{ns}/{path}?append               record append (?batch, ?create)
 *   GET  /v1/files/{ns}/{path}?follow               tail a log (SSE or chunked)
 *   GET  /v1/admin/overview, /v1/admin/events       the dashboard's data (admin.ts)
 *   GET  /ui, /ui/dashboard.{js,css}                the dashboard (open; its data is not)
 *
 * Invariants: every /v1 request is authorized (auth.ts: the master's tokens, scopes and
 * namespace visibility; anonymous callers read public namespaces only) and counted
 * against its token's rate before anything else is done for it, and gets one audit line;
 * the /v1/admin routes (the dashboard's data) need a cluster admin token;
 * every failure is answered as `{error: {code, message}}` (errors.ts) and never
 * escapes as an exception, so no request can crash the process.
 */
import type http from 'node:http';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { GfsError } from '../../common/errors';
import { limits } from '../../common/limits';
import type { Principal, Scope } from '../../common/auth';
import type { GatewayAuth } from '../auth';
import type { RestContext } from './context';
import { sendError } from './errors';
import { decodeSegments, filePath, intParam, sendJson } from './http-util';
import { deleteFile, getFile, putFile, fileJson } from './files';
import { listPrefix } from './list';
import { listNamespaces, namespaceRoute } from './namespaces';
import { appendRoute, followRoute } from './logs';
import { AdminApi } from './admin';
import { UiAssets, isUiPath } from '../ui/assets';

export interface RouterOptions {
  ctx: RestContext;
  auth: GatewayAuth;
  registry: Registry;
}

export class RestRouter {
  private readonly requests: Counter;
  private readonly seconds: Histogram;
  private readonly inFlight: Gauge;
  private readonly admin: AdminApi;
  private readonly ui = new UiAssets();

  constructor(private readonly opts: RouterOptions) {
    const registers = [opts.registry];
    this.admin = new AdminApi(opts.ctx, opts.registry);
    this.requests = new Counter({ name: 'gfs_gateway_requests_total', help: 'REST requests by route and HTTP status', labelNames: ['route', 'status'], registers });
    this.seconds = new Histogram({
      name: 'gfs_gateway_request_seconds', help: 'REST request time until the answer ended, by route', labelNames: ['route'],
      buckets: [0.001, 0.005, 0.02, 0.1, 0.5, 2, 10, 60], registers,
    });
    this.inFlight = new Gauge({ name: 'gfs_gateway_requests_in_flight', help: 'REST requests being served now (follows included)', registers });
  }

  /** Ends the dashboard's event feed (the gateway is stopping). */
  stop(): void {
    this.admin.stop();
  }

  /** Serves one request; never throws. */
  async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const started = this.opts.ctx.clock.monoMs();
    this.inFlight.inc();
    let route = 'unknown';
    let status: number;
    const who = { token: '' };
    let pathname = '';
    try {
      const url = new URL(req.url ?? '/', 'http://gateway');
      pathname = url.pathname;
      route = routeName(req.method ?? '', url);
      await this.dispatch(req, res, url, route, who);
      status = res.statusCode;
    } catch (e) {
      // A client that went away mid-answer is an everyday event, not a failure of ours.
      const clientGone = res.destroyed || req.destroyed;
      status = sendError(req, res, e);
      if (!(e instanceof GfsError) && !clientGone) this.opts.ctx.log.error({ err: e, route }, 'request failed unexpectedly');
      else this.opts.ctx.log.debug({ err: e, route, clientGone }, 'request failed');
    } finally {
      this.inFlight.dec();
    }
    const ms = this.opts.ctx.clock.monoMs() - started;
    this.requests.inc({ route, status: String(status) });
    this.seconds.observe({ route }, ms / 1000);
    if (pathname.startsWith('/v1/')) {
      this.opts.auth.record({ api: 'rest', token: who.token, action: route, method: req.method ?? '', path: pathname, status, ms: Math.round(ms) });
    }
  }

  /**
   * The caller's token (undefined: anonymous), checked for the scope the route needs in
   * its namespace, and counted against its rate.
   */
  private async authorize(req: http.IncomingMessage, route: string, segments: string[], who: { token: string }): Promise<Principal | undefined> {
    const { auth } = this.opts;
    let p: Principal | undefined;
    try {
      p = await auth.bearer(req.headers.authorization);
    } catch (e) {
      who.token = 'invalid';
      throw e;
    }
    who.token = p?.id ?? '';
    auth.rate(p, req.socket.remoteAddress ?? '');
    const ns = segments[2] ?? '';
    const scope = ROUTE_SCOPES[route];
    if (route === 'status') auth.checkToken(p);
    else if (route === 'namespaces.list') auth.checkToken(p);
    else if (route === 'namespaces') {
      const m = req.method ?? '';
      if (m === 'GET' || m === 'HEAD') {
        if (!auth.canSee(p, ns)) throw new GfsError('NO_SUCH_FILE', `namespace "${ns}" does not exist`);
      } else auth.check(p, ns, 'admin');
    } else if (scope !== undefined) auth.check(p, ns, scope);
    else auth.checkClusterAdmin(p);
    return p;
  }

  private async dispatch(req: http.IncomingMessage, res: http.ServerResponse, url: URL, route: string, who: { token: string }): Promise<void> {
    const { ctx } = this.opts;
    const method = req.method ?? '';
    if (route === 'healthz') return sendJson(res, 200, { ok: true });
    if (route === 'metrics') {
      const text = await this.opts.registry.metrics();
      res.writeHead(200, { 'content-type': this.opts.registry.contentType });
      res.end(text);
      return;
    }
    if (route === 'readyz') {
      try {
        await ctx.client.status();
        return sendJson(res, 200, { ready: true });
      } catch (e) {
        return sendJson(res, 503, { ready: false, reason: (e as Error).message });
      }
    }
    if (route === 'ui') return this.ui.serve(req, res, url.pathname);
    if (route === 'unknown') throw new GfsError('NO_SUCH_FILE', `no route ${method} ${url.pathname}`);
    const segments = decodeSegments(url.pathname);
    const principal = await this.authorize(req, route, segments, who);
    const q = url.searchParams;
    switch (route) {
      case 'method': throw new GfsError('INVALID_ARGUMENT', `${method} is not allowed on ${url.pathname}${url.search}`);
      case 'status': return sendJson(res, 200, await ctx.client.status());
      // authorize() asked for a cluster admin: these routes have no namespace scope.
      case 'admin.overview': return this.admin.overview(res);
      case 'admin.events': return this.admin.events(req, res, q);
      case 'namespaces.list': return listNamespaces(ctx, res, (ns) => this.opts.auth.canSee(principal, ns));
      case 'namespaces': return namespaceRoute(ctx, req, res, segments[2]!, q);
      case 'files.list': {
        const [ns = '', ...rest] = segments.slice(2);
        const prefix = rest.join('/') + (rest.length > 0 && url.pathname.endsWith('/') ? '/' : '');
        const page = await listPrefix((dir, o) => ctx.client.list(dir, o), {
          ns, prefix, delimiter: q.get('delimiter') ?? undefined,
          limit: intParam(q, 'limit', 1, limits.restListLimitMax, limits.restListLimitDefault),
          cursor: q.get('cursor') ?? undefined,
        });
        return sendJson(res, 200, {
          namespace: ns, prefix, delimiter: q.get('delimiter') ?? undefined,
          files: page.files.map(fileJson), prefixes: page.prefixes, truncated: page.truncated, cursor: page.cursor,
        });
      }
      default: break;
    }
    const { ns, path } = filePath(segments.slice(2));
    switch (route) {
      case 'files.put': return putFile(ctx, req, res, ns, path, q);
      case 'files.get': case 'files.head': return getFile(ctx, req, res, path);
      case 'files.delete': return deleteFile(ctx, res, path, q);
      case 'logs.append': return appendRoute(ctx, req, res, ns, path, q);
      case 'logs.follow': return followRoute(ctx, req, res, path, q);
      default: throw new GfsError('INVALID_ARGUMENT', `${method} is not allowed on ${url.pathname}`);
    }
  }
}

/** The scope each file route needs in its namespace. */
const ROUTE_SCOPES: Record<string, Scope> = {
  'files.list': 'read', 'files.get': 'read', 'files.head': 'read', 'logs.follow': 'read',
  'files.put': 'write', 'logs.append': 'write', 'files.delete': 'delete',
};

/** The route a request is for (also its metrics label: a small fixed set). */
export function routeName(method: string, url: URL): string {
  const p = url.pathname;
  const q = url.searchParams;
  if (p === '/healthz') return 'healthz';
  if (p === '/readyz') return 'readyz';
  if (p === '/metrics') return 'metrics';
  if (p === '/v1/status') return method === 'GET' ? 'status' : 'method';
  if (p === '/v1/admin/overview') return method === 'GET' ? 'admin.overview' : 'method';
  if (p === '/v1/admin/events') return method === 'GET' ? 'admin.events' : 'method';
  if (isUiPath(p)) return 'ui';
  if (p === '/v1/namespaces' || p === '/v1/namespaces/') return method === 'GET' ? 'namespaces.list' : 'method';
  if (/^\/v1\/namespaces\/[^/]+\/?$/.test(p)) return 'namespaces';
  if (p.startsWith('/v1/files/')) {
    if (q.has('list')) return method === 'GET' ? 'files.list' : 'method';
    if (q.has('follow')) return method === 'GET' ? 'logs.follow' : 'method';
    if (q.has('append')) return method === 'POST' ? 'logs.append' : 'method';
    switch (method) {
      case 'PUT': return 'files.put';
      case 'GET': return 'files.get';
      case 'HEAD': return 'files.head';
      case 'DELETE': return 'files.delete';
      default: return 'method';
    }
  }
  return 'unknown';
}
