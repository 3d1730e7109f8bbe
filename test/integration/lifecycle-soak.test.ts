/**
 * A bounded soak (100 s of chaos by default; about two minutes with the final checks):
 * writers and readers run while chunkservers are killed and restarted and random blocks of replicas are corrupted on disk. It ends
 * with fsck clean and every acknowledged byte readable. Chaos keeps at most one node
 * down and corrupts a chunk only while it has all its replicas, so RF=3 always leaves a
 * healthy copy: anything lost is a bug, not bad luck. GFS_SOAK_MS changes the length.
 */
import t from 'tap';
import fs from 'node:fs';
import crypto from 'node:crypto';
import { cluster, gfsctl, sha256, MiB, chunkFile, eventually } from './helpers';

const soakMs = Number(process.env.GFS_SOAK_MS ?? 100_000);

t.test('lifecycle: soak: writes and reads through kills, restarts and corruption end healthy and intact', async (t) => {
  const { cluster: c, client } = await cluster(t, {
    chunkservers: 4, heartbeatIntervalMs: 200, deadAfterMs: 3000, safeModeMinMs: 1000, scrubIntervalMs: 2000,
  });
  const acked = new Map<string, string>();
  const stats = { puts: 0, putFailures: 0, reads: 0, readFailures: 0, kills: 0, corruptions: 0 };
  const deadline = Date.now() + soakMs;
  let wrongBytes = '';

  const writer = async (id: number) => {
    for (let i = 0; Date.now() < deadline; i++) {
      const size = 256 * 1024 + crypto.randomInt(4 * MiB);
      const data = crypto.randomBytes(size);
      const path = `/soak/w${id}/f${i}`;
      try {
        await client.put(data, path, { chunkBytes: MiB });
        acked.set(path, sha256(data));
        stats.puts++;
      } catch {
        stats.putFailures++;
      }
    }
  };
  const reader = async () => {
    while (Date.now() < deadline) {
      const paths = [...acked.keys()];
      if (paths.length === 0) { await new Promise((r) => setTimeout(r, 200)); continue; }
      const path = paths[crypto.randomInt(paths.length)]!;
      try {
        const got = sha256(await client.readAll(path));
        stats.reads++;
        if (got !== acked.get(path)) wrongBytes = `${path} read back different bytes`;
      } catch {
        stats.readFailures++; // allowed while nodes die; wrong bytes never are
      }
    }
  };
  const chaos = async () => {
    let down: number | undefined;
    while (Date.now() < deadline - 3000) {
      await new Promise((r) => setTimeout(r, 2500 + crypto.randomInt(2000)));
      if (down !== undefined) {
        await c.restartChunkserver(down);
        down = undefined;
        continue;
      }
      if (crypto.randomInt(2) === 0) {
        down = crypto.randomInt(c.chunkservers.length);
        await c.killChunkserver(down);
        stats.kills++;
        continue;
      }
      // Corrupt one replica of a chunk that has all three.
      const paths = [...acked.keys()];
      const path = paths[crypto.randomInt(Math.max(1, paths.length))];
      if (!path) continue;
      const info = await client.stat(path).catch(() => undefined);
      const ch = info?.chunks.find((x) => x.replicas.length === 3 && x.length > 0);
      if (!ch) continue;
      const node = c.chunkservers.find((p) => p.nodeId === ch.replicas[crypto.randomInt(3)]!.nodeId);
      const file = node && chunkFile(node.dataDir, ch.handle);
      if (!file || !fs.existsSync(file)) continue;
      const fd = fs.openSync(file, 'r+');
      const at = crypto.randomInt(ch.length);
      const b = Buffer.alloc(1);
      fs.readSync(fd, b, 0, 1, at);
      b[0] = b[0]! ^ 0x5a;
      fs.writeSync(fd, b, 0, 1, at);
      fs.closeSync(fd);
      stats.corruptions++;
    }
    if (down !== undefined) await c.restartChunkserver(down);
  };

  await Promise.all([writer(1), writer(2), reader(), reader(), chaos()]);
  t.equal(wrongBytes, '', 'no read ever returned wrong bytes');
  t.ok(stats.puts > 10, `writes kept going: ${JSON.stringify(stats)}`);

  await c.waitForChunkservers(4);
  await eventually(async () => (await gfsctl(c.masters, ['fsck'])).code === 0, 45_000, 'fsck clean after the chaos');
  t.pass('fsck clean');
  let intact = 0;
  for (const [path, hash] of acked) {
    if (sha256(await client.readAll(path)) === hash) intact++;
    else t.fail(`${path} lost or changed`);
  }
  t.equal(intact, acked.size, `all ${acked.size} acknowledged files read back intact`);
});
