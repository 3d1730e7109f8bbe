/**
 * gfsctl's transfer progress: a one-line bar with rate and ETA, redrawn in place on a
 * TTY and never written elsewhere (so scripts and pipes see no control characters).
 *
 * Invariants:
 * - The percentage is bytes done over the total, clamped to 0..100; the last line drawn
 *   (at finish) shows every byte that was reported.
 * - An ETA is shown only from a real rate (some bytes moved); never a negative or
 *   infinite one.
 */
import { formatBytes, formatDuration } from '../src/common/units';
import { systemClock, type Clock } from '../src/common/clock';

/** Redraws at most this often: often enough to look live, rarely enough to cost nothing. */
const redrawEveryMs = 100;
const barWidth = 24;

/** The text of one progress line (pure, for tests). */
export function progressLine(label: string, done: number, total: number | undefined, elapsedMs: number): string {
  const rate = done / Math.max(0.001, elapsedMs / 1000);
  if (!total) return `${label} ${formatBytes(done)} ${formatBytes(rate)}/s`;
  const frac = Math.min(1, Math.max(0, done / total));
  const filled = Math.round(frac * barWidth);
  const eta = rate > 0 ? `ETA ${formatDuration(Math.max(0, total - done) / rate * 1000)}` : 'ETA unknown';
  return `${label} [${'='.repeat(filled)}${' '.repeat(barWidth - filled)}] ${Math.floor(frac * 100)}% ${formatBytes(done)}/${formatBytes(total)} ${eta} ${formatBytes(rate)}/s`;
}

export interface ProgressOutput { isTTY?: boolean; write(s: string): unknown }

export class Progress {
  private done = 0;
  private lastDrawMs = -Infinity;
  private readonly startMs: number;

  constructor(
    private readonly label: string, private readonly total: number | undefined,
    private readonly out: ProgressOutput = process.stderr, private readonly clock: Clock = systemClock,
  ) {
    this.startMs = clock.monoMs();
  }

  /** Bytes moved since the last call. */
  add(bytes: number): void {
    this.done += bytes;
    const now = this.clock.monoMs();
    if (this.out.isTTY === true && now - this.lastDrawMs >= redrawEveryMs) { this.lastDrawMs = now; this.draw(); }
  }

  finish(): void {
    if (this.out.isTTY === true) { this.draw(); this.out.write('\n'); }
  }

  private draw(): void {
    this.out.write(`\r${progressLine(this.label, this.done, this.total, this.clock.monoMs() - this.startMs)}\x1b[K`);
  }
}
