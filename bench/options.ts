/** Command line of `npm run bench` (after `--`): which steps, how big, where to put JSON. */
import { parseArgs } from 'node:util';
import { parseSizeBytes } from '../src/common/units';

export const stepNames = [
  'raw-chain', 'raw-read', 'raw-fsync', 'raw-copy', 'raw-record-sync', 'put', 'get', 'creates', 'append', 'meta', 'failover', 'heal', 'scrub',
] as const;
export type StepName = (typeof stepNames)[number];

/** A mistake on the command line: reported as one line and the usage, no stack. */
export class UsageError extends Error {}

export interface BenchOptions {
  sizeBytes: number;
  /** Steps asked for, before their dependencies are added. */
  onlySteps: StepName[] | undefined;
  jsonPath: string | undefined;
}

export const usage = `usage: node dist/bench/run.js [--size 1GiB] [--only STEP,...] [--json FILE]

  --size   bytes moved by the throughput figures (env GFS_BENCH_SIZE; default 1GiB);
           heal: the bytes the killed chunkserver holds (its foreground ops move a quarter)
  --only   steps to run: ${stepNames.join(', ')}
           (a gfs step brings its baseline along, and get and the CPU figure need put)
  --json   also write every result to FILE

Every figure is printed beside a baseline measured in the same run on this machine;
nothing here passes or fails on timings.`;

export function parseBenchOptions(argv: string[]): BenchOptions | 'help' {
  try {
    return parseValidated(argv);
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

function parseValidated(argv: string[]): BenchOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      size: { type: 'string' },
      only: { type: 'string' },
      json: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  const sizeBytes = parseSizeBytes(values.size ?? process.env.GFS_BENCH_SIZE ?? '1GiB');
  if (sizeBytes < 1) throw new Error('--size must be at least one byte');
  return { sizeBytes, onlySteps: values.only === undefined ? undefined : parseSteps(values.only), jsonPath: values.json };
}

function parseSteps(list: string): StepName[] {
  return list.split(',').map((name) => name.trim()).filter((name) => name !== '').map((name) => {
    if (!(stepNames as readonly string[]).includes(name)) {
      throw new Error(`unknown step "${name}" in --only (known: ${stepNames.join(', ')})`);
    }
    return name as StepName;
  });
}
