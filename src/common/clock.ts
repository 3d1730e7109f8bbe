/** Injected time: logic never calls Date.now() or setTimeout directly, so tests and the simulation can drive it. */
export interface Clock {
  /** Wall-clock milliseconds (for mtimes and expiry that survive restarts). */
  nowMs(): number;
  /** Monotonic milliseconds (for timeouts and intervals). */
  monoMs(): number;
}

export const systemClock: Clock = {
  nowMs: () => Date.now(),
  monoMs: () => performance.now(),
};
