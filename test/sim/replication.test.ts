/**
 * The seeded simulation of the master group (world.ts, schedule.ts): thousands of short
 * schedules of 3 and 5 masters with crashes, torn writes, partitions, loss, reordering,
 * duplication, leader changes and expiring leases, each checked for lost acknowledged
 * writes, divergence, two writers in one epoch, a leader outliving its lease, commit
 * indexes going back, acks before durability, and progress once the faults heal.
 *
 *   GFS_SIM_SEED=<first seed>  default 1; setting it also skips the extra random seeds
 *   GFS_SIM_COUNT=<schedules>  default 10000
 *   GFS_SIM_RANDOM=<schedules> extra schedules from a random first seed (default 500)
 *   GFS_SIM_TRACE=1            print every message and event (use with GFS_SIM_COUNT=1)
 *
 * A failure prints its seed and the command that replays it exactly.
 */
import { randomInt } from 'node:crypto';
import t from 'tap';
import { describeCoverage, runSeeds, type BatchSummary } from './run-seeds';
import { replayCommand, runSchedule } from './schedule';

const seedFromEnv = process.env['GFS_SIM_SEED'];
const firstSeed = seedFromEnv === undefined ? 1 : Number(seedFromEnv);
const count = Number(process.env['GFS_SIM_COUNT'] ?? 10_000);
const randomCount = seedFromEnv === undefined ? Number(process.env['GFS_SIM_RANDOM'] ?? 500) : 0;
const trace = process.env['GFS_SIM_TRACE'] ? (line: string) => console.log(line) : undefined;
const FAILURES_SHOWN_MAX = 20;

function report(t: tap.Test, s: BatchSummary): void {
  const perSecond = s.schedules / (s.elapsedMs / 1000);
  t.comment(`${s.schedules} schedules (${s.byNodeCount[3] ?? 0} of 3 masters, ${s.byNodeCount[5] ?? 0} of 5) in ` +
    `${(s.elapsedMs / 1000).toFixed(1)} s: ${perSecond.toFixed(0)} schedules/s, ${(s.events / s.schedules).toFixed(0)} events each; ` +
    `${s.acked} operations acknowledged, ${s.grants} leaderships granted, ${s.crashes} crashes`);
  t.comment(`coverage: ${describeCoverage(s.coverage)}`);
  for (const f of s.failures.slice(0, FAILURES_SHOWN_MAX)) {
    t.fail(`seed ${f.seed} (${f.nodeCount} masters): ${f.failure}\n  faults: ${f.faults.join('; ')}\n  replay: ${replayCommand(f.seed)}`);
  }
  if (s.failures.length > FAILURES_SHOWN_MAX) t.fail(`... and ${s.failures.length - FAILURES_SHOWN_MAX} more failing seeds`);
  t.equal(s.failures.length, 0, `every schedule kept every guarantee`);
}

t.test(`replication: ${count} seeded schedules from seed ${firstSeed} lose no acknowledged write, never diverge and recover once healed`, async (t) => {
  report(t, runSeeds(firstSeed, count, { trace }));
});

if (randomCount > 0) {
  const randomFirst = randomInt(1_000_000_000, 2_000_000_000);
  t.test(`replication: ${randomCount} schedules from random seed ${randomFirst} keep the same guarantees`, async (t) => {
    t.comment(`random seeds this run: ${randomFirst}..${randomFirst + randomCount - 1}; replay one with ${replayCommand(randomFirst)}`);
    report(t, runSeeds(randomFirst, randomCount));
  });
}

t.test('replication: a seed replays exactly', async (t) => {
  for (const seed of [7, 8]) {
    const runs = [0, 1].map(() => {
      const lines: string[] = [];
      const r = runSchedule(seed, { trace: (line) => lines.push(line) });
      return { lines, stats: r.stats, failure: r.failure };
    });
    t.ok(runs[0]!.lines.length > 100, `seed ${seed} traced ${runs[0]!.lines.length} events`);
    t.same(runs[1]!.lines, runs[0]!.lines, `seed ${seed}: the same events in the same order`);
    t.same(runs[1]!.stats, runs[0]!.stats);
    t.equal(runs[1]!.failure, runs[0]!.failure);
  }
});
