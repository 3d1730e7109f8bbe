/**
 * The client's retry policy (src/client/retry-policy.ts) against a fake master group on
 * a manual clock: it follows the leader however often it moves until the deadline,
 * repeats an unknown outcome only for a repeatable request, waits with bounded jitter,
 * and gives up at the deadline with the last cause.
 */
import t from 'tap';
import { ManualClock } from '../../src/common/clock';
import { GfsError } from '../../src/common/errors';
import { backoffMs, callWithRetry, LeaderCursor, type RetryOptions } from '../../src/client/retry-policy';

const base = { deadlineMs: 30_000, attemptTimeoutMs: 10_000, backoffBaseMs: 50, backoffMaxMs: 1_000 };

/** Runs the call, moving the manual clock on while it waits; returns its outcome and the time it took. */
async function drive<T>(clock: ManualClock, p: Promise<T>): Promise<{ value?: T; error?: unknown; tookMs: number }> {
  const start = clock.monoMs();
  let done = false;
  const outcome = p.then((value) => ({ value }), (error: unknown) => ({ error })).finally(() => { done = true; });
  while (!done) {
    await new Promise((r) => setImmediate(r));
    if (!done) clock.advance(10);
  }
  return { ...(await outcome), tookMs: clock.monoMs() - start };
}

function opts(clock: ManualClock, extra: Partial<RetryOptions> = {}): RetryOptions {
  return { clock, repeatable: true, random: () => 0.5, ...base, ...extra };
}

t.test('retry: the leader moving 10 times (with elections between) still succeeds, every attempt the same request', async (t) => {
  const clock = new ManualClock();
  const masters = ['m1:7000', 'm2:7000', 'm3:7000'];
  let leader = 'm1:7000';
  let moves = 0;
  const sent: { addr: string; req: object }[] = [];
  const req = { path: '/a', requestId: 'r1' };
  const send = async (addr: string): Promise<string> => {
    sent.push({ addr, req });
    clock.advance(5);
    if (addr === leader && moves >= 10) return `ok from ${addr}`;
    if (addr === leader) {
      // The leader steps down just as the request arrives; every third time there is
      // a gap with no leader at all (UNAVAILABLE), otherwise the old one names the new one.
      moves++;
      leader = masters[(masters.indexOf(leader) + 1) % masters.length]!;
      if (moves % 3 === 0) throw new GfsError('UNAVAILABLE', 'electing');
    }
    throw new GfsError('NOT_LEADER', 'not the leader', { detail: { leader } });
  };
  const r = await drive(clock, callWithRetry(new LeaderCursor(['m2:7000']), send, opts(clock)));
  t.equal(r.error, undefined, 'no error');
  t.equal(r.value, `ok from ${leader}`);
  t.equal(moves, 10);
  t.ok(sent.length > 10, `${sent.length} attempts: more than any fixed small number`);
  t.ok(sent.every((s) => s.req === req), 'every attempt sends the very same request');
  t.ok(r.tookMs < base.deadlineMs, `within the deadline (${r.tookMs} ms)`);
});

t.test('retry: past the deadline the error names the last cause and how long it tried', async (t) => {
  const clock = new ManualClock();
  let attempts = 0;
  let lastAt = 0;
  let longestGap = 0;
  const send = async (addr: string): Promise<never> => {
    attempts++;
    longestGap = Math.max(longestGap, clock.monoMs() - lastAt);
    lastAt = clock.monoMs();
    throw new GfsError('UNAVAILABLE', `connect ECONNREFUSED ${addr} #${attempts}`);
  };
  const r = await drive(clock, callWithRetry(new LeaderCursor(['a:1', 'b:2']), send, opts(clock, { deadlineMs: 5_000, random: () => 0.999 })));
  const e = r.error as GfsError;
  t.type(e, GfsError);
  t.equal(e.code, 'UNAVAILABLE', 'the last cause\'s code');
  t.match(e.message, new RegExp(`ECONNREFUSED .* #${attempts} \\(gave up after ${attempts} attempts in [0-9.]+ s; last master tried [ab]:[12]\\)`));
  t.match((e.cause as GfsError).message, `#${attempts}`, 'the last cause is attached');
  t.ok(r.tookMs <= 5_000 + 20, `gave up by the deadline (${r.tookMs} ms)`);
  t.ok(attempts > 5, `kept trying until then (${attempts} attempts)`);
  t.ok(longestGap <= base.backoffMaxMs + 20, `every wait bounded (${longestGap} ms)`);
});

