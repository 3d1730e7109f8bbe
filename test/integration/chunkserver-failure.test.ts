import t from 'tap';
import { cluster, sha256, MiB, patterned } from './helpers';


t.test('chunkserver failure: killed during a put, the put still succeeds and the file reads back whole', async (t) => {
  const { cluster: c, client } = await cluster(t, { chunkservers: 4 });
  const data = patterned(160 * MiB, 1);
  let sent = 0;
  let killed: Promise<void> | undefined;
  // Kill a chunkserver once a third of the file is on its way.
  const info = await client.put((async function* () {
    for (let off = 0; off < data.length; off += MiB) {
      if (!killed && off >= 50 * MiB) killed = c.killChunkserver(1, 'SIGKILL');
      yield data.subarray(off, off + MiB);
    }
  })(), '/logs/during-put', { onProgress: (n) => { sent += n; } });
  await killed;
  t.equal(info.size, data.length);
  t.ok(sent >= data.length, 'all bytes sent');
  const back = await client.readAll('/logs/during-put');
  t.equal(sha256(back), sha256(data), 'bytes identical');
  const stat = await client.stat('/logs/during-put');
  const dead = c.chunkservers[1]!.nodeId;
  const later = stat.chunks.filter((ch) => ch.offset >= 70 * MiB);
  for (const ch of later) {
    t.notOk(ch.replicas.some((r) => r.nodeId === dead), `chunk ${ch.handle} written after the kill avoids the dead node`);
    t.ok(ch.replicas.length >= 2, 'and has the remaining replicas');
  }
});

t.test('chunkserver failure: killed during a get, the get fails over and returns the right bytes', async (t) => {
  const { cluster: c, client } = await cluster(t);
  const data = patterned(100 * MiB, 2);
  await client.put(data, '/logs/during-get');
  const parts: Buffer[] = [];
  let got = 0;
  let killed: Promise<void> | undefined;
  for await (const p of client.createReadStream('/logs/during-get')) {
    parts.push(p as Buffer);
    got += (p as Buffer).length;
    if (!killed && got >= 20 * MiB) {
      // Kill every node that may be serving us now except one: the reader must move on.
      killed = c.killChunkserver(0, 'SIGKILL').then(() => c.killChunkserver(1, 'SIGKILL'));
    }
  }
  await killed;
  t.equal(sha256(Buffer.concat(parts)), sha256(data), 'bytes identical despite two replicas dying mid-read');
});

t.test('chunkserver failure: with every replica down the put fails cleanly and leaves no visible file', async (t) => {
  const { cluster: c, client } = await cluster(t);
  await Promise.all(c.chunkservers.map((_, i) => c.killChunkserver(i, 'SIGKILL')));
  const data = patterned(4 * MiB, 3);
  await t.rejects(client.put(data, '/logs/nowhere'), /chunkserver|replica|UNAVAILABLE|NO_/i);
  await t.rejects(client.stat('/logs/nowhere'), { code: 'NO_SUCH_FILE' }, 'nothing half-visible');
});
