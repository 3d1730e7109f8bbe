/**
 * Where a create spends its time (README, "Where a create spends its time"): runs one
 * kind of create against a fresh dev cluster and prints, per acknowledged create, the
 * CPU of every process (client = this process), and from the masters' /metrics the
 * commit latency (proposal → committed and applied), WAL records per fdatasync and
 * proposals per replication batch.
 *
 *   node dist/bench/create-costs.js meta [masters=3] [clients=16] [seconds=5]
 *   node dist/bench/create-costs.js creates [inFlight=16] [seconds=5]
 *
 * With GFS_CHILD_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR" (and `node --cpu-prof` for
 * the client) every process also writes a CPU profile; `strace -f -c -p PID` on a
 * server counts its fsyncs and connections. Each create is durable (RF=3 for creates).
 */
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { startDevCluster, type DevCluster } from '../src/dev/cluster';
import { GfsClient, MasterConn } from '../src/client';
import { startEtcd } from './ha-figures';
import { fetchMetrics, type MetricSamples } from './lib/admin-endpoints';
import { processCpuSec } from './lib/proc-stat';
import { makeTempDir, removeTempDir } from './lib/temp-dirs';

interface Sample { metrics: MetricSamples[]; cpu: number[]; clientCpu: NodeJS.CpuUsage }

async function sample(cluster: DevCluster, pids: number[]): Promise<Sample> {
  const admins = cluster.endpoints().admin.master;
  return {
    metrics: await Promise.all(admins.map((a) => fetchMetrics(a))),
    cpu: pids.map((p) => processCpuSec(p) ?? 0),
    clientCpu: process.cpuUsage(),
  };
}

function report(label: string, done: number, seconds: number, inFlight: number, names: string[], a: Sample, b: Sample, loadAvg: number): void {
  const clientMs = (b.clientCpu.user - a.clientCpu.user + b.clientCpu.system - a.clientCpu.system) / 1000;
  console.log(`${label}: ${done} creates in ${seconds.toFixed(1)} s = ${Math.round(done / seconds)}/s, ` +
    `mean latency ${(inFlight * seconds / done * 1000).toFixed(1)} ms, load average ${loadAvg.toFixed(1)}`);
  console.log(`  client: CPU ${(clientMs / done).toFixed(3)} ms/create`);
  for (let i = 0; i < names.length; i++) console.log(`  ${names[i]}: CPU ${((b.cpu[i]! - a.cpu[i]!) * 1000 / done).toFixed(3)} ms/create`);
  b.metrics.forEach((m, i) => {
    const d = (name: string): number => (m.get(name) ?? 0) - (a.metrics[i]!.get(name) ?? 0);
    const commits = d('gfs_master_commit_seconds_count');
    const flushes = d('gfs_master_wal_flushes_total');
    const batches = d('gfs_master_propose_batches_total');
    console.log(`  master ${i}: ${commits ? `commit ${(d('gfs_master_commit_seconds_sum') / commits * 1000).toFixed(1)} ms mean over ${commits} entries, ` : ''}` +
      `WAL ${(flushes / done).toFixed(3)} fdatasync/create, ${(d('gfs_master_wal_records_total') / Math.max(1, flushes)).toFixed(1)} records/fdatasync` +
      `${batches ? `, ${(d('gfs_master_proposals_total') / batches).toFixed(1)} proposals/batch` : ''}`);
  });
}

async function run(inFlight: number, seconds: number, one: (worker: number, i: number) => Promise<void>): Promise<{ done: number; elapsed: number }> {
  let done = 0;
  const started = Date.now();
  const end = started + seconds * 1000;
  await Promise.all(Array.from({ length: inFlight }, async (_, w) => {
    for (let i = 0; Date.now() < end; i++) {
      await one(w, i);
      done++;
    }
  }));
  return { done, elapsed: (Date.now() - started) / 1000 };
}

async function meta(masters: number, clients: number, seconds: number): Promise<void> {
  const dir = makeTempDir('create-costs');
  const etcd = await startEtcd(dir);
  const cluster = await startDevCluster({ dataDir: join(dir, 'c'), basePort: 0, chunkservers: 1, masters, etcd: etcd.url, electionTtlMs: 2000 });
  const conn = new MasterConn({ masters: cluster.masters, retries: 20 });
  try {
    const create = (path: string, requestId: string) => conn.call('createFile', { path, overwrite: false, replication: 1, contentType: '', metadata: {}, requestId, allocateChunk: false });
    for (let i = 0; i < 50; i++) await create(`/warm/${i}`, `warm-${i}`);
    const pids = cluster.endpoints().pids.masters;
    const before = await sample(cluster, pids);
    const load = loadavg()[0]!;
    const { done, elapsed } = await run(clients, seconds, async (w, i) => { await create(`/m/c${w}-${i}`, `m-${w}-${i}`); });
    report(`metadata creates, ${masters} master(s), ${clients} clients`, done, elapsed, clients, pids.map((_, i) => `master ${i}`), before, await sample(cluster, pids), load);
  } finally {
    conn.close();
    await cluster.stop();
    etcd.child.kill('SIGKILL');
    removeTempDir(dir);
  }
}

async function creates(inFlight: number, seconds: number): Promise<void> {
  const dir = makeTempDir('create-costs');
  const cluster = await startDevCluster({ dataDir: join(dir, 'c'), basePort: 0, chunkservers: 3 });
  const client = new GfsClient({ masters: cluster.masters });
  try {
    const body = Buffer.alloc(4096, 7);
    for (let i = 0; i < 20; i++) await client.put(body, `/warm/${i}`);
    const ep = cluster.endpoints();
    const pids = [...ep.pids.masters, ...ep.chunkservers.map((c) => c.pid)];
    const names = [...ep.pids.masters.map((_, i) => `master ${i}`), ...ep.chunkservers.map((c) => `chunkserver ${c.id}`)];
    const before = await sample(cluster, pids);
    const load = loadavg()[0]!;
    const { done, elapsed } = await run(inFlight, seconds, async (w, i) => { await client.put(body, `/c/w${w}-${i}`); });
    report(`4 KiB creates, RF=3, ${inFlight} in flight`, done, elapsed, inFlight, names, before, await sample(cluster, pids), load);
  } finally {
    await client.close();
    await cluster.stop();
    removeTempDir(dir);
  }
}

const [kind, ...args] = process.argv.slice(2);
const n = (i: number, dflt: number): number => (args[i] === undefined ? dflt : Number(args[i]));
const done = kind === 'meta' ? meta(n(0, 3), n(1, 16), n(2, 5)) : kind === 'creates' ? creates(n(0, 16), n(1, 5)) : Promise.reject(new Error('usage: create-costs meta|creates ...'));
done.catch((e: Error) => {
  console.error(e);
  process.exitCode = 1;
});
