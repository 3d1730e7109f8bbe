/**
 * Record append on real data servers and chunk stores (loopback sockets, temp dirs):
 * a primary with two secondaries, group commit, dedup, expectedOffset, CHUNK_FULL,
 * leases, the master's query-SEAL + TRUNCATE, the .rid sidecar and FOLLOW.
 */
import t from 'tap';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { ChunkStore } from '../../src/chunkserver/chunk-store';
import { DataServer } from '../../src/chunkserver/data-server';
import { ForegroundActivity } from '../../src/chunkserver/foreground';
import { createChunkserverMetrics, type DataPlaneMetrics } from '../../src/chunkserver/metrics';
import { initChecksums } from '../../src/common/checksum';
import { ManualClock } from '../../src/common/clock';
import { GfsError } from '../../src/common/errors';
import { silentLogger } from '../../src/common/log';
import { TokenBucket } from '../../src/common/token-bucket';
import {
  AppendLink, FrameParser, FrameType, chunkStat, decodeRecordIds, encodeFrame, encodeRecordIds, followChunk, grantLease,
  querySealReplica, truncateReplica, type AppendResult,
} from '../../src/dataplane';

const KiB = 1024;

interface Node { server: DataServer; store: ChunkStore; dir: string; metrics: DataPlaneMetrics }

async function startNode(dir: string, clock: ManualClock, chunkBytes?: number): Promise<Node> {
  const store = await ChunkStore.open({ dir });
  const metrics = createChunkserverMetrics(new Registry());
  const server = new DataServer({
    listen: '127.0.0.1:0', store, log: silentLogger, metrics, nodeId: path.basename(dir),
    onCorrupt: () => undefined, onChunkChanged: () => undefined, clock, appendChunkBytes: chunkBytes,
    foreground: new ForegroundActivity(Date.now), backgroundReads: new TokenBucket(1 << 30, 1 << 20, Date.now),
  });
  await server.start();
  return { server, store, dir, metrics };
}

async function cluster(t: { teardown(fn: () => unknown): void }, n = 3, chunkBytes?: number): Promise<{ nodes: Node[]; clock: ManualClock }> {
  await initChecksums();
  const clock = new ManualClock();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'gfs-append-'));
  const nodes: Node[] = [];
  for (let i = 0; i < n; i++) nodes.push(await startNode(path.join(root, `n${i}`), clock, chunkBytes));
  t.teardown(async () => {
    for (const node of nodes) {
      await node.server.close().catch(() => undefined);
      await node.store.close().catch(() => undefined);
    }
    fs.rmSync(root, { recursive: true, force: true });
  });
  return { nodes, clock };
}

async function lease(nodes: Node[], handle: number, version = 1, durationMs = 60_000): Promise<void> {
  await grantLease(nodes[0]!.server.addr, { handle, version, chain: nodes.slice(1).map((n) => n.server.addr), durationMs });
}

function chunkFile(node: Node, handle: number, ext: 'chk' | 'rid'): Buffer {
  const p = node.store.sidecarPath(handle).replace(/\.rid$/, `.${ext}`);
  return fs.existsSync(p) ? fs.readFileSync(p) : Buffer.alloc(0);
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (e) {
    return e instanceof GfsError ? e.code : String(e);
  }
}

async function counter(c: { get(): Promise<{ values: { value: number }[] }> }): Promise<number> {
  return (await c.get()).values.reduce((s, v) => s + v.value, 0);
}

const rec = (writer: string, seq: number, size: number) => ({ data: Buffer.alloc(size, (seq % 250) + 1), id: { writer, seq } });

