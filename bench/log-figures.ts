/**
 * Record append figures on the bench's dev cluster (1 master, 3 chunkservers, RF=3):
 *
 * - peak: for 200 B and 4 KiB records from 1 and 16 appenders, each appender keeps a
 *   window of appends in flight (closed loop) for a few seconds: appends/s and the ack
 *   latency of each append.
 * - load: the same, open loop at 25, 50 and 90 % of that peak: appends are issued on a
 *   schedule and each latency is counted from when it was due (so a stall is not hidden
 *   by appends that were never issued): p50/p99/p999.
 * - follow: one appender at a steady rate, one follower: time from the append's ack to
 *   the follower receiving its last byte (negative: the push beat the ack), and from the
 *   append being issued to the follower receiving it.
 */
import { performance } from 'node:perf_hooks';
import { GfsClient, type Appender } from '../src/client';
import type { GfsSession } from './gfs-figures';
import { percentile } from './lib/percentiles';

export interface AppendLoad {
  recordBytes: number;
  appenders: number;
  /** 'peak' (closed loop) or the share of the peak offered (open loop). */
  load: 'peak' | number;
  offeredPerSec?: number;
  appendsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  failed: number;
}

export interface FollowLatency {
  records: number;
  ackToDeliveryP50Ms: number;
  ackToDeliveryP99Ms: number;
  sendToDeliveryP50Ms: number;
  sendToDeliveryP99Ms: number;
}

export interface LogAppendResult {
  runs: AppendLoad[];
  follow: FollowLatency;
}

const phaseMs = 3000;
const loadShares = [0.25, 0.5, 0.9];
/** In flight per appender at peak: the dedup window for one, a share of it for many (bounded total). */
const windowFor = (appenders: number) => Math.max(16, Math.floor(1024 / appenders));
const followRatePerSec = 500;

let logCounter = 0;

export async function benchLogAppend(session: GfsSession, recordSizes: number[], appenderCounts: number[],
  progress: (line: string) => void): Promise<LogAppendResult> {
  const runs: AppendLoad[] = [];
  for (const recordBytes of recordSizes) {
    for (const appenders of appenderCounts) {
      const peak = await runPhase(session, recordBytes, appenders, undefined);
      runs.push(peak);
      progress(`append ${recordBytes} B x${appenders}: peak ${Math.round(peak.appendsPerSec)}/s, p99 ${peak.p99Ms.toFixed(1)} ms`);
      for (const share of loadShares) {
        const r = await runPhase(session, recordBytes, appenders, { share, ratePerSec: peak.appendsPerSec * share });
        runs.push(r);
      }
    }
  }
  const follow = await benchFollow(session);
  return { runs, follow };
}

async function withAppenders<T>(session: GfsSession, n: number, fn: (path: string, appenders: Appender[]) => Promise<T>): Promise<T> {
  const path = `/bench/log-${process.pid}-${logCounter++}`;
  await session.client.append(path, 'start\n', { create: true });
  const clients = Array.from({ length: n }, () => new GfsClient({ masters: session.cluster.masters }));
  const appenders = clients.map((c) => c.appender(path));
  try {
    return await fn(path, appenders);
  } finally {
    await Promise.allSettled(appenders.map((a) => a.close()));
    await Promise.allSettled(clients.map((c) => c.close()));
    await session.client.sealLog(path).catch(() => undefined);
  }
}

