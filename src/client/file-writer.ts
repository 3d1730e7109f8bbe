/**
 * Writes a whole file (put): source bytes are cut into 1 MiB DATA frames with one
 * xxHash64 per 64 KiB block, streamed down a replica chain per chunk, and made durable
 * on every replica at sync points.
 *
 * Invariants:
 * - Memory is bounded by the write window (frames not yet acknowledged durable are kept
 *   to be replayed), never by the file size.
 * - A chunk's length is committed to the master only up to what every replica in its
 *   chain acknowledged durable.
 * - If a replica fails, the chunk ends at its acknowledged length and the rest is
 *   replayed on a newly allocated chunk that leaves the failed node out.
 * - The file becomes visible only when CompleteFile succeeds; on failure it is aborted
 *   and nothing is visible.
 */
import { GfsError } from '../common/errors';
import { limits } from '../common/limits';
import { sleep, systemClock } from '../common/clock';
import { createXxh64, hex64, xxh64, type Hasher64 } from '../common/checksum';
import { ChainLink, FRAME_PREFIX_BYTES, FrameType, sealReplica, writeFramePrefix, type DataConnPool } from '../dataplane';
import type { Logger } from '../common/log';
import { randomId } from '../common/ids';
import type { ChunkInfo, CommitChunkRequest, FileInfo } from '../../gen/gfs';
import type { MasterConn } from './master-conn';
import { BufferPool } from '../common/buffer-pool';

export interface PutOptions {
  force?: boolean;
  replication?: number;
  contentType?: string;
  metadata?: Record<string, string>;
  onProgress?: (bytes: number) => void;
  /** Bytes per chunk; defaults to the cluster chunk size (tests use smaller chunks). */
  chunkBytes?: number;
  /**
   * Called once every byte is durable and before the file becomes visible, with its size:
   * it may throw to abort the put (nothing becomes visible), and the metadata it returns
   * is merged into the file's as it completes (digests known only at the end of the body).
   */
  beforeComplete?: (size: number) => Promise<Record<string, string>> | Record<string, string>;
  /**
   * Replace only the file with this inode (with `force`): checked by the master as the
   * put completes, PRECONDITION_FAILED if another file is there by then.
   */
  replacesInode?: number;
}

const HEADER_JSON_BYTES = 12; // `{"sums":  16}`: fixed width so data can be filled in place
const PREFIX_BYTES = FRAME_PREFIX_BYTES + HEADER_JSON_BYTES;
const MAX_SUMS = Math.ceil(limits.readPieceBytes / limits.blockBytes);

/** A DATA frame being filled in place: prefix, header, data, then the sums after the data. */
const FRAME_BUFFER_BYTES = PREFIX_BYTES + limits.readPieceBytes + MAX_SUMS * 8;

/**
 * Frame buffers for one put: the window's worth plus the ones still being written out.
 * (Sharing one pool, and pooled write connections, across a client's puts cut a small
 * put's CPU but raised the gateway's peak RSS by 20-30 MiB per big upload, found by the
 * gateway memory test and not yet explained: per put again until it is.)
 */
export function newFramePool(): BufferPool {
  return new BufferPool(FRAME_BUFFER_BYTES, Math.ceil(limits.writeWindowBytes / limits.readPieceBytes) + 16);
}

class FrameBuilder {
  dataBytes = 0;

  constructor(readonly buf: Buffer) {}

  fill(src: Uint8Array, from: number, maxDataBytes: number): number {
    const n = Math.min(maxDataBytes - this.dataBytes, src.length - from);
    this.buf.set(src.subarray(from, from + n), PREFIX_BYTES + this.dataBytes);
    this.dataBytes += n;
    return n;
  }

  /**
   * Finishes the frame; returns a view of its bytes (the builder must not be reused while
   * it is held). The block sums, in file order, also feed the whole-file checksum.
   */
  seal(fileHash: Hasher64): Buffer {
    const n = Math.ceil(this.dataBytes / limits.blockBytes);
    const data = this.buf.subarray(PREFIX_BYTES, PREFIX_BYTES + this.dataBytes);
    let at = PREFIX_BYTES + this.dataBytes;
    for (let i = 0; i < n; i++) {
      this.buf.writeBigUInt64LE(xxh64(data.subarray(i * limits.blockBytes, Math.min(data.length, (i + 1) * limits.blockBytes))), at);
      at += 8;
    }
    fileHash.update(this.buf.subarray(PREFIX_BYTES + this.dataBytes, at));
    const header = `{"sums":${String(n).padStart(HEADER_JSON_BYTES - 9, ' ')}}`;
    writeFramePrefix(this.buf, FrameType.DATA, HEADER_JSON_BYTES, at - PREFIX_BYTES);
    this.buf.write(header, FRAME_PREFIX_BYTES, 'latin1');
    return this.buf.subarray(0, at);
  }
}

