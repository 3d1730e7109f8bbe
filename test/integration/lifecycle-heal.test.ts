/**
 * Chunk lifecycle on real processes: scrubbing finds corruption, healing re-creates lost
 * and corrupt replicas, extra replicas are trimmed, and fsck tells the truth throughout.
 * Small timers (heartbeat 200 ms, dead after 3 s, 1 s scrub passes) and small chunks
 * keep each scenario to seconds.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { cluster, gfsctl, sha256, MiB, chunkFile, eventually, patterned } from './helpers';
import type { DevCluster } from '../../src/dev/cluster';
import type { GfsClient } from '../../src/client';

const timers = { heartbeatIntervalMs: 200, deadAfterMs: 3000, safeModeMinMs: 1000, scrubIntervalMs: 1000 };


function flipByte(file: string, at: number): void {
  const fd = fs.openSync(file, 'r+');
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, at);
  b[0] = b[0]! ^ 0xff;
  fs.writeSync(fd, b, 0, 1, at);
  fs.closeSync(fd);
}

async function fsckJson(c: DevCluster, path = '/'): Promise<{ code: number | null; report: { healthy: boolean; underReplicated: number; missing: number; corrupt: number; files: { path: string; chunks: { handle: number; problem: string }[] }[] } }> {
  const r = await gfsctl(c.masters, ['--json', 'fsck', path]);
  return { code: r.code, report: JSON.parse(r.stdout.toString()) };
}

/** Every chunk of the file has exactly `count` replicas, none on `avoid`. */
async function replicasAre(client: GfsClient, path: string, count: number, avoid?: string): Promise<boolean> {
  const info = await client.stat(path);
  return info.chunks.every((ch) => ch.replicas.length === count && !ch.replicas.some((r) => r.nodeId === avoid));
}

t.test('lifecycle: heal: a corrupt replica found by the scrubber is re-created on another node, then deleted', async (t) => {
  const { cluster: c, client } = await cluster(t, { chunkservers: 4, ...timers });
  const data = patterned(6 * MiB, 1);
  await client.put(data, '/logs/scrub.bin', { chunkBytes: 2 * MiB });
  const ch = (await client.stat('/logs/scrub.bin')).chunks[1]!;
  const victim = ch.replicas[0]!.nodeId;
  const proc = c.chunkservers.find((p) => p.nodeId === victim)!;
  const spare = c.chunkservers.find((p) => !ch.replicas.some((r) => r.nodeId === p.nodeId))!;
  flipByte(chunkFile(proc.dataDir, ch.handle), MiB + 77);

  await eventually(async () => {
    const s = await client.stat('/logs/scrub.bin');
    const now = s.chunks[1]!.replicas.map((r) => r.nodeId);
    return now.length === 3 && !now.includes(victim) && now.includes(spare.nodeId!);
  }, 20_000, 'a new replica on the spare node and the corrupt one out of the locations');
  await eventually(() => !fs.existsSync(chunkFile(proc.dataDir, ch.handle)), 10_000, 'the corrupt replica deleted from disk');
  t.ok(fs.existsSync(chunkFile(spare.dataDir, ch.handle)), 'the new replica is on the spare node\'s disk');
  const metrics = await (await fetch(`http://${proc.adminAddr}/metrics`)).text();
  t.match(metrics, /gfs_chunkserver_scrub_corrupt_total\{[^}]*\} [1-9]/, 'the scrubber, not a read, found it');

  const { code, report } = await fsckJson(c);
  t.equal(code, 0, 'fsck exits 0');
  t.ok(report.healthy, 'fsck: healthy');
  t.equal(sha256(await client.readAll('/logs/scrub.bin')), sha256(data), 'bytes readable and intact');
});

