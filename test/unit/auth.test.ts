/**
 * The pure parts of tokens and visibility (src/common/auth.ts, src/master/auth/): scope
 * checks, create-with-less, expiry, token strings, the metadata ops and their snapshot
 * records, the per-RPC guard and quotas against a real MetaState.
 */
import t from 'tap';
import { throwsCode } from './throws-code';
import { Metadata } from '@grpc/grpc-js';
import { MetaOp } from '../../gen/gfs';
import { GfsError, type ErrorCode } from '../../src/common/errors';
import {
  allowed, canSee, hasScope, mayDelegate, mayManage, newTokenSecrets, normalizeGrants, parseScopes, parseToken,
  secretMatches, sha256Hex, tokenIdOfAccessKey, tokenLive, type Principal,
} from '../../src/common/auth';
import { MetaState } from '../../src/master/meta-state';
import { Guard } from '../../src/master/auth/guard';
import { AuthCalls } from '../../src/master/auth/auth-rpc';
import { silentLogger } from '../../src/common/log';
import { namespaceUsage } from '../../src/master/auth/quota';
import { readFileSync } from 'node:fs';
import { GOLDEN_SNAPSHOT, GOLDEN_SNAPSHOT_V2 } from '../fixtures/format/meta/generate';

const tap = t;

const admin: Principal = { id: 'a'.repeat(16), grants: [{ namespace: '*', scopes: ['admin'] }], expiresAtMs: 0 };
const logsAdmin: Principal = { id: 'b'.repeat(16), grants: [{ namespace: 'logs', scopes: ['admin'] }], expiresAtMs: 5_000 };
const logsRw: Principal = { id: 'c'.repeat(16), grants: [{ namespace: 'logs', scopes: ['read', 'write'] }], expiresAtMs: 0 };

t.test('scopes: admin implies the others, * covers every namespace, nothing elsewhere', async (t) => {
  t.ok(hasScope(admin, 'anything', 'delete'));
  t.ok(hasScope(logsAdmin, 'logs', 'delete'));
  t.notOk(hasScope(logsAdmin, 'other', 'read'));
  t.ok(hasScope(logsRw, 'logs', 'write'));
  t.notOk(hasScope(logsRw, 'logs', 'delete'));
  t.notOk(hasScope(logsRw, 'logs', 'admin'));
  t.same(parseScopes('write, read,read'), ['read', 'write'], 'sorted, deduplicated');
  throwsCode(t, () => parseScopes('read,own'), 'INVALID_ARGUMENT');
  throwsCode(t, () => normalizeGrants([{ namespace: 'a/b', scopes: ['read'] }]), 'INVALID_ARGUMENT', 'a namespace is one component');
  t.same(normalizeGrants([{ namespace: 'z', scopes: ['read'] }, { namespace: 'a', scopes: ['write'] }, { namespace: 'z', scopes: ['delete'] }]),
    [{ namespace: 'a', scopes: ['write'] }, { namespace: 'z', scopes: ['read', 'delete'] }], 'canonical: one grant per namespace, sorted');
});

t.test('visibility: private needs a scope, visible is listed to any token, public is read by anyone', async (t) => {
  t.notOk(allowed(undefined, 'p', 'private', 'read'));
  t.notOk(allowed(undefined, 'v', 'visible', 'read'));
  t.ok(allowed(undefined, 'pub', 'public', 'read'), 'anonymous GET/LIST on public');
  t.notOk(allowed(undefined, 'pub', 'public', 'write'), 'anonymous never writes');
  t.notOk(allowed(logsRw, 'pub', 'public', 'write'), 'public read is not public write');
  t.notOk(allowed(logsRw, 'v', 'visible', 'read'), 'visible: content needs scope');
  t.ok(canSee(logsRw, 'v', 'visible'), 'visible: listed to any token');
  t.notOk(canSee(undefined, 'v', 'visible'));
  t.notOk(canSee(logsRw, 'p', 'private'));
  t.ok(canSee(logsRw, 'logs', 'private'));
  t.ok(canSee(undefined, 'pub', 'public'));
});

