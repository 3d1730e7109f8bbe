/**
 * The gateway process: the REST API (rest/, DESIGN §10) on its own listener, and the
 * S3 API (s3/) on another. It is stateless: every request is served by the client
 * library against the masters and chunkservers, so gateways can be added or
 * restarted freely.
 *
 * Invariants: every request's header block is bounded (restHeaderBytesMax) and must
 * arrive within restHeadersTimeoutMs; a connection idle past restIdleTimeoutMs is
 * closed; at most restConnectionsMax connections are open; no request can throw out of
 * the server (the router answers every failure).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, type Registry } from 'prom-client';
import { GfsClient } from '../client';
import { newRegistry, splitHostPort } from '../common/admin-http';
import { limits } from '../common/limits';
import { systemClock, type Clock } from '../common/clock';
import type { Logger } from '../common/log';
import { ProcessEvents } from '../events';
import type { GatewayCredentials } from './credentials';
import { S3Server, type LookupSecret } from './s3';
import { RestRouter } from './rest/router';
import { Slots } from './rest/slots';
import { GatewayAuth } from './auth';
import { AuthEventFeed } from './auth-events';

export interface GatewayOptions {
  masters: string[];
  restListen: string;
  /** Where the S3 API listens (src/gateway/s3); no S3 listener without it. */
  s3Listen?: string;
  /** The secret of an S3 access key id (bootstrap credentials now, master-issued tokens later). */
  s3LookupSecret?: LookupSecret;
  /** Never-completed multipart uploads are aborted this long after they started. */
  s3UploadExpiryMs?: number;
  /**
   * The gateway's own token (admin on "*", e.g. the bootstrap credentials): it makes the
   * gateway's master calls and fetches the token table. None: the cluster must be open
   * (no token issued yet).
   */
  credentials?: GatewayCredentials;
  /** JSON audit lines, one per request (auth.ts). */
  auditLog?: string;
  /** Requests per second per token (limits.gatewayTokenRatePerSec). */
  tokenRatePerSec?: number;
  log: Logger;
  clock?: Clock;
  /** NATS server(s): the gateway announces process.started/stopping there (docs/EVENTS.md). */
  nats?: string;
  /** The cluster token of the event subjects (the masters' --cluster). */
  cluster?: string;
}

/** An HTTP server with the gateway's bounds on headers, time and connections. */
export function boundedServer(handler: http.RequestListener): http.Server {
  const server = http.createServer({
    maxHeaderSize: limits.restHeaderBytesMax,
    headersTimeout: limits.restHeadersTimeoutMs,
    // A body may stream for as long as it keeps moving: the idle timeout bounds a stall.
    requestTimeout: 0,
    keepAliveTimeout: limits.restKeepAliveMs,
  }, handler);
  server.setTimeout(limits.restIdleTimeoutMs, (socket) => socket.destroy());
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    // Oversized or malformed headers, or a header timeout: answer if we still can, then close.
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    if (socket.writable) socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    else socket.destroy();
  });
  server.maxConnections = limits.restConnectionsMax;
  return server;
}

export async function listen(server: http.Server, address: string): Promise<string> {
  const { host, port } = splitHostPort(address);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => { server.off('error', reject); resolve(); });
  });
  return `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${(server.address() as AddressInfo).port}`;
}

export class Gateway {
  private restServer: http.Server | undefined;
  private router: RestRouter | undefined;
  private readonly client: GfsClient;
  private readonly registry: Registry = newRegistry('gateway');
  /** Tokens, scopes, rates and the audit log; the S3 API takes lookupSecret from here. */
  readonly auth: GatewayAuth;
  restAddr = '';
  /** Set once the S3 listener is up. */
  s3Addr = '';
  private events: ProcessEvents | undefined;
  private authFeed: AuthEventFeed | undefined;
  private s3: S3Server | undefined;

  constructor(private readonly opts: GatewayOptions) {
    this.client = new GfsClient({ masters: opts.masters, log: opts.log, deadlineMs: limits.gatewayMasterDeadlineMs, timeoutMs: limits.gatewayRpcTimeoutMs, token: opts.credentials?.token });
    this.auth = new GatewayAuth({
      fetch: () => this.client.admin.authTable(), clock: opts.clock ?? systemClock, log: opts.log,
      auditLog: opts.auditLog, ratePerSec: opts.tokenRatePerSec,
      burst: opts.tokenRatePerSec === undefined ? undefined : Math.max(1, opts.tokenRatePerSec * 2),
    });
  }

