/**
 * Safe mode (DESIGN §4): after a start or a failover the master knows the metadata but
 * not yet where the replicas are, so it must not judge a chunk under-replicated (and
 * clone it needlessly) or a replica orphaned (and delete it). No clone, no delete, no
 * purge is issued until safe mode ends.
 *
 * It ends when both hold:
 * - at least `minMs` passed (several heartbeats: every live chunkserver has sent its
 *   full report), and
 * - `fraction` of the chunks with data have a reported healthy replica — or `maxMs`
 *   passed: a chunkserver that has not reported by then would be declared dead anyway,
 *   and healing without it is exactly what should happen.
 *
 * Invariant: once off it stays off until restart() (a new leadership term).
 */
export interface SafeModeOptions {
  minMs: number;
  maxMs: number;
  fraction: number;
}

export class SafeMode {
  private startMonoMs: number;
  private offSinceMonoMs: number | undefined;
  private lastReason = 'starting';

  constructor(private readonly opts: SafeModeOptions, nowMonoMs: number) {
    this.startMonoMs = nowMonoMs;
  }

  get on(): boolean { return this.offSinceMonoMs === undefined; }

  /** Why it still holds ('' when off). */
  get reason(): string { return this.on ? this.lastReason : ''; }

  /** A new term (start, failover): back on. */
  restart(nowMonoMs: number): void {
    this.startMonoMs = nowMonoMs;
    this.offSinceMonoMs = undefined;
    this.lastReason = 'starting';
  }

  /** `available` of `total` chunks with data have a healthy replica reported. Returns whether it is still on. */
  update(nowMonoMs: number, available: number, total: number): boolean {
    if (!this.on) return false;
    const elapsed = nowMonoMs - this.startMonoMs;
    const fraction = total === 0 ? 1 : available / total;
    if (elapsed < this.opts.minMs) {
      this.lastReason = `waiting for chunkserver reports (${Math.ceil((this.opts.minMs - elapsed) / 1000)}s left)`;
      return true;
    }
    if (fraction >= this.opts.fraction || elapsed >= Math.max(this.opts.minMs, this.opts.maxMs)) {
      this.offSinceMonoMs = nowMonoMs;
      return false;
    }
    this.lastReason = `${available} of ${total} chunks reported (${(fraction * 100).toFixed(1)}% < ${(this.opts.fraction * 100).toFixed(1)}%); ` +
      `at most ${Math.ceil((this.opts.maxMs - elapsed) / 1000)}s more`;
    return true;
  }
}
