/**
 * Publishes cluster events to NATS without ever making the caller wait or fail
 * (docs/EVENTS.md). publish() only puts the event in a bounded queue; a connection loop
 * moves the queue to NATS while it is connected, and reconnects with backoff when it is
 * not. Events are hints: a consumer that missed some asks the leader (gfsctl events
 * --since), so losing them here is allowed and counted, blocking is not.
 *
 * Invariants:
 * - publish() never throws and never awaits: a slow or absent NATS changes nothing for
 *   the metadata operation that recorded the event.
 * - The queue never holds more than queueMax events; when full, the oldest is dropped
 *   and gfs_events_dropped_total counts it. At most inFlightMax more are in the nats
 *   client's buffer: the next ones leave only after a round trip (flush) confirms those,
 *   so a NATS that is connected but slow backs up into the bounded queue too.
 * - Events leave in the order they were queued.
 * - Only this module talks to the nats client; the rest of gfs sees EventSink.
 */
import assert from 'node:assert/strict';
import { connect, Events, type NatsConnection } from 'nats';
import type { Registry } from 'prom-client';
import { totalCounter } from '../common/admin-http';
import { backoffMs, type BackoffPolicy } from '../common/backoff';
import type { Clock, Timer } from '../common/clock';
import { limits } from '../common/limits';
import type { Logger } from '../common/log';

/** Where events go: NATS, or nowhere when --nats is not given. */
export interface EventSink {
  publish(subject: string, json: string): void;
  stop(): Promise<void>;
}

export interface NatsPublisherOptions {
  /** nats://host:port (comma-separated for several servers of one NATS cluster). */
  url: string;
  /** Connection name NATS shows in its monitoring (e.g. `gfs master m1`). */
  name: string;
  log: Logger;
  clock: Clock;
  random: () => number;
  /** Registers gfs_events_published_total and gfs_events_dropped_total here. */
  metrics?: Registry;
  queueMax?: number;
  /** Events published but not yet confirmed by a flush (default limits.natsInFlightMax). */
  inFlightMax?: number;
}

interface Queued { subject: string; data: Uint8Array }

const encoder = new TextEncoder();

export class NatsPublisher implements EventSink {
  publishedTotal = 0;
  droppedTotal = 0;
  /** Ring of queued events. */
  private readonly queue: (Queued | undefined)[];
  private head = 0;
  private count = 0;
  private nc: NatsConnection | undefined;
  private connected = false;
  private stopped = false;
  private retryTimer: Timer | undefined;
  private wakeRetry: (() => void) | undefined;
  private running: Promise<void> | undefined;
  private reconnectAttempts = 0;
  private inFlight = 0;
  private flushing = false;
  private readonly inFlightMax: number;
  private readonly policy: BackoffPolicy = { minMs: limits.natsReconnectMinMs, maxMs: limits.natsReconnectMaxMs, jitterRatio: 0.5 };

  constructor(private readonly opts: NatsPublisherOptions) {
    const max = opts.queueMax ?? limits.eventsQueueMax;
    assert.ok(Number.isSafeInteger(max) && max > 0);
    this.queue = new Array<Queued | undefined>(max);
    this.inFlightMax = opts.inFlightMax ?? limits.natsInFlightMax;
    assert.ok(Number.isSafeInteger(this.inFlightMax) && this.inFlightMax > 0);
    if (opts.metrics) {
      totalCounter(opts.metrics, 'gfs_events_published_total', 'Cluster events handed to NATS', () => this.publishedTotal);
      totalCounter(opts.metrics, 'gfs_events_dropped_total', 'Cluster events dropped because NATS was slow or down (the queue was full)', () => this.droppedTotal);
    }
  }

  get queued(): number { return this.count; }
  get isConnected(): boolean { return this.connected; }

  /** Starts the connection loop in the background; nothing waits for NATS. */
  start(): void {
    assert.ok(this.running === undefined, 'started twice');
    this.running = this.run().catch((e: Error) => this.opts.log.error({ err: e.message }, 'NATS publisher stopped on an unexpected error'));
  }

  publish(subject: string, json: string): void {
    if (this.stopped) return;
    const max = this.queue.length;
    if (this.count === max) {
      this.queue[this.head] = undefined;
      this.head = (this.head + 1) % max;
      this.count--;
      this.droppedTotal++;
    }
    this.queue[(this.head + this.count) % max] = { subject, data: encoder.encode(json) };
    this.count++;
    if (this.connected) this.drain();
  }

