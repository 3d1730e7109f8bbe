import t from 'tap';
import { cluster, sha256, eventually, MiB } from './helpers';
import { startEtcd } from './etcd';
import { GfsClient } from '../../src/client';

function payload(i: number, bytes: number): Buffer {
  const b = Buffer.alloc(bytes);
  for (let k = 0; k + 4 <= bytes; k += 64) b.writeUInt32LE((i * 2654435761 + k) >>> 0, k);
  return b;
}

t.test('ha: kill -9 of the leader during puts, creates and renames from several clients loses no acknowledged operation', async (t) => {
  const etcd = await startEtcd(t);
  const { cluster: c, client } = await cluster(t, { masters: 3, etcd: etcd.url, electionTtlMs: 2000, deadAfterMs: 5000, heartbeatIntervalMs: 200 });
  const first = await eventually(async () => { const i = await c.leaderIndex(); return i >= 0 ? i + 1 : 0; }, 15_000, 'a leader') - 1;

  const acked = new Map<string, string>();
  const renamed: [string, string][] = [];
  let stop = false;
  const writers = Array.from({ length: 3 }, async (_, w) => {
    const mine = new GfsClient({ masters: c.masters, retries: 30 });
    try {
      for (let i = 0; !stop; i++) {
        const p = `/ha/w${w}-${i}`;
        const data = payload(w * 1000 + i, i % 5 === 0 ? 2 * MiB : 5000);
        try {
          await mine.put(data, p);
          acked.set(p, sha256(data));
          if (i % 4 === 3) {
            await mine.rename(p, `${p}.moved`);
            acked.delete(p);
            acked.set(`${p}.moved`, sha256(data));
            renamed.push([p, `${p}.moved`]);
          }
        } catch {
          // An operation that failed was not acknowledged: nothing is promised about it.
        }
      }
    } finally {
      await mine.close();
    }
  });
  // Kill only once writes are flowing (a loaded machine may need a while for the first).
  await eventually(() => acked.size >= 3, 30_000, 'the first acknowledged writes');
  const ackedBeforeKill = acked.size;
  const killedAt = Date.now();
  await c.killMaster('SIGKILL', first);
  const second = await eventually(async () => { const i = await c.leaderIndex(); return i >= 0 && i !== first ? i + 1 : 0; }, 15_000, 'a new leader') - 1;
  t.not(second, first, `master ${second + 1} took over from ${first + 1} after ${Date.now() - killedAt} ms`);
  const ackedAtTakeover = acked.size;
  await eventually(() => acked.size > ackedAtTakeover, 30_000, 'writes acknowledged by the new leader');
  stop = true;
  await Promise.all(writers);
  t.ok(ackedBeforeKill > 0 && acked.size > ackedBeforeKill, `writes before (${ackedBeforeKill}) and after (${acked.size}) the failover`);

  for (const [p, hash] of acked) t.equal(sha256(await client.readAll(p)), hash, `${p} intact`);
  for (const [from] of renamed) await t.rejects(client.stat(from), { code: 'NO_SUCH_FILE' }, `${from} was renamed`);

  // The old leader comes back as a follower and catches up.
  await c.restartMaster(first);
  // (Files whose put failed from the client's side may still exist: their outcome was
  // unknown. The rejoined master must hold exactly what the leader holds.)
  await eventually(async () => {
    const [old, now] = await Promise.all([first, second].map(async (i) => {
      const res = await fetch(`http://${c.masterProcs[i]!.adminAddr}/status`);
      return (await res.json()) as { masters: { role: string; appliedIndex: number }[]; files: number };
    }));
    return old!.masters[0]!.role === 'follower' && old!.files === now!.files && old!.files >= acked.size;
  }, 20_000, 'the old leader to rejoin as a follower with every file');
  t.pass('old leader rejoined as follower and caught up');
});

t.test('ha: a leader cut off from etcd stops accepting writes; after etcd returns the group serves again', async (t) => {
  const etcd = await startEtcd(t);
  const { cluster: c, client } = await cluster(t, { masters: 3, etcd: etcd.url, electionTtlMs: 2000, heartbeatIntervalMs: 200 });
  await eventually(async () => (await c.leaderIndex()) >= 0, 15_000, 'a leader');
  await client.put(Buffer.from('before'), '/fence/before');
  etcd.pause();
  // Within the lease TTL the leader stops serving: writes are refused, never acknowledged.
  await eventually(async () => (await c.leaderIndex()) < 0, 5_000, 'the leader to stop serving');
  const quick = new GfsClient({ masters: c.masters, retries: 1, timeoutMs: 2000 });
  t.teardown(() => quick.close());
  await t.rejects(quick.put(Buffer.from('during'), '/fence/during'), 'a write while etcd is frozen fails');
  etcd.resume();
  await eventually(async () => (await c.leaderIndex()) >= 0, 20_000, 'a leader after etcd is back');
  await client.put(Buffer.from('after'), '/fence/after');
  t.equal((await client.readAll('/fence/before')).toString(), 'before');
  t.equal((await client.readAll('/fence/after')).toString(), 'after');
  await t.rejects(client.stat('/fence/during'), { code: 'NO_SUCH_FILE' }, 'the refused write left nothing');
});

