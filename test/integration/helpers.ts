/**
 * Shared pieces of the integration tests: a real cluster of child processes on random
 * loopback ports in a temp dir (stopped at teardown, even when a test fails), the real
 * gfsctl binary, and random data with its hash.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawn } from 'node:child_process';
import { startDevCluster, type DevCluster, type DevClusterOptions } from '../../src/dev/cluster';
import { GfsClient } from '../../src/client';
import { initChecksums } from '../../src/common/checksum';

export const GFSCTL = path.resolve(__dirname, '..', '..', 'cli', 'gfsctl.js');
export const GFS = path.resolve(__dirname, '..', '..', 'cli', 'gfs.js');
export const MiB = 1024 * 1024;

interface Teardown { teardown(fn: () => unknown): void; passing?(): boolean }

/** After a failed test, the last lines of every server log (the temp dir is removed next). */
export function printLogTails(dataDir: string): void {
  const logDir = path.join(dataDir, 'logs');
  if (!fs.existsSync(logDir)) return;
  for (const name of fs.readdirSync(logDir)) {
    const lines = fs.readFileSync(path.join(logDir, name), 'utf8').trimEnd().split('\n').slice(-15);
    process.stderr.write(`--- ${name} (last ${lines.length} lines)\n${lines.join('\n')}\n`);
  }
}

export function tempDir(t: Teardown, prefix = 'gfs-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export async function cluster(t: Teardown, opts: Partial<DevClusterOptions> = {}): Promise<{ cluster: DevCluster; client: GfsClient; dir: string }> {
  await initChecksums();
  const dir = tempDir(t);
  const c = await startDevCluster({ dataDir: path.join(dir, 'cluster'), basePort: 0, chunkservers: 3, logLevel: 'info', ...opts });
  const client = new GfsClient({ masters: c.masters });
  t.teardown(async () => {
    await client.close();
    await c.stop();
    if (t.passing && !t.passing()) printLogTails(c.dataDir);
  });
  return { cluster: c, client, dir };
}

export interface CmdResult { code: number | null; stdout: Buffer; stderr: string }

/** GFS_TOKEN from a gfs dev data dir's bootstrap credentials.json. */
export function tokenEnv(dataDir: string): Record<string, string> {
  return { GFS_TOKEN: (JSON.parse(fs.readFileSync(path.join(dataDir, 'credentials.json'), 'utf8')) as { token: string }).token };
}

/** Runs the real gfsctl binary. */
export function gfsctl(masters: string[], args: string[], stdin?: Buffer | string, env: Record<string, string> = {}): Promise<CmdResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [GFSCTL, ...args], {
      env: { ...process.env, GFS_MASTERS: masters.join(','), ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr: err }));
    child.stdin.on('error', () => undefined);
    if (stdin !== undefined) child.stdin.end(stdin);
    else child.stdin.end();
  });
}

/** Writes `bytes` of random data to a file; returns its sha256. */
export function randomFile(file: string, bytes: number): string {
  const hash = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'w');
  const block = 4 * MiB;
  // One random block varied per position: random enough, and cheap to make.
  const seed = crypto.randomBytes(block);
  for (let off = 0; off < bytes; off += block) {
    const n = Math.min(block, bytes - off);
    seed.writeUInt32LE(off / block, 0);
    seed.writeUInt32LE(crypto.randomInt(2 ** 31), 64 * 1024);
    const piece = seed.subarray(0, n);
    hash.update(piece);
    fs.writeSync(fd, piece);
  }
  fs.closeSync(fd);
  return hash.digest('hex');
}

export function sha256File(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

export function sha256(buf: Buffer): string {
  return crypto.createHash('sha256').update(buf).digest('hex');
}

/** Deterministic, non-repeating bytes (a different stream per seed), cheap to make in bulk. */
export function patterned(bytes: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(bytes);
  for (let k = 0; k + 4 <= bytes; k += 4) b.writeUInt32LE((seed * 2246822519 + k * 3266489917) >>> 0, k);
  return b;
}

/** Polls `fn` until it returns a truthy value or the time is up. */
export async function eventually<T>(fn: () => Promise<T> | T, timeoutMs = 15_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) { last = e; }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Path of a chunk's data file inside a chunkserver data dir. */
export function chunkFile(dataDir: string, handle: number): string {
  return path.join(dataDir, 'chunks', (handle & 0xff).toString(16).padStart(2, '0'), `${handle.toString(16).padStart(16, '0')}.chk`);
}

/**
 * Where a follower's bytes part from the log's: '' when equal, else both lengths, the
 * first differing offset, both sides around it (JSON-quoted), and the followed piece
 * holding that offset (pieces: [offset, length] as yielded), so a failure says whether
 * the follower got a gap, a duplicate or bytes the log does not have.
 */
export function followDiff(got: Buffer, want: Buffer, pieces: readonly [number, number][] = []): string {
  if (got.equals(want)) return '';
  let at = 0;
  const n = Math.min(got.length, want.length);
  while (at < n && got[at] === want[at]) at++;
  const around = (b: Buffer) => JSON.stringify(b.subarray(Math.max(0, at - 60), at + 60).toString('latin1'));
  const piece = pieces.findIndex(([o, l]) => o <= at && at < o + l);
  const near = piece < 0 ? 'none' : pieces.slice(Math.max(0, piece - 2), piece + 3).map(([o, l]) => `${o}+${l}`).join(' ');
  return `followed ${got.length} bytes, the log has ${want.length}; first difference at ${at}` +
    `\n  followed[${Math.max(0, at - 60)}..]: ${around(got)}\n  log[${Math.max(0, at - 60)}..]:      ${around(want)}` +
    `\n  followed pieces (offset+length) around it: ${near}`;
}

/** Runs `promtool check metrics` on a scrape; resolves with its exit code and its lint output. */
export function promtoolCheck(text: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => { output += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { output += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
    child.stdin.end(text);
  });
}

/** Polls `fn` until it returns something other than undefined (errors are retried too) or the time is up. */
export function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000): Promise<T> {
  return eventually(async () => (await fn()) as T, timeoutMs, what);
}
