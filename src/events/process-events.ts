/**
 * The events a chunkserver or gateway publishes about itself (process.started,
 * process.stopping), so a consumer sees a process come and go before the master
 * declares it (node.up/node.down come later, from the leader's heartbeats).
 *
 * Invariant: these events carry rev 0 (they are not the master's and not in its
 * history); `seq` counts them within the process, so (source, seq) names one.
 */
import type { Clock } from '../common/clock';
import type { Logger } from '../common/log';
import type { Registry } from 'prom-client';
import { EVENT_FORMAT_VERSION, checkClusterName, eventSubject, type ClusterEvent, type EventKind } from './event-types';
import { NatsPublisher } from './nats-publisher';

export interface ProcessEventsOptions {
  nats: string;
  cluster: string;
  /** `chunkserver/<node id>` or `gateway/<addr>`. */
  source: string;
  log: Logger;
  clock: Clock;
  random: () => number;
  metrics?: Registry;
}

export class ProcessEvents {
  private readonly publisher: NatsPublisher;
  private seq = 0;

  constructor(private readonly opts: ProcessEventsOptions) {
    checkClusterName(opts.cluster);
    this.publisher = new NatsPublisher({
      url: opts.nats, name: `gfs ${opts.source}`, log: opts.log.child({ component: 'events' }),
      clock: opts.clock, random: opts.random, metrics: opts.metrics,
    });
    this.publisher.start();
  }

  emit(kind: Extract<EventKind, 'process.started' | 'process.stopping'>, data: Record<string, unknown>): void {
    const seq = this.seq++;
    const event: ClusterEvent = {
      v: EVENT_FORMAT_VERSION, id: `0.${seq}`, rev: 0, seq, epoch: 0, kind, cluster: this.opts.cluster,
      source: this.opts.source, timeMs: this.opts.clock.nowMs(), data,
    };
    this.publisher.publish(eventSubject(this.opts.cluster, kind), JSON.stringify(event));
  }

  /** Publishes process.stopping (best effort, bounded wait) and closes the connection. */
  async stop(data: Record<string, unknown> = {}): Promise<void> {
    this.emit('process.stopping', data);
    await this.publisher.stop();
  }
}
