/**
 * `npm run bench`: measures this machine's baselines (raw replicated write, raw read,
 * raw fsync, raw copy), then the same operations through gfs (and healing and
 * scrubbing, which are copies and reads too), and prints each gfs figure beside its
 * baseline as a ratio, which is what compares across machines. Timings are reported,
 * never asserted.
 *
 * Progress goes to stderr, one line per step; the table goes to stdout. Whatever
 * happens, forked roles, cluster processes and temp dirs are gone when it exits.
 */
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { runRawChain } from './baselines/raw-chain';
import { runRawCopy } from './baselines/raw-copy';
import { runRawFsync } from './baselines/raw-fsync';
import { runRawRead } from './baselines/raw-read';
import { runRawRecordSync } from './baselines/raw-record-sync';
import { benchLogAppend } from './log-figures';
import { buildFigures } from './figures';
import {
  benchCreates, benchGet, benchPut, serverLogTails, startGfsSession, stopGfsSession, type GfsSession,
} from './gfs-figures';
import { benchFailover, benchMetadata } from './ha-figures';
import { benchHeal, benchScrub } from './heal-figures';
import { installCleanupHooks } from './lib/cleanup';

/** Leader kills measured for the failover figure. */
const failoverKills = 10;
/** Record sizes of the append figures and their baseline. */
const appendRecordSizes = [200, 4096];
import { progress } from './lib/progress';
import { clockTicksPerSec } from './lib/proc-stat';
import { MiB, formatSize } from './lib/units';
import { UsageError, parseBenchOptions, stepNames, usage, type StepName } from './options';
import type { BenchResults } from './results';
import { formatTable } from './table';

interface Step {
  name: StepName;
  /** Run first (and reported too): a figure is only printed beside a same-run baseline. */
  needs: StepName[];
  run(context: RunContext): Promise<string>;
  /** Bytes the step moves, in units of --size, when more than one (the hang guard scales with it). */
  sizeMultiple?: number;
}

interface RunContext {
  results: BenchResults;
  gfs: LazyGfsSession;
}

