/**
 * The server command line, on the built `gfs` binary: bad numbers end the process with
 * one line naming the flag (they used to reach the servers as NaN, or `--replication 0`
 * silently became 3), and the default admin port follows --listen, so two masters or two
 * chunkservers fit on one host (issue 9 items 3 and 13).
 */
import t from 'tap';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { spawn, type ChildProcess } from 'node:child_process';
import { GFS, tempDir } from './helpers';
import { limits } from '../../src/common/limits';
import { durationText, sizeText } from '../../src/common/units';

interface Exit { code: number | null; stderr: string }

/** Runs gfs to its exit; a server that starts instead is killed after a while and fails the check. */
function run(args: string[], env: Record<string, string> = {}, waitMs = 15_000): Promise<Exit & { startedInstead: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [GFS, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let startedInstead = false;
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.stdout.on('data', (d: Buffer) => { if (d.toString().includes('"ready"')) { startedInstead = true; child.kill('SIGKILL'); } });
    const timer = setTimeout(() => { startedInstead = true; child.kill('SIGKILL'); }, waitMs);
    child.on('error', reject);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stderr, startedInstead }); });
  });
}

t.test('gfs: a bad number, duration, size or rate in a server flag exits non-zero with one line naming the flag', async (t) => {
  const dir = tempDir(t);
  const master = ['master', '--data', path.join(dir, 'm'), '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'];
  const chunkserver = ['chunkserver', '--data', path.join(dir, 'cs'), '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--masters', '127.0.0.1:1'];
  const cases: [string, string[], Record<string, string>?][] = [
    ['--dead-after', [...master, '--dead-after', 'abc']],
    ['--dead-after', [...master, '--dead-after', '0s']],
    ['--replication', [...master, '--replication', '0']],
    ['--replication', [...master, '--replication', '-1']],
    ['--replication', [...master, '--replication', 'abc']],
    ['--replication', [...master, '--replication', '2.5']],
    ['--replication', master, { GFS_REPLICATION: 'abc' }],
    ['--checkpoint-every', [...master, '--checkpoint-every', 'x']],
    ['--wal-segment-size', [...master, '--wal-segment-size', '-64MiB']],
    ['--election-ttl', [...master, '--election-ttl', '200ms']],
    ['--safe-mode-fraction', [...master, '--safe-mode-fraction', '1.5']],
    ['--repair-concurrency', [...master, '--repair-concurrency', '0']],
    ['--repair-bandwidth', [...master, '--repair-bandwidth', 'fast']],
    ['--balance-threshold', [...master, '--balance-threshold', 'abc']],
    ['--fill-cap', [...master, '--fill-cap', '-0.5']],
    ['--listen', ['master', '--data', path.join(dir, 'm'), '--listen', '127.0.0.1']],
    ['--heartbeat-interval', [...chunkserver, '--heartbeat-interval', 'often']],
    ['--capacity', [...chunkserver, '--capacity', '-10GiB']],
    ['--scrub-rate', [...chunkserver, '--scrub-rate', '0MiB/s']],
    ['--replicate-rate', [...chunkserver, '--replicate-rate', 'NaN']],
    ['--chunkservers', ['dev', '--data', path.join(dir, 'dev'), '--chunkservers', 'three']],
    ['--base-port', ['dev', '--data', path.join(dir, 'dev'), '--base-port', '70000']],
  ];
  // A few at a time: each is a Node start-up.
  for (let i = 0; i < cases.length; i += 4) {
    await Promise.all(cases.slice(i, i + 4).map(async ([flag, args, env]) => {
      const what = `${args.slice(-2).join(' ')}${env ? ` ${JSON.stringify(env)}` : ''}`;
      const r = await run(args, env);
      t.notOk(r.startedInstead, `${what}: refused, not started`);
      t.not(r.code, 0, `${what}: non-zero exit`);
      const lines = r.stderr.trim().split('\n');
      t.match(lines[0], flag, `${what}: the error names ${flag}: ${lines[0]}`);
      t.ok(lines.length <= 2, `${what}: one line (and a hint), not a page`);
      const given = env ? Object.values(env)[0]! : args.at(-1)!;
      t.notOk(r.stderr.replaceAll(given, '').includes('NaN'), `${what}: no NaN`);
    }));
  }
});