async function runPhase(session: GfsSession, recordBytes: number, appenders: number,
  open: { share: number; ratePerSec: number } | undefined): Promise<AppendLoad> {
  const record = Buffer.alloc(recordBytes, 0x62);
  record[recordBytes - 1] = 0x0a;
  return withAppenders(session, appenders, async (_path, list) => {
    const latencies: number[] = [];
    let failed = 0;
    const start = performance.now();
    const endAt = start + phaseMs;
    const one = (a: Appender, dueMs: number) => a.append(record).then(
      () => { latencies.push(performance.now() - dueMs); },
      () => { failed++; },
    );
    if (!open) {
      const window = windowFor(appenders);
      await Promise.all(list.map(async (a) => {
        const lanes = Array.from({ length: window }, async () => {
          while (performance.now() < endAt) await one(a, performance.now());
        });
        await Promise.all(lanes);
      }));
    } else {
      const perAppender = open.ratePerSec / appenders;
      await Promise.all(list.map(async (a) => {
        const pending: Promise<void>[] = [];
        let issued = 0;
        while (performance.now() < endAt) {
          const now = performance.now();
          const due = Math.floor(((now - start) / 1000) * perAppender);
          for (; issued < due; issued++) pending.push(one(a, start + (issued / perAppender) * 1000));
          await new Promise((r) => setTimeout(r, 2));
        }
        await Promise.all(pending);
      }));
    }
    const elapsedMs = performance.now() - start;
    latencies.sort((x, y) => x - y);
    return {
      recordBytes, appenders, load: open ? open.share : 'peak', offeredPerSec: open?.ratePerSec,
      appendsPerSec: latencies.length / (elapsedMs / 1000),
      p50Ms: percentile(latencies, 0.5), p99Ms: percentile(latencies, 0.99), p999Ms: percentile(latencies, 0.999), failed,
    };
  });
}

async function benchFollow(session: GfsSession): Promise<FollowLatency> {
  return withAppenders(session, 1, async (path, [a]) => {
    const follower = new GfsClient({ masters: session.cluster.masters });
    const ac = new AbortController();
    /** Record end offset → when it was issued, acknowledged, delivered. */
    const sent = new Map<number, number>();
    const acked = new Map<number, number>();
    const delivered: { end: number; at: number }[] = [];
    const following = (async () => {
      for await (const p of follower.follow(path, { signal: ac.signal })) delivered.push({ end: p.offset + p.data.length, at: performance.now() });
    })().catch(() => undefined);
    try {
      await new Promise((r) => setTimeout(r, 200)); // the follower is on the open chunk
      const record = Buffer.alloc(200, 0x63);
      record[199] = 0x0a;
      const pending: Promise<void>[] = [];
      const start = performance.now();
      let issued = 0;
      while (performance.now() - start < phaseMs) {
        const due = Math.floor(((performance.now() - start) / 1000) * followRatePerSec);
        for (; issued < due; issued++) {
          const t0 = performance.now();
          pending.push(a!.append(record).then((ack) => {
            const end = ack.offset + record.length;
            sent.set(end, t0);
            acked.set(end, performance.now());
          }, () => undefined));
        }
        await new Promise((r) => setTimeout(r, 2));
      }
      await Promise.all(pending);
      await new Promise((r) => setTimeout(r, 500)); // the last pushes
    } finally {
      ac.abort();
      await following;
      await follower.close();
    }
    // Each record is delivered by the first piece that reaches its end.
    const ackToDelivery: number[] = [];
    const sendToDelivery: number[] = [];
    let k = 0;
    for (const end of [...acked.keys()].sort((x, y) => x - y)) {
      while (k < delivered.length && delivered[k]!.end < end) k++;
      if (k === delivered.length) break;
      ackToDelivery.push(delivered[k]!.at - acked.get(end)!);
      sendToDelivery.push(delivered[k]!.at - sent.get(end)!);
    }
    ackToDelivery.sort((x, y) => x - y);
    sendToDelivery.sort((x, y) => x - y);
    return {
      records: ackToDelivery.length,
      ackToDeliveryP50Ms: percentile(ackToDelivery, 0.5), ackToDeliveryP99Ms: percentile(ackToDelivery, 0.99),
      sendToDeliveryP50Ms: percentile(sendToDelivery, 0.5), sendToDeliveryP99Ms: percentile(sendToDelivery, 0.99),
    };
  });
}
