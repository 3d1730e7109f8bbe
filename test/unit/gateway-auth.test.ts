/**
 * The gateway's token cache (src/gateway/auth.ts) against a scripted master table and a
 * manual clock: bearer and S3 key lookups, a new token found by a refresh on miss, a
 * revocation taking effect at the next periodic refresh, local expiry, visibility rules,
 * the per-token rate, and no access before the first table while the master enforces.
 */
import t from 'tap';
import type { AuthTableResponse } from '../../gen/gfs';
import { GfsError, type ErrorCode } from '../../src/common/errors';
import { ManualClock } from '../../src/common/clock';
import { silentLogger } from '../../src/common/log';
import { limits } from '../../src/common/limits';
import { formatToken, sha256Hex, accessKeyIdOf } from '../../src/common/auth';
import { GatewayAuth } from '../../src/gateway/auth';

async function rejectsCode(t: Pick<typeof tap, 'fail' | 'equal'>, p: Promise<unknown> | (() => unknown), code: ErrorCode, what: string): Promise<void> {
  try {
    await (typeof p === 'function' ? p() : p);
    t.fail(`${what}: expected ${code}`);
  } catch (e) {
    if (!(e instanceof GfsError)) throw e;
    t.equal(e.code, code, what);
  }
}
const tap = t;

function entry(id: string, secret: string, grants: { namespace: string; scopes: string[] }[], expiresAtMs = 0) {
  return {
    info: { id, grants, createdAtMs: 1, expiresAtMs, revokedAtMs: 0, accessKeyId: accessKeyIdOf(id), description: '', parentId: '' },
    secretSha256: sha256Hex(secret), secretAccessKey: `s3-${id}`,
  };
}

t.test('gateway auth: tokens from the master table, refresh on miss and on its period, rates', async (t) => {
  const clock = new ManualClock();
  const secret = 'a'.repeat(43);
  const reader = '1111111111111111';
  const table: AuthTableResponse = {
    tokens: [entry(reader, secret, [{ namespace: 'logs', scopes: ['read'] }])],
    namespaces: [{ name: 'pub', visibility: 'public', quotaBytes: 0, quotaFiles: 0, usedBytes: 0, usedFiles: 0 }],
    enforced: true,
  };
  let fetches = 0;
  let failing = true;
  const auth = new GatewayAuth({
    fetch: async () => { fetches++; if (failing) throw new GfsError('UNAVAILABLE', 'master down'); return structuredClone(table); },
    clock, log: silentLogger, ratePerSec: 2, burst: 2,
  });
  await rejectsCode(t, auth.bearer(`Bearer ${formatToken(reader, secret)}`), 'UNAVAILABLE', 'no table yet: nothing is allowed');
  failing = false;
  auth.start();
  await auth.refresh();
  const p = await auth.bearer(`Bearer ${formatToken(reader, secret)}`);
  t.equal(p?.id, reader);
  t.equal(await auth.bearer(undefined), undefined, 'no header: anonymous');
  await rejectsCode(t, auth.bearer(`Bearer ${formatToken(reader, 'b'.repeat(43))}`), 'UNAUTHENTICATED', 'a wrong secret');
  auth.check(p, 'logs', 'read');
  await rejectsCode(t, () => auth.check(p, 'logs', 'write'), 'PERMISSION_DENIED', 'read-only');
  auth.check(undefined, 'pub', 'read');
  await rejectsCode(t, () => auth.check(undefined, 'logs', 'read'), 'UNAUTHENTICATED', 'anonymous on private');
  t.ok(auth.canSee(undefined, 'pub'));
  t.notOk(auth.canSee(undefined, 'logs'));
  t.equal((await auth.lookupSecret(accessKeyIdOf(reader)))?.secretAccessKey, `s3-${reader}`, 'S3 key for SigV4');
  t.equal(await auth.lookupSecret('AKIAUNKNOWN'), undefined);
  t.equal(auth.s3Secret(accessKeyIdOf(reader)), `s3-${reader}`, 'synchronously too (the S3 API\'s LookupSecret)');
  t.equal(auth.principalOfAccessKey(accessKeyIdOf(reader))?.id, reader);

  // A token made after the last refresh: found by a refresh on miss (not more often than the miss interval).
  const writer = '2222222222222222';
  table.tokens.push(entry(writer, secret, [{ namespace: 'logs', scopes: ['write'] }], clock.nowMs() + 60_000));
  clock.advance(limits.gatewayAuthMissRefreshMs);
  const before = fetches;
  t.equal((await auth.bearer(`Bearer ${formatToken(writer, secret)}`))?.id, writer, 'a new token, found on miss');
  t.equal(fetches, before + 1);
  await rejectsCode(t, auth.bearer(`Bearer ${formatToken('3333333333333333', secret)}`), 'UNAUTHENTICATED', 'an unknown token');
  t.equal(fetches, before + 1, 'a second miss right after does not fetch again');

  // Revoked: gone from the table; refused once the periodic refresh ran.
  table.tokens = table.tokens.filter((e) => e.info!.id !== reader);
  clock.advance(limits.gatewayAuthRefreshMs);
  await auth.refresh();
  await rejectsCode(t, auth.bearer(`Bearer ${formatToken(reader, secret)}`), 'UNAUTHENTICATED', 'revoked, within one refresh');

  // Expired: refused by the local clock, whatever the table says.
  clock.advance(60_000);
  await rejectsCode(t, auth.bearer(`Bearer ${formatToken(writer, secret)}`), 'UNAUTHENTICATED', 'expired');

  const w = { id: writer, grants: [], expiresAtMs: 0 };
  auth.rate(w, '');
  auth.rate(w, '');
  await rejectsCode(t, () => auth.rate(w, ''), 'SLOW_DOWN', 'past the burst');
  auth.rate(undefined, '10.0.0.1');
  clock.advance(1_000);
  auth.rate(w, '');
  auth.rate(w, '');
  await auth.stop();
});

t.test('gateway auth: an open cluster (no token yet) is open here too', async (t) => {
  const auth = new GatewayAuth({ fetch: async () => ({ tokens: [], namespaces: [], enforced: false }), clock: new ManualClock(), log: silentLogger });
  await auth.refresh();
  auth.check(undefined, 'anything', 'write');
  auth.checkClusterAdmin(undefined);
  t.ok(auth.canSee(undefined, 'private-ns'));
  await auth.stop();
});
