import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { spawn } from 'node:child_process';
import { GFS, gfsctl, tempDir } from './helpers';

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

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
  const ep = JSON.parse(fs.readFileSync(path.join(data, 'endpoints.json'), 'utf8'));
  t.equal(ep.masters.length, 1);
  t.match(ep.rest, /^http:\/\//);
  t.equal(ep.chunkservers.length, 3);
  for (const cs of ep.chunkservers) {
    t.match(cs, { id: /^[0-9a-f]{16}$/, addr: /^127\.0\.0\.1:\d+$/ });
    t.ok(alive(cs.pid), `chunkserver ${cs.pid} runs as its own process`);
  }
  t.equal(new Set(ep.chunkservers.map((c: { pid: number }) => c.pid)).size, 3);

  const put = await gfsctl(ep.masters, ['put', '-', '/dev/hello'], 'hi');
  t.equal(put.code, 0, put.stderr);
  const nodes = await gfsctl(ep.masters, ['--json', 'nodes']);
  t.equal(JSON.parse(nodes.stdout.toString()).length, 3);

  child.kill('SIGTERM');
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  t.equal(code, 0, 'gfs dev exits cleanly');
  for (const cs of ep.chunkservers) t.notOk(alive(cs.pid), `chunkserver ${cs.pid} stopped`);
});