t.test('retry: an unknown outcome is repeated only for a repeatable request; a refusal always', async (t) => {
  const clock = new ManualClock();
  let attempts = 0;
  const unavailable = async (): Promise<never> => { attempts++; throw new GfsError('UNAVAILABLE', 'reset'); };
  const r = await drive(clock, callWithRetry(new LeaderCursor(['a:1', 'b:2']), unavailable, opts(clock, { repeatable: false })));
  t.equal((r.error as GfsError).code, 'UNAVAILABLE');
  t.equal(attempts, 1, 'a non-repeatable request is not sent twice after an unknown outcome');

  let tries = 0;
  const redirectOnce = async (addr: string): Promise<string> => {
    tries++;
    if (addr !== 'b:2') throw new GfsError('NOT_LEADER', 'no', { detail: { leader: 'b:2' } });
    return 'ok';
  };
  const ok = await drive(clock, callWithRetry(new LeaderCursor(['a:1', 'b:2']), redirectOnce, opts(clock, { repeatable: false })));
  t.equal(ok.value, 'ok', 'NOT_LEADER (nothing applied) is followed even for a non-repeatable request');
  t.equal(tries, 2);
  t.equal(ok.tookMs, 0, 'a redirect to a named leader goes there without waiting');
});

t.test('retry: a non-retryable error reaches the caller at once; maxAttempts caps the tries', async (t) => {
  const clock = new ManualClock();
  let attempts = 0;
  const notFound = async (): Promise<never> => { attempts++; throw new GfsError('NO_SUCH_FILE', 'gone'); };
  t.equal(((await drive(clock, callWithRetry(new LeaderCursor(['a:1']), notFound, opts(clock)))).error as GfsError).code, 'NO_SUCH_FILE');
  t.equal(attempts, 1);

  attempts = 0;
  const down = async (): Promise<never> => { attempts++; throw new GfsError('UNAVAILABLE', 'down'); };
  const r = await drive(clock, callWithRetry(new LeaderCursor(['a:1']), down, opts(clock, { maxAttempts: 2 })));
  t.equal((r.error as GfsError).message, 'down', 'the capped call throws the last error itself');
  t.equal(attempts, 2);
});

t.test('retry: two masters naming each other do not spin; the client waits between rounds', async (t) => {
  const clock = new ManualClock();
  let attempts = 0;
  const pingPong = async (addr: string): Promise<never> => {
    attempts++;
    throw new GfsError('NOT_LEADER', 'stale hint', { detail: { leader: addr === 'a:1' ? 'b:2' : 'a:1' } });
  };
  const r = await drive(clock, callWithRetry(new LeaderCursor(['a:1', 'b:2']), pingPong, opts(clock, { deadlineMs: 3_000 })));
  t.equal((r.error as GfsError).code, 'NOT_LEADER');
  t.ok(attempts < 100, `bounded attempts in 3 s (${attempts})`);
});

t.test('retry: backoff is jittered and bounded', async (t) => {
  const o = { backoffBaseMs: 50, backoffMaxMs: 1_000 };
  t.equal(backoffMs(0, { ...o, random: () => 0 }), 0);
  t.equal(backoffMs(0, { ...o, random: () => 0.5 }), 25);
  t.equal(backoffMs(3, { ...o, random: () => 0.5 }), 200);
  t.ok(backoffMs(50, { ...o, random: () => 0.999 }) < 1_000, 'never above the ceiling, however many failures');
  const seen = new Set(Array.from({ length: 50 }, () => backoffMs(4, o)));
  t.ok(seen.size > 10, 'jittered: waits differ between clients');
});
