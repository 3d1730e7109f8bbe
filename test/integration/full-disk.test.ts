/**
 * A chunkserver's disk fills up in the middle of a put (something else on the machine
 * took the space). The put must still succeed on the other nodes, the full node must
 * stay up and keep serving what it has, and the cluster must end healthy: the partial
 * copy on the full node is stale (the survivors were sealed at a new version) and goes.
 * Needs root to mount a small tmpfs as that node's data dir.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { execFileSync } from 'node:child_process';
import { initChecksums } from '../../src/common/checksum';
import { startDevCluster } from '../../src/dev/cluster';
import { GfsClient } from '../../src/client';
import { gfsctl, sha256, MiB, eventually, printLogTails, patterned } from './helpers';


/** Fills the filesystem at `dir` until less than `leaveBytes` is free. */
function fillDisk(dir: string, leaveBytes: number): string {
  const filler = path.join(dir, 'filler.bin');
  const { bavail, bsize } = fs.statfsSync(dir);
  const bytes = Math.max(0, bavail * bsize - leaveBytes);
  const fd = fs.openSync(filler, 'w');
  const block = Buffer.alloc(MiB, 0x11);
  try {
    for (let done = 0; done < bytes; done += block.length) fs.writeSync(fd, block, 0, Math.min(block.length, bytes - done));
  } catch (e) {
    // The chunkserver is writing at the same time: it may have taken the last bytes first.
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
  } finally {
    fs.closeSync(fd);
  }
  return filler;
}

t.test('full disk: a chunkserver whose disk fills mid-put fails only its part; the put succeeds and the cluster heals', async (t) => {
  await initChecksums();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gfs-test-'));
  const smallDir = path.join(dir, 'cluster', 'chunkserver-1');
  fs.mkdirSync(smallDir, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=160m', 'tmpfs', smallDir], { stdio: 'pipe' });
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`this test mounts a 160 MiB tmpfs as one chunkserver's disk and needs root (CAP_SYS_ADMIN): ${(e as Error).message}`);
  }
  const c = await startDevCluster({
    dataDir: path.join(dir, 'cluster'), basePort: 0, chunkservers: 4, logLevel: 'info',
    heartbeatIntervalMs: 200, deadAfterMs: 3000, safeModeMinMs: 1000,
  });
  const client = new GfsClient({ masters: c.masters });
  t.teardown(async () => {
    await client.close();
    await c.stop();
    if (!t.passing()) printLogTails(c.dataDir);
    execFileSync('umount', ['-l', smallDir]);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const small = c.chunkservers[0]!;

  // Give the small node something to serve later, then fill its disk while a put runs.
  const before = patterned(6 * MiB, 1);
  await client.put(before, '/logs/before.bin', { chunkBytes: 2 * MiB, replication: 4 });
  const data = patterned(64 * MiB, 2);
  let filler = '';
  const info = await client.put((async function* () {
    for (let off = 0; off < data.length; off += MiB) {
      if (off === 10 * MiB) filler = fillDisk(smallDir, 512 * 1024);
      yield data.subarray(off, off + MiB);
    }
  })(), '/logs/during.bin', { chunkBytes: 16 * MiB });
  t.equal(info.size, data.length, 'the put succeeded');
  t.ok(filler !== '', 'the disk was filled during the put');
  t.equal(sha256(await client.readAll('/logs/during.bin')), sha256(data), 'every byte of it reads back');
  const smallLog = fs.readFileSync(path.join(c.dataDir, 'logs', 'chunkserver-1.log'), 'utf8');
  t.match(smallLog, /"code":"NO_SPACE"[^\n]*"msg":"write session failed"/, 'the full node failed its part of the write with NO_SPACE');

  const nodes = (await client.nodes()).nodes;
  const smallNode = nodes.find((n) => n.id === small.nodeId)!;
  t.equal(smallNode.state, 'alive', 'the full node is still up');
  const health = await fetch(`http://${small.adminAddr}/healthz`);
  t.equal(health.status, 200, 'and healthy');
  t.ok(smallNode.freeBytes < 16 * MiB, `it reports its disk full (${smallNode.freeBytes} bytes free)`);
  const later = await client.put(patterned(8 * MiB, 3), '/logs/after.bin', { chunkBytes: 2 * MiB });
  t.equal(later.size, 8 * MiB);
  t.notOk((await client.stat('/logs/after.bin')).chunks.some((ch) => ch.replicas.some((r) => r.nodeId === small.nodeId)),
    'new chunks avoid the full node');

  await eventually(async () => (await gfsctl(c.masters, ['fsck'])).code === 0, 30_000, 'fsck clean: every chunk at its goal');
  t.equal(sha256(await client.readAll('/logs/before.bin')), sha256(before), 'what the full node held before is intact');
  // Reads served by the full node itself still work.
  const own = (await client.stat('/logs/before.bin')).chunks.filter((ch) => ch.replicas.some((r) => r.nodeId === small.nodeId));
  t.ok(own.length > 0, 'the full node still holds replicas of the earlier file');

  fs.rmSync(filler);
  await eventually(async () => ((await client.nodes()).nodes.find((n) => n.id === small.nodeId)?.freeBytes ?? 0) > 64 * MiB,
    10_000, 'space freed on the node is seen by the master');
});