  /** Gives queued events a moment to reach NATS, then closes the connection. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.drain();
    const nc = this.nc;
    const { clock } = this.opts;
    const deadline = clock.monoMs() + limits.natsStopFlushMs;
    // Round trips until the queue is out (each one lets the next inFlightMax go), or the time is up.
    while (nc && this.connected && (this.count > 0 || this.flushing) && clock.monoMs() < deadline) {
      let timer: Timer | undefined;
      await Promise.race([
        nc.flush().catch(() => undefined),
        new Promise<void>((resolve) => { timer = clock.after(deadline - clock.monoMs(), resolve); }),
      ]);
      timer?.cancel();
    }
    this.stopped = true;
    this.retryTimer?.cancel();
    this.wakeRetry?.();
    await nc?.close().catch(() => undefined);
    await this.running;
  }

  /** Moves queued events to the connection, oldest first, while it is up and has room. */
  private drain(): void {
    const nc = this.nc;
    const max = this.queue.length;
    while (this.connected && nc && this.count > 0 && this.inFlight < this.inFlightMax) {
      const m = this.queue[this.head]!;
      try {
        nc.publish(m.subject, m.data);
      } catch (e) {
        // Closed or draining under us: keep the event for the next connection.
        this.connected = false;
        this.opts.log.warn({ err: (e as Error).message }, 'NATS publish failed; events stay queued');
        return;
      }
      this.queue[this.head] = undefined;
      this.head = (this.head + 1) % max;
      this.count--;
      this.publishedTotal++;
      this.inFlight++;
    }
    if (nc && this.inFlight > 0 && !this.flushing) this.confirm(nc);
  }

  /** One round trip: once NATS answers, what was in flight was taken; publish the next ones. */
  private confirm(nc: NatsConnection): void {
    this.flushing = true;
    const done = () => {
      if (this.nc !== nc) return; // an older connection; the new one has its own count
      this.flushing = false;
      this.inFlight = 0;
      this.drain();
    };
    nc.flush().then(done, done);
  }

  /** Connect, publish until the connection closes for good, wait, connect again. */
  private async run(): Promise<void> {
    const { log } = this.opts;
    let failures = 0;
    while (!this.stopped) {
      let nc: NatsConnection;
      try {
        nc = await connect(this.connectOptions());
      } catch (e) {
        failures++;
        const delay = backoffMs(failures, this.policy, this.opts.random);
        if (failures === 1 || failures % 20 === 0) log.warn({ url: this.opts.url, err: (e as Error).message, failures, retryInMs: Math.round(delay) }, 'cannot reach NATS; events are queued (oldest dropped when full) and the cluster works as usual');
        await this.pause(delay);
        continue;
      }
      if (this.stopped) { await nc.close().catch(() => undefined); break; }
      failures = 0;
      this.nc = nc;
      this.inFlight = 0;
      this.flushing = false;
      this.connected = true;
      log.info({ url: this.opts.url, queued: this.count }, 'connected to NATS; publishing cluster events');
      void this.watch(nc.status());
      this.drain();
      const err = await nc.closed();
      this.connected = false;
      this.nc = undefined;
      if (!this.stopped) log.warn({ err: err?.message }, 'NATS connection closed; connecting again');
    }
  }

  private connectOptions(): Parameters<typeof connect>[0] {
    return {
      servers: this.opts.url.split(',').map((s) => s.trim()).filter(Boolean),
      name: this.opts.name,
      timeout: limits.natsConnectTimeoutMs,
      pingInterval: limits.natsPingIntervalMs,
      maxPingOut: 2,
      // nats.js reconnects by itself, forever, with our backoff (restarted at each success).
      reconnect: true,
      maxReconnectAttempts: -1,
      reconnectDelayHandler: () => backoffMs(++this.reconnectAttempts, this.policy, this.opts.random),
      ignoreClusterUpdates: false,
      // Never block a publisher on a connection: we hold the queue ourselves.
      waitOnFirstConnect: false,
    } satisfies Parameters<typeof connect>[0];
  }

  /** Follows the connection's state: publish only while it is up. */
  private async watch(status: ReturnType<NatsConnection['status']>): Promise<void> {
    const { log } = this.opts;
    for await (const s of status) {
      if (s.type === Events.Disconnect) {
        this.connected = false;
        log.warn({ server: s.data }, 'NATS disconnected; events are queued until it is back');
      } else if (s.type === Events.Reconnect) {
        this.connected = true;
        this.reconnectAttempts = 0;
        this.inFlight = 0; // the disconnect failed the pending flush: nothing is in flight now
        this.flushing = false;
        log.info({ server: s.data, queued: this.count }, 'NATS reconnected; publishing the queued events');
        this.drain();
      }
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wakeRetry = resolve;
      this.retryTimer = this.opts.clock.after(ms, resolve);
    });
  }
}