t.test('lifecycle: heal: with no spare node the corrupt replica is deleted first and re-created in its place', async (t) => {
  const { cluster: c, client } = await cluster(t, { chunkservers: 3, ...timers });
  const data = patterned(4 * MiB, 2);
  await client.put(data, '/logs/inplace.bin', { chunkBytes: 2 * MiB });
  const ch = (await client.stat('/logs/inplace.bin')).chunks[0]!;
  const proc = c.chunkservers.find((p) => p.nodeId === ch.replicas[2]!.nodeId)!;
  const file = chunkFile(proc.dataDir, ch.handle);
  flipByte(file, 5);
  const byteAt5 = () => { try { const b = Buffer.alloc(1); const fd = fs.openSync(file, 'r'); fs.readSync(fd, b, 0, 1, 5); fs.closeSync(fd); return b[0]; } catch { return undefined; } };
  await eventually(async () => byteAt5() === data[5] && await replicasAre(client, '/logs/inplace.bin', 3), 20_000, 'the replica re-created on the same node');
  const log = fs.readFileSync(`${c.dataDir}/logs/master.log`, 'utf8');
  t.match(log, /"reason":"corrupt","detail":"no other node can take a new replica/, 'the corrupt copy was deleted first to make room');
  const { code } = await fsckJson(c);
  t.equal(code, 0, 'fsck clean');
  t.equal(sha256(await client.readAll('/logs/inplace.bin')), sha256(data), 'bytes intact');
});

t.test('lifecycle: heal: a dead chunkserver\'s chunks are re-replicated, and trimmed back when it returns', async (t) => {
  const { cluster: c, client } = await cluster(t, { chunkservers: 4, ...timers });
  const a = patterned(9 * MiB, 3);
  const b = patterned(5 * MiB + 123, 4);
  await client.put(a, '/logs/a.bin', { chunkBytes: 2 * MiB });
  await client.put(b, '/logs/b.bin', { chunkBytes: 1 * MiB });
  const dead = c.chunkservers[1]!.nodeId!;
  await c.killChunkserver(1);

  await eventually(async () => await replicasAre(client, '/logs/a.bin', 3, dead) && await replicasAre(client, '/logs/b.bin', 3, dead),
    30_000, 'every chunk back at 3 replicas without the dead node');
  const { code } = await fsckJson(c);
  t.equal(code, 0, 'fsck exits 0 once healed');
  const status = await client.status();
  t.ok(status.repair!.completedTotal > 0, `status counts completed clones (${status.repair!.completedTotal})`);
  t.equal(status.underReplicated, 0);
  const metrics = await (await fetch(`http://${c.master.adminAddr}/metrics`)).text();
  t.match(metrics, /gfs_master_repair_completed_total\{[^}]*\} [1-9]/, 'metrics count the clones');

  await c.restartChunkserver(1);
  // Its replicas come back: 4 of each chunk it held, until the extra one is trimmed.
  await eventually(async () => {
    const nodes = (await client.nodes()).nodes;
    return nodes.find((n) => n.id === dead)?.state === 'alive' &&
      await replicasAre(client, '/logs/a.bin', 3) && await replicasAre(client, '/logs/b.bin', 3) &&
      (await client.status()).repair!.overReplicated === 0;
  }, 20_000, 'over-replicated chunks trimmed back to 3');
  const after = await fsckJson(c);
  t.equal(after.code, 0, 'fsck still clean');
  t.equal(sha256(await client.readAll('/logs/a.bin')), sha256(a), 'a intact');
  t.equal(sha256(await client.readAll('/logs/b.bin')), sha256(b), 'b intact');
});

/** Chunk data files in a chunkserver's data dir and their sizes. */
function chunkFilesIn(dataDir: string): { file: string; bytes: number }[] {
  const root = path.join(dataDir, 'chunks');
  const out: { file: string; bytes: number }[] = [];
  for (const shard of fs.existsSync(root) ? fs.readdirSync(root) : []) {
    for (const name of fs.readdirSync(path.join(root, shard))) {
      if (name.endsWith('.chk')) out.push({ file: path.join(root, shard, name), bytes: fs.statSync(path.join(root, shard, name)).size });
    }
  }
  return out;
}