t.test('gfs: --help shows the defaults the servers use, from limits', async (t) => {
  const help = async (cmd: string) => (await new Promise<string>((resolve) => {
    const child = spawn(process.execPath, [GFS, cmd, '--help'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.on('close', () => resolve(out));
  })).replace(/\s+/g, ' ');
  const master = await help('master');
  t.match(master, `--dead-after <duration> declare a silent chunkserver dead after (default: ${durationText(limits.deadAfterMs)}`);
  t.match(master, `(default: ${limits.replicationDefault}`);
  t.match(master, `(default: ${sizeText(limits.walSegmentBytes)}`);
  t.match(master, `--listen port + ${limits.masterAdminPortOffset}`);
  const chunkserver = await help('chunkserver');
  t.match(chunkserver, `heartbeat period (default: ${durationText(limits.heartbeatIntervalMs)}`);
  t.match(chunkserver, `--listen port + ${limits.chunkserverAdminPortOffset}`);
  const dev = await help('dev');
  t.match(dev, `(default: ${durationText(limits.deadAfterMs)}`);
  t.match(dev, `(default: ${durationText(limits.heartbeatIntervalMs)}`);
});

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer().once('error', () => resolve(false)).listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** A free port whose +offset is free too (the admin port the server will derive). */
async function portPair(offset: number, taken: Set<number>): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 30_000);
    if (taken.has(port) || taken.has(port + offset)) continue;
    if (await portFree(port) && await portFree(port + offset)) {
      taken.add(port);
      taken.add(port + offset);
      return port;
    }
  }
}

/** Starts a server and resolves with its ready line. */
function start(t: { teardown(fn: () => unknown): void }, args: string[]): Promise<{ child: ChildProcess; addr: string; admin: string }> {
  const child = spawn(process.execPath, [GFS, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  t.teardown(async () => { if (child.exitCode === null && child.signalCode === null) { child.kill('SIGTERM'); await exited; } });
  return new Promise((resolve, reject) => {
    readline.createInterface({ input: child.stdout! }).once('line', (line) => {
      const ready = JSON.parse(line) as { addr: string; admin: string };
      resolve({ child, ...ready });
    });
    child.once('exit', (code) => reject(new Error(`gfs ${args[0]} exited with ${code}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`)));
  });
}

t.test('gfs: two masters and two chunkservers on one host start with default admin ports and both serve /healthz', async (t) => {
  const dir = tempDir(t);
  const taken = new Set<number>();
  const masterPorts = [await portPair(limits.masterAdminPortOffset, taken), await portPair(limits.masterAdminPortOffset, taken)];
  const csPorts = [await portPair(limits.chunkserverAdminPortOffset, taken), await portPair(limits.chunkserverAdminPortOffset, taken)];
  const masters = await Promise.all(masterPorts.map((p, i) => start(t, ['master', '--id', `m${i + 1}`, '--data', path.join(dir, `master-${i + 1}`), '--listen', `127.0.0.1:${p}`])));
  const chunkservers = await Promise.all(csPorts.map((p, i) => start(t, [
    'chunkserver', '--data', path.join(dir, `cs-${i + 1}`), '--listen', `127.0.0.1:${p}`, '--masters', masters[i]!.addr,
  ])));
  for (const [i, m] of masters.entries()) t.equal(m.admin, `127.0.0.1:${masterPorts[i]! + limits.masterAdminPortOffset}`, `master ${i + 1}: admin at its listen port + ${limits.masterAdminPortOffset}`);
  for (const [i, c] of chunkservers.entries()) t.equal(c.admin, `127.0.0.1:${csPorts[i]! + limits.chunkserverAdminPortOffset}`, `chunkserver ${i + 1}: admin at its listen port + ${limits.chunkserverAdminPortOffset}`);
  for (const p of [...masters, ...chunkservers]) {
    const res = await fetch(`http://${p.admin}/healthz`);
    t.equal(res.status, 200, `${p.admin}/healthz answers`);
  }
});
