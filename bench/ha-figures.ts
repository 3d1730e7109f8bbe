/**
 * Master figures (issue 3): metadata creates per second on 1 master and on a group of
 * 3 (each create durable on a majority), from 1 and 16 concurrent clients; and failover
 * time: kill -9 of the leader to the first create acknowledged by the next one, over
 * several kills. Each run starts its own etcd and cluster in a temp dir.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import net from 'node:net';
import { startDevCluster } from '../src/dev/cluster';
import { MasterConn } from '../src/client';
import { makeTempDir, removeTempDir } from './lib/temp-dirs';
import { progress } from './lib/progress';

const createsDurationMs = 2500;
const electionTtlMs = 2000;

export interface MetadataResult {
  masters: number;
  clients: number;
  createsPerSec: number;
}

export interface FailoverResult {
  kills: number;
  medianMs: number;
  worstMs: number;
  electionTtlMs: number;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

export async function startEtcd(dir: string): Promise<{ url: string; child: ChildProcess }> {
  const [client, peer] = [await freePort(), await freePort()];
  const url = `http://127.0.0.1:${client}`;
  const log = openSync(join(dir, 'etcd.log'), 'a');
  const child = spawn('etcd', [
    '--name', 'bench', '--data-dir', join(dir, 'etcd'), '--listen-client-urls', url, '--advertise-client-urls', url,
    '--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
    '--initial-cluster', `bench=http://127.0.0.1:${peer}`, '--log-level', 'warn',
  ], { stdio: ['ignore', log, log] });
  closeSync(log);
  for (let i = 0; i < 150; i++) {
    try {
      if ((await fetch(`${url}/health`)).ok) return { url, child };
    } catch { /* starting */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error('etcd did not start');
}

async function createsPerSec(masters: string[], clients: number, prefix: string): Promise<number> {
  const conn = new MasterConn({ masters, retries: 20 });
  let done = 0;
  const endAt = Date.now() + createsDurationMs;
  const startedAt = Date.now();
  await Promise.all(Array.from({ length: clients }, async (_, w) => {
    for (let i = 0; Date.now() < endAt; i++) {
      await conn.call('createFile', { path: `/${prefix}/c${w}-${i}`, overwrite: false, replication: 1, contentType: '', metadata: {}, requestId: `${prefix}-${w}-${i}`, allocateChunk: false });
      done++;
    }
  }));
  conn.close();
  return done / ((Date.now() - startedAt) / 1000);
}

export async function benchMetadata(): Promise<MetadataResult[]> {
  const results: MetadataResult[] = [];
  const dir = makeTempDir('ha-meta');
  let etcd: { child: ChildProcess; url: string } | undefined;
  try {
    etcd = await startEtcd(dir);
    for (const masters of [1, 3]) {
      const cluster = await startDevCluster({
        dataDir: join(dir, `c${masters}`), basePort: 0, chunkservers: 1, masters, etcd: etcd.url, electionTtlMs,
      });
      try {
        for (const clients of [1, 16]) {
          const rate = await createsPerSec(cluster.masters, clients, `m${masters}c${clients}`);
          progress(`meta: ${masters} master(s), ${clients} client(s): ${Math.round(rate)} creates/s`);
          results.push({ masters, clients, createsPerSec: rate });
        }
      } finally {
        await cluster.stop();
      }
    }
  } finally {
    etcd?.child.kill('SIGKILL');
    removeTempDir(dir);
  }
  return results;
}

export async function benchFailover(kills: number): Promise<FailoverResult> {
  const dir = makeTempDir('ha-failover');
  let etcd: { child: ChildProcess; url: string } | undefined;
  const times: number[] = [];
  try {
    etcd = await startEtcd(dir);
    const cluster = await startDevCluster({ dataDir: join(dir, 'c'), basePort: 0, chunkservers: 1, masters: 3, etcd: etcd.url, electionTtlMs });
    const conn = new MasterConn({ masters: cluster.masters, retries: 200, timeoutMs: 2000 });
    try {
      await conn.call('mkdir', { path: '/failover', parents: true, requestId: '' });
      for (let k = 0; k < kills; k++) {
        const leader = await cluster.leaderIndex();
        if (leader < 0) throw new Error('no leader before a kill');
        const killedAt = Date.now();
        await cluster.killMaster('SIGKILL', leader);
        // The first create acknowledged after the kill is by the next leader.
        await conn.call('mkdir', { path: `/failover/k${k}`, parents: true, requestId: `failover-${k}` });
        times.push(Date.now() - killedAt);
        progress(`failover: kill ${k + 1}/${kills}: ${times.at(-1)} ms`);
        await cluster.restartMaster(leader);
        await new Promise((r) => setTimeout(r, 1500)); // let it rejoin before the next kill
      }
    } finally {
      conn.close();
      await cluster.stop();
    }
  } finally {
    etcd?.child.kill('SIGKILL');
    removeTempDir(dir);
  }
  const sorted = [...times].sort((a, b) => a - b);
  return { kills: times.length, medianMs: sorted[Math.floor(sorted.length / 2)]!, worstMs: sorted.at(-1)!, electionTtlMs };
}
