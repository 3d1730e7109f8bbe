import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { spawn } from 'node:child_process';
import { GFS, eventually, gfsctl, tempDir, tokenEnv } from './helpers';
import { alive, readEndpoints, spawnGfs } from './gfs-process';
import { dataDirHolder } from '../../src/common/data-dir-lock';
import { limits } from '../../src/common/limits';
import type { Endpoints } from '../../src/dev/cluster';

t.test('gfs dev: one ready line, endpoints.json with every chunkserver pid, SIGTERM stops everything', async (t) => {
  const dir = tempDir(t);
  const data = path.join(dir, 'd');
  const child = spawn(process.execPath, [GFS, 'dev', '--data', data, '--base-port', '0', '--chunkservers', '3', '--dead-after', '5s', '--heartbeat-interval', '200ms'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
  const line = await new Promise<string>((resolve, reject) => {
    readline.createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`gfs dev exited ${code}`)));
  });
  t.match(line, /^gfs dev ready: masters=127\.0\.0\.1:\d+ rest=http:\/\/127\.0\.0\.1:\d+ /);
  t.match(line, /; next: export GFS_MASTERS=127\.0\.0\.1:\d+ GFS_TOKEN=\$\(node -p "require\('\S+credentials\.json'\)\.token"\) and run gfsctl status$/, 'the ready line says what to do next');
  t.equal(fs.statSync(path.join(data, 'credentials.json')).mode & 0o777, 0o600, 'the bootstrap credentials are private');
  const ep = JSON.parse(fs.readFileSync(path.join(data, 'endpoints.json'), 'utf8'));
  t.equal(ep.masters.length, 1);
  t.match(ep.rest, /^http:\/\//);
  t.equal(ep.ui, `${ep.rest}/ui`, 'endpoints.json names the dashboard');
  t.match(line, / ui=http:\/\/127\.0\.0\.1:\d+\/ui /, 'so does the ready line');
  t.equal(ep.chunkservers.length, 3);
  for (const cs of ep.chunkservers) {
    t.match(cs, { id: /^[0-9a-f]{16}$/, addr: /^127\.0\.0\.1:\d+$/ });
    t.ok(alive(cs.pid), `chunkserver ${cs.pid} runs as its own process`);
  }
  t.equal(new Set(ep.chunkservers.map((c: { pid: number }) => c.pid)).size, 3);

  const put = await gfsctl(ep.masters, ['put', '-', '/dev/hello'], 'hi', tokenEnv(data));
  t.equal(put.code, 0, put.stderr);
  const nodes = await gfsctl(ep.masters, ['--json', 'nodes'], undefined, tokenEnv(data));
  t.equal(JSON.parse(nodes.stdout.toString()).length, 3);

  child.kill('SIGTERM');
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  t.equal(code, 0, 'gfs dev exits cleanly');
  for (const cs of ep.chunkservers) t.notOk(alive(cs.pid), `chunkserver ${cs.pid} stopped`);
});

t.test('gfs dev: a stale endpoints.json is gone until the new one is complete, then lists every pid', async (t) => {
  const data = path.join(tempDir(t), 'd');
  fs.mkdirSync(data, { recursive: true });
  const file = path.join(data, 'endpoints.json');
  const stale = JSON.stringify({ masters: ['127.0.0.1:1'], rest: 'http://127.0.0.1:2', s3: '', chunkservers: [] });
  fs.writeFileSync(file, stale);
  const dev = spawnGfs(t, ['dev', '--data', data, '--base-port', '0', '--chunkservers', '3', '--heartbeat-interval', '200ms']);
  // Every read while it starts: the stale file, nothing, or the final file, in that order.
  const seen: string[] = [];
  let isReady = false;
  void dev.ready.then(() => { isReady = true; }, () => { isReady = true; });
  while (!isReady) {
    let text: string | null;
    try { text = fs.readFileSync(file, 'utf8'); } catch { text = null; }
    seen.push(text === null ? 'absent' : text === stale ? 'stale' : text);
    await new Promise((r) => setTimeout(r, 10));
  }
  await dev.ready;
  const final = fs.readFileSync(file, 'utf8');
  const firstFresh = seen.findIndex((s) => s !== 'stale');
  t.ok(seen.includes('absent'), 'the stale file is removed at start');
  t.notOk(seen.slice(firstFresh).includes('stale'), 'and never comes back');
  t.same(seen.slice(firstFresh).filter((s) => s !== 'absent' && s !== final), [], 'no partial file is ever seen');
  const ep = JSON.parse(final) as Endpoints;
  t.equal(ep.pids.masters.length, 1);
  for (const pid of [...ep.pids.masters, ep.pids.gateway, ...ep.chunkservers.map((c) => c.pid)]) t.ok(alive(pid), `pid ${pid} runs`);
  t.equal(new Set([...ep.pids.masters, ep.pids.gateway, ...ep.chunkservers.map((c) => c.pid)]).size, 5, 'one process each');
});

