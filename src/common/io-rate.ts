/**
 * The recent rate of a byte counter that only grows (bytes read, bytes written): an
 * exponentially weighted moving average with time constant `windowMs`, fed by samples
 * of the counter at any moments. Pure (the caller passes the time), so it is unit-tested.
 *
 * The bytes between two samples are taken as spread evenly over that interval, so the
 * average is the same whether samples come every 100 ms or every 5 s, and a steady
 * rate r reads as r from the second sample on (bias-corrected). A sample below the newest one seen
 * (read before it, delivered after) adds no bytes.
 */
export class IoRate {
  private bytesPerMs = 0;
  private lastTotal: number | undefined;
  private lastMs = 0;
  /** Time covered by samples so far: the average's weight is 1 - e^(-covered / window). */
  private coveredMs = 0;

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
    this.coveredMs += elapsedMs;
    this.lastTotal = Math.max(this.lastTotal, total);
    this.lastMs = Math.max(this.lastMs, nowMs);
    return this.bytesPerSec;
  }

  /**
   * Bias-corrected: an average that started from zero a moment ago would read low (a
   * repair's first seconds would show a crawl and a long ETA), so it is divided by the
   * weight the samples so far carry; after a few windows that weight is 1.
   */
  get bytesPerSec(): number {
    const weight = 1 - Math.exp(-this.coveredMs / this.windowMs);
    return weight > 0 ? (this.bytesPerMs * 1000) / weight : 0;
  }
}
