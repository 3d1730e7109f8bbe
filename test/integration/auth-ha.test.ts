/**
 * Tokens across a failover: three masters elected through etcd, every one started with
 * --bootstrap-credentials. Only the first leader makes the bootstrap token; after the
 * leader is killed the new one has the same tokens (no second bootstrap), a scoped token
 * still works and still cannot do more, and a revocation on the new leader holds.
 */
import t from 'tap';
import fs from 'node:fs';
import { cluster, eventually } from './helpers';
import { startEtcd } from './etcd';
import { GfsClient } from '../../src/client';

t.test('auth across a failover: one bootstrap token, tokens and revocations kept by the new leader', async (t) => {
  const etcd = await startEtcd(t);
  const { cluster: c } = await cluster(t, { auth: true, masters: 3, etcd: etcd.url, electionTtlMs: 2000, deadAfterMs: 5000, heartbeatIntervalMs: 200, chunkservers: 2, masterArgs: ['--replication', '2'] });
  const bootstrapFile = fs.readFileSync(c.credentialsFile, 'utf8');
  const admin = new GfsClient({ masters: c.masters, token: c.credentials!.token, retries: 30 });
  t.teardown(() => admin.close());
  await admin.admin.setNamespace('ha', { create: true });
  const rw = await admin.admin.createToken([{ namespace: 'ha', scopes: ['read', 'write'] }]);
  const writer = new GfsClient({ masters: c.masters, token: rw.token, retries: 30 });
  t.teardown(() => writer.close());
  await writer.put(Buffer.from('before'), '/ha/before');

  const first = await eventually(async () => { const i = await c.leaderIndex(); return i >= 0 ? i + 1 : 0; }, 15_000, 'a leader') - 1;
  await c.killMaster('SIGKILL', first);
  await eventually(async () => { const i = await c.leaderIndex(); return i >= 0 && i !== first; }, 20_000, 'a new leader');

  await writer.put(Buffer.from('after'), '/ha/after');
  t.equal((await writer.readAll('/ha/before')).toString(), 'before', 'the scoped token works on the new leader');
  await t.rejects(writer.delete('/ha/before'), { code: 'PERMISSION_DENIED' }, 'and still has no delete scope');
  const { tokens } = await admin.admin.listTokens();
  t.equal(tokens.length, 2, 'the bootstrap token and the scoped one: no second bootstrap');
  t.equal(fs.readFileSync(c.credentialsFile, 'utf8'), bootstrapFile, 'the credentials file was written once');

  await admin.admin.revokeToken(rw.id);
  await t.rejects(writer.stat('/ha/after'), { code: 'UNAUTHENTICATED' }, 'revoked on the new leader');
  const anonymous = new GfsClient({ masters: c.masters, retries: 30 });
  t.teardown(() => anonymous.close());
  await t.rejects(anonymous.stat('/ha/after'), { code: 'UNAUTHENTICATED' }, 'still enforced after the failover');
});
