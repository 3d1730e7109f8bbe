/** The chunkserver's recent I/O rate (src/common/io-rate.ts) that heartbeats carry. */
import t from 'tap';
import { IoRate } from '../../src/common/io-rate';

const MiB = 1024 * 1024;

/** Feeds a counter growing at `bytesPerSec` for `ms`, sampled every `everyMs`; returns the last rate. */
function feed(rate: IoRate, start: { total: number; ms: number }, bytesPerSec: number, ms: number, everyMs: number): number {
  let last = 0;
  for (let at = everyMs; at <= ms; at += everyMs) {
    start.total += (bytesPerSec * everyMs) / 1000;
    start.ms += everyMs;
    last = rate.sample(start.total, start.ms);
  }
  return last;
}

t.test('io rate: a steady rate reads as itself after a few windows, however often it is sampled', async (t) => {
  const readings = [100, 1000, 5000].map((everyMs) => {
    const rate = new IoRate(10_000);
    const clock = { total: 0, ms: 0 };
    rate.sample(0, 0);
    return feed(rate, clock, 80 * MiB, 60_000, everyMs);
  });
  for (const r of readings) t.ok(Math.abs(r - 80 * MiB) < 0.01 * 80 * MiB, `${(r / MiB).toFixed(2)} MiB/s`);
  t.ok(Math.abs(readings[0]! - readings[2]!) < 1e-6 * MiB, 'sampling every 100 ms or every 5 s gives the same average');
});

t.test('io rate: a burst fades with the window, and an idle node reads as idle', async (t) => {
  const rate = new IoRate(10_000);
  const clock = { total: 0, ms: 0 };
  t.equal(rate.sample(0, 0), 0, 'the first sample only sets the baseline');
  const busy = feed(rate, clock, 100 * MiB, 60_000, 1000);
  const later = feed(rate, clock, 0, 10_000, 1000);
  t.ok(Math.abs(later / busy - Math.exp(-1)) < 0.01, 'one window later: 1/e of it');
  t.ok(feed(rate, clock, 0, 120_000, 1000) < MiB, 'two idle minutes later: nothing to speak of');
});

t.test('io rate: samples read out of order or at the same instant add no phantom bytes', async (t) => {
  const rate = new IoRate(10_000);
  rate.sample(1000, 0);
  rate.sample(11 * MiB, 1000);
  const r = rate.bytesPerSec;
  rate.sample(5 * MiB, 1000); // an older reading of the counter, delivered late
  t.equal(rate.bytesPerSec, r, 'a smaller total changes nothing');
  rate.sample(11 * MiB + 10_000, 1000);
  const weight = 1 - Math.exp(-1000 / 10_000);
  t.ok(Math.abs(rate.bytesPerSec - (r + 10_000 / 10 / weight)) < 1e-6, 'bytes at the same instant count as bytes / window');
});

t.test('io rate: no warm-up bias: a steady rate reads as itself from the second sample on', async (t) => {
  for (const everyMs of [200, 1000, 3000]) {
    const rate = new IoRate(10_000);
    rate.sample(0, 0);
    const first = rate.sample((50 * MiB * everyMs) / 1000, everyMs);
    t.ok(Math.abs(first - 50 * MiB) < 0.001 * 50 * MiB, `sampled every ${everyMs} ms: ${(first / MiB).toFixed(2)} MiB/s at once`);
  }
});
