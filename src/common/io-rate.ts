/**
 * The recent rate of a byte counter that only grows (bytes read, bytes written): an
 * exponentially weighted moving average with time constant `windowMs`, fed by samples
 * of the counter at any moments. Pure (the caller passes the time), so it is unit-tested.
 *
 * The bytes between two samples are taken as spread evenly over that interval, so the
 * average is the same whether samples come every 100 ms or every 5 s, and a steady
 * rate r reads as r once a few windows have passed. A sample below the newest one seen
 * (read before it, delivered after) adds no bytes.
 */
export class IoRate {
  private bytesPerMs = 0;
  private lastTotal: number | undefined;
  private lastMs = 0;

  constructor(private readonly windowMs: number) {}

  /** Adds a sample of the counter; returns the rate in bytes/s. */
  sample(total: number, nowMs: number): number {
    if (this.lastTotal === undefined) {
      this.lastTotal = total;
      this.lastMs = nowMs;
      return 0;
    }
    const elapsedMs = Math.max(0, nowMs - this.lastMs);
    const bytes = Math.max(0, total - this.lastTotal);
    const keep = Math.exp(-elapsedMs / this.windowMs);
    // Over an empty interval, (1 - keep) / elapsed tends to 1 / windowMs.
    const added = elapsedMs > 0 ? (bytes / elapsedMs) * (1 - keep) : bytes / this.windowMs;
    this.bytesPerMs = this.bytesPerMs * keep + added;
    this.lastTotal = Math.max(this.lastTotal, total);
    this.lastMs = Math.max(this.lastMs, nowMs);
    return this.bytesPerSec;
  }

  get bytesPerSec(): number {
    return this.bytesPerMs * 1000;
  }
}
