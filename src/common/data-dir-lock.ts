/**
 * An exclusive lock on a server's data dir, held for the process's whole life, so two
 * processes never open the same WAL, epoch file or chunk index. A server takes it
 * before it opens or writes anything else in the dir.
 *
 * The lock is the file `<dir>/LOCK`, one JSON line naming its holder: pid, the
 * process's start time (from /proc, so a reused pid is not mistaken for the holder),
 * the boot id (a reboot frees every lock) and the host. It is created with link(2)
 * from a temp file that already holds the full line: link is atomic and fails with
 * EEXIST when LOCK exists, so two starters never both win and a reader never sees a
 * half-written lock.
 *
 * Why a lock file and not flock(2): Node has no flock without a native addon (the
 * project has none), and a file that names its holder is what the refused process
 * needs to say who is in the way. The price is the stale lock a kill -9 leaves behind.
 * A lock is stale when its holder is not running: no such pid, a pid now used by a
 * process that started at another time, or another boot. A stale lock is replaced
 * only inside the takeover mutex `LOCK.takeover` (mkdir is atomic) and is re-read
 * inside it, so a live lock is never removed by anyone but its holder. A takeover dir
 * older than `dataDirTakeoverStaleMs` belongs to a starter that died inside those few
 * system calls and is removed. A lock written on another host (a shared filesystem)
 * cannot be checked and always counts as held.
 *
 * Nothing is fsynced: a lock only has to outlive its holder, and a crash of the
 * machine frees it anyway (new boot id).
 *
 * Invariants: at most one running process holds a dir's lock; a holder removes LOCK
 * only while it still holds its own line.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GfsError } from './errors';
import { limits } from './limits';

export const dataDirLockFileName = 'LOCK';

export interface LockHolder {
  pid: number;
  /** Start time of the process in clock ticks since boot (/proc/<pid>/stat field 22), when known. */
  start: string | null;
  boot: string | null;
  host: string;
}

export interface DataDirLock {
  readonly dir: string;
  readonly file: string;
  /** Removes LOCK if it is still this process's. Idempotent. */
  release(): void;
}

/** Locks held by this process, released at exit when their owner did not. */
const held = new Set<DataDirLock>();
let exitHookInstalled = false;

function readProc(file: string): string | null {
  try { return fs.readFileSync(file, 'utf8'); } catch { return null; }
}

/** Fields of /proc/<pid>/stat after the parenthesised command name (field 3, state, first). */
function procStat(pid: number): string[] | null {
  const stat = readProc(`/proc/${pid}/stat`);
  return stat === null ? null : stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

function processStart(pid: number): string | null {
  return procStat(pid)?.[19] ?? null; // field 22, starttime
}

function bootId(): string | null {
  return readProc('/proc/sys/kernel/random/boot_id')?.trim() ?? null;
}

function thisProcess(): LockHolder {
  return { pid: process.pid, start: processStart(process.pid), boot: bootId(), host: os.hostname() };
}

/** Whether the process a lock names still runs (true when that cannot be known). */
export function holderRunning(holder: LockHolder): boolean {
  if (holder.host !== os.hostname()) return true;
  const boot = bootId();
  if (holder.boot && boot && holder.boot !== boot) return false;
  try {
    process.kill(holder.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
    // EPERM: the pid runs under another user.
  }
  const stat = procStat(holder.pid);
  // A zombie (killed, not yet reaped by its parent) no longer holds anything.
  if (stat && (stat[0] === 'Z' || stat[0] === 'X')) return false;
  const start = stat?.[19] ?? null;
  return !(holder.start && start && holder.start !== start);
}

type ReadResult = { kind: 'absent' } | { kind: 'holder'; holder: LockHolder; text: string } | { kind: 'garbage'; text: string };

function readLock(file: string): ReadResult {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'absent' };
    throw e;
  }
  try {
    const h = JSON.parse(text) as LockHolder;
    if (Number.isInteger(h.pid) && h.pid > 0 && typeof h.host === 'string') return { kind: 'holder', holder: h, text };
  } catch { /* below */ }
  // Only this module writes LOCK, always whole (link of a complete file): an unreadable
  // one is from a power loss or an outside hand, and its writer is gone.
  return { kind: 'garbage', text };
}

/** The running process that holds `dir`'s lock, or null when it is free (or stale). */
export function dataDirHolder(dir: string): LockHolder | null {
  const r = readLock(path.join(dir, dataDirLockFileName));
  return r.kind === 'holder' && holderRunning(r.holder) ? r.holder : null;
}

function inUse(dir: string, holder: LockHolder): GfsError {
  const where = holder.host === os.hostname() ? '' : ` on host ${holder.host}`;
  return new GfsError('ALREADY_EXISTS',
    `data dir ${dir} is in use by pid ${holder.pid}${where} (lock file ${path.join(dir, dataDirLockFileName)}); stop that process or use another data dir`,
    { detail: { pid: String(holder.pid) } });
}

/** Refuses (ALREADY_EXISTS, naming the pid) when a running process holds `dir`. */
export function assertDataDirFree(dir: string): void {
  const holder = dataDirHolder(dir);
  if (holder) throw inUse(dir, holder);
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Removes LOCK if it still holds `staleText` and its holder is still not running, under
 * the takeover mutex. Returns without removing when another starter is taking over.
 */
function removeStale(file: string, staleText: string): void {
  const mutex = `${file}.takeover`;
  try {
    fs.mkdirSync(mutex);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    try {
      if (Date.now() - fs.statSync(mutex).mtimeMs > limits.dataDirTakeoverStaleMs) fs.rmdirSync(mutex);
    } catch { /* gone meanwhile */ }
    return;
  }
  try {
    const now = readLock(file);
    if (now.kind === 'absent' || now.text !== staleText) return;
    if (now.kind === 'holder' && holderRunning(now.holder)) return;
    fs.unlinkSync(file);
  } finally {
    fs.rmdirSync(mutex);
  }
}

/**
 * Takes `dir`'s lock (creating the dir if needed) or throws ALREADY_EXISTS naming the
 * running holder. The lock is released by release() or, at the latest, at process exit.
 */
export function lockDataDir(dir: string): DataDirLock {
  const absolute = path.resolve(dir);
  fs.mkdirSync(absolute, { recursive: true });
  const file = path.join(absolute, dataDirLockFileName);
  const line = `${JSON.stringify(thisProcess())}\n`;
  const temp = `${file}.${process.pid}.${Math.floor(Math.random() * 2 ** 32).toString(16)}.tmp`;
  fs.writeFileSync(temp, line, { flag: 'wx' });
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        fs.linkSync(temp, file);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const current = readLock(file);
      if (current.kind === 'holder' && holderRunning(current.holder)) throw inUse(absolute, current.holder);
      if (attempt >= limits.dataDirLockAttemptsMax) {
        throw new GfsError('UNAVAILABLE', `could not take the lock of data dir ${absolute}: other processes keep taking it over; retry`);
      }
      if (current.kind !== 'absent') removeStale(file, current.text);
      sleepSync(attempt === 0 ? 0 : limits.dataDirLockRetryMs);
    }
  } finally {
    fs.rmSync(temp, { force: true });
  }
  const lock: DataDirLock = {
    dir: absolute,
    file,
    release() {
      if (!held.delete(lock)) return;
      const r = readLock(file);
      if (r.kind !== 'absent' && r.text === line) fs.rmSync(file, { force: true });
    },
  };
  held.add(lock);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => { for (const l of [...held]) l.release(); });
  }
  return lock;
}
