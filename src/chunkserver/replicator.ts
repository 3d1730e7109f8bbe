/**
 * Executes the master's REPLICATE commands: copies a whole chunk from a source replica
 * over the data plane (READ: the source verifies every block before it sends a byte)
 * into the local store with importChunk (written beside its final name, fsynced, then
 * renamed), so a crash leaves either the whole chunk or nothing.
 *
 * Invariants:
 * - At most one copy per handle at a time, and at most `concurrencyMax` copies at once.
 * - Bytes copied in never exceed the node's replicate rate over time (token bucket
 *   shared by all copies), and the lower busy rate while the node serves clients:
 *   re-replication leaves foreground reads and writes most of the disk, the network and
 *   the CPU. TCP backpressure slows the source to match.
 * - A failed copy leaves no file behind (importChunk removes its temporaries) and is
 *   reported in the next heartbeat, so the master plans it again (maybe elsewhere).
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { isGfsError } from '../common/errors';
import type { Logger } from '../common/log';
import { TokenBucket } from '../common/token-bucket';
import { limits } from '../common/limits';
import type { ChunkStore } from './chunk-store';

export interface ReplicateJob {
  handle: number;
  version: number;
  sourceAddr: string;
  length: number;
  /** The chunk is down to one healthy copy: never slowed for foreground traffic. */
  urgent?: boolean;
}

/** Reads `length` verified bytes of a replica (the data-plane READ). Injected for tests. */
export type FetchReplica = (addr: string, handle: number, version: number, offset: number, length: number, urgent: boolean) => AsyncIterable<Buffer>;

export interface ReplicatorOptions {
  store: Pick<ChunkStore, 'get' | 'importChunk'>;
  rateBytesPerSec: number;
  /** The rate while `busy()`: the node is serving foreground traffic. */
  busyRateBytesPerSec: number;
  busy: () => boolean;
  concurrencyMax: number;
  fetch: FetchReplica;
  nowMs: () => number;
  sleep: (ms: number) => Promise<void>;
  log: Logger;
  /** The chunk is here now (copied, or already present): report it in the next delta. */
  onImported: (handle: number) => void;
  onFailed: (handle: number, error: Error) => void;
  registry?: Registry;
}

export class Replicator {
  private readonly queue: ReplicateJob[] = [];
  private readonly handles = new Set<number>();
  private running = 0;
  private closed = false;
  private readonly bucket: TokenBucket;
  private readonly copiedBytes?: Counter;
  private readonly copies?: Counter;

  constructor(private readonly opts: ReplicatorOptions) {
    // Burst of one read piece: copies are paced from their first megabyte.
    this.bucket = new TokenBucket(opts.rateBytesPerSec, limits.readPieceBytes, opts.nowMs);
    if (opts.registry) {
      this.copiedBytes = new Counter({ name: 'gfs_chunkserver_replicated_bytes_total', help: 'Chunk bytes copied in by REPLICATE', registers: [opts.registry] });
      this.copies = new Counter({ name: 'gfs_chunkserver_replications_total', help: 'REPLICATE commands by outcome', labelNames: ['outcome'], registers: [opts.registry] });
      const self = this;
      new Gauge({ name: 'gfs_chunkserver_replications_pending', help: 'REPLICATE commands queued or running', registers: [opts.registry], collect() { this.set(self.pending); } });
    }
  }

  /** Queued plus running. */
  get pending(): number { return this.handles.size; }

  /** Queues a copy; a copy of the same handle already queued or running absorbs it. */
  enqueue(job: ReplicateJob): void {
    if (this.closed || this.handles.has(job.handle)) return;
    this.handles.add(job.handle);
    this.queue.push(job);
    this.pump();
  }

  close(): void {
    this.closed = true;
    for (const j of this.queue) this.handles.delete(j.handle);
    this.queue.length = 0;
  }

  private pump(): void {
    while (!this.closed && this.running < this.opts.concurrencyMax && this.queue.length > 0) {
      const job = this.queue.shift()!;
      this.running++;
      void this.copy(job).finally(() => {
        this.running--;
        this.handles.delete(job.handle);
        this.pump();
      });
    }
  }

  private async copy(job: ReplicateJob): Promise<void> {
    const { log } = this.opts;
    const startedMs = this.opts.nowMs();
    try {
      const have = this.opts.store.get(job.handle);
      if (have && have.version >= job.version) {
        this.copies?.inc({ outcome: 'present' });
        this.opts.onImported(job.handle);
        return;
      }
      await this.opts.store.importChunk(job.handle, job.version, this.throttled(job), job.length);
      this.copies?.inc({ outcome: 'ok' });
      log.info({ handle: job.handle, version: job.version, source: job.sourceAddr, bytes: job.length, ms: Math.round(this.opts.nowMs() - startedMs) }, 'replica copied in');
      this.opts.onImported(job.handle);
    } catch (e) {
      if (isGfsError(e, 'ALREADY_EXISTS')) {
        this.copies?.inc({ outcome: 'present' });
        this.opts.onImported(job.handle);
        return;
      }
      this.copies?.inc({ outcome: 'failed' });
      log.warn({ handle: job.handle, source: job.sourceAddr, err: (e as Error).message }, 'replica copy failed');
      this.opts.onFailed(job.handle, e as Error);
    }
  }

  private async *throttled(job: ReplicateJob): AsyncGenerator<Buffer> {
    for await (const piece of this.opts.fetch(job.sourceAddr, job.handle, job.version, 0, job.length, job.urgent === true)) {
      const rate = this.opts.busy() && !job.urgent ? Math.min(this.opts.busyRateBytesPerSec, this.opts.rateBytesPerSec) : this.opts.rateBytesPerSec;
      if (rate !== this.bucket.rate) this.bucket.setRate(rate);
      await this.bucket.consume(piece.length, this.opts.sleep);
      this.copiedBytes?.inc(piece.length);
      yield piece;
    }
  }
}
