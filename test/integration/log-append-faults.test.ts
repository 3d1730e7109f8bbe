/**
 * Record append under faults, real processes (docs/LOG-STREAMS.md): 16 appenders on a
 * 3-master group with etcd while the open chunk's primary is kill -9'd (and later
 * restarted) and the leader master is kill -9'd once, a follower started before them.
 * Every acknowledged record is in the log exactly once at its offset, no partial record
 * is visible, the follower saw exactly the log, fsck is clean and every replica of every
 * chunk holds the same bytes.
 */
import t from 'tap';
import { cluster, eventually, followDiff, gfsctl } from './helpers';
import { startEtcd } from './etcd';
import { GfsClient } from '../../src/client';
import { readReplica } from '../../src/dataplane';
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';

/** Records per appender; 16 x this in all (GFS_LOG_FAULT_RECORDS overrides). */
const RECORDS = Number(process.env.GFS_LOG_FAULT_RECORDS ?? 10_000);
const WRITERS = 16;

function record(w: number, i: number): string {
  return `w${w} r${i} ${'.'.repeat((w * 13 + i) % 60)}\n`;
}
const RECORD_RE = /^w(\d+) r(\d+) (\.*)$/;

t.test('log faults: 16 appenders through a primary kill -9 + restart and a leader kill -9: each acknowledged record once, follower exact, replicas identical', async (t) => {
  const etcd = await startEtcd(t);
  const { cluster: c, client } = await cluster(t, {
    masters: 3, etcd: etcd.url, electionTtlMs: 2000, deadAfterMs: 5000, heartbeatIntervalMs: 200,
    masterArgs: ['--lease-ms', '3000'],
    chunkserverArgs: ['--append-chunk-size', '256KiB'],
  });
  const leader = await eventually(async () => { const i = await c.leaderIndex(); return i >= 0 ? i + 1 : 0; }, 15_000, 'a leader') - 1;
  await client.append('/faults/log', 'start\n', { create: true });

  // The follower starts before any appender and must see every byte once.
  const followerClient = new GfsClient({ masters: c.masters });
  t.teardown(() => followerClient.close());
  const ac = new AbortController();
  t.teardown(() => ac.abort());
  const followed: Buffer[] = [];
  let followedBytes = 0;
  const pieces: [number, number][] = [];
  const following = (async () => {
    for await (const p of followerClient.follow('/faults/log', { signal: ac.signal })) {
      if (p.offset !== followedBytes) throw new Error(`follower got offset ${p.offset}, expected ${followedBytes}`);
      followed.push(p.data);
      pieces.push([p.offset, p.data.length]);
      followedBytes += p.data.length;
    }
  })();
  following.catch(() => undefined);

  const acked = new Map<string, number>();
  const failures: string[] = [];
  const startedAt = Date.now();
  // The appenders' own log (retries, targets): printed when the test fails.
  const clientLogFile = path.join(c.dataDir, 'logs', 'appenders.log');
  const clientLog = pino({ level: 'debug' }, pino.destination({ dest: clientLogFile, sync: true }));
  t.teardown(() => {
    if (t.passing()) return;
    const lines = fs.readFileSync(clientLogFile, 'utf8').trimEnd().split('\n');
    process.stderr.write(`--- appenders.log (${lines.length} lines, last 40)\n${lines.slice(-40).join('\n')}\n`);
  });
  const writers = Array.from({ length: WRITERS }, async (_, w) => {
    const mine = new GfsClient({ masters: c.masters, log: clientLog.child({ writer: w }) });
    const a = mine.appender('/faults/log', { ackTimeoutMs: 3000 });
    try {
      await Promise.all(Array.from({ length: RECORDS }, async (_, i) => {
        const r = record(w, i);
        try {
          acked.set(r, (await a.append(r)).offset);
        } catch (e) {
          failures.push(`${r.trim()}: ${(e as Error).message}`);
        }
      }));
      await a.close();
    } finally {
      await mine.close();
    }
  });
  const total = WRITERS * RECORDS;
  const allDone = Promise.all(writers);

  // Faults while they run: the open chunk's primary dies and comes back; the leader dies.
  await eventually(() => acked.size >= total * 0.15, 60_000, '15% acknowledged');
  const info = await client.stat('/faults/log');
  const primaryAddr = info.chunks[info.chunks.length - 1]!.replicas[0]!.addr;
  const p = c.chunkservers.findIndex((x) => x.addr === primaryAddr);
  t.ok(p >= 0, `the primary is chunkserver ${p + 1}`);
  await c.killChunkserver(p);
  const atKill = acked.size;
  await eventually(() => acked.size >= Math.max(atKill + total * 0.15, total * 0.35), 60_000, 'appends to go on without it');
  await c.restartChunkserver(p);
  await eventually(() => acked.size >= total * 0.55, 60_000, '55% acknowledged');
  await c.killMaster('SIGKILL', leader);
  const atLeaderKill = acked.size;
  await allDone;
  const elapsedMs = Date.now() - startedAt;
  t.same(failures.slice(0, 3), [], `no append failed in the end (${failures.length} did)`);
  t.equal(acked.size, total, `${total} records acknowledged in ${(elapsedMs / 1000).toFixed(1)} s (${atLeaderKill} before the leader kill)`);
  await c.restartMaster(leader);

  const sealed = await client.sealLog('/faults/log');
  const bytes = await client.readAll('/faults/log');
  t.equal(sealed.size, bytes.length, 'the sealed size is the bytes read');
  await following;
  t.equal(followDiff(Buffer.concat(followed), bytes, pieces), '', `the follower saw exactly the log (${followedBytes} of ${bytes.length} bytes)`);

  // Every line is a whole record, each acknowledged one exactly once, at its offset.
  const text = bytes.toString();
  t.ok(text.endsWith('\n'), 'the log ends at a record boundary');
  const lines = text.split('\n').slice(0, -1);
  t.equal(lines[0], 'start');
  let partial = 0;
  for (const l of lines.slice(1)) if (!RECORD_RE.test(l)) partial++;
  t.equal(partial, 0, 'no partial or foreign record');
  const seen = new Set<string>();
  let dup = 0;
  for (const l of lines.slice(1)) { if (seen.has(l)) dup++; seen.add(l); }
  t.equal(dup, 0, 'no record twice');
  let misplaced = 0;
  for (const [r, off] of acked) if (bytes.subarray(off, off + r.length).toString() !== r) misplaced++;
  t.equal(misplaced, 0, 'every acknowledged record at its acknowledged offset');
  t.equal(lines.length - 1, total, 'nothing but the acknowledged records');

  // fsck clean, then every replica of every chunk holds the same bytes.
  await eventually(async () => (await gfsctl(c.masters, ['fsck'])).code === 0, 60_000, 'fsck clean');
  const final = await client.stat('/faults/log');
  let compared = 0;
  for (const ch of final.chunks) {
    const copies: Buffer[] = [];
    for (const r of ch.replicas) {
      const parts: Buffer[] = [];
      for await (const piece of readReplica(r.addr, ch.handle, ch.version, 0, ch.length)) parts.push(piece);
      copies.push(Buffer.concat(parts));
    }
    if (copies.length < 3 || copies.some((x) => !x.equals(copies[0]!))) {
      t.fail(`chunk ${ch.handle} v${ch.version} (${ch.length} bytes): replicas ${ch.replicas.map((r) => r.nodeId).join(',')} hold ${copies.map((x) => x.length).join('/')} bytes, equal: ${copies.map((x) => x.equals(copies[0]!)).join('/')}`);
    }
    compared++;
  }
  t.equal(compared, final.chunks.length, `${final.chunks.length} chunks: 3 identical replicas each`);
});
