/**
 * Injected time: logic never calls Date.now(), setTimeout or setInterval directly, so
 * tests and the simulation can drive it.
 *
 * Invariants:
 * - monoMs() never goes backwards; nowMs() may (it is the wall clock).
 * - A cancelled timer never fires; cancelling twice, or after it fired, is harmless.
 */
export interface Timer {
  /** Stops the timer; it will not fire again. */
  cancel(): void;
  /** The timer no longer keeps the process alive (a no-op on a virtual clock). */
  unref(): Timer;
}

export interface Clock {
  /** Wall-clock milliseconds (for mtimes and expiry that survive restarts). */
  nowMs(): number;
  /** Monotonic milliseconds (for timeouts and intervals). */
  monoMs(): number;
  /** Runs fn once, delayMs from now. */
  after(delayMs: number, fn: () => void): Timer;
  /** Runs fn every intervalMs until cancelled. */
  every(intervalMs: number, fn: () => void): Timer;
}

function wrap(t: NodeJS.Timeout, clear: (t: NodeJS.Timeout) => void): Timer {
  const timer: Timer = {
    cancel: () => clear(t),
    unref: () => { t.unref(); return timer; },
  };
  return timer;
}

export const systemClock: Clock = {
  nowMs: () => Date.now(),
  monoMs: () => performance.now(),
  after: (delayMs, fn) => wrap(setTimeout(fn, delayMs), clearTimeout),
  every: (intervalMs, fn) => wrap(setInterval(fn, intervalMs), clearInterval),
};

/** Resolves after delayMs on the given clock. */
export function sleep(clock: Clock, delayMs: number): Promise<void> {
  return new Promise((resolve) => { clock.after(delayMs, resolve); });
}

/**
 * A clock that moves only when told (unit tests and the simulation). Timers fire in
 * deadline order, then in the order they were set, while advance() moves time forward.
 */
export class ManualClock implements Clock {
  private mono = 0;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; seq: number; fn: () => void; every?: number }>();

  constructor(private wallOffsetMs = 1_700_000_000_000) {}

  nowMs(): number { return this.wallOffsetMs + this.mono; }
  monoMs(): number { return this.mono; }

  /** Moves the wall clock alone (skew), as NTP might. */
  skew(deltaMs: number): void { this.wallOffsetMs += deltaMs; }

  after(delayMs: number, fn: () => void): Timer { return this.add(delayMs, fn); }
  every(intervalMs: number, fn: () => void): Timer { return this.add(intervalMs, fn, Math.max(1, intervalMs)); }

  /** Moves time forward by deltaMs, firing every timer that falls due on the way. */
  advance(deltaMs: number): void {
    const target = this.mono + deltaMs;
    for (;;) {
      let next: [number, { at: number; seq: number; fn: () => void; every?: number }] | undefined;
      for (const e of this.timers) {
        if (e[1].at > target) continue;
        if (!next || e[1].at < next[1].at || (e[1].at === next[1].at && e[1].seq < next[1].seq)) next = e;
      }
      if (!next) break;
      const [id, t] = next;
      this.mono = Math.max(this.mono, t.at);
      if (t.every !== undefined) { t.at += t.every; t.seq = this.seq++; } else this.timers.delete(id);
      t.fn();
    }
    this.mono = target;
  }

  /** How many timers are pending (a test can check that stop() cancelled them). */
  pending(): number { return this.timers.size; }

  private add(delayMs: number, fn: () => void, every?: number): Timer {
    const id = this.seq++;
    this.timers.set(id, { at: this.mono + Math.max(0, delayMs), seq: id, fn, every });
    const timer: Timer = { cancel: () => { this.timers.delete(id); }, unref: () => timer };
    return timer;
  }
}
