/**
 * The admin HTTP port every long-running process serves: `/metrics` (Prometheus
 * text), `/healthz` (the process is alive) and `/readyz` (it can do its job).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry, collectDefaultMetrics } from 'prom-client';
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
  return registry;
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