  async start(): Promise<void> {
    if (this.opts.nats) {
      // Token and namespace events update the table at once; the periodic re-read only reconciles.
      this.authFeed = new AuthEventFeed({
        nats: this.opts.nats, cluster: this.opts.cluster ?? 'default', log: this.opts.log,
        onChange: () => this.auth.invalidate(),
      });
      this.authFeed.start();
    }
    this.auth.start(this.opts.nats ? limits.gatewayAuthReconcileMs : limits.gatewayAuthRefreshMs);
    const registers = [this.registry];
    const router = this.router = new RestRouter({
      ctx: {
        client: this.client, log: this.opts.log, clock: this.opts.clock ?? systemClock,
        bytesReceived: new Counter({ name: 'gfs_gateway_received_bytes_total', help: 'Request body bytes received (uploads, appends)', registers }),
        bytesSent: new Counter({ name: 'gfs_gateway_sent_bytes_total', help: 'File bytes sent (downloads, follows)', registers }),
        uploads: new Slots(limits.restUploadsMax, limits.restSlotWaitersMax, 'uploads'),
        downloads: new Slots(limits.restDownloadsMax, limits.restSlotWaitersMax, 'downloads'),
      },
      auth: this.auth,
      registry: this.registry,
    });
    this.restServer = boundedServer((req, res) => {
      router.handle(req, res).catch((e: unknown) => {
        // handle() answers every failure itself; this is the last guard of the process.
        this.opts.log.error({ err: e }, 'REST handler threw');
        res.destroy();
      });
    });
    this.restAddr = await listen(this.restServer, this.opts.restListen);
    if (this.opts.s3Listen !== undefined) {
      this.s3 = new S3Server({
        listen: this.opts.s3Listen, client: this.client, log: this.opts.log, registry: this.registry,
        // Keys of the master's tokens first, then static keys given on the command line.
        lookupSecret: (id) => this.auth.s3Secret(id) ?? this.opts.s3LookupSecret?.(id),
        authorize: (r) => this.authorizeS3(r), uploadExpiryMs: this.opts.s3UploadExpiryMs,
        audit: (line) => this.auth.record({ api: 's3', ...line }),
      });
      await this.s3.start();
      this.s3Addr = this.s3.addr;
    }
    this.opts.log.info({ rest: this.restAddr, s3: this.s3Addr || undefined, masters: this.opts.masters }, 'gateway serving');
    if (this.opts.nats) {
      this.events = new ProcessEvents({
        nats: this.opts.nats, cluster: this.opts.cluster ?? 'default', source: `gateway/${this.restAddr.replace(/^http:\/\//, '')}`,
        log: this.opts.log, clock: this.opts.clock ?? systemClock, random: Math.random, metrics: this.registry,
      });
      this.events.emit('process.started', { role: 'gateway', addr: this.restAddr });
    }
  }

  /**
   * An S3 request whose signature checked out: a token's key gets the token's scopes in
   * the bucket (its namespace) and its rate; a static key (--s3-credentials) is the
   * operator's and may do anything. Bucket create/delete need admin there; ListBuckets
   * any key (the answer lists every bucket: names are not secret here).
   */
  private authorizeS3(r: { accessKeyId: string; method: string; bucket: string | undefined; key: string | undefined; address: string }): string {
    const p = this.auth.principalOfAccessKey(r.accessKeyId);
    if (p === undefined) return `static:${r.accessKeyId}`;
    this.auth.rate(p, r.address);
    if (r.bucket === undefined) return p.id;
    const bucketOp = r.key === undefined && (r.method === 'PUT' || r.method === 'DELETE');
    // POST on a bucket is DeleteObjects; on a key, a multipart upload.
    const deletes = r.method === 'DELETE' || (r.method === 'POST' && r.key === undefined);
    const scope = bucketOp ? 'admin' : r.method === 'GET' || r.method === 'HEAD' ? 'read' : deletes ? 'delete' : 'write';
    this.auth.check(p, r.bucket, scope);
    return p.id;
  }

  async stop(): Promise<void> {
    await this.events?.stop({ role: 'gateway', addr: this.restAddr });
    await this.authFeed?.stop();
    this.router?.stop();
    await this.s3?.stop();
    await new Promise<void>((resolve) => { this.restServer?.closeAllConnections(); this.restServer ? this.restServer.close(() => resolve()) : resolve(); });
    await this.auth.stop();
    await this.client.close();
  }
}
