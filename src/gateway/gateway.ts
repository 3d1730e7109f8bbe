/**
 * The HTTP gateway. This first version serves the cluster status and the admin
 * endpoints on the REST port; the REST file API and S3 (DESIGN §10) build on it.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, type Registry } from 'prom-client';
import { GfsClient } from '../client';
import { ERROR_TABLE, GfsError } from '../common/errors';
import { newRegistry, splitHostPort } from '../common/admin-http';
import type { Logger } from '../common/log';
import { systemClock } from '../common/clock';
import { ProcessEvents } from '../events';
import { S3Server, type LookupSecret } from './s3';

export interface GatewayOptions {
  masters: string[];
  restListen: string;
  log: Logger;
  /** NATS server(s): the gateway announces process.started/stopping there (docs/EVENTS.md). */
  nats?: string;
  /** The cluster token of the event subjects (the masters' --cluster). */
  cluster?: string;
  /** Where the S3 API listens (src/gateway/s3); no S3 listener without it. */
  s3Listen?: string;
  /** The secret of an S3 access key id (bootstrap credentials now, master-issued tokens later). */
  s3LookupSecret?: LookupSecret;
  /** Never-completed multipart uploads are aborted this long after they started. */
  s3UploadExpiryMs?: number;
}

export class Gateway {
  private server: http.Server | undefined;
  private readonly client: GfsClient;
  private readonly registry: Registry = newRegistry('gateway');
  private readonly requests = new Counter({ name: 'gfs_gateway_requests_total', help: 'HTTP requests by route and status', labelNames: ['route', 'status'], registers: [this.registry] });
  private s3: S3Server | undefined;
  restAddr = '';
  private events: ProcessEvents | undefined;
  s3Addr = '';

  constructor(private readonly opts: GatewayOptions) {
    this.client = new GfsClient({ masters: opts.masters, log: opts.log, retries: 2, timeoutMs: 5000 });
  }

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => void this.route(req, res));
    const { host, port } = splitHostPort(this.opts.restListen);
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, host, () => resolve());
    });
    this.restAddr = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${(this.server.address() as AddressInfo).port}`;
    if (this.opts.s3Listen !== undefined) {
      this.s3 = new S3Server({
        listen: this.opts.s3Listen, client: this.client, log: this.opts.log, registry: this.registry,
        lookupSecret: this.opts.s3LookupSecret ?? (() => undefined), uploadExpiryMs: this.opts.s3UploadExpiryMs,
      });
      await this.s3.start();
      this.s3Addr = this.s3.addr;
    }
    this.opts.log.info({ rest: this.restAddr, s3: this.s3Addr, masters: this.opts.masters }, 'gateway serving');
    if (this.opts.nats) {
      this.events = new ProcessEvents({
        nats: this.opts.nats, cluster: this.opts.cluster ?? 'default', source: `gateway/${this.restAddr.replace(/^http:\/\//, '')}`,
        log: this.opts.log, clock: systemClock, random: Math.random, metrics: this.registry,
      });
      this.events.emit('process.started', { role: 'gateway', addr: this.restAddr });
    }
  }

  async stop(): Promise<void> {
    await this.s3?.stop();
    await this.events?.stop({ role: 'gateway', addr: this.restAddr });
    await new Promise<void>((resolve) => { this.server?.closeAllConnections(); this.server ? this.server.close(() => resolve()) : resolve(); });
    await this.client.close();
  }

  private async route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = (req.url ?? '/').split('?')[0]!;
    const send = (status: number, body: unknown, route: string, type = 'application/json') => {
      this.requests.inc({ route, status: String(status) });
      res.writeHead(status, { 'content-type': type });
      res.end(typeof body === 'string' ? body : JSON.stringify(body));
    };
    try {
      if (url === '/healthz') return send(200, { ok: true }, 'healthz');
      if (url === '/metrics') return send(200, await this.registry.metrics(), 'metrics', this.registry.contentType);
      if (url === '/readyz') {
        try {
          await this.client.status();
          return send(200, { ready: true }, 'readyz');
        } catch (e) {
          return send(503, { ready: false, reason: (e as Error).message }, 'readyz');
        }
      }
      if (url === '/v1/status' && req.method === 'GET') return send(200, await this.client.status(), 'status');
      throw new GfsError('NO_SUCH_FILE', `no route ${req.method} ${url}`);
    } catch (e) {
      const err = e instanceof GfsError ? e : new GfsError('INTERNAL', (e as Error).message);
      send(ERROR_TABLE[err.code].http, { error: { code: err.code, message: err.message } }, 'error');
    }
  }
}
