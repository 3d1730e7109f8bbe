/**
 * Record append and follow against real processes (docs/LOG-STREAMS.md): small append
 * chunks so chunk changes happen often, a short lease so a stopped primary loses it.
 * Each test asserts bytes and offsets, and ends with fsck clean.
 */
import t from 'tap';
import { cluster, eventually, followDiff, gfsctl } from './helpers';
import { GfsClient, type FileInfo } from '../../src/client';
import { FileState } from '../../gen/gfs';
import type { DevCluster } from '../../src/dev/cluster';
import { AppendLink } from '../../src/dataplane';

const CHUNK = 64 * 1024;
const clusterOpts = {
  heartbeatIntervalMs: 200, deadAfterMs: 4000,
  masterArgs: ['--lease-ms', '2000'],
  chunkserverArgs: ['--append-chunk-size', `${CHUNK}B`],
};

/** A record that names itself: writer, number, and some filler, newline-terminated. */
function record(writer: number, i: number): string {
  return `w${writer} r${i} ${'.'.repeat((writer * 7 + i) % 40)}\n`;
}

/** The chunkserver index holding the log's open chunk as primary. */
function primaryIndex(c: DevCluster, info: FileInfo): number {
  const addr = info.chunks[info.chunks.length - 1]!.replicas[0]!.addr;
  return c.chunkservers.findIndex((p) => p.addr === addr);
}

async function fsckClean(c: DevCluster): Promise<boolean> {
  const r = await gfsctl(c.masters, ['fsck']);
  return r.code === 0;
}

t.test('log: appends from 4 writers across chunk changes, every record once at its offset; a follower sees the same bytes; stat shows the committed length', async (t) => {
  const { cluster: c, client } = await cluster(t, clusterOpts);
  const follower = new GfsClient({ masters: c.masters });
  t.teardown(() => follower.close());
  await client.append('/logs/a', 'first\n', { create: true });
  const followed: Buffer[] = [];
  const pieces: [number, number][] = [];
  const ac = new AbortController();
  const following = (async () => {
    for await (const p of follower.follow('/logs/a', { signal: ac.signal })) {
      followed.push(p.data);
      pieces.push([p.offset, p.data.length]);
    }
  })();
  following.catch(() => undefined); // awaited below; a failure before that must not crash the file
  t.teardown(() => ac.abort());
  const acked = new Map<string, number>();
  await Promise.all([0, 1, 2, 3].map(async (w) => {
    const a = client.appender('/logs/a');
    await Promise.all(Array.from({ length: 1000 }, async (_, i) => {
      const r = record(w, i);
      acked.set(r, (await a.append(r)).offset);
    }));
    await a.close();
  }));
  const info = await client.stat('/logs/a');
  t.ok(info.log, 'a log');
  t.equal(info.state, FileState.FILE_STATE_WRITING, 'still open');
  const bytes = await client.readAll('/logs/a');
  t.equal(info.size, bytes.length, 'stat size = the committed bytes');
  t.ok(info.chunks.length >= 2, `${info.chunks.length} chunks: appends crossed chunk ends`);
  let atOffset = 0;
  for (const [r, off] of acked) if (bytes.subarray(off, off + r.length).toString() === r) atOffset++;
  t.equal(atOffset, 4000, 'every acknowledged record is at its offset');
  const lines = bytes.toString().split('\n').slice(0, -1);
  t.equal(lines.length, 4001, 'no record stored twice, no partial record');
  t.equal(new Set(lines).size, 4001);

  const ls = await gfsctl(c.masters, ['ls', '-l', '/logs']);
  t.match(ls.stdout.toString(), new RegExp(`${bytes.length} .* open +/logs/a`), 'ls -l shows the committed length of the open log');

  const sealed = await client.sealLog('/logs/a');
  t.equal(sealed.size, bytes.length, 'sealing keeps every byte');
  await following;
  t.equal(followDiff(Buffer.concat(followed), bytes, pieces), '', 'the follower saw exactly the log');
  await t.rejects(client.append('/logs/a', 'late\n'), 'a sealed log takes no appends');
  t.ok(await eventually(() => fsckClean(c), 20_000, 'fsck clean'), 'fsck clean');
});