const steps: Record<StepName, Step> = {
  'raw-chain': {
    name: 'raw-chain',
    needs: [],
    async run({ results }) {
      const chain = (results.rawChain = await runRawChain(results.sizeBytes));
      return `${chain.mibPerSec.toFixed(1)} MiB/s, ${chain.cpuSecPerGiB.toFixed(2)} CPU-s/GiB`;
    },
  },
  'raw-read': {
    name: 'raw-read',
    needs: [],
    async run({ results }) {
      const read = (results.rawRead = await runRawRead(results.sizeBytes));
      return `${read.mibPerSec.toFixed(1)} MiB/s, ${read.cache} cache`;
    },
  },
  'raw-fsync': {
    name: 'raw-fsync',
    needs: [],
    async run({ results }) {
      const fsync = (results.rawFsync = await runRawFsync());
      return `group commit ${Math.round(fsync.groupCommitRecordsPerSec)} records/s `
        + `(${fsync.groupCommitRecordsPerSync.toFixed(1)} per sync), ${Math.round(fsync.plainSyncsPerSec)} syncs/s`;
    },
  },
  'raw-copy': {
    name: 'raw-copy',
    needs: [],
    async run({ results }) {
      const copy = (results.rawCopy = await runRawCopy(results.sizeBytes));
      return `${copy.mibPerSec.toFixed(1)} MiB/s, ${copy.cache} cache`;
    },
  },
  'raw-record-sync': {
    name: 'raw-record-sync',
    needs: [],
    async run({ results }) {
      const r = (results.rawRecordSync = runRawRecordSync(appendRecordSizes));
      return r.map((x) => `${x.recordBytes} B: ${Math.round(x.recordsPerSec)} records/s, p99 ${x.p99Ms.toFixed(2)} ms`).join('; ');
    },
  },
  append: {
    name: 'append',
    needs: ['raw-record-sync'],
    async run({ results, gfs }) {
      const r = (results.append = await benchLogAppend(await gfs.session(), appendRecordSizes, [1, 16], progress));
      const peaks = r.runs.filter((x) => x.load === 'peak').map((x) => `${x.recordBytes} B x${x.appenders} ${Math.round(x.appendsPerSec)}/s`);
      return `peak ${peaks.join(', ')}; follow ack->delivery p50 ${r.follow.ackToDeliveryP50Ms.toFixed(1)} ms`;
    },
  },
  put: {
    name: 'put',
    needs: ['raw-chain'],
    async run({ results, gfs }) {
      const put = (results.put = await benchPut(await gfs.session(), results.sizeBytes));
      return `${put.mibPerSec.toFixed(1)} MiB/s, ${put.cpuSecPerGiB.toFixed(2)} CPU-s/GiB`;
    },
  },
  get: {
    name: 'get',
    needs: ['raw-read', 'put'],
    async run({ results, gfs }) {
      if (!results.put) throw new Error('skipped: there is no file to read because put failed');
      const get = (results.get = await benchGet(await gfs.session(), results.put));
      return `${get.mibPerSec.toFixed(1)} MiB/s, ${get.cache} cache`;
    },
  },
  meta: {
    name: 'meta',
    needs: ['raw-fsync'],
    async run({ results }) {
      const meta = (results.meta = await benchMetadata());
      return meta.map((m) => `${m.masters}m/${m.clients}c ${Math.round(m.createsPerSec)}/s`).join(', ');
    },
  },
  failover: {
    name: 'failover',
    needs: [],
    async run({ results }) {
      const f = (results.failover = await benchFailover(failoverKills));
      return `median ${f.medianMs} ms, worst ${f.worstMs} ms over ${f.kills} kills`;
    },
  },
  creates: {
    name: 'creates',
    needs: ['raw-fsync'],
    async run({ results, gfs }) {
      const creates = (results.creates = await benchCreates(await gfs.session()));
      return `${Math.round(creates.createsPerSec)} creates/s (${creates.createdFiles} files)`;
    },
  },
  heal: {
    name: 'heal',
    needs: ['raw-copy'],
    // Fill (5/3 of --size on three replicas), two heals and four foreground transfers.
    sizeMultiple: 10,
    async run({ results }) {
      const heal = (results.heal = await benchHeal(results.sizeBytes));
      const { kill, foreground } = heal;
      return `full health ${(kill.fullHealthMs / 1000).toFixed(1)} s after the kill `
        + `(dead-after + ${((kill.fullHealthMs - heal.deadAfterMs) / 1000).toFixed(1)} s), `
        + `${kill.rereplicationMibPerSec.toFixed(1)} MiB/s; during healing put ${foreground.loadedPut.mibPerSec.toFixed(1)} `
        + `/ get ${foreground.loadedGet.mibPerSec.toFixed(1)} MiB/s`;
    },
  },
  scrub: {
    name: 'scrub',
    needs: ['raw-read'],
    async run({ results }) {
      const scrub = (results.scrub = await benchScrub(results.sizeBytes));
      return `${scrub.mibPerSec.toFixed(1)} MiB/s over ${formatSize(scrub.timedBytes)} of a pass, ${scrub.cache} cache `
        + `(default cap ${scrub.defaultCapMibPerSec} MiB/s)`;
    },
  },
};

/** One cluster for all gfs steps, started by the first that needs it. */
class LazyGfsSession {
  private started: Promise<GfsSession> | undefined;

  session(): Promise<GfsSession> {
    if (!this.started) {
      progress('starting a dev cluster (1 master, 3 chunkservers, random ports)');
      this.started = startGfsSession();
    }
    return this.started;
  }

