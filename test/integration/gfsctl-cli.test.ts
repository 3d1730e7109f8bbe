/**
 * gfsctl as a user meets it, on one real cluster: usage errors are one line, a hint and
 * exit 2 before anything is sent; failures are one line and exit 1; bad numbers never
 * reach the master; a goal above the live nodes is accepted with a stated warning;
 * listings are truthful; rm of a non-empty directory hints at -r; get's progress bar
 * advances on a terminal.
 */
import t, { type Test } from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { cluster, gfsctl, GFSCTL, MiB, patterned, sha256, sha256File, type CmdResult } from './helpers';

function usageError(t: Test, r: CmdResult, pattern: RegExp): void {
  t.equal(r.code, 2, `usage error exits 2: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  t.equal(lines.length, 1, `one line on stderr: ${JSON.stringify(r.stderr)}`);
  t.match(lines[0], pattern);
  t.match(lines[0], /; see gfsctl --help$/, 'with a hint');
  t.notMatch(r.stderr, /NaN|INTERNAL|Usage:/, 'no NaN on the wire, no help dump');
}

function failure(t: Test, r: CmdResult, pattern: RegExp): void {
  t.equal(r.code, 1, `a failed command exits 1: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  t.equal(lines.length, 1, `one line on stderr: ${JSON.stringify(r.stderr)}`);
  t.match(lines[0], pattern);
}

/** Runs gfsctl with stderr on a pseudo-terminal (util-linux `script`); returns what the terminal showed. */
function onTty(masters: string[], args: string[]): Promise<{ code: number | null; screen: string }> {
  const cmd = [process.execPath, GFSCTL, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-q', '-e', '-c', cmd, '/dev/null'], {
      env: { ...process.env, GFS_MASTERS: masters.join(',') }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let screen = '';
    child.stdout.on('data', (d: Buffer) => { screen += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, screen }));
  });
}

t.test('gfsctl: usage, failures, validation, listings and progress on one cluster', async (t) => {
  const { cluster: c, client, dir } = await cluster(t, { heartbeatIntervalMs: 200 });
  const m = c.masters;
  const local = path.join(dir, 'three.bin');
  const data = patterned(3 * MiB, 7);
  fs.writeFileSync(local, data);

  await t.test('usage errors: one line, a hint, exit 2, nothing sent', async (t) => {
    const unknown = await gfsctl(m, ['frob']);
    usageError(t, unknown, /^gfsctl: unknown command 'frob'/);

    const started = Date.now();
    const noPort = await gfsctl(['127.0.0.1'], ['ls', '/']);
    usageError(t, noPort, /^gfsctl: invalid GFS_MASTERS '127\.0\.0\.1': .*no port.*7000/);
    usageError(t, await gfsctl(m, ['--masters', m[0]!.replace(/:\d+$/, ''), 'ls', '/']), /^gfsctl: invalid --masters .*no port; masters listen on 7000/);
    t.ok(Date.now() - started < 10_000, 'refused at once, not after trying port 443');

    usageError(t, await gfsctl(m, ['--retries', 'abc', 'ls', '/']), /^gfsctl: invalid --retries 'abc': expected a whole number >= 0/);
    usageError(t, await gfsctl(m, ['--deadline', 'soon', 'ls', '/']), /^gfsctl: invalid --deadline 'soon'/);
    usageError(t, await gfsctl(m, ['balance', '--threshold', 'abc']), /^gfsctl: invalid --threshold 'abc': expected a number above 0 and at most 1/);
    for (const bad of ['0', '-1', 'abc', '2.5', '17']) {
      usageError(t, await gfsctl(m, ['put', '--replication', bad, local, `/cli/r${bad}`]), new RegExp(`^gfsctl: invalid --replication '${bad.replace('.', '\\.')}': expected a whole number from 1 to 16`));
    }
    usageError(t, await gfsctl(m, ['put', local]), /^gfsctl: missing required argument 'remote'/);
    const ls = await gfsctl(m, ['ls', '-R', '/']);
    t.equal(ls.stdout.toString(), '', 'no usage error created anything');
  });

  await t.test('failures of every kind exit 1 with one line', async (t) => {
    failure(t, await gfsctl(m, ['decommission', 'nosuchnode']), /^gfsctl: INVALID_ARGUMENT: /);
    failure(t, await gfsctl(m, ['rm', '/nothing/here']), /^gfsctl: NO_SUCH_FILE: /);
    failure(t, await gfsctl(m, ['stat', '/nothing']), /^gfsctl: NO_SUCH_FILE: /);
  });

  await t.test('put --replication above the live nodes: accepted with a stated warning', async (t) => {
    const r = await gfsctl(m, ['put', '--replication', '5', local, '/cli/goal5.bin']);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stderr, /^gfsctl: warning: replication 5 but only 3 chunkservers are alive; .*\(goal 5, only 3 nodes\)/);
    t.equal((await client.stat('/cli/goal5.bin')).replication, 5, 'the goal is what was asked');
    const ok = await gfsctl(m, ['put', '--replication', '2', local, '/cli/goal2.bin']);
    t.equal(ok.code, 0);
    t.equal(ok.stderr, '', 'no warning for a goal the nodes can meet');
    await t.rejects(client.put(Buffer.from('x'), '/cli/zero', { replication: 0 }), { code: 'INVALID_ARGUMENT' }, 'the library refuses 0 too: on the wire it would mean the default');
    await t.rejects(client.put(Buffer.from('x'), '/cli/nan', { replication: NaN }), { code: 'INVALID_ARGUMENT' }, 'and NaN');
  });

  await t.test('ls --json tells no lie about chunks; stat --json lists them', async (t) => {
    const ls = JSON.parse((await gfsctl(m, ['--json', 'ls', '/cli'])).stdout.toString()) as Record<string, unknown>[];
    t.equal(ls.length, 2);
    for (const e of ls) t.notOk('chunks' in e, `${String(e.path)}: a listing carries no chunk list`);
    const stat = JSON.parse((await gfsctl(m, ['--json', 'stat', '/cli/goal2.bin'])).stdout.toString()) as { chunks: unknown[] };
    t.ok(stat.chunks.length >= 1, 'stat shows the real chunks');
  });

  await t.test('rm of a non-empty directory hints at -r and removes nothing', async (t) => {
    failure(t, await gfsctl(m, ['rm', '/cli']), /^gfsctl: DIRECTORY_NOT_EMPTY: .*; use rm -r /);
    t.equal((await client.list('/cli')).entries.length, 2, 'everything still there');
  });

  await t.test('get shows an advancing bar on a terminal, and nothing elsewhere', async (t) => {
    const target = path.join(dir, 'copy.bin');
    const tty = await onTty(m, ['get', '/cli/goal2.bin', target]);
    t.equal(tty.code, 0, tty.screen);
    t.match(tty.screen, /get \/cli\/goal2\.bin \[={24}\] 100% 3[.0-9]* ?MiB\/3[.0-9]* ?MiB/, 'the last line drawn is complete');
    t.equal(sha256File(target), sha256(data));
    fs.rmSync(target);
    const piped = await gfsctl(m, ['get', '/cli/goal2.bin', target]);
    t.equal(piped.code, 0);
    t.equal(piped.stderr, '', 'no progress when stderr is not a terminal');
  });
});