t.test('create-with-less: scopes, namespaces and expiry never grow', async (t) => {
  t.equal(mayDelegate(admin, [{ namespace: '*', scopes: ['admin'] }], 0), 0, 'a root admin makes anything');
  t.equal(mayDelegate(logsAdmin, [{ namespace: 'logs', scopes: ['read'] }], 0), 5_000, 'no expiry asked: the creator\'s');
  t.equal(mayDelegate(logsAdmin, [{ namespace: 'logs', scopes: ['read'] }], 4_000), 4_000, 'an earlier expiry is kept');
  throwsCode(t, () => mayDelegate(logsAdmin, [{ namespace: 'logs', scopes: ['read'] }], 6_000), 'PERMISSION_DENIED', 'expiry beyond the creator\'s');
  throwsCode(t, () => mayDelegate(logsAdmin, [{ namespace: 'other', scopes: ['read'] }], 0), 'PERMISSION_DENIED', 'a namespace it has not');
  throwsCode(t, () => mayDelegate(logsAdmin, [{ namespace: '*', scopes: ['read'] }], 0), 'PERMISSION_DENIED', '* needs * admin');
  throwsCode(t, () => mayDelegate(logsRw, [{ namespace: 'logs', scopes: ['read'] }], 0), 'PERMISSION_DENIED', 'creating needs admin there');
  t.ok(mayManage(logsAdmin, logsRw), 'the logs admin manages a logs token');
  t.notOk(mayManage(logsRw, logsAdmin));
  t.ok(mayManage(logsRw, logsRw), 'a token manages itself');
  t.ok(mayManage(admin, logsAdmin));
});

t.test('expiry and revocation end a token', async (t) => {
  t.ok(tokenLive({ expiresAtMs: 0, revokedAtMs: 0 }, 1e15));
  t.ok(tokenLive({ expiresAtMs: 100, revokedAtMs: 0 }, 99));
  t.notOk(tokenLive({ expiresAtMs: 100, revokedAtMs: 0 }, 100));
  t.notOk(tokenLive({ expiresAtMs: 0, revokedAtMs: 5 }, 1));
});

t.test('token strings: parse, hash, access key', async (t) => {
  let n = 0;
  const s = newTokenSecrets((bytes) => Buffer.alloc(bytes, ++n));
  const parsed = parseToken(s.token);
  t.ok(parsed);
  t.equal(parsed!.id, s.id);
  t.ok(secretMatches(sha256Hex(parsed!.secret), parsed!.secret));
  t.notOk(secretMatches(sha256Hex(parsed!.secret), parsed!.secret.slice(1) + 'x'));
  t.equal(tokenIdOfAccessKey(s.accessKeyId), s.id);
  t.equal(parseToken('gfs_zz_nope'), undefined);
  t.equal(parseToken(s.token + 'x'), undefined);
});

function tokenOp(id: string, secret: string, grants: { namespace: string; scopes: string[] }[], extra: Partial<MetaOp['tokenCreate']> = {}): MetaOp {
  return MetaOp.fromPartial({
    tokenCreate: {
      id, secretSha256: sha256Hex(secret), grants, createdAtMs: 1, expiresAtMs: 0, accessKeyId: 'GK' + id.toUpperCase(),
      secretAccessKey: 'S'.repeat(40), description: 'test', parentId: '', bootstrap: false, ...extra,
    },
  });
}