/**
 * A sealed frame in a pooled buffer. References: one while it is in `unacked` (it may
 * have to be replayed), one per socket write not yet handed to the kernel; the last
 * release returns the buffer to the pool, so a buffer is never refilled while a replay
 * or a write could still read it.
 */
interface PooledFrame { buf: Buffer; frame: Buffer; refs: number }
interface SentFrame { pooled: PooledFrame; dataBytes: number; endOffset: number }

export class FileWriter {
  private inode = 0;
  /** The link to the head of the current chunk's replica chain. */
  private chain: ChainLink | undefined;
  private chunk: ChunkInfo | undefined;
  /** Bytes sent into the current chunk. */
  private chunkBytes = 0;
  private syncedRequested = 0;
  /** Frames of the current chunk not yet acknowledged durable, oldest first. */
  private unacked: SentFrame[] = [];
  private readonly excluded = new Set<string>();
  /**
   * Whole-file checksum: xxh64 over the file's 64 KiB block sums (u64 little-endian, in
   * order), like HDFS's checksum of block checksums. It costs one hash of 8 bytes per
   * block instead of a second pass over the data, and it does not depend on where
   * chunks begin (every chunk but the last holds whole blocks).
   */
  private readonly fileHash = createXxh64();
  private size = 0;
  private readonly chunkBytesMax: number;
  private builder: FrameBuilder;
  /** The first chunk, allocated together with the file. */
  private preallocated: ChunkInfo | undefined;
  private recoveries = 0;

  constructor(
    private readonly master: MasterConn,
    private readonly path: string,
    private readonly opts: PutOptions,
    private readonly log: Logger,
    /** Frame buffers: the window's worth plus the ones still being written out (newFramePool). */
    private readonly pool: BufferPool = newFramePool(),
    /** Idle connections to chunkservers, shared with the client's other writers. */
    private readonly conns?: DataConnPool,
  ) {
    this.builder = new FrameBuilder(this.pool.get());
    this.chunkBytesMax = opts.chunkBytes ?? limits.chunkBytesMax;
    if (this.chunkBytesMax % limits.readPieceBytes !== 0 && this.chunkBytesMax >= limits.readPieceBytes) {
      throw new GfsError('INVALID_ARGUMENT', 'chunk size must be a multiple of 1 MiB');
    }
  }

  async write(source: AsyncIterable<Uint8Array>): Promise<FileInfo> {
    try {
      return await this.writeAll(source);
    } finally {
      // The frame being built is never sent once the write is over: its buffer goes back.
      this.pool.put(this.builder.buf);
    }
  }

  private async writeAll(source: AsyncIterable<Uint8Array>): Promise<FileInfo> {
    const res = await this.master.call('createFile', {
      path: this.path, overwrite: this.opts.force ?? false, replication: this.opts.replication ?? 0,
      contentType: this.opts.contentType ?? '', metadata: this.opts.metadata ?? {}, requestId: randomId(),
      allocateChunk: true,
    });
    this.inode = res.inode;
    this.preallocated = res.firstChunk;
    try {
      for await (const piece of source) {
        const bytes = typeof piece === 'string' ? Buffer.from(piece) : piece;
        let from = 0;
        while (from < bytes.length) {
          // A frame never crosses a chunk boundary.
          const room = Math.min(limits.readPieceBytes, this.roomInChunk());
          from += this.builder.fill(bytes, from, room);
          if (this.builder.dataBytes === room) await this.flushFrame();
        }
        this.size += bytes.length;
      }
      if (this.builder.dataBytes > 0) await this.flushFrame();
      if (this.preallocated) {
        // An empty file never used the chunk allocated with it.
        await this.master.call('abandonChunk', { inode: this.inode, handle: this.preallocated.handle });
        this.preallocated = undefined;
      }
      const lastChunk = await this.finishChunk(true);
      const metadata = this.opts.beforeComplete ? { entries: await this.opts.beforeComplete(this.size) } : undefined;
      return await this.master.call('completeFile', {
        inode: this.inode, size: this.size, checksum: hex64(this.fileHash.digest()), requestId: randomId(), lastChunk, metadata,
        replaces: this.opts.replacesInode === undefined ? undefined : { inode: this.opts.replacesInode },
      });
    } catch (e) {
      this.chain?.destroy();
      await this.master.call('abortFile', { inode: this.inode }).catch((abortErr: Error) => {
        this.log.warn({ inode: this.inode, err: abortErr.message }, 'could not abort the unfinished file; GC will reclaim it');
      });
      throw e;
    }
  }

