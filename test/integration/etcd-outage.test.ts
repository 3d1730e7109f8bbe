/**
 * A master group left without etcd must idle, not spin: masters once kept running after
 * their etcd and their leader were gone sat at 50 % CPU each and grew to GBs, logging
 * "election lease lost; campaigning again" many times per millisecond (issue 9 item 4).
 */
import t from 'tap';
import fs from 'node:fs';
import { cluster, eventually } from './helpers';
import { startEtcd } from './etcd';
import { processCpuSec } from '../../bench/lib/proc-stat';

const MiB = 1024 * 1024;

/** CPU seconds used so far (user + system) and resident bytes (VmRSS in /proc/PID/status). */
function usage(pid: number): { cpuSec: number; rssBytes: number } {
  const rssKiB = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  const cpuSec = processCpuSec(pid);
  if (cpuSec === undefined || rssKiB === undefined) throw new Error(`process ${pid} is gone`);
  return { cpuSec, rssBytes: Number(rssKiB) * 1024 };
}

function countLines(file: string, text: string): number {
  return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.includes(text)).length;
}

t.test('election: followers left without etcd and leader back off (CPU and memory stay flat), then elect a leader once etcd returns', async (t) => {
  const etcd = await startEtcd(t);
  const { cluster: c, client } = await cluster(t, { masters: 3, etcd: etcd.url, electionTtlMs: 2000 });
  const first = await eventually(async () => { const i = await c.leaderIndex(); return i >= 0 ? i + 1 : 0; }, 20_000, 'a leader') - 1;
  await client.put(Buffer.from('before'), '/outage/before');

  await etcd.stop();
  await c.killMaster('SIGKILL', first);
  const followers = c.masterProcs.filter((_, i) => i !== first);
  const before = followers.map((m) => usage(m.pid));
  const startedAt = Date.now();
  const outageMs = 45_000;
  await new Promise((r) => setTimeout(r, outageMs));
  const wallSec = (Date.now() - startedAt) / 1000;
  for (const [i, m] of followers.entries()) {
    const now = usage(m.pid);
    const cpuShare = (now.cpuSec - before[i]!.cpuSec) / wallSec;
    const rssGrowth = now.rssBytes - before[i]!.rssBytes;
    t.ok(cpuShare < 0.15, `${m.name}: ${(cpuShare * 100).toFixed(1)} % CPU over ${wallSec.toFixed(0)} s without etcd`);
    t.ok(rssGrowth < 100 * MiB, `${m.name}: RSS grew ${(rssGrowth / MiB).toFixed(1)} MiB (now ${(now.rssBytes / MiB).toFixed(0)} MiB)`);
    // Rate-limited: at most one warning of a kind per few seconds, not one per failed call.
    const log = `${c.dataDir}/logs/${m.name}.log`;
    const warnings = countLines(log, 'election lease lost') + countLines(log, 'etcd call failed');
    t.ok(warnings < 2 * (wallSec / 5 + 2), `${m.name}: ${warnings} election warnings in ${wallSec.toFixed(0)} s`);
  }

  await etcd.restart();
  await eventually(async () => { const i = await c.leaderIndex(); return i >= 0 && i !== first; }, 30_000, 'a leader after etcd is back');
  await client.put(Buffer.from('after'), '/outage/after');
  t.equal((await client.readAll('/outage/before')).toString(), 'before');
  t.equal((await client.readAll('/outage/after')).toString(), 'after');
});
