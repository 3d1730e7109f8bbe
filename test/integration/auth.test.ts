/**
 * Tokens and visibility against a real cluster (gfs master --bootstrap-credentials, the
 * gateway verifying against the master's table): the bootstrap file, token create / ls /
 * revoke through gfsctl, a read-only token refused writes by the master (gfsctl) and by
 * the gateway (REST), revocation at the gateway within its refresh, private / visible /
 * public namespaces, a quota refusal that leaves nothing, per-token rate limits, the
 * audit log, heartbeats that need the cluster secret, and tokens kept across a master
 * restart (from a checkpoint and the WAL).
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { HeartbeatRequest, MasterClient } from '../../gen/gfs';
import { callUnary } from '../../src/common/grpc';
import { GfsError } from '../../src/common/errors';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { cluster, eventually, gfsctl } from './helpers';

interface Created { id: string; token: string; accessKeyId: string; secretAccessKey: string; expiresAtMs: number }

t.test('auth: tokens, scopes, visibility, quotas and revocation on a real cluster', async (t) => {
  const { cluster: c } = await cluster(t, {
    auth: true, chunkservers: 2, heartbeatIntervalMs: 200, masterArgs: ['--replication', '2', '--checkpoint-every', '20'],
    gatewayArgs: ['--token-rate', '20'],
  });
  const rest = c.rest;
  const creds = c.credentials!;

  await t.test('bootstrap: the master wrote the admin credentials, mode 0600', async (t) => {
    t.equal(fs.statSync(c.credentialsFile).mode & 0o777, 0o600);
    const file = JSON.parse(fs.readFileSync(c.credentialsFile, 'utf8')) as Created;
    t.match(file, { token: /^gfs_[0-9a-f]{16}_/, accessKeyId: /^GK[0-9A-F]{16}$/, secretAccessKey: /.{16,}/ });
  });

  const ctl = (args: string[], token?: string, stdin?: string) => gfsctl(c.masters, args, stdin, token ? { GFS_TOKEN: token } : { GFS_TOKEN: '' });
  const ok = async (args: string[], token?: string, stdin?: string) => {
    const r = await ctl(args, token, stdin);
    if (r.code !== 0) throw new Error(`gfsctl ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return r.stdout.toString();
  };
  const http = (method: string, p: string, token?: string, body?: string) => fetch(`${rest}${p}`, {
    method, body, headers: token ? { authorization: `Bearer ${token}` } : {},
  });

  await t.test('heartbeats carry the cluster secret; one without it is refused', async (t) => {
    t.equal(fs.statSync(path.join(c.dataDir, 'cluster-secret')).mode & 0o777, 0o600);
    const nodes = JSON.parse(await ok(['--json', 'nodes'], creds.token)) as { state: string }[];
    t.equal(nodes.filter((n) => n.state === 'alive').length, 2, 'both chunkservers heartbeat');
    const client = new MasterClient(c.masters[0]!, grpc.credentials.createInsecure());
    try {
      await callUnary(client, client.heartbeat, HeartbeatRequest.fromPartial({ nodeId: 'intruder', addr: '127.0.0.1:1' }), 5_000);
      t.fail('a heartbeat without the secret was taken');
    } catch (e) {
      t.equal((e as GfsError).code, 'UNAUTHENTICATED');
    } finally {
      client.close();
    }
    const after = JSON.parse(await ok(['--json', 'nodes'], creds.token)) as { id: string }[];
    t.notOk(after.some((n) => n.id === 'intruder'), 'and it registered nothing');
  });

  await ok(['ns', 'create', 'logs'], creds.token);
  const ro = JSON.parse(await ok(['--json', 'token', 'create', '--ns', 'logs', '--scope', 'read', '--description', 'reader'], creds.token)) as Created;
  const rw = JSON.parse(await ok(['--json', 'token', 'create', '--ns', 'logs', '--scope', 'read,write', '--expires', '30d'], creds.token)) as Created;

  await t.test('token create and ls: secrets shown once, never listed', async (t) => {
    t.match(ro.token, /^gfs_[0-9a-f]{16}_/);
    t.ok(rw.expiresAtMs > Date.now() + 29 * 86_400_000, 'expires in 30 days');
    const listed = await ok(['token', 'ls'], creds.token);
    t.match(listed, ro.id);
    t.match(listed, /logs:read,write/);
    t.notOk(listed.includes(ro.token.split('_')[2]!), 'no secret in token ls');
    t.notOk(listed.includes(ro.secretAccessKey), 'no S3 secret in token ls');
    const asJson = JSON.parse(await ok(['--json', 'token', 'ls'], creds.token)) as { id: string }[];
    t.ok(asJson.some((x) => x.id === rw.id));
    const r = await ctl(['token', 'create', '--ns', 'logs', '--scope', 'read'], rw.token);
    t.equal(r.code, 1, 'a read/write token cannot create tokens (no admin)');
    t.match(r.stderr, /PERMISSION_DENIED/);
  });

  await t.test('a read-only token cannot write: gfsctl (master) and REST (gateway)', async (t) => {
    await ok(['put', '-', '/logs/a'], rw.token, 'written by rw');
    t.equal(await ok(['cat', '/logs/a'], ro.token), 'written by rw');
    const put = await ctl(['put', '-', '/logs/b'], ro.token, 'nope');
    t.equal(put.code, 1);
    t.match(put.stderr, /PERMISSION_DENIED/);
    const anon = await ctl(['ls', '/logs']);
    t.equal(anon.code, 1);
    t.match(anon.stderr, /UNAUTHENTICATED/);
    const restPut = await http('PUT', '/v1/files/logs/b', ro.token, 'nope');
    t.equal(restPut.status, 403);
    t.equal(((await restPut.json()) as { error: { code: string } }).error.code, 'PERMISSION_DENIED');
    t.equal((await http('GET', '/v1/files/logs/a', ro.token)).status, 200);
    t.equal((await http('PUT', '/v1/files/logs/c', rw.token, 'via rest')).status, 201);
    t.equal((await http('GET', '/v1/files/logs/a', 'gfs_0123456789abcdef_' + 'x'.repeat(43))).status, 401, 'an unknown token');
    const nob = await ctl(['ls', '/logs/b'], rw.token);
    t.equal(nob.code, 1, 'the refused puts left nothing');
    await ok(['append', '--create', '/logs/app.log'], rw.token, 'one\ntwo\n');
    t.equal(await ok(['tail', '-n', '2', '/logs/app.log'], ro.token), 'one\ntwo\n', 'a read-only token tails a log (stat, follow)');
    const roAppend = await ctl(['append', '/logs/app.log'], ro.token, 'three\n');
    t.equal(roAppend.code, 1, 'a read-only token cannot append');
    t.match(roAppend.stderr, /PERMISSION_DENIED/);
  });

  await t.test('visibility: private, visible, public', async (t) => {
    for (const [ns, v] of [['priv', 'private'], ['vis', 'visible'], ['pub', 'public']] as const) {
      await ok(['ns', 'create', ns, '--visibility', v], creds.token);
      await ok(['put', '-', `/${ns}/f`], creds.token, `in ${ns}`);
    }
    const get = async (p: string, token?: string) => (await http('GET', p, token)).status;
    // The gateway copies namespace settings from the master every gatewayAuthRefreshMs: a
    // namespace made public a moment ago is public there within that (plus a loaded machine's lag).
    await eventually(async () => (await get('/v1/files/pub/f')) === 200, 10_000, 'the gateway to see the new public namespace');
    t.equal(await get('/v1/files/pub/f'), 200, 'anonymous GET on public');
    t.equal(await (await http('GET', '/v1/files/pub/f')).text(), 'in pub');
    t.equal(await get('/v1/files/pub/?list'), 200, 'anonymous LIST on public');
    t.equal(await get('/v1/files/vis/f'), 401, 'anonymous GET on visible');
    t.equal(await get('/v1/files/priv/f'), 401, 'anonymous GET on private');
    t.equal((await http('PUT', '/v1/files/pub/g', undefined, 'x')).status, 401, 'anonymous PUT on public');
    t.equal(await get('/v1/files/vis/f', rw.token), 403, 'visible: content needs scope');
    const listed = (await (await http('GET', '/v1/namespaces', rw.token)).json()) as { namespaces: { name: string }[] };
    t.same(listed.namespaces.map((n) => n.name).sort(), ['logs', 'pub', 'vis'], 'a logs token sees logs, visible and public, not private');
    const nsls = await ok(['ns', 'ls'], rw.token);
    t.notOk(/\bpriv\b/.test(nsls), 'gfsctl ns ls hides private namespaces too');
    t.match(nsls, /vis\s+visible/);
    const anonLs = await ctl(['cat', '/pub/f']);
    t.equal(anonLs.stdout.toString(), 'in pub', 'gfsctl without a token reads public');
    t.equal((await ctl(['cat', '/vis/f'])).code, 1, '...and nothing else');
  });

  await t.test('quota: a put that would pass it is refused and leaves nothing', async (t) => {
    await ok(['ns', 'create', 'q', '--quota-bytes', '1000', '--quota-files', '3'], creds.token);
    await ok(['put', '-', '/q/first'], creds.token, 'a'.repeat(800));
    const over = await ctl(['put', '-', '/q/second'], creds.token, 'b'.repeat(500));
    t.equal(over.code, 1);
    t.match(over.stderr, /QUOTA_EXCEEDED/);
    const restOver = await http('PUT', '/v1/files/q/third', creds.token, 'c'.repeat(500));
    t.equal(restOver.status, 403);
    t.equal(((await restOver.json()) as { error: { code: string } }).error.code, 'QUOTA_EXCEEDED');
    const ls = await ok(['ls', '/q'], creds.token);
    t.match(ls, /first/);
    t.notOk(/second|third/.test(ls), 'no file of a refused put');
    const ns = (JSON.parse(await ok(['--json', 'ns', 'ls'], creds.token)) as { name: string; usedBytes: number; usedFiles: number }[]).find((n) => n.name === 'q')!;
    await eventually(async () => {
      const q = (JSON.parse(await ok(['--json', 'ns', 'ls'], creds.token)) as typeof ns[]).find((n) => n.name === 'q')!;
      return q.usedBytes === 800 && q.usedFiles === 1;
    }, 10_000, 'the refused puts aborted (nothing pending)');
    t.equal((await ctl(['put', '-', '/q/small'], creds.token, 'ok')).code, 0, 'what fits still goes in');
  });

  await t.test('rate limit: past its rate a token gets 429', async (t) => {
    const answers = await Promise.all(Array.from({ length: 80 }, () => http('GET', '/v1/files/logs/a', ro.token).then(async (r) => { await r.arrayBuffer(); return r.status; })));
    t.ok(answers.includes(429), `some requests were slowed down (${answers.filter((s) => s === 429).length} of 80)`);
    t.ok(answers.includes(200));
    await eventually(async () => (await http('GET', '/v1/files/logs/a', ro.token)).status === 200, 10_000, 'the bucket refills');
  });

  await t.test('S3: a token\'s access key gets the token\'s scopes', async (t) => {
    const s3 = (k: Created) => new S3Client({
      endpoint: c.endpoints().s3, region: 'us-east-1', forcePathStyle: true, maxAttempts: 1,
      credentials: { accessKeyId: k.accessKeyId, secretAccessKey: k.secretAccessKey },
    });
    const [w, r] = [s3(rw), s3(ro)];
    t.teardown(() => { w.destroy(); r.destroy(); });
    await w.send(new PutObjectCommand({ Bucket: 'logs', Key: 's3/obj', Body: 'via s3' }));
    const got = await r.send(new GetObjectCommand({ Bucket: 'logs', Key: 's3/obj' }));
    t.equal(await got.Body!.transformToString(), 'via s3', 'the read-only key reads');
    await t.rejects(r.send(new PutObjectCommand({ Bucket: 'logs', Key: 's3/no', Body: 'x' })), { name: 'AccessDenied' }, 'the read-only key cannot write');
    await t.rejects(w.send(new GetObjectCommand({ Bucket: 'priv', Key: 'f' })), { name: 'AccessDenied' }, 'nor read another private namespace');
  });

  await t.test('revoke: the master refuses at once, the gateway within its refresh', async (t) => {
    t.equal((await http('GET', '/v1/files/logs/a', ro.token)).status, 200);
    await ok(['token', 'revoke', ro.id], creds.token);
    const revokedAt = Date.now();
    const cat = await ctl(['cat', '/logs/a'], ro.token);
    t.equal(cat.code, 1);
    t.match(cat.stderr, /UNAUTHENTICATED/);
    await eventually(async () => (await http('GET', '/v1/files/logs/a', ro.token)).status === 401, 10_000, 'the gateway refuses the revoked token');
    t.comment(`gateway refused the revoked token after ${Date.now() - revokedAt} ms (stated: within 2 s)`);
    t.match(await ok(['token', 'ls'], creds.token), new RegExp(`${ro.id}\\s+revoked`));
    const r = new S3Client({ endpoint: c.endpoints().s3, region: 'us-east-1', forcePathStyle: true, maxAttempts: 1, credentials: { accessKeyId: ro.accessKeyId, secretAccessKey: ro.secretAccessKey } });
    t.teardown(() => r.destroy());
    await t.rejects(r.send(new GetObjectCommand({ Bucket: 'logs', Key: 's3/obj' })), { name: 'InvalidAccessKeyId' }, 'its S3 key is gone too');
  });

  await t.test('audit log: one JSON line per request with the token id', async (t) => {
    const file = path.join(c.dataDir, 'logs', 'audit.log');
    const lines = await eventually(() => {
      const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
      const parsed = text.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { token: string; action: string; path: string; status: number });
      return parsed.some((l) => l.token === rw.id && l.action === 'files.put') ? parsed : undefined;
    }, 10_000, 'audit lines') as { token: string; action: string; path: string; status: number }[];
    t.ok(lines.some((l) => l.token === ro.id && l.action === 'files.put' && l.status === 403), 'a refused write');
    t.ok(lines.some((l) => l.token === '' && l.path === '/v1/files/pub/f' && l.status === 200), 'an anonymous read');
    t.ok(lines.some((l) => l.token === 'invalid' && l.status === 401), 'a refused token');
  });

  await t.test('tokens and namespaces survive a master restart', async (t) => {
    await c.killMaster('SIGKILL');
    await c.restartMaster();
    await eventually(async () => (await ctl(['cat', '/logs/a'], rw.token)).code === 0, 20_000, 'the rw token works after the restart');
    t.equal((await ctl(['put', '-', '/logs/after'], ro.token, 'x')).code, 1, 'the revoked token stays revoked');
    t.equal((await ctl(['ls', '/logs'])).code, 1, 'auth is still enforced');
    t.match(await ok(['ns', 'ls'], creds.token), /q\s+private/);
    t.equal((await ctl(['put', '-', '/q/big'], creds.token, 'z'.repeat(900))).code, 1, 'the quota too');
    t.equal((await ctl(['cat', '/pub/f'])).stdout.toString(), 'in pub', 'and the visibility');
  });
});