  private roomInChunk(): number {
    return this.chain && this.chunkBytes < this.chunkBytesMax ? this.chunkBytesMax - this.chunkBytes : this.chunkBytesMax;
  }

  /** Sends the frame being built (and starts a new chunk first if needed). */
  private async flushFrame(): Promise<void> {
    if (!this.chain || this.chunkBytes >= this.chunkBytesMax) {
      if (this.chain) await this.finishChunk();
      await this.startChunk();
    }
    const pooled: PooledFrame = { buf: this.builder.buf, frame: this.builder.seal(this.fileHash), refs: 1 };
    const dataBytes = this.builder.dataBytes;
    this.builder = new FrameBuilder(this.pool.get());
    this.chunkBytes += dataBytes;
    this.unacked.push({ pooled, dataBytes, endOffset: this.chunkBytes });
    // Not retried after a recovery: the frame is in `unacked`, so the replay sent it.
    await this.withRecovery(() => this.sendFrame(pooled, dataBytes), false);
    this.opts.onProgress?.(dataBytes);
    if (this.chunkBytes - this.syncedRequested >= limits.syncEveryBytes) this.requestSync(this.chunkBytes);
    while (this.chunkBytes - this.chain!.ackedLength > limits.writeWindowBytes) {
      await this.withRecovery(() => this.waitAck());
    }
  }

  private sendFrame(f: PooledFrame, dataBytes: number): Promise<void> {
    f.refs++;
    return this.chain!.send(f.frame, dataBytes, () => this.releaseFrame(f));
  }

  private releaseFrame(f: PooledFrame): void {
    if (--f.refs === 0) this.pool.put(f.buf);
  }

  private requestSync(length: number): void {
    this.syncedRequested = length;
    const chain = this.chain!;
    chain.sync(length).then(() => this.dropAcked(chain), () => undefined);
  }

  private dropAcked(chain: ChainLink): void {
    if (chain !== this.chain) return;
    while (this.unacked.length > 0 && this.unacked[0]!.endOffset <= chain.ackedLength) this.releaseFrame(this.unacked.shift()!.pooled);
  }

  private waitAck(): Promise<void> {
    const chain = this.chain!;
    const target = this.syncedRequested;
    return chain.sync(target).then(() => this.dropAcked(chain));
  }

