/**
 * The admin HTTP port every long-running process serves: `/metrics` (Prometheus
 * text), `/healthz` (the process is alive) and `/readyz` (it can do its job).
 *
 * Invariant: every scrape passes `promtool check metrics`: only counters end in
 * `_total`, and a running total is a counter, never a gauge.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Registry, collectDefaultMetrics } from 'prom-client';
import type { Logger } from './log';

export interface AdminServer {
  readonly addr: string;
  readonly registry: Registry;
  close(): Promise<void>;
}

export interface AdminOptions {
  listen: string; // host:port (port 0 = any free port)
  registry: Registry;
  log: Logger;
  /** Returns null when ready, or the reason it is not. */
  readiness: () => string | null;
  /** Extra JSON endpoints, e.g. `/status`. */
  routes?: Record<string, () => unknown>;
}

export function newRegistry(component: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ component });
  collectDefaultMetrics({ register: registry });
  // prom-client exports these three sums as gauges named `_total`, which Prometheus
  // reserves for counters. They are the sums over the `type` label of
  // nodejs_active_handles / _requests / _resources, which stay.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
    registry.removeSingleMetric(name);
  }
  return registry;
}

/**
 * A counter read at scrape time from a running total kept elsewhere (a module's
 * "since start" count). `name` must end in `_total`. The total only grows while the
 * process lives; when its owner is replaced (a new leader's healer starts at 0) the
 * series resets, which Prometheus reads as a counter reset.
 */
export function totalCounter(registry: Registry, name: string, help: string, read: () => number | undefined): Counter {
  return new Counter({
    name, help, registers: [registry],
    collect() {
      const total = read();
      if (total === undefined) return;
      this.reset();
      this.inc(total);
    },
  });
}

export function splitHostPort(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  if (i < 0) throw new Error(`address "${addr}" must be host:port`);
  const port = Number(addr.slice(i + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`bad port in "${addr}"`);
  return { host: addr.slice(0, i) || '0.0.0.0', port };
}

export async function startAdminServer(opts: AdminOptions): Promise<AdminServer> {
  const server = http.createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0]!;
    const send = (code: number, body: string, type = 'application/json') => {
      res.writeHead(code, { 'content-type': type });
      res.end(body);
    };
    if (url === '/metrics') {
      opts.registry.metrics().then((text) => send(200, text, opts.registry.contentType),
        (e: Error) => send(500, JSON.stringify({ error: { code: 'INTERNAL', message: e.message } })));
    } else if (url === '/healthz') {
      send(200, JSON.stringify({ ok: true }));
    } else if (url === '/readyz') {
      const why = opts.readiness();
      send(why === null ? 200 : 503, JSON.stringify(why === null ? { ready: true } : { ready: false, reason: why }));
    } else if (opts.routes?.[url]) {
      try {
        send(200, JSON.stringify(opts.routes[url]!()));
      } catch (e) {
        send(500, JSON.stringify({ error: { code: 'INTERNAL', message: (e as Error).message } }));
      }
    } else {
      send(404, JSON.stringify({ error: { code: 'NO_SUCH_FILE', message: `no admin route ${url}` } }));
    }
  });
  const { host, port } = splitHostPort(opts.listen);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => { server.off('error', reject); resolve(); });
  });
  const bound = server.address() as AddressInfo;
  return {
    addr: `${host === '0.0.0.0' ? '127.0.0.1' : host}:${bound.port}`,
    registry: opts.registry,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
