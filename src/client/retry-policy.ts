/**
 * How a client call rides out leader changes: the pure retry loop behind MasterConn,
 * with the transport, the clock and the randomness injected so it can be tested alone.
 *
 * Invariants:
 * - Every attempt sends the very same request (request id included), so a mutation
 *   whose answer was lost is applied once.
 * - A refusal that means "not applied" (NOT_LEADER, SAFE_MODE) is retried for any
 *   request; an unknown outcome (UNAVAILABLE, TIMEOUT) only for a request that may be
 *   repeated (`repeatable`: read-only, idempotent, or carrying a request id the master
 *   deduplicates). Every other error reaches the caller at once.
 * - Retries go on until the deadline, however often the leader moves; `maxAttempts`,
 *   when set, caps them too (tools that want one quick answer).
 * - Every wait is bounded by `backoffMaxMs` and by the time left, and jittered so that
 *   many clients redirected at once do not arrive together.
 * - Giving up at the deadline throws an error with the last cause's code, its message,
 *   and how long and how often it tried.
 */
import { GfsError } from '../common/errors';
import { sleep, type Clock } from '../common/clock';

/** Which master a call goes to next: remembers the leader across calls. */
export class LeaderCursor {
  private readonly addrs: string[];
  private index = 0;

  constructor(masters: string[]) {
    if (masters.length === 0) throw new GfsError('INVALID_ARGUMENT', 'no master address given (use --masters or GFS_MASTERS)');
    this.addrs = [...masters];
  }

  get current(): string { return this.addrs[this.index % this.addrs.length]!; }
  get size(): number { return this.addrs.length; }

  /** Goes to the named leader (learning its address if it is new). */
  follow(leader: string): void {
    if (!this.addrs.includes(leader)) this.addrs.push(leader);
    this.index = this.addrs.indexOf(leader);
  }

  /** Tries the next master in turn. */
  advance(): void { this.index = (this.index + 1) % this.addrs.length; }
}

export interface RetryOptions {
  clock: Clock;
  /** Total time for the call, every attempt and wait included. */
  deadlineMs: number;
  /** Timeout of one attempt (shortened to the time left). */
  attemptTimeoutMs: number;
  /** Whether the request may be sent again after an unknown outcome. */
  repeatable: boolean;
  /** Caps the attempts as well as the deadline; undefined: only the deadline. */
  maxAttempts?: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** [0, 1): injected for tests. */
  random?: () => number;
}

/** A refusal the master sends before doing anything: safe to send again, always. */
function notApplied(e: GfsError): boolean {
  return e.code === 'NOT_LEADER' || e.code === 'SAFE_MODE';
}

/** Full jitter: uniform in [0, min(max, base * 2^failures)]. */
export function backoffMs(failures: number, opts: Pick<RetryOptions, 'backoffBaseMs' | 'backoffMaxMs' | 'random'>): number {
  const ceiling = Math.min(opts.backoffMaxMs, opts.backoffBaseMs * 2 ** Math.min(failures, 20));
  return Math.floor((opts.random ?? Math.random)() * ceiling);
}

/**
 * Sends through `send` until it succeeds, a non-retryable error comes back, or the
 * deadline (or attempt cap) is reached.
 */
export async function callWithRetry<T>(
  cursor: LeaderCursor, send: (addr: string, timeoutMs: number) => Promise<T>, opts: RetryOptions,
): Promise<T> {
  const startMs = opts.clock.monoMs();
  const endMs = startMs + opts.deadlineMs;
  let last: GfsError | undefined;
  let failures = 0;
  /** Redirects in a row without a wait: bounded so two masters naming each other cannot spin. */
  let quickRedirects = 0;
  for (let attempt = 1; ; attempt++) {
    const left = endMs - opts.clock.monoMs();
    const tried = cursor.current;
    try {
      return await send(tried, Math.max(1, Math.min(opts.attemptTimeoutMs, left)));
    } catch (e) {
      if (!(e instanceof GfsError) || !e.retryable) throw e;
      if (!notApplied(e) && !opts.repeatable) throw e;
      last = e;
    }
    if (opts.maxAttempts !== undefined && attempt >= opts.maxAttempts) throw last;

    const leader = last.code === 'NOT_LEADER' ? last.detail.leader : undefined;
    let waitMs: number;
    if (leader && leader !== tried && quickRedirects < cursor.size) {
      // A named leader we have not just asked: go there at once.
      cursor.follow(leader);
      quickRedirects++;
      waitMs = 0;
    } else {
      if (leader) cursor.follow(leader); else cursor.advance();
      quickRedirects = 0;
      waitMs = backoffMs(failures++, opts);
    }
    const remaining = endMs - opts.clock.monoMs();
    if (remaining <= waitMs || remaining <= 0) {
      const secs = ((opts.clock.monoMs() - startMs) / 1000).toFixed(1);
      throw new GfsError(last.code, `${last.message} (gave up after ${attempt} attempts in ${secs} s; last master tried ${tried})`, {
        cause: last, detail: last.detail,
      });
    }
    if (waitMs > 0) await sleep(opts.clock, waitMs);
  }
}