t.test('gfs dev: a kill -9\'d chunkserver is reported and comes back with its node id; a clean stop removes endpoints.json', async (t) => {
  const data = path.join(tempDir(t), 'd');
  const dev = spawnGfs(t, ['dev', '--data', data, '--base-port', '0', '--chunkservers', '3', '--heartbeat-interval', '200ms', '--dead-after', '2s']);
  await dev.ready;
  const ep = readEndpoints(data);
  const victim = ep.chunkservers[1]!;
  process.kill(victim.pid, 'SIGKILL');
  const back = await eventually(() => {
    const now = readEndpoints(data).chunkservers.find((c) => c.id === victim.id);
    return now && now.pid !== victim.pid && alive(now.pid) ? now : undefined;
  }, 20_000, 'the chunkserver back in endpoints.json with a new pid') as Endpoints['chunkservers'][number];
  t.equal(back.addr, victim.addr, 'on its old address');
  t.notOk(alive(victim.pid));
  t.ok(dev.stderrLines.some((l) => l.includes(`chunkserver-2 (pid ${victim.pid}) died (killed by SIGKILL); restarting`)), 'the death is on the terminal');
  t.ok(dev.stderrLines.some((l) => l.includes(`chunkserver-2 restarted (pid ${back.pid})`)), 'and the restart');
  const devLog = fs.readFileSync(path.join(data, 'logs', 'dev.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  t.ok(devLog.some((l) => l.childPid === victim.pid && /died/.test(l.msg)), 'and in the pino log');
  const command = devLog.filter((l) => l.child === 'chunkserver-2' && l.command).at(-1)?.command as string;
  t.match(command, new RegExp(`^gfs chunkserver --data \\S+chunkserver-2 --listen ${victim.addr} --admin ${victim.admin} `), 'the log says how to restart it by hand');
  await eventually(async () => {
    const nodes = JSON.parse((await gfsctl(ep.masters, ['--json', 'nodes'], undefined, tokenEnv(data))).stdout.toString()) as { id: string; state: string }[];
    return nodes.find((n) => n.id === victim.id)?.state === 'alive';
  }, 20_000, 'the node alive again at the master');
  const put = await gfsctl(ep.masters, ['put', '-', '/dev/after-restart'], 'hi', tokenEnv(data));
  t.equal(put.code, 0, put.stderr);

  dev.child.kill('SIGTERM');
  t.equal(await dev.exited, 0);
  t.notOk(fs.existsSync(path.join(data, 'endpoints.json')), 'endpoints.json goes with the servers');
});

t.test('gfs dev --no-restart: a kill -9\'d chunkserver stays dead', async (t) => {
  const data = path.join(tempDir(t), 'd');
  const dev = spawnGfs(t, ['dev', '--data', data, '--base-port', '0', '--chunkservers', '1', '--heartbeat-interval', '200ms', '--no-restart']);
  await dev.ready;
  const victim = readEndpoints(data).chunkservers[0]!;
  process.kill(victim.pid, 'SIGKILL');
  await eventually(() => dev.stderrLines.some((l) => l.includes(`chunkserver-1 (pid ${victim.pid}) died (killed by SIGKILL); not restarting`)), 10_000, 'the death on the terminal');
  // Several times the first restart delay: a restart would have happened by now.
  await new Promise((r) => setTimeout(r, 4 * limits.devRestartBackoffMinMs));
  t.equal(dataDirHolder(path.join(data, 'chunkserver-1')), null, 'no process holds its data dir');
  t.equal(readEndpoints(data).chunkservers[0]!.pid, victim.pid, 'endpoints.json unchanged');
  t.notOk(dev.stderrLines.some((l) => l.includes('restarted')));
});
