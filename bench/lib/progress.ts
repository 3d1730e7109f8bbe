/** One line per step on stderr, so stdout stays free for the table (and can be piped). */
import { performance } from 'node:perf_hooks';

const startedAtMs = performance.now();

export function progress(message: string): void {
  const elapsedSec = (performance.now() - startedAtMs) / 1000;
  process.stderr.write(`[bench ${elapsedSec.toFixed(1).padStart(6)}s] ${message}\n`);
}
