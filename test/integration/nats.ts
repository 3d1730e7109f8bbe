/**
 * A real nats-server (Debian's nats-server) on a random loopback port, for tests: it can
 * be killed and started again on the same port, and is stopped at teardown. Plus a
 * subscriber that collects a cluster's events and reconnects forever.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { connect, type NatsConnection } from 'nats';
import type { ClusterEvent } from '../../src/events';
import { freePort } from './etcd';
import { tempDir } from './helpers';

export interface NatsProc {
  url: string;
  /** kill -9: the server and every connection to it go away at once. */
  stop(): Promise<void>;
  /** Starts it again on the same port. */
  start(): Promise<void>;
  /** SIGSTOP / SIGCONT: a NATS that is connected but answers nothing (slow). */
  pause(): void;
  resume(): void;
}

/** Resolves once the server greets a client (its INFO line). */
async function greets(port: number, deadline: number, logFile: string): Promise<void> {
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('data', (d) => { s.destroy(); resolve(d.toString().startsWith('INFO')); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nats-server did not start; see ${logFile}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startNats(t: { teardown(fn: () => unknown): void }): Promise<NatsProc> {
  const dir = tempDir(t, 'gfs-nats-');
  const port = await freePort();
  const logFile = path.join(dir, 'nats.log');
  let current: { child: ChildProcess; exited: Promise<void> } | undefined;
  const proc: NatsProc = {
    url: `nats://127.0.0.1:${port}`,
    start: async () => {
      const log = fs.openSync(logFile, 'a');
      const child = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', log, log] });
      fs.closeSync(log);
      current = { child, exited: new Promise<void>((resolve) => child.once('exit', () => resolve())) };
      await greets(port, Date.now() + 10_000, logFile);
    },
    pause: () => { current?.child.kill('SIGSTOP'); },
    resume: () => { current?.child.kill('SIGCONT'); },
    stop: async () => {
      current?.child.kill('SIGCONT');
      if (!current || current.child.exitCode !== null || current.child.signalCode !== null) return;
      current.child.kill('SIGKILL');
      await current.exited;
    },
  };
  t.teardown(() => proc.stop());
  await proc.start();
  return proc;
}

export interface EventCollector {
  events: ClusterEvent[];
  /** Events recorded by a master, in arrival order. */
  masterEvents(): ClusterEvent[];
  /** Resolves with the first event matching `pred`, waiting for it if needed. */
  waitFor(pred: (e: ClusterEvent) => boolean, timeoutMs?: number, what?: string): Promise<ClusterEvent>;
  close(): Promise<void>;
}

/** Subscribes to gfs.<cluster>.events.> and keeps every event, reconnecting forever. */
export async function collectEvents(t: { teardown(fn: () => unknown): void }, url: string, cluster = 'default'): Promise<EventCollector> {
  const nc: NatsConnection = await connect({ servers: url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  const events: ClusterEvent[] = [];
  const sub = nc.subscribe(`gfs.${cluster}.events.>`);
  void (async () => {
    for await (const m of sub) {
      const e = JSON.parse(new TextDecoder().decode(m.data)) as ClusterEvent;
      if (m.subject !== `gfs.${cluster}.events.${e.kind}`) throw new Error(`event ${e.kind} on subject ${m.subject}`);
      events.push(e);
    }
  })();
  await nc.flush();
  const collector: EventCollector = {
    events,
    masterEvents: () => events.filter((e) => e.source.startsWith('master/')),
    waitFor: async (pred, timeoutMs = 20_000, what = 'an event') => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = events.find(pred);
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`no ${what} on NATS within ${timeoutMs} ms; got ${events.map((e) => `${e.id} ${e.kind}`).join(', ')}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    close: async () => { if (!nc.isClosed()) await nc.close(); },
  };
  t.teardown(() => collector.close());
  return collector;
}
