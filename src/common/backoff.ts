/**
 * Exponential backoff with jitter, pure: the caller owns the clock and the randomness.
 *
 * Invariants:
 * - The delay never exceeds maxMs and never falls below (1 - jitterRatio) × minMs.
 * - Without jitter it doubles per failure from minMs until it reaches maxMs.
 */
import assert from 'node:assert/strict';

export interface BackoffPolicy {
  minMs: number;
  maxMs: number;
  /** Each delay is drawn from [1 - jitterRatio, 1] × its nominal value. */
  jitterRatio: number;
}

/** The delay before retry number `failures` (1 after the first failure); `random()` is in [0, 1). */
export function backoffMs(failures: number, policy: BackoffPolicy, random: () => number): number {
  assert(policy.minMs > 0 && policy.maxMs >= policy.minMs, 'backoff bounds');
  assert(policy.jitterRatio >= 0 && policy.jitterRatio <= 1, 'backoff jitter');
  // 2^31 × anything sensible is past maxMs already; the cap keeps the power finite.
  const nominal = Math.min(policy.maxMs, policy.minMs * 2 ** Math.min(Math.max(0, failures - 1), 31));
  return nominal * (1 - policy.jitterRatio * random());
}
