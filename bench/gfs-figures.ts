/**
 * The gfs figures: a whole dev cluster (1 master, 3 chunkservers, gateway, each its
 * own process, on random loopback ports in a temp dir) driven by GfsClient from this
 * process.
 *
 * - put: N bytes RF=3 from a cheap pattern source; MiB/s, and the CPU seconds per GiB
 *   spent by the client (this process) and every server process.
 * - get: the same file after the page cache is dropped, into a discarding Writable.
 * - creates: 4 KiB files, each a put to a new path, 16 in flight, for ~5 s.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { GfsClient } from '../src/client';
import { startDevCluster } from '../src/dev/cluster';
import { DiscardSink } from './lib/discard-sink';
import { dropPageCache, type CacheState } from './lib/page-cache';
import { patternPiece, patternSource } from './lib/pattern-source';
import { descendantPids, totalCpuSec } from './lib/proc-stat';
import { makeTempDir, removeTempDir } from './lib/temp-dirs';
import { KiB, cpuSecPerGiB, cpuUsageSec, mibPerSec } from './lib/units';

/** Everything the bench writes lives in one namespace, away from anything else. */
const benchNamespace = '/bench';
const replicatedChunkservers = 3;
const createBytes = 4 * KiB;
const createsInFlight = 16;
const createsDurationMs = 5000;

type Cluster = Awaited<ReturnType<typeof startDevCluster>>;

export interface GfsSession {
  cluster: Cluster;
  client: GfsClient;
  dataDir: string;
}

export interface PutResult {
  remotePath: string;
  totalBytes: number;
  elapsedMs: number;
  mibPerSec: number;
  clientCpuSec: number;
  serversCpuSec: number;
  /** Client + servers, user + system. */
  cpuSecPerGiB: number;
}

export interface GetResult {
  totalBytes: number;
  elapsedMs: number;
  mibPerSec: number;
  cache: CacheState;
}

export interface CreatesResult {
  createdFiles: number;
  elapsedMs: number;
  createsPerSec: number;
}

export async function startGfsSession(): Promise<GfsSession> {
  const dataDir = makeTempDir('cluster');
  let cluster: Cluster;
  try {
    cluster = await startDevCluster({ dataDir, basePort: 0, chunkservers: replicatedChunkservers });
  } catch (error) {
    process.stderr.write(`${serverLogTails(dataDir)}\n`);
    removeTempDir(dataDir);
    throw error;
  }
  const client = new GfsClient({ masters: cluster.masters });
  return { cluster, client, dataDir };
}

export async function stopGfsSession(session: GfsSession): Promise<void> {
  try {
    await session.client.close();
  } finally {
    await session.cluster.stop();
    removeTempDir(session.dataDir);
  }
}

/**
 * The tail of each server log (the dev cluster writes them to <data>/logs), for the
 * error report: the data dir is removed when the run ends.
 */
export function serverLogTails(dataDir: string, lineCount = 10): string {
  const logDir = join(dataDir, 'logs');
  if (!existsSync(logDir)) return '';
  return readdirSync(logDir)
    .map((name) => {
      const lines = readFileSync(join(logDir, name), 'utf8').trimEnd().split('\n');
      return `--- ${name} (last ${lineCount} lines)\n${lines.slice(-lineCount).join('\n')}`;
    })
    .join('\n');
}

export async function benchPut(session: GfsSession, totalBytes: number): Promise<PutResult> {
  const remotePath = `${benchNamespace}/put-${totalBytes}`;
  patternPiece(0); // builds the random pool now, outside the timed part
  const serverPids = serverPidsOf(session.cluster);
  const serversCpuAtStart = totalCpuSec(serverPids, { requireAlive: true });
  const clientCpuAtStart = process.cpuUsage();
  const startedAtMs = performance.now();
  await session.client.put(patternSource(totalBytes), remotePath, { force: true });
  const elapsedMs = performance.now() - startedAtMs;
  const clientCpuSec = cpuUsageSec(process.cpuUsage(clientCpuAtStart));
  const serversCpuSec = totalCpuSec(serverPids, { requireAlive: true }) - serversCpuAtStart;
  return {
    remotePath,
    totalBytes,
    elapsedMs,
    mibPerSec: mibPerSec(totalBytes, elapsedMs),
    clientCpuSec,
    serversCpuSec,
    cpuSecPerGiB: cpuSecPerGiB(clientCpuSec + serversCpuSec, totalBytes),
  };
}

export async function benchGet(session: GfsSession, put: PutResult): Promise<GetResult> {
  const cache = dropPageCache();
  const sink = new DiscardSink();
  const startedAtMs = performance.now();
  await session.client.get(put.remotePath, sink);
  const elapsedMs = performance.now() - startedAtMs;
  if (sink.receivedBytes !== put.totalBytes) {
    throw new Error(`get ${put.remotePath}: received ${sink.receivedBytes} of ${put.totalBytes} bytes`);
  }
  return { totalBytes: put.totalBytes, elapsedMs, mibPerSec: mibPerSec(put.totalBytes, elapsedMs), cache };
}

/**
 * Each worker keeps one create in flight and starts the next as soon as it is
 * acknowledged; workers stop starting new ones at the deadline, and the rate counts
 * until the last in-flight create is acknowledged.
 */
export async function benchCreates(session: GfsSession): Promise<CreatesResult> {
  const content = patternPiece(0, createBytes);
  const runId = Date.now().toString(36); // fresh names even if the cluster is reused
  const startedAtMs = performance.now();
  const deadlineMs = startedAtMs + createsDurationMs;
  let createdFiles = 0;
  const worker = async (workerIndex: number): Promise<void> => {
    for (let fileIndex = 0; performance.now() < deadlineMs; fileIndex++) {
      const remotePath = `${benchNamespace}/creates-${runId}/w${workerIndex}-${fileIndex}`;
      await session.client.put(singlePiece(content), remotePath);
      createdFiles++;
    }
  };
  await Promise.all(Array.from({ length: createsInFlight }, (_, workerIndex) => worker(workerIndex)));
  const elapsedMs = performance.now() - startedAtMs;
  return { createdFiles, elapsedMs, createsPerSec: createdFiles / (elapsedMs / 1000) };
}

async function* singlePiece(piece: Buffer): AsyncGenerator<Buffer> {
  yield piece;
}

/**
 * The cluster's processes: its chunkservers, plus every other process below this one
 * (the master and the gateway are our children too). This process is left out, its
 * CPU is the client's.
 */
function serverPidsOf(cluster: Cluster): number[] {
  const pids = new Set([...cluster.chunkservers.map((chunkserver) => chunkserver.pid), ...descendantPids(process.pid)]);
  pids.delete(process.pid);
  return [...pids];
}
