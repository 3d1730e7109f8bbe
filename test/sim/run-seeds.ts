/**
 * Runs a range of schedules and sums them up; used by the tests and, through
 * `node dist/test/sim/run-seeds.js <seed> [count]`, by hand (add GFS_SIM_TRACE=1 to see
 * every message of a single seed, GFS_SIM_BROKEN=<name> to run a broken replica).
 */
import { brokenReplicas } from './broken-replicas';
import { runSchedule, type ScheduleOptions, type ScheduleResult } from './schedule';

export interface BatchSummary {
  schedules: number;
  failures: ScheduleResult[];
  events: number;
  acked: number;
  grants: number;
  crashes: number;
  byNodeCount: Record<number, number>;
  coverage: Map<string, number>;
  elapsedMs: number;
}

export function runSeeds(firstSeed: number, count: number, opts: ScheduleOptions = {}, stopAtFirstFailure = false): BatchSummary {
  const started = performance.now();
  const summary: BatchSummary = { schedules: 0, failures: [], events: 0, acked: 0, grants: 0, crashes: 0, byNodeCount: {}, coverage: new Map(), elapsedMs: 0 };
  for (let seed = firstSeed; seed < firstSeed + count; seed++) {
    const r = runSchedule(seed, opts);
    summary.schedules++;
    summary.events += r.stats.events;
    summary.acked += r.stats.acked;
    summary.grants += r.stats.grants;
    summary.crashes += r.stats.crashes;
    summary.byNodeCount[r.nodeCount] = (summary.byNodeCount[r.nodeCount] ?? 0) + 1;
    for (const [k, v] of r.stats.coverage) summary.coverage.set(k, (summary.coverage.get(k) ?? 0) + v);
    if (!r.ok) {
      summary.failures.push(r);
      if (stopAtFirstFailure) break;
    }
  }
  summary.elapsedMs = performance.now() - started;
  return summary;
}

export function describeCoverage(coverage: Map<string, number>): string {
  return [...coverage].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([k, v]) => `${k}: ${v}`).join(', ');
}

if (require.main === module) {
  const seed = Number(process.argv[2] ?? 1);
  const count = Number(process.argv[3] ?? 1);
  const trace = process.env['GFS_SIM_TRACE'] ? (line: string) => console.log(line) : undefined;
  const broken = process.env['GFS_SIM_BROKEN'];
  if (broken !== undefined && !(broken in brokenReplicas)) throw new Error(`GFS_SIM_BROKEN must be one of ${Object.keys(brokenReplicas).join(', ')}`);
  const s = runSeeds(seed, count, { trace, createReplica: broken === undefined ? undefined : brokenReplicas[broken]!.create });
  for (const f of s.failures) console.log(`seed ${f.seed} (${f.nodeCount} masters) FAILED ${f.failure}\n  faults: ${f.faults.join('; ')}`);
  console.log(`${s.schedules} schedules, ${s.failures.length} failed, ${s.events} events, ${s.acked} acked, ${s.grants} grants, ` +
    `${s.crashes} crashes in ${(s.elapsedMs / 1000).toFixed(1)} s (${(s.schedules / (s.elapsedMs / 1000)).toFixed(0)} schedules/s)`);
  console.log(describeCoverage(s.coverage));
}
