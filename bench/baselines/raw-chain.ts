/**
 * Baseline: the ceiling of a durable RF=3 write on this machine.
 *
 * A client process streams N bytes over loopback TCP to hop A, which forwards every
 * read to B at once, and B to C, exactly the shape of a gfs put (client → A → B → C).
 * Each hop also appends everything to its own file, fdatasyncing every
 * limits.syncEveryBytes (64 MiB, the cadence gfs uses) and at the end. Acks travel
 * back: C acks once its file is durable; B once its own file is durable and C's ack
 * has arrived; then A; the client stops its clock on A's ack. An ack carries the
 * byte count, so a short transfer cannot pass for a fast one.
 *
 * Every hop is a separate Node process, as chunkservers are, and reports the CPU it
 * used, so the figure is also the CPU floor of a replicated write.
 *
 * This file is both the parent-side driver (runRawChain) and, when forked with a
 * role argument, the `hop` and `client` processes.
 */
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { limits } from '../../src/common/limits';
import { BenchChild, runChildRole, sendToParent } from '../lib/children';
import {
  connectLoopback, endWith, firstError, listenLoopback, pauseUntilDrained, readToEnd, socketHighWaterBytes,
} from '../lib/loopback';
import { patternPiece, patternPieces } from '../lib/pattern-source';
import { makeTempDir, removeTempDir } from '../lib/temp-dirs';
import { cpuSecPerGiB, cpuUsageSec, mibPerSec } from '../lib/units';
import { DurableFileWriter } from './durable-file-writer';

export interface RawChainResult {
  totalBytes: number;
  elapsedMs: number;
  mibPerSec: number;
  /** Client + the three hops, user + system. */
  cpuSecPerGiB: number;
  cpuSecByProcess: Record<string, number>;
}

const hopNames = ['A', 'B', 'C'] as const;
const ackBytes = 8;

// ---- parent side ----

export async function runRawChain(totalBytes: number): Promise<RawChainResult> {
  const dir = makeTempDir('raw-chain');
  const children: BenchChild[] = [];
  try {
    const hops = await startHops(dir, children);
    const client = BenchChild.fork(__filename, 'client', [String(hops[0]!.port), String(totalBytes)]);
    children.push(client);
    // All at once: whichever process fails first rejects, instead of a wait on a hop
    // whose upstream is already gone.
    const [clientResult, ...hopResults] = await Promise.all([client, ...hops.map(({ child }) => child)].map(
      (child) => child.next('result'),
    ));
    if (clientResult!.ackedBytes !== totalBytes) {
      throw new Error(`raw chain: acked ${String(clientResult!.ackedBytes)} of ${totalBytes} bytes`);
    }
    const cpuSecByProcess: Record<string, number> = { client: Number(clientResult!.cpuSec) };
    hops.forEach(({ name }, index) => (cpuSecByProcess[`hop ${name}`] = Number(hopResults[index]!.cpuSec)));
    const cpuSecTotal = Object.values(cpuSecByProcess).reduce((sum, sec) => sum + sec, 0);
    const elapsedMs = Number(clientResult!.elapsedMs);
    return {
      totalBytes,
      elapsedMs,
      mibPerSec: mibPerSec(totalBytes, elapsedMs),
      cpuSecPerGiB: cpuSecPerGiB(cpuSecTotal, totalBytes),
      cpuSecByProcess,
    };
  } finally {
    for (const child of children) child.kill();
    removeTempDir(dir);
  }
}

interface StartedHop {
  name: string;
  child: BenchChild;
  port: number;
}

/** Forks C, then B pointing at C, then A pointing at B; returns them as A, B, C. */
async function startHops(dir: string, children: BenchChild[]): Promise<StartedHop[]> {
  const hops: StartedHop[] = [];
  for (const name of [...hopNames].reverse()) {
    const downstreamPort = hops[0] ? String(hops[0].port) : '';
    const child = BenchChild.fork(__filename, 'hop', [name, join(dir, `hop-${name}.dat`), downstreamPort]);
    children.push(child);
    hops.unshift({ name, child, port: Number((await child.next('ready')).port) });
  }
  return hops;
}

