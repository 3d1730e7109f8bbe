import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { cluster, gfsctl, randomFile, sha256File, sha256, MiB } from './helpers';
import { initChecksums, xxh64, hex64 } from '../../src/common/checksum';

t.test('put/get: 260 MiB of random data spans several chunks, comes back byte-identical, every chunk on 3 distinct chunkservers', async (t) => {
  const { cluster: c, dir } = await cluster(t);
  const local = path.join(dir, 'big.bin');
  const hash = randomFile(local, 260 * MiB);

  const put = await gfsctl(c.masters, ['put', local, '/logs/big.bin']);
  t.equal(put.code, 0, `put exits 0 (stderr: ${put.stderr})`);

  const stat = await gfsctl(c.masters, ['--json', 'stat', '/logs/big.bin']);
  t.equal(stat.code, 0, stat.stderr);
  const info = JSON.parse(stat.stdout.toString());
  t.equal(info.size, 260 * MiB);
  t.equal(info.state, 'sealed');
  t.ok(info.chunks.length >= 5, `spans ${info.chunks.length} chunks`);
  const csIds = new Set(c.chunkservers.map((p) => p.nodeId));
  for (const ch of info.chunks) {
    t.equal(new Set(ch.replicas).size, 3, `chunk ${ch.handle} has 3 distinct replicas`);
    for (const r of ch.replicas) t.ok(csIds.has(r), `replica ${r} is one of our chunkservers`);
    t.ok(ch.handle > 0 && ch.version > 0 && ch.length > 0);
  }
  t.equal(info.chunks.reduce((s: number, ch: { length: number }) => s + ch.length, 0), 260 * MiB);

  const out = path.join(dir, 'back.bin');
  const get = await gfsctl(c.masters, ['get', '/logs/big.bin', out]);
  t.equal(get.code, 0, get.stderr);
  t.equal(sha256File(out), hash, 'bytes identical');
  t.same(fs.readdirSync(dir).filter((f) => f.includes('gfs-tmp')), [], 'no temp file left behind');
});

t.test('put/get: stdin to stdout, cat, ls -l, stat, mv and rm', async (t) => {
  const { cluster: c } = await cluster(t);
  const data = Buffer.from('hello gfs\n'.repeat(1000));
  t.equal((await gfsctl(c.masters, ['put', '-', '/logs/app/a.log'], data)).code, 0);
  const cat = await gfsctl(c.masters, ['cat', '/logs/app/a.log']);
  t.equal(sha256(cat.stdout), sha256(data));
  const get = await gfsctl(c.masters, ['get', '/logs/app/a.log', '-']);
  t.equal(sha256(get.stdout), sha256(data));

  const empty = await gfsctl(c.masters, ['put', '-', '/logs/app/empty.log'], Buffer.alloc(0));
  t.equal(empty.code, 0, empty.stderr);
  t.equal((await gfsctl(c.masters, ['cat', '/logs/app/empty.log'])).stdout.length, 0, 'empty file reads empty');

  const ls = await gfsctl(c.masters, ['ls', '-l', '/logs/app']);
  t.match(ls.stdout.toString(), /10000 .* sealed\s+\/logs\/app\/a\.log/);
  t.match((await gfsctl(c.masters, ['ls', '-R', '/'])).stdout.toString(), /\/logs\/app\/a\.log/);

  t.equal((await gfsctl(c.masters, ['mv', '/logs/app/a.log', '/logs/app/b.log'])).code, 0);
  t.equal((await gfsctl(c.masters, ['stat', '/logs/app/a.log'])).code, 1, 'old name is gone');
  t.equal(sha256((await gfsctl(c.masters, ['cat', '/logs/app/b.log'])).stdout), sha256(data), 'new name has the bytes');

  t.equal((await gfsctl(c.masters, ['rm', '/logs/app/b.log'])).code, 0);
  const gone = await gfsctl(c.masters, ['stat', '/logs/app/b.log']);
  t.equal(gone.code, 1);
  t.match(gone.stderr, /NO_SUCH_FILE/);

  t.equal((await gfsctl(c.masters, ['rm', '/logs'])).code, 1, 'non-empty dir needs -r');
  t.equal((await gfsctl(c.masters, ['rm', '-r', '/logs'])).code, 0);
  t.equal((await gfsctl(c.masters, ['ls', '/logs'])).code, 1);
});

t.test('put/get: put --force replaces a file atomically and get of a range works through the library', async (t) => {
  const { cluster: c, client } = await cluster(t);
  await client.put(Buffer.from('first version'), '/ns/f');
  const second = Buffer.alloc(3 * MiB + 12345, 7);
  for (let i = 0; i < second.length; i += 4096) second[i] = i & 0xff;
  await client.put(second, '/ns/f', { force: true });
  const back = await client.readAll('/ns/f');
  t.equal(sha256(back), sha256(second));
  const parts: Buffer[] = [];
  for await (const p of client.createReadStream('/ns/f', { start: MiB - 10, end: 2 * MiB + 10 })) parts.push(p as Buffer);
  t.same(Buffer.concat(parts), second.subarray(MiB - 10, 2 * MiB + 10), 'range read crosses block and piece boundaries');
  t.ok(c.chunkservers.length === 3);
});

t.test('put/get: small puts, one after another and all at once, every file reads back', async (t) => {
  const { client } = await cluster(t);
  const files = Array.from({ length: 12 }, (_, i) => Buffer.alloc(4096 + i, i + 1));
  for (let i = 0; i < files.length; i++) {
    await client.put(files[i]!, `/small/${i}`);
  }
  await Promise.all(files.map((f, i) => client.put(f, `/small/${i}`, { force: true })));
  for (let i = 0; i < files.length; i++) t.same(await client.readAll(`/small/${i}`), files[i], `file ${i} after sequential and concurrent puts`);
});

t.test('put/get: the sealed checksum is xxh64 over the 64 KiB block sums, recomputable from the bytes', async (t) => {
  const { client } = await cluster(t);
  await initChecksums();
  const data = Buffer.alloc(5 * MiB + 777);
  for (let i = 0; i < data.length; i += 4096) data.writeUInt32LE(i * 2246822519 >>> 0, i);
  const info = await client.put(data, '/sum/f');
  const sums = Buffer.alloc(Math.ceil(data.length / 65536) * 8);
  for (let b = 0; b * 65536 < data.length; b++) sums.writeBigUInt64LE(xxh64(data.subarray(b * 65536, (b + 1) * 65536)), b * 8);
  t.equal(info.checksum, hex64(xxh64(sums)));
  t.equal((await client.stat('/sum/f')).checksum, info.checksum, 'stat shows the same checksum');
});
