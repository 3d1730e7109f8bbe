/**
 * Keeps a gateway's copy of the token table and namespace visibility current from the
 * cluster's events (docs/EVENTS.md): a `token.*` or `namespace.*` event makes the
 * gateway re-read the table at once, and so does every (re)connection to NATS, which
 * reconciles whatever was missed while it was away. The periodic re-read stays, at
 * the longer limits.gatewayAuthReconcileMs, for events lost in between.
 *
 * Invariants: events are hints, never the table itself (the table always comes from the
 * master); a NATS that is down or slow never blocks or fails a request; stop() ends the
 * connection and its loops.
 */
import { connect, Events, type NatsConnection } from 'nats';
import type { Logger } from '../common/log';
import { limits } from '../common/limits';

export interface AuthEventFeedOptions {
  nats: string;
  cluster: string;
  log: Logger;
  /** Re-read the token table now (coalesced by the caller). */
  onChange: (why: string) => void;
}

export class AuthEventFeed {
  private conn: NatsConnection | undefined;
  private stopped = false;

  constructor(private readonly opts: AuthEventFeedOptions) {}

  start(): void {
    void this.run().catch((e: Error) => {
      if (!this.stopped) this.opts.log.warn({ err: e.message }, 'auth event feed ended; the token table is re-read periodically only');
    });
  }

  private async run(): Promise<void> {
    const conn = await connect({
      servers: this.opts.nats.split(','), name: 'gfs-gateway-auth', reconnect: true, maxReconnectAttempts: -1,
      waitOnFirstConnect: true, reconnectTimeWait: limits.natsReconnectMinMs,
    });
    if (this.stopped) { await conn.close(); return; }
    this.conn = conn;
    const prefix = `gfs.${this.opts.cluster}.events`;
    for (const subject of [`${prefix}.token.>`, `${prefix}.namespace.>`]) {
      conn.subscribe(subject, { callback: (err, msg) => { if (!err) this.opts.onChange(msg.subject.slice(prefix.length + 1)); } });
    }
    this.opts.onChange('nats connected');
    void (async () => {
      for await (const s of conn.status()) if (s.type === Events.Reconnect) this.opts.onChange('nats reconnected');
    })().catch(() => undefined);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.conn?.close().catch(() => undefined);
  }
}
