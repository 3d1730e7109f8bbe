/**
 * CPU time of other processes, read from /proc/<pid>/stat (Linux). Used for processes
 * the bench did not fork itself and so cannot ask for process.cpuUsage(): the
 * cluster's masters and chunkservers.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

let clockTicksPerSecCached: number | undefined;

/** utime and stime are counted in clock ticks; getconf is asked once per run. */
export function clockTicksPerSec(): number {
  if (clockTicksPerSecCached === undefined) {
    const text = execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    const ticks = Number(text.trim());
    clockTicksPerSecCached = Number.isInteger(ticks) && ticks > 0 ? ticks : 100;
  }
  return clockTicksPerSecCached;
}

interface ProcStat {
  parentPid: number;
  cpuTicks: number;
}

function readProcStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined; // the process is gone
  }
  // Field 2, the command name, may hold spaces and parentheses; everything after the
  // last ')' is space-separated, starting with field 3 (state).
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const parentPid = Number(fields[1]); // field 4
  const userTicks = Number(fields[11]); // field 14, utime
  const systemTicks = Number(fields[12]); // field 15, stime
  return { parentPid, cpuTicks: userTicks + systemTicks };
}

/** User + system CPU seconds a live process has used so far, or undefined once it has exited. */
export function processCpuSec(pid: number): number | undefined {
  const stat = readProcStat(pid);
  return stat === undefined ? undefined : stat.cpuTicks / clockTicksPerSec();
}

/**
 * CPU seconds used so far by `pids` together. A process that has exited counts nothing
 * (healing outlives the chunkserver it lost), unless `requireAlive`: a figure that must
 * cover every server (put's CPU per GiB) fails instead of coming out low.
 */
export function totalCpuSec(pids: readonly number[], opts: { requireAlive?: boolean } = {}): number {
  let cpuSec = 0;
  for (const pid of pids) {
    const processSec = processCpuSec(pid);
    if (processSec === undefined && opts.requireAlive) throw new Error(`server process ${pid} exited during the benchmark`);
    cpuSec += processSec ?? 0;
  }
  return cpuSec;
}

/** Every live process below rootPid in the process tree (children, grandchildren, ...). */
export function descendantPids(rootPid: number): number[] {
  const childrenByParent = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    const stat = readProcStat(pid);
    if (stat === undefined) continue;
    const siblings = childrenByParent.get(stat.parentPid) ?? [];
    siblings.push(pid);
    childrenByParent.set(stat.parentPid, siblings);
  }
  const found: number[] = [];
  const pending = [rootPid];
  while (pending.length > 0) {
    for (const child of childrenByParent.get(pending.pop()!) ?? []) {
      found.push(child);
      pending.push(child);
    }
  }
  return found;
}
