import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { lockDataDir, dataDirHolder, assertDataDirFree, dataDirLockFileName } from '../../src/common/data-dir-lock';
import { isGfsError } from '../../src/common/errors';
import { restartDelayMs } from '../../src/dev/restart-backoff';
import { limits } from '../../src/common/limits';

function dir(t: { teardown(fn: () => void): void }): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'gfs-lock-'));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

/** A pid that ran and is gone (a child that exited and was reaped). */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', '0']).pid!;
}

function lockLine(fields: Record<string, unknown>): string {
  return `${JSON.stringify({ start: null, boot: null, host: os.hostname(), ...fields })}\n`;
}

t.test('data-dir lock: a second taker is refused with the holder pid until the first releases', async (t) => {
  const d = dir(t);
  const lock = lockDataDir(d);
  t.equal(dataDirHolder(d)?.pid, process.pid);
  const err = (() => { try { lockDataDir(d); return undefined; } catch (e) { return e; } })();
  t.ok(isGfsError(err, 'ALREADY_EXISTS'), 'refused');
  t.match((err as Error).message, new RegExp(`in use by pid ${process.pid} `));
  t.notMatch((err as Error).message, /\n/, 'one line');
  t.throws(() => assertDataDirFree(d), /in use by pid/);
  lock.release();
  t.equal(dataDirHolder(d), null);
  t.notOk(fs.existsSync(path.join(d, dataDirLockFileName)), 'release removes LOCK');
  lockDataDir(d).release();
  t.same(fs.readdirSync(d), [], 'no temp files left behind');
});

t.test('data-dir lock: the stale lock of a dead pid is taken over', async (t) => {
  const d = dir(t);
  fs.writeFileSync(path.join(d, dataDirLockFileName), lockLine({ pid: deadPid() }));
  t.equal(dataDirHolder(d), null, 'stale');
  const lock = lockDataDir(d);
  t.equal(dataDirHolder(d)?.pid, process.pid);
  lock.release();
});

t.test('data-dir lock: a reused pid (another start time) or another boot does not hold the lock', async (t) => {
  const d = dir(t);
  const file = path.join(d, dataDirLockFileName);
  fs.writeFileSync(file, lockLine({ pid: process.pid, start: '1' }));
  t.equal(dataDirHolder(d), null, 'pid runs but started at another time');
  fs.writeFileSync(file, lockLine({ pid: process.pid, boot: 'another-boot' }));
  t.equal(dataDirHolder(d), null, 'written before a reboot');
  fs.writeFileSync(file, 'garbage');
  lockDataDir(d).release();
  t.notOk(fs.existsSync(file), 'an unreadable lock is replaced, then released');
});

t.test('data-dir lock: a lock written on another host always counts as held', async (t) => {
  const d = dir(t);
  fs.writeFileSync(path.join(d, dataDirLockFileName), lockLine({ pid: deadPid(), host: 'elsewhere.example' }));
  t.throws(() => lockDataDir(d), /in use by pid \d+ on host elsewhere\.example/);
  t.ok(fs.existsSync(path.join(d, dataDirLockFileName)), 'left in place');
});

t.test('data-dir lock: a takeover in progress is waited out; an abandoned one is cleared', async (t) => {
  const d = dir(t);
  const file = path.join(d, dataDirLockFileName);
  fs.writeFileSync(file, lockLine({ pid: deadPid() }));
  const mutex = `${file}.takeover`;
  fs.mkdirSync(mutex);
  const old = new Date(Date.now() - limits.dataDirTakeoverStaleMs - 1000);
  fs.utimesSync(mutex, old, old);
  const lock = lockDataDir(d);
  t.notOk(fs.existsSync(mutex), 'abandoned takeover removed');
  lock.release();
  fs.writeFileSync(file, lockLine({ pid: deadPid() }));
  fs.mkdirSync(mutex);
  t.throws(() => lockDataDir(d), /other processes keep taking it over/, 'a fresh takeover is not broken into');
  t.ok(fs.existsSync(file), 'the stale lock is left to the taker');
});

t.test('dev restart backoff: doubles from the minimum to the maximum, back to the minimum after a stable run', async (t) => {
  const min = limits.devRestartBackoffMinMs;
  t.equal(restartDelayMs(undefined, 0), min);
  let d: number = min;
  const seen = [d];
  for (let i = 0; i < 20; i++) { d = restartDelayMs(d, 10); seen.push(d); }
  t.equal(seen[1], 2 * min);
  t.equal(Math.max(...seen), limits.devRestartBackoffMaxMs, 'bounded');
  t.equal(seen.at(-1), limits.devRestartBackoffMaxMs);
  t.equal(restartDelayMs(limits.devRestartBackoffMaxMs, limits.devRestartStableMs), min, 'a long run resets it');
});