  /** After a failed gfs step: the logs are in the temp dir, which is removed at exit. */
  async printLogTails(): Promise<void> {
    const session = await this.started?.catch(() => undefined);
    if (session) process.stderr.write(`${serverLogTails(session.dataDir)}\n`);
  }

  async stop(): Promise<void> {
    const session = await this.started?.catch(() => undefined);
    if (!session) return;
    progress('stopping the dev cluster');
    // A cluster that will not stop is killed by the exit hook; do not wait forever.
    await withTimeout(stopGfsSession(session), 15_000, 'stopping the dev cluster').catch((error: Error) =>
      progress(`warning: ${error.message}`));
  }
}

/** The steps asked for plus what they need, in the canonical order. */
function selectSteps(onlySteps: StepName[] | undefined): Step[] {
  const selected = new Set<StepName>();
  const add = (name: StepName): void => {
    if (selected.has(name)) return;
    selected.add(name);
    steps[name].needs.forEach(add);
  };
  (onlySteps ?? stepNames).forEach(add);
  return stepNames.filter((name) => selected.has(name)).map((name) => steps[name]);
}

/**
 * A guard against a hung step, not a measurement: long enough for a slow machine
 * (60 s plus the transfer at 5 MiB/s).
 */
function stepTimeoutMs(sizeBytes: number): number {
  return 60_000 + (sizeBytes / (5 * MiB)) * 1000;
}

async function runStep(step: Step, context: RunContext): Promise<void> {
  progress(`${step.name}: running`);
  try {
    const timeoutMs = stepTimeoutMs(context.results.sizeBytes * (step.sizeMultiple ?? 1));
    const summary = await withTimeout(step.run(context), timeoutMs, step.name);
    progress(`${step.name}: ${summary}`);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    progress(`${step.name}: FAILED: ${message}`);
    context.results.failures.push({ step: step.name, message });
    if (['put', 'get', 'creates'].includes(step.name)) await context.gfs.printLogTails();
  }
}

function withTimeout<T>(work: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
  });
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}

function machineDescription(): { cpuCount: number; cpuModel: string; nodeVersion: string; clockTicksPerSec: number } {
  return {
    cpuCount: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    nodeVersion: process.version,
    clockTicksPerSec: clockTicksPerSec(),
  };
}

function report(results: BenchResults, jsonPath: string | undefined): void {
  const machine = machineDescription();
  const figures = buildFigures(results);
  process.stdout.write(
    `gfs bench: ${formatSize(results.sizeBytes)} per transfer, ${machine.cpuCount} x ${machine.cpuModel}, `
      + `Node ${machine.nodeVersion}\n\n${formatTable(figures)}\n`,
  );
  for (const failure of results.failures) process.stdout.write(`FAILED ${failure.step}: ${failure.message}\n`);
  if (jsonPath) {
    const document = { generatedAt: new Date().toISOString(), machine, figures, results };
    writeFileSync(jsonPath, `${JSON.stringify(document, null, 2)}\n`);
    progress(`results written to ${jsonPath}`);
  }
}

async function main(): Promise<number> {
  installCleanupHooks();
  const options = parseBenchOptions(process.argv.slice(2));
  if (options === 'help') {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  const results: BenchResults = { sizeBytes: options.sizeBytes, failures: [] };
  const gfs = new LazyGfsSession();
  try {
    for (const step of selectSteps(options.onlySteps)) await runStep(step, { results, gfs });
  } finally {
    await gfs.stop();
  }
  report(results, options.jsonPath);
  return results.failures.length === 0 ? 0 : 1;
}

// process.exit, not a natural end: a client handle left open must not keep a finished
// run alive, and the exit hook then removes whatever is left.
main().then(
  (exitCode) => process.exit(exitCode),
  (error: unknown) => {
    if (error instanceof UsageError) {
      process.stderr.write(`bench: ${error.message}\n\n${usage}\n`);
      process.exit(2);
    }
    process.stderr.write(`bench: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
    process.exit(1);
  },
);
