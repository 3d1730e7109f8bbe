import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { gfsctl, tempDir, tokenEnv } from './helpers';
import { alive, readEndpoints, spawnGfs } from './gfs-process';
import { dataDirLockFileName } from '../../src/common/data-dir-lock';

/** sha256 of every file under `root` except the chunkservers' level index (it compacts on its own). */
function hashTree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, e.name);
      const rel = path.relative(root, full);
      if (e.isDirectory()) {
        if (rel !== 'logs' && !/^chunkserver-\d+\/index$/.test(rel)) walk(full);
      } else {
        out[rel] = crypto.createHash('sha256').update(fs.readFileSync(full)).digest('hex');
      }
    }
  };
  walk(root);
  return out;
}

t.test('data-dir lock: a second master, chunkserver and gfs dev on a live dir exit at once, naming the holder, and change nothing', async (t) => {
  const data = path.join(tempDir(t), 'd');
  const dev = spawnGfs(t, ['dev', '--data', data, '--base-port', '0', '--chunkservers', '3', '--heartbeat-interval', '200ms', '--no-restart']);
  await dev.ready;
  const ep = readEndpoints(data);
  const put = await gfsctl(ep.masters, ['put', '-', '/lock/before'], 'written before', tokenEnv(data));
  t.equal(put.code, 0, put.stderr);

  const before = hashTree(data);
  t.ok(Object.keys(before).some((f) => f.startsWith('master/wal/')), 'the WAL is hashed');
  t.ok(before['master/promised-epoch'], 'the promised epoch is hashed');
  t.ok(Object.keys(before).some((f) => /^chunkserver-\d+\/chunks\/.+\.chk$/.test(f)), 'chunk files are hashed');

  const second = [
    { what: 'gfs master', args: ['master', '--data', path.join(data, 'master'), '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'], holder: ep.pids.masters[0]! },
    { what: 'gfs chunkserver', args: ['chunkserver', '--data', path.join(data, 'chunkserver-1'), '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--masters', ep.masters.join(',')], holder: ep.chunkservers[0]!.pid },
    { what: 'gfs dev', args: ['dev', '--data', data, '--base-port', '0'], holder: dev.child.pid! },
  ];
  for (const s of second) {
    const p = spawnGfs(t, s.args);
    const code = await p.exited;
    t.not(code, 0, `${s.what} exits non-zero`);
    t.equal(p.stderrLines.length, 1, `${s.what}: one line on stderr`);
    t.match(p.stderrLines[0], new RegExp(`^gfs: ALREADY_EXISTS: data dir .* is in use by pid ${s.holder} `), `${s.what} names the holder`);
  }
  t.same(hashTree(data), before, 'WAL, epoch, chunk files, locks and endpoints.json are byte-unchanged');
  for (const pid of [...ep.pids.masters, ep.pids.gateway, ...ep.chunkservers.map((c) => c.pid)]) t.ok(alive(pid), `pid ${pid} still runs`);

  const get = await gfsctl(ep.masters, ['cat', '/lock/before'], undefined, tokenEnv(data));
  t.equal(get.stdout.toString(), 'written before', get.stderr);
  const put2 = await gfsctl(ep.masters, ['put', '-', '/lock/after'], 'written after', tokenEnv(data));
  t.equal(put2.code, 0, put2.stderr);
  t.equal((await gfsctl(ep.masters, ['cat', '/lock/after'], undefined, tokenEnv(data))).stdout.toString(), 'written after');
});

t.test('data-dir lock: the stale lock of a kill -9\'d master does not block its restart', async (t) => {
  const data = path.join(tempDir(t), 'm');
  const args = ['master', '--data', data, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'];
  const first = spawnGfs(t, args);
  await first.ready;
  first.child.kill('SIGKILL');
  await first.exited;
  const lockFile = path.join(data, dataDirLockFileName);
  t.equal(JSON.parse(fs.readFileSync(lockFile, 'utf8')).pid, first.child.pid, 'kill -9 leaves the lock behind');

  const second = spawnGfs(t, args);
  t.match(JSON.parse(await second.ready), { ready: true, role: 'master' }, 'the restart is not blocked');
  t.equal(JSON.parse(fs.readFileSync(lockFile, 'utf8')).pid, second.child.pid, 'the new master holds the lock');
  second.child.kill('SIGTERM');
  t.equal(await second.exited, 0);
  t.notOk(fs.existsSync(lockFile), 'a clean exit releases the lock');
});
