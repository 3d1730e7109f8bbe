/**
 * A gateway with --nats keeps its token table current from the cluster's events: a
 * revoked token and a namespace made public take effect at the gateway at once, long
 * before its own periodic re-read (30 s with a feed), and a NATS restart is reconciled.
 */
import t from 'tap';
import { cluster, eventually, gfsctl } from './helpers';
import { startNats } from './nats';
import { limits } from '../../src/common/limits';

interface Created { id: string; token: string }

t.test('gateway auth over NATS: revocations and visibility changes reach the gateway by event', async (t) => {
  const nats = await startNats(t);
  const { cluster: c } = await cluster(t, { auth: true, nats: nats.url, chunkservers: 1, heartbeatIntervalMs: 200, masterArgs: ['--replication', '1'] });
  const creds = c.credentials!;
  const ok = async (args: string[]) => {
    const r = await gfsctl(c.masters, args, undefined, { GFS_TOKEN: creds.token });
    if (r.code !== 0) throw new Error(`gfsctl ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return r.stdout.toString();
  };
  const status = async (p: string, token?: string) => (await fetch(`${c.rest}${p}`, { headers: token ? { authorization: `Bearer ${token}` } : {} })).status;
  await ok(['ns', 'create', 'logs']);
  await ok(['put', '-', '/logs/f']);
  const reader = JSON.parse(await ok(['--json', 'token', 'create', '--ns', 'logs', '--scope', 'read'])) as Created;
  await eventually(async () => (await status('/v1/files/logs/f', reader.token)) === 200, 10_000, 'the gateway to take the new token');

  const started = performance.now();
  await ok(['token', 'revoke', reader.id]);
  await eventually(async () => (await status('/v1/files/logs/f', reader.token)) === 401, 10_000, 'the gateway to refuse the revoked token');
  const tookMs = performance.now() - started;
  t.ok(tookMs < limits.gatewayAuthReconcileMs / 2, `revoked at the gateway ${Math.round(tookMs)} ms after the revoke (its own re-read comes every ${limits.gatewayAuthReconcileMs} ms)`);

  t.equal(await status('/v1/files/logs/f'), 401, 'anonymous GET of a private namespace');
  const changed = performance.now();
  await ok(['ns', 'set', 'logs', '--visibility', 'public']);
  await eventually(async () => (await status('/v1/files/logs/f')) === 200, 10_000, 'the gateway to see the namespace public');
  t.ok(performance.now() - changed < limits.gatewayAuthReconcileMs / 2, 'a visibility change reaches the gateway by event');

  // NATS restarts: on reconnection the gateway re-reads the table, so a change made while
  // NATS was down is not left for the periodic re-read.
  await nats.stop();
  await ok(['ns', 'set', 'logs', '--visibility', 'private']);
  const down = performance.now();
  await nats.start();
  await eventually(async () => (await status('/v1/files/logs/f')) === 401, 20_000, 'the gateway to reconcile after NATS came back');
  t.ok(performance.now() - down < limits.gatewayAuthReconcileMs / 2, 'reconciled on reconnection, not by the periodic re-read');
});
