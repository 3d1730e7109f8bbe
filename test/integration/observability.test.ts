import t from 'tap';
import fs from 'node:fs';
import { cluster } from './helpers';

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
