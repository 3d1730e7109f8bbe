import t from 'tap';
import fs from 'node:fs';
import { cluster, promtoolCheck } from './helpers';

t.test('observability: every process serves /metrics, /healthz and /readyz and logs JSON lines', async (t) => {
  const { cluster: c, client } = await cluster(t);
  await client.put(Buffer.from('x'), '/obs/x');
  const admins = [c.master.adminAddr, ...c.chunkservers.map((p) => p.adminAddr), c.gateway.adminAddr];
  for (const a of admins) {
    const health = await fetch(`http://${a}/healthz`);
    t.equal(health.status, 200, `${a} /healthz`);
    const ready = await fetch(`http://${a}/readyz`);
    t.equal(ready.status, 200, `${a} /readyz`);
    const metrics = await fetch(`http://${a}/metrics`);
    t.equal(metrics.status, 200);
    const text = await metrics.text();
    t.match(text, /# TYPE process_cpu_seconds_total counter/, `${a} serves Prometheus text`);
  }
  t.match(await (await fetch(`http://${c.master.adminAddr}/metrics`)).text(), /gfs_master_ops_total\{op="create",outcome="ok"/);
  t.match(await (await fetch(`http://${c.chunkservers[0]!.adminAddr}/metrics`)).text(), /gfs_chunkserver_written_bytes_total/);
  const status = await (await fetch(`${c.rest}/v1/status`)).json() as { nodesAlive: number; files: number };
  t.equal(status.nodesAlive, 3);
  t.equal(status.files, 1);
  const missing = await fetch(`${c.rest}/v1/nope`);
  t.equal(missing.status, 404);
  t.same(Object.keys(((await missing.json()) as { error: object }).error).sort(), ['code', 'message']);

  for (const name of ['master', 'chunkserver-1', 'gateway']) {
    const lines = fs.readFileSync(`${c.dataDir}/logs/${name}.log`, 'utf8').trim().split('\n');
    t.ok(lines.length > 0);
    for (const l of lines) t.doesNotThrow(() => JSON.parse(l), `${name} log line is JSON: ${l.slice(0, 80)}`);
  }
});


t.test('observability: every /metrics passes promtool check metrics, and running totals are counters', async (t) => {
  const { cluster: c, client } = await cluster(t, { chunkservers: 2, masterArgs: ['--replication', '2'] });
  // Traffic first, so labelled series and the lazily created ones are in the scrape.
  await client.put(Buffer.from('promtool'), '/obs/p');
  t.same(await client.readAll('/obs/p'), Buffer.from('promtool'));
  const admins = [c.master.adminAddr, ...c.chunkservers.map((p) => p.adminAddr), c.gateway.adminAddr];
  for (const a of admins) {
    const text = await (await fetch(`http://${a}/metrics`)).text();
    const { code, output } = await promtoolCheck(text);
    t.equal(code, 0, `${a}: promtool check metrics exits 0`);
    t.equal(output, '', `${a}: no lint findings`);
  }
  const master = await (await fetch(`http://${c.master.adminAddr}/metrics`)).text();
  for (const name of ['gfs_master_repair_completed_total', 'gfs_master_repair_failed_total', 'gfs_master_gc_purged_files_total',
    'gfs_master_gc_orphan_deletes_total', 'gfs_master_gc_aborted_writes_total']) {
    t.match(master, new RegExp(`# TYPE ${name} counter`), `${name} is a counter`);
  }
});