t.test('lifecycle: heal: a replica that missed the end of a write is stale when its node returns, and is deleted', async (t) => {
  const { cluster: c, client } = await cluster(t, { chunkservers: 4, ...timers });
  const data = patterned(40 * MiB, 5);
  let victim = -1;
  // Stream the first 12 MiB of a 32 MiB chunk, let the chain make them durable, then
  // kill one replica of the chunk: the writer must seal the two survivors at a new version.
  const info = await client.put((async function* () {
    for (let off = 0; off < data.length; off += MiB) {
      if (off === 12 * MiB) {
        const holders = (await eventually(() => {
          const h = c.chunkservers.map((p, i) => ({ i, files: chunkFilesIn(p.dataDir) })).filter((x) => x.files.some((f) => f.bytes >= 12 * MiB));
          return h.length === 3 ? h : undefined;
        }, 10_000, 'three replicas holding 12 MiB'))!;
        await new Promise((r) => setTimeout(r, 500)); // the sync at 8 MiB is acknowledged
        victim = holders[1]!.i;
        await c.killChunkserver(victim);
      }
      yield data.subarray(off, off + MiB);
    }
  })(), '/logs/stale.bin', { chunkBytes: 32 * MiB });
  t.equal(info.size, data.length);
  const deadId = c.chunkservers[victim]!.nodeId!;
  const first = (await client.stat('/logs/stale.bin')).chunks[0]!;
  t.ok(first.length >= 8 * MiB && first.length < 32 * MiB, `the first chunk ended early at ${first.length} bytes`);
  t.equal(first.version, 2, 'the survivors were sealed at version 2');
  t.notOk(first.replicas.some((r) => r.nodeId === deadId), 'the dead replica is not a location');

  // Healed back to 3 on the spare node while the victim is down.
  await eventually(async () => (await client.stat('/logs/stale.bin')).chunks.every((ch) => ch.replicas.length === 3),
    30_000, 'every chunk back at 3 replicas');
  const staleFile = chunkFile(c.chunkservers[victim]!.dataDir, first.handle);
  t.ok(fs.existsSync(staleFile), 'the victim still has its old copy on disk');

  await c.restartChunkserver(victim);
  await eventually(() => !fs.existsSync(staleFile), 20_000, 'the stale copy deleted from the returning node');
  const log = fs.readFileSync(`${c.dataDir}/logs/master.log`, 'utf8');
  t.match(log, new RegExp(`"handle":${first.handle},[^\\n]*"reason":"stale"`), 'deleted as stale, not trimmed as an extra copy');
  const back = await client.stat('/logs/stale.bin');
  t.ok(back.chunks.every((ch) => ch.replicas.length === 3), 'every chunk at exactly 3 replicas');
  const { code } = await fsckJson(c);
  t.equal(code, 0, 'fsck clean');
  t.equal(sha256(await client.readAll('/logs/stale.bin')), sha256(data), 'every acknowledged byte readable');
});

t.test('lifecycle: fsck exits non-zero while a chunk is under-replicated and 0 once it is healed', async (t) => {
  const { cluster: c, client } = await cluster(t, { chunkservers: 3, ...timers });
  await client.put(patterned(3 * MiB, 5), '/logs/f.bin', { chunkBytes: 2 * MiB });
  await client.put(patterned(MiB, 6), '/other/g.bin');
  t.equal((await gfsctl(c.masters, ['fsck'])).code, 0, 'clean at first');
  await c.killChunkserver(0);
  await eventually(async () => (await client.status()).nodesDead === 1, 10_000, 'the node declared dead');
  // No fourth node: nothing can heal, so fsck must keep saying so.
  const { code, report } = await fsckJson(c, '/logs');
  t.equal(code, 1, 'fsck exits 1');
  t.notOk(report.healthy);
  t.equal(report.underReplicated, 2, 'both chunks of f.bin are under-replicated');
  t.same(report.files.map((f) => f.path), ['/logs/f.bin'], 'only the files under the path are checked');
  const text = await gfsctl(c.masters, ['fsck', '/logs/f.bin']);
  t.equal(text.code, 1);
  t.match(text.stdout.toString(), /under-replicated, 2\/3 healthy/);
  t.match(text.stdout.toString(), /NOT HEALTHY/);

  await c.restartChunkserver(0);
  await eventually(async () => (await gfsctl(c.masters, ['fsck'])).code === 0, 15_000, 'fsck clean once the node is back');
  t.pass('fsck exits 0 again');
});
