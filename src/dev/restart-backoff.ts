/**
 * How long `gfs dev` waits before restarting a child that died: bounded exponential
 * backoff, so a child that crashes at once is not restarted in a busy loop, and one
 * that ran fine for a while comes back quickly after a single death.
 *
 * Invariant: the delay is always within [devRestartBackoffMinMs, devRestartBackoffMaxMs].
 */
import { limits } from '../common/limits';

/**
 * `previousDelayMs` is the wait before the child's current run (undefined for its first
 * run); `uptimeMs` is how long that run lasted.
 */
export function restartDelayMs(previousDelayMs: number | undefined, uptimeMs: number): number {
  if (previousDelayMs === undefined || uptimeMs >= limits.devRestartStableMs) return limits.devRestartBackoffMinMs;
  return Math.min(Math.max(previousDelayMs * 2, limits.devRestartBackoffMinMs), limits.devRestartBackoffMaxMs);
}
