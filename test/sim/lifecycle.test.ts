/**
 * The chunk lifecycle under seeded schedules (lifecycle-sim.ts): the real MetaState,
 * registry and Lifecycle with in-memory chunkservers, node deaths and returns, corrupt
 * and stale replicas, creates, deletes and master failovers. No schedule may delete a
 * referenced chunk's last healthy replica (or a healthy one while under goal), fill a
 * node past the cap, or leave a chunk with a healthy replica below its goal once the
 * faults stop.
 *
 *   GFS_LIFECYCLE_SEED=<first seed>   default 1
 *   GFS_LIFECYCLE_COUNT=<schedules>   default 1000
 *
 * A failure prints its seed and the command that replays it exactly.
 */
import t from 'tap';
import { lifecycleReplayCommand, livenessStepsMax, runLifecycleSchedule, type LifecycleScheduleResult } from './lifecycle-sim';

const firstSeed = Number(process.env['GFS_LIFECYCLE_SEED'] ?? 1);
const count = Number(process.env['GFS_LIFECYCLE_COUNT'] ?? 1000);
const FAILURES_SHOWN_MAX = 20;

t.test(`lifecycle: ${count} seeded schedules from seed ${firstSeed} never delete a needed replica, never overfill a node, and heal once the faults stop`, async (t) => {
  const started = performance.now();
  const failures: LifecycleScheduleResult[] = [];
  const totals = { deletes: 0, clones: 0, failovers: 0, deaths: 0, corruptions: 0, stepsToHealMax: 0 };
  for (let seed = firstSeed; seed < firstSeed + count; seed++) {
    const r = await runLifecycleSchedule(seed);
    if (!r.ok) failures.push(r);
    totals.deletes += r.stats.deletes;
    totals.clones += r.stats.clones;
    totals.failovers += r.stats.failovers;
    totals.deaths += r.stats.deaths;
    totals.corruptions += r.stats.corruptions;
    totals.stepsToHealMax = Math.max(totals.stepsToHealMax, r.stats.stepsToHeal);
  }
  t.comment(`${count} schedules in ${((performance.now() - started) / 1000).toFixed(1)} s: ${totals.deletes} deletes, ${totals.clones} clones, ` +
    `${totals.failovers} failovers, ${totals.deaths} node deaths, ${totals.corruptions} corrupt replicas; ` +
    `healed within ${totals.stepsToHealMax} of ${livenessStepsMax} steps at most`);
  for (const f of failures.slice(0, FAILURES_SHOWN_MAX)) t.fail(`seed ${f.seed}: ${f.failure}\n  replay: ${lifecycleReplayCommand(f.seed)}`);
  if (failures.length > FAILURES_SHOWN_MAX) t.fail(`... and ${failures.length - FAILURES_SHOWN_MAX} more failing seeds`);
  t.equal(failures.length, 0, 'every schedule kept every guarantee');
  // The schedules must exercise what the checkers guard, or passing proves nothing.
  t.ok(totals.deletes > 0 && totals.clones > 0 && totals.failovers > 0 && totals.corruptions > 0, 'deletes, clones, failovers and corruption all happened');
});

t.test('lifecycle: a seed replays exactly', async (t) => {
  const a = await runLifecycleSchedule(firstSeed + 7);
  const b = await runLifecycleSchedule(firstSeed + 7);
  t.same(a, b, 'the same seed gives the same schedule and outcome');
});
