/**
 * SEAL on a real data server and chunk store (loopback sockets, temp dir): a seal ends a
 * write session still open on the chunk, and one arriving just as the writer hangs up
 * waits for that session's writer to close instead of failing on a busy chunk. Either
 * way the chunk ends at the new version with every acknowledged byte.
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
import { createChunkserverMetrics } from '../../src/chunkserver/metrics';
import { initChecksums, xxh64 } from '../../src/common/checksum';
import { FrameParser, FrameType, encodeFrame, encodeSums, sealReplica, type Frame } from '../../src/dataplane';
import { TokenBucket } from '../../src/common/token-bucket';

const KiB = 1024;

async function startServer(t: { teardown(fn: () => unknown): void }): Promise<{ server: DataServer; store: ChunkStore }> {
  await initChecksums();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gfs-seal-'));
  const store = await ChunkStore.open({ dir });
  const server = new DataServer({
    listen: '127.0.0.1:0', store, log: (await import('../../src/common/log')).silentLogger,
    metrics: createChunkserverMetrics(new Registry()), nodeId: 'n1', onCorrupt: () => undefined, onChunkChanged: () => undefined,
    foreground: new ForegroundActivity(Date.now), backgroundReads: new TokenBucket(1 << 30, 1 << 20, Date.now),
  });
  await server.start();
  t.teardown(async () => {
    await server.close();
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { server, store };
}

/** Opens a write session on `handle`, writes `bytes` and waits until they are durable. */
async function writeDurable(addr: string, handle: number, bytes: number): Promise<net.Socket> {
  const [host, port] = addr.split(':');
  const socket = net.connect({ host: host!, port: Number(port) });
  const parser = new FrameParser();
  const frames: Frame[] = [];
  let wake: (() => void) | undefined;
  socket.on('data', (c: Buffer) => { frames.push(...parser.push(c)); wake?.(); });
  const next = async (): Promise<Frame> => {
    while (frames.length === 0) await new Promise<void>((r) => { wake = r; });
    return frames.shift()!;
  };
  socket.write(encodeFrame(FrameType.WRITE_OPEN, { handle, version: 1, create: true, chain: [] }));
  if ((await next()).type !== FrameType.OPEN_OK) throw new Error('open failed');
  const data = Buffer.alloc(bytes, 7);
  for (let off = 0; off < bytes; off += 64 * KiB) {
    const block = data.subarray(off, off + 64 * KiB);
    socket.write(encodeFrame(FrameType.DATA, { sums: 1 }, [block, encodeSums([xxh64(block)])]));
  }
  socket.write(encodeFrame(FrameType.SYNC, { seq: 1, length: bytes }));
  const ack = await next();
  if (ack.type !== FrameType.SYNC_ACK) throw new Error(`sync failed: ${JSON.stringify(ack.header)}`);
  // More bytes and a sync of them that will never be acknowledged: the writer has an fsync
  // in hand when the seal comes, so closing it takes a while.
  for (let i = 0; i < 16; i++) {
    socket.write(encodeFrame(FrameType.DATA, { sums: 1 }, [data.subarray(0, 64 * KiB), encodeSums([xxh64(data.subarray(0, 64 * KiB))])]));
  }
  socket.write(encodeFrame(FrameType.SYNC, { seq: 2, length: bytes + 16 * 64 * KiB }));
  await new Promise((r) => setImmediate(r));
  return socket;
}

t.test('data server: a SEAL ends a write session still open on the chunk and bumps its version', async (t) => {
  const { server, store } = await startServer(t);
  const socket = await writeDurable(server.addr, 7, 256 * KiB);
  const durable = await sealReplica(server.addr, 7, 2, 256 * KiB);
  t.ok(durable >= 256 * KiB, `the replica holds the acknowledged bytes (${durable})`);
  t.equal(store.get(7)?.version, 2, 'the chunk is at the new version');
  await new Promise<void>((resolve) => { if (socket.destroyed) resolve(); else socket.once('close', () => resolve()); });
  t.pass('the superseded session was closed');
});

t.test('data server: a SEAL right after the writer hangs up waits for its writer to close', async (t) => {
  const { server, store } = await startServer(t);
  for (let handle = 1; handle <= 20; handle++) {
    const socket = await writeDurable(server.addr, handle, 256 * KiB);
    socket.destroy(); // the client gave up on the chain: teardown starts closing the writer
    await sealReplica(server.addr, handle, 2, 256 * KiB);
    if (store.get(handle)?.version !== 2) t.fail(`chunk ${handle} not sealed`);
  }
  t.pass('20 seals racing a hang-up all succeeded');
});

t.test('data server: a SEAL asking for more bytes than the replica holds durably is refused and changes nothing', async (t) => {
  const { server, store } = await startServer(t);
  const socket = await writeDurable(server.addr, 9, 128 * KiB);
  socket.destroy();
  await t.rejects(sealReplica(server.addr, 9, 2, 10 * 1024 * KiB), { code: 'IO_ERROR' });
  t.equal(store.get(9)?.version, 1, 'still at its old version');
  await t.rejects(sealReplica(server.addr, 404, 2, 1), { code: 'NO_SUCH_CHUNK' });
  await t.rejects(sealReplica(server.addr, 9, 0, 1), { code: 'INVALID_ARGUMENT' });
});