t.test('log: 16 writers at the same expectedOffset: exactly one succeeds, the others get PRECONDITION_FAILED and store nothing', async (t) => {
  const { cluster: c, client } = await cluster(t, clusterOpts);
  const first = await client.append('/logs/race', 'head\n', { create: true });
  t.equal(first.offset, 0);
  const clients = Array.from({ length: 16 }, () => new GfsClient({ masters: c.masters }));
  t.teardown(() => Promise.all(clients.map((x) => x.close())));
  for (let round = 0; round < 3; round++) {
    const at = (await client.stat('/logs/race')).size;
    const results = await Promise.allSettled(clients.map((x, i) => x.append('/logs/race', `round ${round} writer ${i}\n`, { expectedOffset: at })));
    const won = results.filter((r) => r.status === 'fulfilled');
    t.equal(won.length, 1, `round ${round}: one winner`);
    t.equal((won[0] as PromiseFulfilledResult<{ offset: number }>).value.offset, at, 'stored at the expected offset');
    t.ok(results.every((r) => r.status === 'fulfilled' || (r.reason as { code: string }).code === 'PRECONDITION_FAILED'), 'the rest: PRECONDITION_FAILED');
  }
  const lines = (await client.readAll('/logs/race')).toString().split('\n').slice(0, -1);
  t.equal(lines.length, 4, 'head and one record per round');
  t.ok(await eventually(() => fsckClean(c), 20_000, 'fsck clean'));
});

t.test('log: a primary stopped past its lease cannot append when it resumes; appends go to a new chunk, bytes correct', async (t) => {
  const { cluster: c, client } = await cluster(t, clusterOpts);
  const writer = new GfsClient({ masters: c.masters });
  t.teardown(() => writer.close());
  const a = writer.appender('/logs/stale', { create: true, ackTimeoutMs: 1500 });
  const acked: [string, number][] = [];
  for (let i = 0; i < 50; i++) { const r = record(0, i); acked.push([r, (await a.append(r)).offset]); }
  const before = await client.stat('/logs/stale');
  const p = primaryIndex(c, before);
  t.ok(p >= 0, 'found the primary');
  const stoppedHandle = before.chunks[before.chunks.length - 1]!.handle;
  c.chunkservers[p]!.child.kill('SIGSTOP');
  try {
    // Appends while it is stopped: they time out, the master seals its chunk, the rest go on elsewhere.
    for (let i = 50; i < 100; i++) { const r = record(0, i); acked.push([r, (await a.append(r)).offset]); }
    await new Promise((r) => setTimeout(r, 2500)); // well past the 2 s lease
  } finally {
    c.chunkservers[p]!.child.kill('SIGCONT');
  }
  // The resumed primary itself refuses an append to its old chunk: its lease ran out, or the seal bumped the version.
  const stale = new AppendLink(c.chunkservers[p]!.addr, { timeoutMs: 5000 });
  const oldChunk = before.chunks[before.chunks.length - 1]!;
  await t.rejects(stale.append(oldChunk.handle, oldChunk.version, [{ data: Buffer.from('stale\n') }]),
    { code: /LEASE_EXPIRED|STALE_VERSION|NOT_PRIMARY|CHUNK_FULL/ }, 'the resumed primary refuses to append');
  stale.close();
  for (let i = 100; i < 150; i++) { const r = record(0, i); acked.push([r, (await a.append(r)).offset]); }
  await a.close();
  const after = await client.stat('/logs/stale');
  const stopped = after.chunks.find((ch) => ch.handle === stoppedHandle)!;
  t.ok(after.chunks[after.chunks.length - 1]!.handle !== stoppedHandle, 'appends went to a new chunk');
  t.ok(stopped.version > before.chunks[before.chunks.length - 1]!.version, 'the stopped primary\'s chunk was sealed at a new version');
  const bytes = await client.readAll('/logs/stale');
  t.equal(bytes.toString(), acked.map(([r]) => r).join(''), 'the log is exactly the acknowledged records, in order');
  for (const [r, off] of acked) if (bytes.subarray(off, off + r.length).toString() !== r) t.fail(`record at ${off}`);
  t.ok(await eventually(() => fsckClean(c), 30_000, 'fsck clean'));
});