t.test('append: a primary and two secondaries store the same bytes and sidecars, with group commit', async (t) => {
  const { nodes } = await cluster(t);
  await lease(nodes, 1);
  const link = new AppendLink(nodes[0]!.server.addr);
  t.teardown(() => link.close());
  const count = 200;
  const results = await Promise.all(Array.from({ length: count }, (_, i) => link.append(1, 1, [rec('w1', i, 100 + (i % 7) * 50)])));
  const sizes = Array.from({ length: count }, (_, i) => 100 + (i % 7) * 50);
  const total = sizes.reduce((a, b) => a + b, 0);
  const offsets = results.map((r) => r.offsets[0]!).sort((a, b) => a - b);
  let at = 0;
  for (let i = 0; i < count; i++) {
    t.equal(offsets[i], at, 'records are contiguous, no gap, no overlap');
    at += sizes[results.findIndex((r) => r.offsets[0] === offsets[i])]!;
  }
  t.equal(at, total);
  t.ok(results.every((r) => r.dup[0] === false), 'nothing is a duplicate');
  const stat = await chunkStat(nodes[0]!.server.addr, 1);
  t.equal(stat.committed, total, 'committed length is every acknowledged byte');
  t.ok(stat.primary && stat.leaseValid && !stat.ended);
  const batches = await counter(nodes[0]!.metrics.appendBatches);
  t.equal(await counter(nodes[0]!.metrics.appends), count, 'appends_total counts records');
  t.ok(batches < count / 2, `group commit: ${count} records in ${batches} batches`);
  // Every byte of each record is its own fill value, at the offset it was given.
  const chk = chunkFile(nodes[0]!, 1, 'chk').subarray(0, total);
  results.forEach((r, i) => t.equal(chk[r.offsets[0]!], (i % 250) + 1));
  for (const n of nodes.slice(1)) {
    t.ok(chunkFile(n, 1, 'chk').subarray(0, total).equals(chk), `${n.dir}: same bytes as the primary`);
    t.ok(chunkFile(n, 1, 'rid').equals(chunkFile(nodes[0]!, 1, 'rid')), `${n.dir}: same sidecar as the primary`);
    t.ok(n.store.get(1)!.length >= total, 'secondaries hold the acknowledged bytes durably');
  }
  const entries = decodeRecordIds(chunkFile(nodes[0]!, 1, 'rid')).entries;
  t.equal(entries.length, count, 'one sidecar entry per record');
  t.same(entries.map((e) => e.offset), offsets, 'sidecar entries in offset order');
});

t.test('append: a retried record id is answered with its first offset, stored once', async (t) => {
  const { nodes } = await cluster(t, 2);
  await lease(nodes, 2);
  const link = new AppendLink(nodes[0]!.server.addr);
  t.teardown(() => link.close());
  const first = await link.append(2, 1, [rec('w', 1, 300)]);
  const again = await link.append(2, 1, [rec('w', 1, 300)]);
  t.same(again, { offsets: first.offsets, dup: [true] });
  // In flight: both copies sent before either commits.
  const [a, b] = await Promise.all([link.append(2, 1, [rec('w', 2, 300)]), link.append(2, 1, [rec('w', 2, 300), rec('w', 3, 10)])]);
  t.equal(b.offsets[0], a.offsets[0], 'an in-flight duplicate gets the first copy\'s offset');
  t.same(b.dup, [true, false]);
  t.equal((await chunkStat(nodes[0]!.server.addr, 2)).committed, 610, 'three records stored, once each');
});

t.test('append: 16 appends at the same expected offset, exactly one succeeds', async (t) => {
  const { nodes } = await cluster(t, 1);
  await lease(nodes, 3);
  const link = new AppendLink(nodes[0]!.server.addr);
  t.teardown(() => link.close());
  await link.append(3, 1, [rec('w', 0, 100)]);
  const codes = await Promise.all(Array.from({ length: 16 }, (_, i) => code(link.append(3, 1, [rec('x', i, 50)], 100))));
  t.equal(codes.filter((c) => c === 'OK').length, 1);
  t.equal(codes.filter((c) => c === 'PRECONDITION_FAILED').length, 15);
  t.equal((await chunkStat(nodes[0]!.server.addr, 3)).committed, 150, 'the failed ones stored nothing');
});

t.test('append: a full chunk answers CHUNK_FULL from then on; follow sees every byte once, then FOLLOW_END', async (t) => {
  const { nodes } = await cluster(t, 2, 256 * KiB);
  await lease(nodes, 4);
  const follower = (async () => {
    const got: Buffer[] = [];
    let expect = 0;
    for await (const item of followChunk(nodes[0]!.server.addr, 4, 1, 0)) {
      if ('end' in item) return { data: Buffer.concat(got), end: item.end };
      t.equal(item.offset, expect, 'follow pieces are contiguous');
      expect += item.data.length;
      got.push(Buffer.from(item.data));
    }
    throw new Error('follow ended without FOLLOW_END');
  })();
  const link = new AppendLink(nodes[0]!.server.addr);
  t.teardown(() => link.close());
  t.equal(await code(link.append(4, 1, [rec('w', 100, 65 * KiB)])), 'TOO_LARGE', 'a record over a quarter chunk is refused');
  const results: (AppendResult | string)[] = [];
  for (let i = 0; i < 6; i++) results.push(await link.append(4, 1, [rec('w', i, 60 * KiB)]).catch((e: GfsError) => e.code));
  t.same(results.slice(4), ['CHUNK_FULL', 'CHUNK_FULL'], 'the record that does not fit and every one after');
  t.equal(await code(link.append(4, 1, [rec('w', 9, 10)])), 'CHUNK_FULL', 'even a small one: the chunk has ended');
  const stat = await chunkStat(nodes[0]!.server.addr, 4);
  t.ok(stat.ended);
  t.equal(stat.committed, 4 * 60 * KiB);
  const { data, end } = await follower;
  t.equal(end, 4 * 60 * KiB, 'FOLLOW_END carries the final length');
  t.ok(data.equals(chunkFile(nodes[0]!, 4, 'chk').subarray(0, end)), 'the follower got exactly the committed bytes');
});

