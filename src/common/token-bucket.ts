/**
 * A token bucket on bytes with debt: take(n) always succeeds and returns how long the
 * caller must wait before using the n bytes, so one large request (a 64 MiB chunk) works
 * with any burst, and concurrent takers share the rate fairly (each later taker sees
 * the debt of the earlier ones).
 *
 * Invariants: tokens never exceed burstBytes; over any window of T ms at most
 * burstBytes + rate × T bytes are granted without waiting. Time is injected.
 */
import assert from 'node:assert/strict';

export class TokenBucket {
  private tokens: number;
  private lastMs: number;

  constructor(
    private rateBytesPerSec: number,
    private readonly burstBytes: number,
    private readonly nowMs: () => number,
  ) {
    assert.ok(rateBytesPerSec > 0 && burstBytes > 0, 'a token bucket needs a positive rate and burst');
    this.tokens = burstBytes;
    this.lastMs = nowMs();
  }

  get rate(): number { return this.rateBytesPerSec; }

  setRate(rateBytesPerSec: number): void {
    assert.ok(rateBytesPerSec > 0);
    this.refill();
    this.rateBytesPerSec = rateBytesPerSec;
  }

  /** Tokens available now (negative while in debt). */
  available(): number {
    this.refill();
    return this.tokens;
  }

  /** Takes n tokens; returns the milliseconds to wait before using them (0 = now). */
  take(n: number): number {
    this.refill();
    this.tokens -= n;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.rateBytesPerSec) * 1000;
  }

  /** take(n), then waits as told; `sleep` is injected so tests need no real time. */
  async consume(n: number, sleep: (ms: number) => Promise<void>): Promise<void> {
    const waitMs = this.take(n);
    if (waitMs > 0) await sleep(waitMs);
  }

  private refill(): void {
    const now = this.nowMs();
    const elapsedMs = Math.max(0, now - this.lastMs);
    this.lastMs = now;
    this.tokens = Math.min(this.burstBytes, this.tokens + (elapsedMs / 1000) * this.rateBytesPerSec);
  }
}
