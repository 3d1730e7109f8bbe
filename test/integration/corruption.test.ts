import t from 'tap';
import fs from 'node:fs';
import { cluster, sha256, MiB, chunkFile, eventually } from './helpers';

t.test('corruption: a flipped byte in one replica never reaches a reader, and the replica is reported corrupt', async (t) => {
  const { cluster: c, client } = await cluster(t);
  const data = Buffer.alloc(6 * MiB);
  for (let i = 0; i < data.length; i += 4) data.writeUInt32LE(i * 2654435761 >>> 0, i);
  await client.put(data, '/logs/c.bin');
  const info = await client.stat('/logs/c.bin');
  const ch = info.chunks[0]!;
  // Corrupt the replica that a reader would try first.
  const first = ch.replicas[ch.handle % ch.replicas.length]!;
  const proc = c.chunkservers.find((p) => p.nodeId === first.nodeId)!;
  const file = chunkFile(proc.dataDir, ch.handle);
  const fd = fs.openSync(file, 'r+');
  const at = 3 * MiB + 1234;
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, at);
  b[0] = b[0]! ^ 0xff;
  fs.writeSync(fd, b, 0, 1, at);
  fs.closeSync(fd);

  const back = await client.readAll('/logs/c.bin');
  t.equal(sha256(back), sha256(data), 'reader got the right bytes from another replica');

  await eventually(async () => {
    const s = await client.stat('/logs/c.bin');
    return !s.chunks[0]!.replicas.some((r) => r.nodeId === first.nodeId);
  }, 10_000, 'master to drop the corrupt replica');
  t.pass('master no longer lists the corrupt replica');
  const log = fs.readFileSync(`${c.dataDir}/logs/master.log`, 'utf8');
  t.match(log, /replica reported corrupt/, 'master logged the report');
  const metrics = await (await fetch(`http://${proc.adminAddr}/metrics`)).text();
  t.match(metrics, /gfs_chunkserver_corrupt_reads_total\{[^}]*\} [1-9]/, 'chunkserver counted the corrupt read');
});
