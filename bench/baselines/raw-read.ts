/**
 * Baseline: the ceiling of a read on this machine. A server process streams a file
 * from disk with fs.createReadStream over loopback TCP to a client process that
 * discards it. The file is written and made durable first, then the page cache is
 * dropped (when we may), so the read starts cold as a gfs get of old data would.
 *
 * This file is both the parent-side driver (runRawRead) and, when forked with a role
 * argument, the `server` and `client` processes.
 */
import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pipeline } from 'node:stream/promises';
import { BenchChild, runChildRole, sendToParent } from '../lib/children';
import { DiscardSink } from '../lib/discard-sink';
import { connectLoopback, listenLoopback } from '../lib/loopback';
import { dropPageCache, type CacheState } from '../lib/page-cache';
import { makeTempDir, removeTempDir } from '../lib/temp-dirs';
import { MiB, mibPerSec } from '../lib/units';
import { writePatternFile } from './durable-file-writer';

export interface RawReadResult {
  totalBytes: number;
  elapsedMs: number;
  mibPerSec: number;
  cache: CacheState;
}

/** 1 MiB reads: large enough that syscalls are not the cost, as gfs's read pieces. */
const readHighWaterBytes = 1 * MiB;

// ---- parent side ----

export async function runRawRead(totalBytes: number): Promise<RawReadResult> {
  const dir = makeTempDir('raw-read');
  const children: BenchChild[] = [];
  try {
    const filePath = join(dir, 'source.dat');
    await writePatternFile(filePath, totalBytes);
    const server = BenchChild.fork(__filename, 'server', [filePath]);
    children.push(server);
    const port = Number((await server.next('ready')).port);
    const client = BenchChild.fork(__filename, 'client', [String(port)]);
    children.push(client);
    await client.next('ready');
    // Drop after both processes started, so their own start-up reads do not refill it.
    const cache = dropPageCache();
    client.send({ type: 'start' });
    const result = await client.next('result');
    if (result.receivedBytes !== totalBytes) {
      throw new Error(`raw read: received ${String(result.receivedBytes)} of ${totalBytes} bytes`);
    }
    const elapsedMs = Number(result.elapsedMs);
    return { totalBytes, elapsedMs, mibPerSec: mibPerSec(totalBytes, elapsedMs), cache };
  } finally {
    for (const child of children) child.kill();
    removeTempDir(dir);
  }
}

// ---- server process ----

async function serverRole(filePath: string): Promise<void> {
  const server = createServer();
  const port = await listenLoopback(server);
  await sendToParent({ type: 'ready', port });
  const [socket] = (await once(server, 'connection')) as [Socket];
  server.close();
  // pipeline: the socket's backpressure paces the disk reads, and errors propagate.
  await pipeline(createReadStream(filePath, { highWaterMark: readHighWaterBytes }), socket);
}

// ---- client process ----

async function clientRole(port: number): Promise<void> {
  await sendToParent({ type: 'ready' });
  await once(process, 'message'); // `start`, once the page cache is dropped
  const startedAtMs = performance.now();
  const socket = await connectLoopback(port);
  const sink = new DiscardSink();
  await pipeline(socket, sink);
  const elapsedMs = performance.now() - startedAtMs;
  await sendToParent({ type: 'result', receivedBytes: sink.receivedBytes, elapsedMs });
}

if (require.main === module) {
  const [role, ...args] = process.argv.slice(2);
  if (role === 'server') runChildRole(() => serverRole(args[0]!));
  else if (role === 'client') runChildRole(() => clientRole(Number(args[0])));
  else throw new Error(`raw-read: unknown role "${role}" (expected server or client)`);
}
