/**
 * Named failpoints (after etcd's gofail). No-ops unless switched on, either by a test
 * in-process (`enableFailpoint`) or for a child process through the environment:
 * GFS_FAILPOINTS="wal.beforeFsync=crash,chunk.afterWriteBeforeRename=crash".
 *
 * Actions: `crash` (exit the process at once, like kill -9), `error` (throw an IO_ERROR),
 * `sleep:<ms>` (stall).
 */
import { GfsError } from './errors';
import { sleep, systemClock } from './clock';

type Action = { kind: 'crash' } | { kind: 'error' } | { kind: 'sleep'; ms: number };
const active = new Map<string, Action>();

function parseAction(text: string): Action {
  if (text === 'crash') return { kind: 'crash' };
  if (text === 'error') return { kind: 'error' };
  const m = /^sleep:(\d+)$/.exec(text);
  if (m) return { kind: 'sleep', ms: Number(m[1]) };
  throw new Error(`unknown failpoint action "${text}"`);
}

for (const item of (process.env.GFS_FAILPOINTS ?? '').split(',').filter(Boolean)) {
  const [name, action] = item.split('=');
  active.set(name!, parseAction(action ?? 'crash'));
}

export function enableFailpoint(name: string, action: string): void { active.set(name, parseAction(action)); }
export function disableFailpoint(name: string): void { active.delete(name); }

/** Call at the instant that matters; resolves at once unless the failpoint is on. */
export async function failpoint(name: string): Promise<void> {
  if (active.size === 0) return;
  const a = active.get(name);
  if (!a) return;
  if (a.kind === 'crash') process.kill(process.pid, 'SIGKILL');
  if (a.kind === 'error') throw new GfsError('IO_ERROR', `failpoint ${name}`);
  if (a.kind === 'sleep') await sleep(systemClock, a.ms);
}
