/**
 * Rebalancing and decommission on real processes: a new empty node receives replicas
 * from fuller ones; a drained node is reported removable only once every chunk it holds
 * has its goal elsewhere, and no chunk ever drops below its goal because of the drain.
 */
import t from 'tap';
import { cluster, gfsctl, sha256, MiB, eventually, patterned } from './helpers';
import type { GfsClient } from '../../src/client';


async function replicaCounts(client: GfsClient, paths: string[]): Promise<{ min: number; max: number; on: Map<string, number> }> {
  let min = Infinity;
  let max = 0;
  const on = new Map<string, number>();
  for (const p of paths) {
    for (const ch of (await client.stat(p)).chunks) {
      min = Math.min(min, ch.replicas.length);
      max = Math.max(max, ch.replicas.length);
      for (const r of ch.replicas) on.set(r.nodeId, (on.get(r.nodeId) ?? 0) + 1);
    }
  }
  return { min, max, on };
}

t.test('lifecycle: balance: a new empty chunkserver receives replicas from the fuller ones', async (t) => {
  const { cluster: c, client } = await cluster(t, {
    heartbeatIntervalMs: 200, safeModeMinMs: 1000, capacityBytes: 1024 * MiB,
    masterArgs: ['--balance-threshold', '0.005', '--balance-interval', '1s'],
  });
  const files = ['/logs/b1', '/logs/b2', '/logs/b3', '/logs/b4'];
  const data = files.map((_, i) => patterned(8 * MiB, 10 + i));
  for (let i = 0; i < files.length; i++) await client.put(data[i]!, files[i]!, { chunkBytes: 2 * MiB });
  const fresh = await c.addChunkserver();
  await c.waitForChunkservers(4);
  const plan = await gfsctl(c.masters, ['--json', 'balance', '--dry-run']);
  t.equal(plan.code, 0);
  const report = JSON.parse(plan.stdout.toString()) as { planned: unknown[]; nodes: { nodeId: string; role: string }[]; progress: { inflightMoves: number; completedMoves: number } };
  t.ok(report.planned.length + report.progress.inflightMoves + report.progress.completedMoves > 0, 'the dry run shows moves to make (or the automatic round already started them)');
  t.match((await gfsctl(c.masters, ['balance', '--dry-run'])).stdout.toString(), /mean fill/, 'gfsctl balance prints the fill of each node');

  const counts = (await eventually(async () => {
    const r = await replicaCounts(client, files);
    return (r.on.get(fresh.nodeId!) ?? 0) >= 4 && r.min === 3 && r.max === 3 ? r : undefined;
  }, 30_000, 'replicas moved onto the new node, every chunk back at 3'))!;
  t.ok((counts.on.get(fresh.nodeId!) ?? 0) >= 4, `the new node holds ${counts.on.get(fresh.nodeId!)} replicas`);
  const status = (await eventually(async () => {
    const st = await client.status();
    return st.balance!.completedMoves >= 4 ? st : undefined;
  }, 10_000, 'status to count the moves'))!;
  t.ok(status.balance!.completedMoves >= 4, `status counts ${status.balance!.completedMoves} moves`);
  t.match((await gfsctl(c.masters, ['status'])).stdout.toString(), /balance: fill/);
  t.equal((await gfsctl(c.masters, ['fsck'])).code, 0, 'fsck clean');
  for (let i = 0; i < files.length; i++) t.equal(sha256(await client.readAll(files[i]!)), sha256(data[i]!), `${files[i]} intact`);
});

t.test('lifecycle: decommission: a drained node is reported removable, and no chunk drops below its goal meanwhile', async (t) => {
  const { cluster: c, client } = await cluster(t, { chunkservers: 4, heartbeatIntervalMs: 200, deadAfterMs: 3000, safeModeMinMs: 1000 });
  const files = ['/logs/d1', '/logs/d2'];
  const data = [patterned(9 * MiB, 21), patterned(6 * MiB, 22)];
  for (let i = 0; i < files.length; i++) await client.put(data[i]!, files[i]!, { chunkBytes: 1 * MiB });
  // Drain the node that holds the most replicas.
  const before = await replicaCounts(client, files);
  const victim = [...before.on.entries()].sort((a, b) => b[1] - a[1])[0]![0];
  const victimIndex = c.chunkservers.findIndex((p) => p.nodeId === victim);
  const started = await gfsctl(c.masters, ['decommission', victim.slice(0, 8)]);
  t.equal(started.code, 0, started.stderr);
  t.match(started.stdout.toString(), /draining|decommissioned/);

  let lowest = Infinity;
  const state = async () => (await client.nodes()).nodes.find((n) => n.id === victim)!;
  await eventually(async () => {
    const r = await replicaCounts(client, files);
    lowest = Math.min(lowest, r.min);
    const back = await client.readAll(files[0]!);
    if (sha256(back) !== sha256(data[0]!)) throw new Error('read during the drain returned wrong bytes');
    return (await state()).state === 'decommissioned';
  }, 30_000, 'the node reported removable');
  t.ok(lowest >= 3, `no chunk went below 3 readable replicas during the drain (lowest ${lowest})`);
  t.match((await state()).drainingDetail, /removable/);
  const again = await gfsctl(c.masters, ['--json', 'decommission', victim]);
  t.ok(JSON.parse(again.stdout.toString()).removable, 'gfsctl decommission says removable');

  await client.put(patterned(2 * MiB, 23), '/logs/after', { chunkBytes: MiB });
  t.notOk((await client.stat('/logs/after')).chunks.some((ch) => ch.replicas.some((r) => r.nodeId === victim)), 'new chunks avoid the draining node');

  await c.killChunkserver(victimIndex);
  await eventually(async () => (await client.status()).nodesDead === 1, 10_000, 'the removed node declared dead');
  const fsck = await gfsctl(c.masters, ['fsck']);
  t.equal(fsck.code, 0, 'fsck clean right after removing it: nothing was left to heal');
  for (let i = 0; i < files.length; i++) t.equal(sha256(await client.readAll(files[i]!)), sha256(data[i]!), `${files[i]} intact`);
});

t.test('lifecycle: decommission: a drain survives a master crash and restart', async (t) => {
  const { cluster: c, client } = await cluster(t, { chunkservers: 4, heartbeatIntervalMs: 200, deadAfterMs: 3000, safeModeMinMs: 1000 });
  const data = patterned(6 * MiB, 31);
  await client.put(data, '/logs/r1', { chunkBytes: 1 * MiB });
  const victim = c.chunkservers[2]!.nodeId!;
  const started = await gfsctl(c.masters, ['decommission', victim]);
  t.equal(started.code, 0, started.stderr);

  await c.killMaster('SIGKILL');
  await c.restartMaster();
  const state = async () => (await client.nodes()).nodes.find((n) => n.id === victim)?.state;
  await eventually(async () => (await state()) === 'decommissioned', 30_000, 'the restarted master still drains the node and reports it removable');
  await client.put(patterned(3 * MiB, 32), '/logs/r2', { chunkBytes: MiB });
  t.notOk((await client.stat('/logs/r2')).chunks.some((ch) => ch.replicas.some((r) => r.nodeId === victim)), 'new chunks still avoid it');

  const cancelled = await gfsctl(c.masters, ['decommission', '--cancel', victim]);
  t.equal(cancelled.code, 0, cancelled.stderr);
  await c.killMaster('SIGKILL');
  await c.restartMaster();
  await eventually(async () => (await state()) === 'alive', 15_000, 'a cancelled drain stays cancelled after a restart');
  t.equal(sha256(await client.readAll('/logs/r1')), sha256(data), 'bytes intact');
});