t.test('append: an expired lease is refused; heartbeat-style renewal extends it', async (t) => {
  const { nodes, clock } = await cluster(t, 1);
  await lease(nodes, 5, 1, 1_000);
  const link = new AppendLink(nodes[0]!.server.addr);
  t.teardown(() => link.close());
  t.same(nodes[0]!.server.leases.held(), [{ handle: 5, version: 1 }]);
  clock.advance(900);
  nodes[0]!.server.leases.renew(5, 1, clock.monoMs() + 1_000);
  clock.advance(900);
  t.equal(await code(link.append(5, 1, [rec('w', 1, 10)])), 'OK', 'renewed: still valid');
  clock.advance(200);
  t.equal(await code(link.append(5, 1, [rec('w', 2, 10)])), 'LEASE_EXPIRED');
  t.same(nodes[0]!.server.leases.held(), [], 'a lapsed lease is not offered for renewal');
  t.equal(await code(link.append(5, 2, [rec('w', 3, 10)])), 'STALE_VERSION', 'a wrong version is refused');
  t.equal(await code(new AppendLink(nodes[0]!.server.addr).append(99, 1, [rec('w', 1, 1)])), 'NOT_PRIMARY');
});

t.test('append: after a query-SEAL at v+1 the old primary cannot write; TRUNCATE cuts data and sidecar', async (t) => {
  const { nodes } = await cluster(t);
  await lease(nodes, 6);
  const link = new AppendLink(nodes[0]!.server.addr);
  t.teardown(() => link.close());
  for (let i = 0; i < 5; i++) await link.append(6, 1, [rec('w', i, 1000), rec('v', i, 500)]);
  const committed = 5 * 1500;
  const durable = await Promise.all(nodes.slice(1).map((n) => querySealReplica(n.server.addr, 6, 2)));
  t.same(durable, [committed, committed], 'secondaries hold every acknowledged byte');
  t.equal(await code(link.append(6, 1, [rec('w', 99, 10)])), 'UNAVAILABLE', 'the deposed primary cannot commit');
  // A chain opened at the old version is refused by the sealed secondary.
  t.equal(await writeOpenCode(nodes[1]!.server.addr, 6, 1), 'STALE_VERSION');
  t.equal(await querySealReplica(nodes[0]!.server.addr, 6, 2), committed, 'the primary is sealed too');
  t.equal((await chunkStat(nodes[0]!.server.addr, 6)).primary, false, 'sealing ended the lease');
  const cut = 3 * 1500 + 1000; // inside a record pair: the v record at 4500+1000 goes
  const answers = await Promise.all(nodes.map((n) => truncateReplica(n.server.addr, 6, 2, cut, 2)));
  for (const a of answers) {
    t.equal(a.length, cut);
    t.same(a.writers.find((w) => w.writer === 'w'), { writer: 'w', seqs: [2, 3], offsets: [3000, 4500] });
    t.same(a.writers.find((w) => w.writer === 'v'), { writer: 'v', seqs: [1, 2], offsets: [2500, 4000] });
  }
  for (const n of nodes) {
    t.equal(chunkFile(n, 6, 'chk').length, cut, 'data cut');
    const entries = decodeRecordIds(chunkFile(n, 6, 'rid')).entries;
    t.equal(entries.length, 7, 'sidecar cut to the records below the length');
    t.equal(n.store.get(6)!.length, cut);
  }
  const bytes = chunkFile(nodes[0]!, 6, 'chk');
  t.ok(nodes.every((n) => chunkFile(n, 6, 'chk').equals(bytes)), 'replicas identical after the truncate');
  t.equal(await code(truncateReplica(nodes[0]!.server.addr, 6, 2, cut + 1, 2)), 'IO_ERROR', 'a truncate never extends');
});

