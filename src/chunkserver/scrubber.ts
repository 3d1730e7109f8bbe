/**
 * The scrubber (DESIGN §6): re-verifies every chunk in the background, so a latent bad
 * block is found and healed while healthy replicas still exist, not when a reader (or
 * the last replica) needs it.
 *
 * Pacing: a pass over all chunks is spread over `intervalMs` (rate = stored bytes /
 * interval), never faster than `rateBytesPerSec` and never slower than
 * `rateMinBytesPerSec` (small stores then finish early and rest until the interval is
 * over). A VERIFY command jumps the queue but pays the same rate.
 *
 * Invariants:
 * - Bytes read per second stay under the rate (token bucket before every chunk).
 * - A chunk with a mutator (open writer, import, delete) is skipped this pass: its header
 *   may be moving under us, and a false "corrupt" would cost a needless clone.
 * - A chunk found corrupt is reported through `onCorrupt` (the heartbeat); the store
 *   keeps it marked until the master has it replaced and deleted.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { isGfsError } from '../common/errors';
import { limits } from '../common/limits';
import type { Logger } from '../common/log';
import { TokenBucket } from '../common/token-bucket';
import { systemClock, type Clock } from '../common/clock';
import type { ChunkStore } from './chunk-store';

export interface ScrubberOptions {
  store: Pick<ChunkStore, 'list' | 'verify' | 'busy'>;
  intervalMs: number;
  rateBytesPerSec: number;
  rateMinBytesPerSec?: number;
  /** Pacing and rest (default systemClock). */
  clock?: Clock;
  log: Logger;
  onCorrupt: (handle: number) => void;
  registry?: Registry;
}

export class Scrubber {
  private stopped = false;
  private loopDone: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private readonly urgent: number[] = [];
  private bucket: TokenBucket | undefined;
  private readonly scrubbedBytes?: Counter;
  private readonly foundCorrupt?: Counter;
  private readonly passes?: Counter;
  private readonly passSeconds?: Gauge;
  passesDone = 0;
  private readonly clock: Clock;
  private readonly nowMs = (): number => this.clock.monoMs();

  constructor(private readonly opts: ScrubberOptions) {
    this.clock = opts.clock ?? systemClock;
    if (opts.registry) {
      this.scrubbedBytes = new Counter({ name: 'gfs_chunkserver_scrubbed_bytes_total', help: 'Chunk bytes re-verified by the scrubber', registers: [opts.registry] });
      this.foundCorrupt = new Counter({ name: 'gfs_chunkserver_scrub_corrupt_total', help: 'Chunks the scrubber found corrupt', registers: [opts.registry] });
      this.passes = new Counter({ name: 'gfs_chunkserver_scrub_passes_total', help: 'Complete scrub passes', registers: [opts.registry] });
      this.passSeconds = new Gauge({ name: 'gfs_chunkserver_scrub_last_pass_seconds', help: 'Duration of the last complete scrub pass', registers: [opts.registry] });
    }
  }

  start(): void {
    this.loopDone ??= this.loop().catch((e: Error) => this.opts.log.error({ err: e.message }, 'scrubber stopped on an error'));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loopDone;
  }

  /** Verify this chunk soon (the master's VERIFY command). */
  verifySoon(handle: number): void {
    this.urgent.push(handle);
    this.wake?.();
  }

  private async loop(): Promise<void> {
    const minRate = this.opts.rateMinBytesPerSec ?? limits.scrubBytesPerSecMin;
    while (!this.stopped) {
      const passStartMs = this.nowMs();
      const chunks = this.opts.store.list().sort((a, b) => a.handle - b.handle);
      const totalBytes = chunks.reduce((s, c) => s + cost(c.length), 0);
      const rate = Math.min(this.opts.rateBytesPerSec, Math.max(minRate, totalBytes / (this.opts.intervalMs / 1000)));
      this.bucket = new TokenBucket(rate, limits.blockBytes, this.nowMs);
      let corrupt = 0;
      for (const c of chunks) {
        await this.drainUrgent();
        if (this.stopped) return;
        if (!(await this.check(c.handle, c.length))) corrupt++;
      }
      if (this.stopped) return;
      this.passesDone++;
      this.passes?.inc();
      const passMs = this.nowMs() - passStartMs;
      this.passSeconds?.set(passMs / 1000);
      this.opts.log.info({ chunks: chunks.length, bytes: totalBytes, corrupt, ms: Math.round(passMs), rateBytesPerSec: Math.round(rate) }, 'scrub pass done');
      // Rest until the interval is over; urgent VERIFYs are served meanwhile.
      for (;;) {
        await this.drainUrgent();
        const restMs = passStartMs + this.opts.intervalMs - this.nowMs();
        if (this.stopped || restMs <= 0) break;
        await this.sleep(restMs);
      }
    }
  }

  private async drainUrgent(): Promise<void> {
    while (!this.stopped && this.urgent.length > 0) {
      const handle = this.urgent.shift()!;
      const meta = this.opts.store.list().find((c) => c.handle === handle);
      if (meta) await this.check(handle, meta.length);
    }
  }

  /** Verifies one chunk; false only when it is found corrupt. */
  private async check(handle: number, length: number): Promise<boolean> {
    if (this.opts.store.busy(handle)) return true;
    const bucket = this.bucket ?? new TokenBucket(this.opts.rateBytesPerSec, limits.blockBytes, this.nowMs);
    const waitMs = bucket.take(cost(length));
    if (waitMs > 0) await this.sleep(waitMs);
    if (this.stopped) return true;
    try {
      const ok = await this.opts.store.verify(handle);
      this.scrubbedBytes?.inc(length);
      if (!ok) {
        this.foundCorrupt?.inc();
        this.opts.log.error({ handle }, 'scrubber found a corrupt chunk');
        this.opts.onCorrupt(handle);
      }
      return ok;
    } catch (e) {
      // Deleted meanwhile, or the store is closing: nothing to report.
      if (isGfsError(e, 'NO_SUCH_CHUNK') || isGfsError(e, 'UNAVAILABLE')) return true;
      this.opts.log.warn({ handle, err: (e as Error).message }, 'scrubber could not verify a chunk');
      return true;
    }
  }

  /** Interruptible by stop() and verifySoon(). */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = this.clock.after(ms, done);
      function done(): void { timer.cancel(); resolve(); }
      this.wake = done;
    });
  }
}

/** Verifying costs at least a block's read, even for an empty chunk. */
function cost(length: number): number {
  return Math.max(length, limits.blockBytes);
}