interface MasterView { masters: { role: string; appliedIndex: number; commitIndex: number }[]; files: number }
async function view(adminAddr: string): Promise<MasterView> {
  return (await (await fetch(`http://${adminAddr}/status`)).json()) as MasterView;
}

t.test('ha: a follower killed mid-replication catches up; a lagging one is brought back by a checkpoint transfer', async (t) => {
  const etcd = await startEtcd(t);
  const { cluster: c, client } = await cluster(t, {
    masters: 3, etcd: etcd.url, electionTtlMs: 2000, heartbeatIntervalMs: 200,
    masterArgs: ['--checkpoint-every', '40', '--wal-segment-size', '8KiB'],
  });
  const leader = await eventually(async () => { const i = await c.leaderIndex(); return i >= 0 ? i + 1 : 0; }, 15_000, 'a leader') - 1;
  const followers = [0, 1, 2].filter((i) => i !== leader);
  const [f1, f2] = followers as [number, number];

  // f1 dies in the middle of a stream of creates, then comes back.
  const stream = (async () => { for (let i = 0; i < 60; i++) await client.put(Buffer.from(`a${i}`), `/lag/a${i}`); })();
  await new Promise((r) => setTimeout(r, 300));
  await c.killMaster('SIGKILL', f1);
  await stream;
  await c.restartMaster(f1);
  await eventually(async () => (await view(c.masterProcs[f1]!.adminAddr)).files === 60, 20_000, 'the killed follower to catch up');
  t.pass('follower killed mid-replication caught up');

  // f2 is down while the leader writes far past its checkpoints: its segments are gone.
  await c.killMaster('SIGKILL', f2);
  for (let i = 0; i < 200; i++) await client.mkdir(`/lag/d${i}`);
  await c.restartMaster(f2);
  await eventually(async () => {
    const v = await view(c.masterProcs[f2]!.adminAddr);
    return v.files === 60 && v.masters[0]!.appliedIndex >= (await view(c.masterProcs[leader]!.adminAddr)).masters[0]!.commitIndex - 5;
  }, 20_000, 'the lagging follower to catch up');
  const log = (await import('node:fs')).readFileSync(`${c.dataDir}/logs/master-${f2 + 1}.log`, 'utf8');
  t.match(log, /installed a checkpoint from the leader/, 'it caught up from a checkpoint the leader sent');
  const listing = await client.list('/lag');
  t.equal(listing.entries.length, 260, 'every file and directory is there');
});

t.test('ha: etcd restarting does not lose or fork the namespace', async (t) => {
  const etcd = await startEtcd(t);
  const { cluster: c, client } = await cluster(t, { masters: 3, etcd: etcd.url, electionTtlMs: 2000, heartbeatIntervalMs: 200 });
  await eventually(async () => (await c.leaderIndex()) >= 0, 15_000, 'a leader');
  for (let i = 0; i < 10; i++) await client.put(Buffer.from(`b${i}`), `/etcd/b${i}`);
  await etcd.restart();
  for (let i = 10; i < 20; i++) await client.put(Buffer.from(`b${i}`), `/etcd/b${i}`);
  for (let i = 0; i < 20; i++) t.equal((await client.readAll(`/etcd/b${i}`)).toString(), `b${i}`);
  // Every master converges on the same namespace: no fork.
  await eventually(async () => {
    const views = await Promise.all(c.masterProcs.map((m) => view(m.adminAddr)));
    return views.every((v) => v.files === 20) && views.filter((v) => v.masters[0]!.role === 'leader').length === 1;
  }, 20_000, 'all masters to agree');
  const status = await client.statusAll();
  t.equal(status.masters.length, 3, 'gfsctl status lists every master');
  t.equal(status.masters.filter((m) => m.role === 'leader').length, 1, 'one leader');
  t.equal(new Set(status.masters.map((m) => m.pid)).size, 3, 'each with its pid');
});