t.test('append: a restart cuts sidecar entries past the durable length', async (t) => {
  const { nodes, clock } = await cluster(t, 1);
  await lease(nodes, 7);
  const link = new AppendLink(nodes[0]!.server.addr);
  await link.append(7, 1, [rec('w', 1, 100), rec('w', 2, 100)]);
  link.close();
  const node = nodes[0]!;
  await node.server.close();
  await node.store.close();
  // Entries written but never made durable by a header (a crash between the two), then a torn entry.
  const ridPath = node.store.sidecarPath(7);
  fs.appendFileSync(ridPath, Buffer.concat([encodeRecordIds([{ offset: 200, length: 100, writer: 'w', seq: 3 }]), Buffer.from([30, 0, 1])]));
  const again = await startNode(node.dir, clock);
  nodes[0] = again;
  const entries = decodeRecordIds(fs.readFileSync(ridPath)).entries;
  t.same(entries.map((e) => e.seq), [1, 2], 'only records below the durable length remain');
  t.equal(fs.readFileSync(ridPath).length, encodeRecordIds(entries).length, 'the torn tail is gone too');
  await again.store.delete(7);
  t.notOk(fs.existsSync(ridPath), 'deleting the chunk deletes its sidecar');
});

/** WRITE_OPEN create:false at `version`: the error code, or OK. */
async function writeOpenCode(addr: string, handle: number, version: number): Promise<string> {
  const [host, port] = addr.split(':');
  const socket = net.connect({ host: host!, port: Number(port) });
  const parser = new FrameParser();
  try {
    return await new Promise<string>((resolve) => {
      socket.on('data', (c: Buffer) => {
        for (const f of parser.push(c)) resolve(f.type === FrameType.OPEN_OK ? 'OK' : String(f.header.code));
      });
      socket.on('close', () => resolve('CLOSED'));
      socket.write(encodeFrame(FrameType.WRITE_OPEN, { handle, version, create: false, chain: [] }));
    });
  } finally {
    socket.destroy();
  }
}

t.test('append: a record larger than a frame travels in APPEND_MORE; a seal ends a follower', async (t) => {
  const { nodes } = await cluster(t, 2);
  await lease(nodes, 8);
  const link = new AppendLink(nodes[0]!.server.addr);
  t.teardown(() => link.close());
  const big = Buffer.alloc(2_500_000);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
  const small = await link.append(8, 1, [rec('w', 1, 10)]);
  const follow = (async () => {
    const parts: Buffer[] = [];
    for await (const item of followChunk(nodes[0]!.server.addr, 8, 1, 10)) {
      if ('end' in item) return { data: Buffer.concat(parts), end: item.end };
      parts.push(Buffer.from(item.data));
    }
    throw new Error('no FOLLOW_END');
  })();
  const r = await link.append(8, 1, [{ data: big, id: { writer: 'w', seq: 2 } }, rec('w', 3, 5)]);
  t.same(r.offsets, [10, 10 + big.length]);
  t.same(small.offsets, [0]);
  for (const n of nodes) t.ok(chunkFile(n, 8, 'chk').subarray(10, 10 + big.length).equals(big), `${n.dir}: the big record is intact`);
  t.equal(await querySealReplica(nodes[0]!.server.addr, 8, 2), 10 + big.length + 5);
  const { data, end } = await follow;
  t.equal(end, 10 + big.length + 5, 'the seal ended the follow at the committed length');
  t.ok(data.subarray(0, big.length).equals(big), 'the follower got the bytes from its start offset');
  t.equal(data.length, big.length + 5);
});

t.test('append: a secondary that dies ends the chunk; appends fail UNAVAILABLE, acknowledged bytes stay', async (t) => {
  const { nodes } = await cluster(t);
  await lease(nodes, 9);
  const link = new AppendLink(nodes[0]!.server.addr);
  t.teardown(() => link.close());
  await link.append(9, 1, [rec('w', 1, 1000)]);
  await nodes[2]!.server.close();
  const codes = await Promise.all([1, 2, 3].map((i) => code(link.append(9, 1, [rec('w', 10 + i, 100)]))));
  t.same(codes, ['UNAVAILABLE', 'UNAVAILABLE', 'UNAVAILABLE']);
  const stat = await chunkStat(nodes[0]!.server.addr, 9);
  t.ok(stat.ended, 'the chunk has ended');
  t.equal(stat.committed, 1000, 'the committed length is what was acknowledged');
  t.ok((await querySealReplica(nodes[1]!.server.addr, 9, 2)) >= 1000, 'the surviving secondary holds every acknowledged byte');
});