// ---- hop process ----

async function hopRole(filePath: string, downstreamPort: number | undefined): Promise<void> {
  const server = createServer({ allowHalfOpen: true, highWaterMark: socketHighWaterBytes });
  const port = await listenLoopback(server);
  const cpuAtReady = process.cpuUsage();
  await sendToParent({ type: 'ready', port });
  const [upstream] = (await once(server, 'connection')) as [Socket];
  server.close(); // one transfer per process
  const receivedBytes = await relay(upstream, filePath, downstreamPort);
  await sendToParent({ type: 'result', receivedBytes, cpuSec: cpuUsageSec(process.cpuUsage(cpuAtReady)) });
}

/**
 * Forwards and stores everything from upstream; once upstream ends, waits until the
 * local file is durable and the downstream hop has acked, then acks upstream.
 */
async function relay(upstream: Socket, filePath: string, downstreamPort: number | undefined): Promise<number> {
  const file = await DurableFileWriter.create(filePath, limits.syncEveryBytes);
  const downstream = downstreamPort === undefined ? undefined : await connectLoopback(downstreamPort);
  const targets = downstream ? [downstream, file] : [file];
  const failure = firstError([upstream, ...targets]);
  const upstreamEnded = once(upstream, 'end');
  let receivedBytes = 0;
  upstream.on('data', (piece: Buffer) => {
    receivedBytes += piece.length;
    // Forward first: the next hop's disk then works in parallel with ours.
    for (const target of targets) target.write(piece);
    pauseUntilDrained(upstream, targets);
  });
  await Promise.race([upstreamEnded, failure]);

  // Our fdatasync and the rest of the chain's run in parallel, as a real pipeline's do.
  const fileDurable = new Promise<void>((resolve) => file.end(resolve));
  const downstreamAcked = downstream ? endAndReadAck(downstream) : Promise.resolve(receivedBytes);
  const [ackedDownstreamBytes] = await Promise.race([Promise.all([downstreamAcked, fileDurable]), failure]);
  if (ackedDownstreamBytes !== receivedBytes) {
    throw new Error(`downstream acked ${ackedDownstreamBytes} bytes, this hop received ${receivedBytes}`);
  }
  await endWith(upstream, encodeAck(receivedBytes));
  return receivedBytes;
}

async function endAndReadAck(socket: Socket): Promise<number> {
  const answer = readToEnd(socket);
  socket.end();
  return decodeAck(await answer);
}

function encodeAck(bytes: number): Buffer {
  const ack = Buffer.alloc(ackBytes);
  ack.writeBigUInt64BE(BigInt(bytes));
  return ack;
}

function decodeAck(ack: Buffer): number {
  if (ack.length !== ackBytes) throw new Error(`ack of ${ack.length} bytes, expected ${ackBytes}`);
  return Number(ack.readBigUInt64BE());
}

// ---- client process ----

async function clientRole(firstHopPort: number, totalBytes: number): Promise<void> {
  const socket = await connectLoopback(firstHopPort);
  const ackAnswer = readToEnd(socket);
  patternPiece(0); // builds the random pool now, outside the timed part
  const cpuAtStart = process.cpuUsage();
  const startedAtMs = performance.now();
  for (const piece of patternPieces(totalBytes)) {
    if (!socket.write(piece)) await once(socket, 'drain');
  }
  socket.end();
  const ackedBytes = decodeAck(await ackAnswer);
  const elapsedMs = performance.now() - startedAtMs;
  await sendToParent({ type: 'result', ackedBytes, elapsedMs, cpuSec: cpuUsageSec(process.cpuUsage(cpuAtStart)) });
}

if (require.main === module) {
  const [role, ...args] = process.argv.slice(2);
  if (role === 'hop') {
    const [, filePath, downstreamPort] = args;
    runChildRole(() => hopRole(filePath!, downstreamPort ? Number(downstreamPort) : undefined));
  } else if (role === 'client') {
    runChildRole(() => clientRole(Number(args[0]), Number(args[1])));
  } else {
    throw new Error(`raw-chain: unknown role "${role}" (expected hop or client)`);
  }
}