  private async startChunk(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      let chunk: ChunkInfo | undefined = this.preallocated;
      this.preallocated = undefined;
      if (!chunk) {
        try {
          ({ chunk } = await this.master.call('allocateChunk', {
            inode: this.inode, excludeNodes: [...this.excluded], requestId: randomId(),
          }));
        } catch (e) {
          // Exclusions are hints from past failures; a node may be back. Forget them and retry.
          const code = (e as GfsError).code;
          if ((code !== 'NO_SPACE' && code !== 'NO_CHUNKSERVERS') || this.excluded.size === 0 || attempt >= limits.clientRetries) throw e;
          this.excluded.clear();
          await sleep(systemClock, limits.clientAllocRetryWaitMs);
          continue;
        }
      }
      if (!chunk || chunk.replicas.length === 0) throw new GfsError('NO_CHUNKSERVERS', 'master allocated a chunk with no replicas');
      const chain = new ChainLink(chunk.replicas[0]!.addr, { pool: this.conns });
      try {
        await chain.open({
          handle: chunk.handle, version: chunk.version, create: true, chain: chunk.replicas.slice(1).map((r) => r.addr),
        });
        this.chain = chain;
        this.chunk = chunk;
        this.chunkBytes = 0;
        this.syncedRequested = 0;
        return;
      } catch (e) {
        chain.destroy();
        await this.master.call('abandonChunk', { inode: this.inode, handle: chunk.handle }).catch(() => undefined);
        this.noteFailure(chunk, e as GfsError);
        if (attempt >= limits.clientRetries) throw e;
      }
    }
  }

  /**
   * Makes the whole current chunk durable and commits its length; for the last chunk,
   * returns the commit instead, for CompleteFile to carry.
   */
  private async finishChunk(last = false): Promise<CommitChunkRequest | undefined> {
    if (!this.chain) return undefined;
    await this.withRecovery(async () => {
      if (this.chunkBytes > this.chain!.ackedLength) {
        this.syncedRequested = this.chunkBytes;
        await this.chain!.sync(this.chunkBytes);
      }
    });
    const chain = this.chain!;
    const chunk = this.chunk!;
    const commit: CommitChunkRequest = {
      inode: this.inode, handle: chunk.handle, length: this.chunkBytes, replicaNodes: chunk.replicas.map((r) => r.nodeId), version: 0,
    };
    if (!last) await this.master.call('commitChunk', commit);
    chain.close();
    this.chain = undefined;
    this.chunk = undefined;
    for (const f of this.unacked) this.releaseFrame(f.pooled);
    this.unacked = [];
    return last ? commit : undefined;
  }

  /**
   * Runs a step of the chain write; if a replica fails, ends the chunk at what every
   * replica acknowledged, replays the rest on a new chunk without the failed node, and
   * tries the step again there.
   */
  private async withRecovery(step: () => Promise<void>, retryStep = true): Promise<void> {
    for (let recovered = false; ; ) {
      try {
        if (recovered && !retryStep) return;
        await step();
        return;
      } catch (e) {
        let err = e instanceof GfsError ? e : new GfsError('IO_ERROR', String(e));
        // Recovery itself can hit a failing replica: then recover again, a bounded number of times.
        for (;;) {
          if (!this.chain?.failure) throw err;
          if (++this.recoveries > limits.clientRetries * 4) throw err;
          try {
            await this.recover(err);
            break;
          } catch (again) {
            err = again instanceof GfsError ? again : new GfsError('IO_ERROR', String(again));
          }
        }
        recovered = true;
      }
    }
  }

  private async recover(err: GfsError): Promise<void> {
    const failed = this.chain!;
    const chunk = this.chunk!;
    const durable = failed.ackedLength;
    this.noteFailure(chunk, err);
    this.log.warn({ handle: chunk.handle, durable, sent: this.chunkBytes, err: err.message }, 'replica failed during write; continuing on a new chunk');
    failed.destroy();
    if (durable > 0) {
      await this.master.call('commitChunk', await this.sealSurvivors(chunk, durable, err.detail.failedAddr));
    } else {
      await this.master.call('abandonChunk', { inode: this.inode, handle: chunk.handle });
    }
    const replay = this.unacked.filter((f) => f.endOffset > durable);
    for (const f of this.unacked) if (f.endOffset <= durable) this.releaseFrame(f.pooled);
    this.chain = undefined;
    this.unacked = [];
    await this.startChunk();
    // Durable lengths are sync points, which fall on frame boundaries: replay whole frames.
    for (const f of replay) {
      this.chunkBytes += f.dataBytes;
      this.unacked.push({ ...f, endOffset: this.chunkBytes });
      await this.sendFrame(f.pooled, f.dataBytes);
    }
    if (this.chunkBytes > 0) this.requestSync(this.chunkBytes);
  }

  /**
   * Ends a chunk whose chain failed at `durable` bytes: every replica but the failed one
   * is sealed at the next version, and the commit names only those that sealed, so a
   * failed replica that comes back is stale. If none can be sealed the chunk keeps its
   * version: every replica acknowledged `durable` bytes, so all of them are still good.
   */
  private async sealSurvivors(chunk: ChunkInfo, durable: number, failedAddr: string | undefined): Promise<CommitChunkRequest> {
    const version = chunk.version + 1;
    const candidates = chunk.replicas.filter((r) => r.addr !== failedAddr);
    const results = await Promise.allSettled(candidates.map((r) => sealReplica(r.addr, chunk.handle, version, durable)));
    const sealed = candidates.filter((_, i) => results[i]!.status === 'fulfilled');
    results.forEach((r, i) => {
      if (r.status === 'rejected') {
        this.log.warn({ handle: chunk.handle, node: candidates[i]!.nodeId, err: (r.reason as Error).message }, 'replica could not be sealed; it will be re-replicated');
      }
    });
    if (sealed.length === 0) {
      return { inode: this.inode, handle: chunk.handle, length: durable, replicaNodes: chunk.replicas.map((r) => r.nodeId), version: 0 };
    }
    return { inode: this.inode, handle: chunk.handle, length: durable, replicaNodes: sealed.map((r) => r.nodeId), version };
  }

  private noteFailure(chunk: ChunkInfo, err: GfsError): void {
    const addr = err.detail.failedAddr;
    const node = chunk.replicas.find((r) => r.addr === addr) ?? chunk.replicas[0];
    if (node) this.excluded.add(node.nodeId);
  }
}
