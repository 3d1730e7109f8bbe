import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { cluster, sha256, MiB, eventually } from './helpers';

function payload(i: number, bytes: number): Buffer {
  const b = Buffer.alloc(bytes);
  for (let k = 0; k + 4 <= bytes; k += 8) b.writeUInt32LE((i * 2654435761 + k) >>> 0, k);
  return b;
}

t.test('crash: kill -9 of the master loses no acknowledged file, rename or delete', async (t) => {
  const { cluster: c, client } = await cluster(t);
  const files = new Map<string, string>();
  for (let i = 0; i < 20; i++) {
    const data = payload(i, i === 0 ? 5 * MiB : 10_000 + i);
    await client.put(data, `/logs/f${i}`);
    files.set(`/logs/f${i}`, sha256(data));
  }
  await client.rename('/logs/f1', '/logs/renamed');
  files.set('/logs/renamed', files.get('/logs/f1')!);
  files.delete('/logs/f1');
  await client.delete('/logs/f2');
  files.delete('/logs/f2');

  await c.killMaster('SIGKILL');
  await c.restartMaster();
  await c.waitForChunkservers(3);

  for (const [p, hash] of files) {
    const back = await eventually(() => client.readAll(p), 15_000, `read ${p}`);
    t.equal(sha256(back), hash, `${p} intact after master kill -9`);
  }
  await t.rejects(client.stat('/logs/f1'), { code: 'NO_SUCH_FILE' }, 'rename survived');
  await t.rejects(client.stat('/logs/f2'), { code: 'NO_SUCH_FILE' }, 'delete survived');
  // The restarted master keeps accepting writes.
  await client.put(Buffer.from('after restart'), '/logs/after');
  t.equal((await client.readAll('/logs/after')).toString(), 'after restart');
});

t.test('crash: kill -9 of every process, then restart: every acknowledged file intact, temp files cleaned', async (t) => {
  const { cluster: c, client } = await cluster(t);
  const files = new Map<string, string>();
  for (let i = 0; i < 6; i++) {
    const data = payload(100 + i, (i + 1) * 3 * MiB + 17);
    await client.put(data, `/arch/seg-${i}`);
    files.set(`/arch/seg-${i}`, sha256(data));
  }
  // A temp file as an interrupted whole-chunk copy would leave.
  const csDir = c.chunkservers[0]!.dataDir;
  fs.mkdirSync(path.join(csDir, 'chunks', 'ff'), { recursive: true });
  const tmp = path.join(csDir, 'chunks', 'ff', '255.chk.tmp');
  fs.writeFileSync(tmp, 'half a chunk');

  await Promise.all([c.killMaster('SIGKILL'), ...c.chunkservers.map((_, i) => c.killChunkserver(i, 'SIGKILL'))]);
  await c.restartMaster();
  for (let i = 0; i < c.chunkservers.length; i++) {
    const args = c.chunkservers[i]!.args;
    args[args.indexOf('--masters') + 1] = c.master.addr;
    await c.restartChunkserver(i);
  }
  await c.waitForChunkservers(3);
  t.notOk(fs.existsSync(tmp), 'temp file removed at start-up');
  for (const [p, hash] of files) {
    const back = await eventually(() => client.readAll(p), 15_000, `read ${p}`);
    t.equal(sha256(back), hash, `${p} intact after everything was killed`);
    const info = await client.stat(p);
    for (const ch of info.chunks) t.equal(ch.replicas.length, 3, `chunk ${ch.handle} back on 3 replicas`);
  }
});