t.test('metadata: token and namespace ops apply, refuse bad ones whole, and survive a snapshot', async (t) => {
  const s = new MetaState();
  const id = '0123456789abcdef';
  s.apply(tokenOp(id, 'secret', [{ namespace: '*', scopes: ['admin'] }], { bootstrap: true }));
  throwsCode(t, () => s.apply(tokenOp('1123456789abcdef', 'x', [{ namespace: '*', scopes: ['admin'] }], { bootstrap: true })), 'ALREADY_EXISTS', 'one bootstrap only');
  throwsCode(t, () => s.apply(tokenOp(id, 'x', [{ namespace: 'a', scopes: ['read'] }])), 'ALREADY_EXISTS', 'ids are unique');
  throwsCode(t, () => s.apply(tokenOp('2123456789abcdef', 'x', [{ namespace: 'a', scopes: ['own'] }])), 'INVALID_ARGUMENT');
  s.apply(tokenOp('3123456789abcdef', 'y', [{ namespace: 'logs', scopes: ['write', 'read'] }], { expiresAtMs: 99 }));
  s.apply(MetaOp.fromPartial({ tokenRevoke: { id: '3123456789abcdef', revokedAtMs: 50 } }));
  s.apply(MetaOp.fromPartial({ namespaceSet: { name: 'logs', visibility: 'public', quotaBytes: 10, quotaFiles: 2 } }));
  throwsCode(t, () => s.apply(MetaOp.fromPartial({ namespaceSet: { name: 'x', visibility: 'secret' } })), 'INVALID_ARGUMENT');
  t.equal(s.auth.tokens.size, 2);
  t.equal(s.auth.tokens.get('3123456789abcdef')!.revokedAtMs, 50);
  const image = s.snapshot();
  t.match(Buffer.from(image).toString(), /\n\["tok","0123456789abcdef","[0-9a-f]{64}",\[\["\*",\["admin"\]\]\]/);
  const back = MetaState.restore(image);
  t.same([...back.auth.tokens.values()], [...s.auth.tokens.values()], 'tokens survive a snapshot');
  t.same(back.auth.settingsOf('logs'), { name: 'logs', visibility: 'public', quotaBytes: 10, quotaFiles: 2 });
  t.same(Buffer.from(back.snapshot()), Buffer.from(image), 'and rewrite to the same bytes');
  const damaged = Buffer.from(image).toString().replace('["nsx","logs","public"', '["nsx","logs","publik"');
  throwsCode(t, () => MetaState.restore(Buffer.from(damaged)), 'CORRUPT', 'a damaged record refuses the image');
  const records = Buffer.from(image).toString().split('\n').filter((l) => l.startsWith('["tok"') || l.startsWith('["nsx"')).join('\n') + '\n';
  const withAuth = (golden: string) => golden.replace(/\["end",/, `${records}["end",`);
  const v2 = MetaState.restore(Buffer.from(withAuth(readFileSync(GOLDEN_SNAPSHOT_V2, 'utf8'))));
  t.equal(v2.auth.tokens.size, 2, 'the v2 golden with token records reads');
  t.equal(MetaState.restore(readFileSync(GOLDEN_SNAPSHOT_V2)).auth.tokens.size, 0, 'the v2 golden itself: no token, open');
  throwsCode(t, () => MetaState.restore(Buffer.from(withAuth(readFileSync(GOLDEN_SNAPSHOT, 'utf8')))), 'CORRUPT', 'token records in a v1 image');
});

t.test('guard: scope per RPC, anonymous public reads, auto mode enforces once a token exists', async (t) => {
  const s = new MetaState();
  const guard = new Guard({ state: () => s, clock: { nowMs: () => 10, monoMs: () => 10 } as never, mode: 'auto' });
  t.notOk(guard.enforced, 'no token: open');
  guard.check('createFile', { path: '/logs/a' }, undefined);
  const rw = '4123456789abcdef';
  s.apply(tokenOp(rw, 'rw-secret-'.padEnd(43, 'x'), [{ namespace: 'logs', scopes: ['read'] }]));
  t.ok(guard.enforced, 'a token exists: enforced');
  const md = (token: string) => { const m = new Metadata(); m.set('authorization', `Bearer ${token}`); return m; };
  const p = guard.resolve(md(`gfs_${rw}_${'rw-secret-'.padEnd(43, 'x')}`));
  t.equal(p?.id, rw);
  throwsCode(t, () => guard.resolve(md(`gfs_${rw}_${'wrong'.padEnd(43, 'x')}`)), 'UNAUTHENTICATED', 'a wrong secret');
  t.equal(guard.resolve(undefined), undefined, 'no header: anonymous');
  guard.check('stat', { path: '/logs/a' }, p);
  throwsCode(t, () => guard.check('createFile', { path: '/logs/a' }, p), 'PERMISSION_DENIED', 'read-only cannot write');
  throwsCode(t, () => guard.check('stat', { path: '/other/a' }, p), 'PERMISSION_DENIED', 'another namespace');
  throwsCode(t, () => guard.check('stat', { path: '/logs/a' }, undefined), 'UNAUTHENTICATED', 'anonymous on private');
  throwsCode(t, () => guard.check('balance', {}, p), 'PERMISSION_DENIED', 'cluster calls need * admin');
  throwsCode(t, () => guard.check('someFutureCall', {}, p), 'PERMISSION_DENIED', 'unknown methods fail closed');
  s.apply(MetaOp.fromPartial({ namespaceSet: { name: 'pub', visibility: 'public' } }));
  guard.check('list', { path: '/pub' }, undefined);
  throwsCode(t, () => guard.check('createFile', { path: '/pub/x' }, undefined), 'UNAUTHENTICATED', 'anonymous cannot write public');
  const secretGuard = new Guard({ state: () => s, clock: { nowMs: () => 10, monoMs: () => 10 } as never, mode: 'auto', clusterSecret: 'c'.repeat(32) });
  const withSecret = new Metadata();
  withSecret.set('x-gfs-cluster-secret', 'c'.repeat(32));
  secretGuard.checkNode(withSecret);
  throwsCode(t, () => secretGuard.checkNode(new Metadata()), 'UNAUTHENTICATED', 'a heartbeat without the cluster secret');
  guard.checkNode(new Metadata());
  s.apply(MetaOp.fromPartial({ tokenRevoke: { id: rw, revokedAtMs: 5 } }));
  throwsCode(t, () => guard.resolve(md(`gfs_${rw}_${'rw-secret-'.padEnd(43, 'x')}`)), 'UNAUTHENTICATED', 'revoked');
});

t.test('quota: files at create, bytes at allocate and at complete, counted over tree and pending puts', async (t) => {
  const s = new MetaState();
  const guard = new Guard({ state: () => s, clock: { nowMs: () => 10, monoMs: () => 10 } as never, mode: 'off' });
  s.apply(MetaOp.fromPartial({ mkdir: { path: '/q', mtimeMs: 1 } }));
  s.apply(MetaOp.fromPartial({ namespaceSet: { name: 'q', visibility: 'private', quotaBytes: 100, quotaFiles: 2 } }));
  const put = (inode: number, path: string, length: number, handle: number) => {
    s.apply(MetaOp.fromPartial({ createFile: { inode, path, replication: 1, mtimeMs: 1 } }));
    s.apply(MetaOp.fromPartial({ allocateChunk: { inode, handle, version: 1 } }));
    s.apply(MetaOp.fromPartial({ commitChunk: { inode, handle, length } }));
    s.apply(MetaOp.fromPartial({ completeFile: { inode, size: length, mtimeMs: 2 } }));
  };
  put(1, '/q/a', 60, 1);
  t.same(namespaceUsage(s, 'q'), { bytes: 60, files: 1 });
  s.apply(MetaOp.fromPartial({ createFile: { inode: 2, path: '/q/b', replication: 1, mtimeMs: 1 } }));
  guard.check('allocateChunk', { inode: 2 }, undefined);
  s.apply(MetaOp.fromPartial({ allocateChunk: { inode: 2, handle: 2, version: 1 } }));
  s.apply(MetaOp.fromPartial({ commitChunk: { inode: 2, handle: 2, length: 30 } }));
  t.same(namespaceUsage(s, 'q'), { bytes: 90, files: 2 }, 'a put being written counts its committed chunks');
  throwsCode(t, () => guard.check('completeFile', { inode: 2, size: 50 }, undefined), 'QUOTA_EXCEEDED', '60 + 50 > 100 at complete');
  guard.check('completeFile', { inode: 2, size: 40 }, undefined);
  throwsCode(t, () => guard.check('createFile', { path: '/q/c' }, undefined), 'QUOTA_EXCEEDED', 'a third file');
  guard.check('createFile', { path: '/other/c' }, undefined);
  s.apply(MetaOp.fromPartial({ allocateChunk: { inode: 2, handle: 3, version: 1 } }));
  s.apply(MetaOp.fromPartial({ commitChunk: { inode: 2, handle: 3, length: 10 } }));
  throwsCode(t, () => guard.check('allocateChunk', { inode: 2 }, undefined), 'QUOTA_EXCEEDED', 'full (60 + 30 + 10): no more chunks');
});

t.test('token calls: the first token must be admin on *, then tokens make only less, list and revoke what they manage', async (t) => {
  const s = new MetaState();
  const clock = { nowMs: () => 1_000, monoMs: () => 1_000 } as never;
  const guard = new Guard({ state: () => s, clock, mode: 'auto' });
  const calls = new AuthCalls({ state: () => s, commit: async (_kind, op) => s.apply(op), guard, clock, log: silentLogger });
  const req = (ns: string, scopes: string[], expiresInMs = 0) => ({ grants: [{ namespace: ns, scopes }], expiresInMs, description: '' });
  await rejectsCode(t, calls.createToken(undefined, req('logs', ['read'])), 'INVALID_ARGUMENT', 'a first token less than admin on * would lock everyone out');
  const root = await calls.createToken(undefined, req('*', ['admin']));
  t.ok(guard.enforced, 'the first token closes the cluster');
  const rootP = guard.resolve(bearer(root.token))!;
  const logs = await calls.createToken(rootP, req('logs', ['admin'], 10_000));
  t.equal(logs.expiresAtMs, 11_000);
  const logsP = guard.resolve(bearer(logs.token))!;
  await rejectsCode(t, calls.createToken(logsP, req('other', ['read'])), 'PERMISSION_DENIED', 'a namespace it has not');
  await rejectsCode(t, calls.createToken(logsP, req('logs', ['read'], 20_000)), 'PERMISSION_DENIED', 'outliving its creator');
  const reader = await calls.createToken(logsP, req('logs', ['read']));
  t.equal(reader.expiresAtMs, 11_000, 'inherits the creator\'s expiry');
  await rejectsCode(t, calls.createToken(undefined, req('logs', ['read'])), 'UNAUTHENTICATED', 'no token, closed cluster');
  t.same(calls.listTokens(logsP).tokens.map((x) => x.id).sort(), [logs.id, reader.id].sort(), 'the logs admin lists its namespace\'s tokens');
  t.equal(calls.listTokens(rootP).tokens.length, 3);
  const readerP = guard.resolve(bearer(reader.token))!;
  await rejectsCode(t, calls.revokeToken(readerP, logs.id), 'PERMISSION_DENIED', 'a reader cannot revoke its creator');
  await calls.revokeToken(logsP, reader.id);
  t.throws(() => guard.resolve(bearer(reader.token)), 'revoked at once on the master');
});

function bearer(token: string): Metadata {
  const m = new Metadata();
  m.set('authorization', `Bearer ${token}`);
  return m;
}

async function rejectsCode(t: Pick<typeof tap, 'fail' | 'equal'>, p: Promise<unknown>, code: ErrorCode, what: string): Promise<void> {
  try {
    await p;
    t.fail(`${what}: expected ${code}`);
  } catch (e) {
    if (!(e instanceof GfsError)) throw e;
    t.equal(e.code, code, what);
  }
}