t.test('gfsctl append and tail -f: lines in, the same lines out; a chunkserver killed mid-stream stores each line once', async (t) => {
  const { cluster: c, client } = await cluster(t, clusterOpts);
  const lines = Array.from({ length: 3000 }, (_, i) => `line ${i} ${'x'.repeat(i % 30)}`);
  const first = await gfsctl(c.masters, ['--json', 'append', '--create', '/logs/cli'], lines.slice(0, 10).join('\n') + '\n');
  t.equal(first.code, 0, first.stderr);
  const printed = JSON.parse(first.stdout.toString()) as { offsets: number[] };
  t.equal(printed.offsets.length, 10);
  t.equal(printed.offsets[0], 0);

  const { spawn } = await import('node:child_process');
  const { GFSCTL } = await import('./helpers');
  const tail = spawn(process.execPath, [GFSCTL, 'tail', '-f', '-n', '5', '/logs/cli'], { env: { ...process.env, GFS_MASTERS: c.masters.join(',') } });
  t.teardown(() => { tail.kill('SIGKILL'); });
  const tailed: Buffer[] = [];
  tail.stdout.on('data', (d: Buffer) => tailed.push(d));
  const tailDone = new Promise<number | null>((r) => tail.once('close', r));
  await eventually(() => Buffer.concat(tailed).toString().split('\n').length > 5, 20_000, 'tail -f to print the last lines');

  // A long append whose primary is killed half way: the retried lines are stored once.
  const appendProc = spawn(process.execPath, [GFSCTL, 'append', '/logs/cli'], { env: { ...process.env, GFS_MASTERS: c.masters.join(',') } });
  const appendDone = new Promise<number | null>((r) => appendProc.once('close', r));
  let err = '';
  appendProc.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  const rest = lines.slice(10);
  for (let i = 0; i < 1500; i++) appendProc.stdin.write(`${rest[i]}\n`);
  await eventually(async () => (await client.stat('/logs/cli')).size > 20_000, 20_000, 'half the lines in');
  const p = primaryIndex(c, await client.stat('/logs/cli'));
  await c.killChunkserver(p);
  for (let i = 1500; i < rest.length; i++) appendProc.stdin.write(`${rest[i]}\n`);
  appendProc.stdin.end();
  t.equal(await appendDone, 0, `gfsctl append exits 0 ${err}`);
  await c.restartChunkserver(p);

  const stored = (await client.readAll('/logs/cli')).toString();
  t.equal(stored, lines.join('\n') + '\n', 'every line once, in order');
  const sealed = await gfsctl(c.masters, ['stat', '/logs/cli']);
  t.match(sealed.stdout.toString(), /state open/);
  await client.sealLog('/logs/cli');
  t.equal(await tailDone, 0, 'tail -f ends when the log is sealed');
  t.equal(Buffer.concat(tailed).toString(), lines.slice(5).join('\n') + '\n', 'tail -f printed the last 5 lines, then every new one once');
  // --records: NDJSON, one record per line; a file with a bad line appends nothing.
  const { dir } = { dir: c.dataDir };
  const fsMod = await import('node:fs');
  fsMod.writeFileSync(`${dir}/good.ndjson`, '{"a":1}\n{"b":[2,3]}\n\n"x"\n');
  fsMod.writeFileSync(`${dir}/bad.ndjson`, '{"a":1}\nnot json\n');
  const bad = await gfsctl(c.masters, ['append', '--create', '--records', `${dir}/bad.ndjson`, '/logs/nd']);
  t.equal(bad.code, 1, 'a records file with a line that is not JSON fails');
  t.match(bad.stderr, /line 2 .* not JSON/);
  const good = await gfsctl(c.masters, ['--json', 'append', '--create', '--records', `${dir}/good.ndjson`, '/logs/nd']);
  t.equal(good.code, 0, good.stderr);
  t.same((JSON.parse(good.stdout.toString()) as { offsets: number[] }).offsets, [0, 8, 20], 'offsets of the three records');
  t.equal((await client.readAll('/logs/nd')).toString(), '{"a":1}\n{"b":[2,3]}\n"x"\n', 'each JSON line one record');

  const last = await gfsctl(c.masters, ['tail', '-n', '2', '/logs/cli']);
  t.equal(last.stdout.toString(), lines.slice(-2).join('\n') + '\n', 'tail -n 2');
  t.ok(await eventually(() => fsckClean(c), 30_000, 'fsck clean'));
});
