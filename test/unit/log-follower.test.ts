/**
 * The log follower (src/client/log-follower.ts) against a scripted master (stat and
 * Watch), a scripted primary (FOLLOW) and a real replica (READ): it yields only bytes
 * the log keeps. An ended chunk the master has not sealed yet is read no further than
 * its primary's FOLLOW_END, even when a stat reports more: a replica may hold bytes no
 * replica acknowledged, which the seal then cuts.
 */
import t from 'tap';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import { Registry } from 'prom-client';
import { FileInfo, FileState, WatchEvent } from '../../gen/gfs';
import { ChunkStore } from '../../src/chunkserver/chunk-store';
import { DataServer } from '../../src/chunkserver/data-server';
import { ForegroundActivity } from '../../src/chunkserver/foreground';
import { createChunkserverMetrics } from '../../src/chunkserver/metrics';
import { initChecksums } from '../../src/common/checksum';
import { ManualClock, systemClock } from '../../src/common/clock';
import { silentLogger } from '../../src/common/log';
import { TokenBucket } from '../../src/common/token-bucket';
import { AppendLink, FrameType, encodeFrame, grantLease } from '../../src/dataplane';
import { followLog } from '../../src/client/log-follower';
import type { MasterConn } from '../../src/client/master-conn';

/** A replica holding chunk 1 at version 1 with `bytes` (an open append chunk, no chain). */
async function replica(t: { teardown(fn: () => unknown): void }, bytes: Buffer[]): Promise<string> {
  await initChecksums();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gfs-follow-'));
  const store = await ChunkStore.open({ dir });
  const server = new DataServer({
    listen: '127.0.0.1:0', store, log: silentLogger, metrics: createChunkserverMetrics(new Registry()), nodeId: 'r',
    onCorrupt: () => undefined, onChunkChanged: () => undefined, clock: new ManualClock(), appendChunkBytes: 64 * 1024,
    foreground: new ForegroundActivity(Date.now), backgroundReads: new TokenBucket(1 << 30, 1 << 20, Date.now),
  });
  await server.start();
  t.teardown(async () => {
    await server.close().catch(() => undefined);
    await store.close().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  await grantLease(server.addr, { handle: 1, version: 1, chain: [], durationMs: 600_000 });
  const link = new AppendLink(server.addr);
  for (const data of bytes) await link.append(1, 1, [{ data }]);
  link.close();
  return server.addr;
}

/** A primary that pushes `pushed` from 0 on FOLLOW, then FOLLOW_END at its length. */
async function scriptedPrimary(t: { teardown(fn: () => unknown): void }, pushed: Buffer): Promise<string> {
  const server = net.createServer((socket) => {
    socket.once('data', () => {
      socket.write(encodeFrame(FrameType.FOLLOW_DATA, { offset: 0 }, pushed));
      socket.end(encodeFrame(FrameType.FOLLOW_END, { length: pushed.length }));
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

function logInfo(chunk: { version: number; length: number; addr: string }, sealed = false): FileInfo {
  return FileInfo.fromPartial({
    path: '/l', inode: 7, size: chunk.length, log: true,
    state: sealed ? FileState.FILE_STATE_SEALED : FileState.FILE_STATE_WRITING,
    chunks: [{ handle: 1, version: chunk.version, offset: 0, length: chunk.length, replicas: [{ nodeId: 'n', addr: chunk.addr }] }],
  });
}

t.test('follow: an ended chunk is not read past FOLLOW_END before the master seals it, whatever a stat says', async (t) => {
  const committed = Buffer.from('one\ntwo\n');
  const unacked = Buffer.from('3rd\n'); // on the replica, never acknowledged: the seal cuts it
  const replicaAddr = await replica(t, [committed, unacked]);
  const primaryAddr = await scriptedPrimary(t, committed);
  const watch = Object.assign(new EventEmitter(), { cancel: () => undefined });
  const stats = [
    logInfo({ version: 1, length: committed.length, addr: primaryAddr }),
    // While the seal runs, a stat that counted the replica's durable length as committed.
    logInfo({ version: 1, length: committed.length + unacked.length, addr: replicaAddr }),
  ];
  let statCalls = 0;
  const conn = {
    call: async (method: string) => {
      if (method !== 'stat') throw new Error(`unexpected call ${method}`);
      const info = stats[Math.min(statCalls, stats.length - 1)]!;
      statCalls++;
      if (statCalls === 2) {
        // The seal commits soon after: a Watch event with the chunk at v2, cut to the committed bytes.
        setTimeout(() => watch.emit('data', WatchEvent.fromPartial({
          reason: 'sealed', file: logInfo({ version: 2, length: committed.length, addr: replicaAddr }, true),
        })), 50);
      }
      return info;
    },
    openWatch: () => ({ stream: watch, addr: 'm' }),
    moveOn: () => undefined,
  } as unknown as MasterConn;
  const got: Buffer[] = [];
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), 10_000);
  try {
    for await (const p of followLog(conn, '/l', { signal: ac.signal }, systemClock, silentLogger)) {
      t.equal(p.offset, Buffer.concat(got).length, 'pieces in file order');
      got.push(p.data);
    }
  } finally {
    clearTimeout(timer);
  }
  t.notOk(ac.signal.aborted, 'the follower ended by itself once the log was sealed');
  t.equal(Buffer.concat(got).toString(), committed.toString(), 'exactly the bytes the log keeps');
  t.ok(statCalls >= 2, 'it asked the master after FOLLOW_END');
});
