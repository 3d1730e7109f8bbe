/**
 * The chunkserver's data plane: chain-replicated writes and verified reads over framed
 * TCP (protocol in DATA-PLANE.md). The hop to the next replica of a chain is the same
 * ChainLink (src/dataplane) the client uses to reach the head.
 *
 * Invariants:
 * - A SYNC_ACK for length L is sent upstream only after this replica made L durable AND
 *   the next replica downstream acknowledged L: an ack at the head means every replica
 *   in the chain holds L bytes durably. Acks go upstream in the order the syncs came,
 *   and never for more bytes than this replica received.
 * - A DATA frame is forwarded downstream before it is written locally (pipelining), and
 *   the frame is verified against its block sums here as well as downstream.
 * - A read never sends a byte whose block did not verify (ChunkStore.read guarantees it).
 * - A SEAL (the writer ending a chunk early after a replica failed) supersedes any write
 *   session still open on the chunk here, then bumps the chunk's version durably: a
 *   replica that was not sealed keeps the old version and is detectably stale.
 */
import net from 'node:net';
import assert from 'node:assert/strict';
import type { Logger } from '../common/log';
import { GfsError } from '../common/errors';
import { limits } from '../common/limits';
import { sleep, systemClock, type Clock } from '../common/clock';
import { splitHostPort } from '../common/admin-http';
import {
  ChainLink, FrameParser, FrameType, decodeSums, encodeFrame, encodeFrameHead, errorFrame, type Frame,
} from '../dataplane';
import type { ChunkStore, ChunkWriter } from './chunk-store';
import { BufferPool } from '../common/buffer-pool';
import type { DataPlaneMetrics } from './metrics';
import type { ForegroundActivity } from './foreground';
import type { TokenBucket } from '../common/token-bucket';
import { LeaseTable } from './append/lease-table';
import { AppendSession, ControlSession, FollowSession, type AppendServerHost } from './append/sessions';
import { RidSidecar, cutSidecar } from './append/rid-sidecar';

export interface DataServerOptions {
  listen: string;
  /** What others dial; defaults to the bound address. */
  advertise?: string;
  store: ChunkStore;
  log: Logger;
  metrics: DataPlaneMetrics;
  nodeId: string;
  /** Called when a read finds a corrupt block, so the master hears at once. */
  onCorrupt: (handle: number) => void;
  /** Called when a chunk's durable length changed (for the heartbeat delta). */
  onChunkChanged: (handle: number) => void;
  /** Client reads and chain writes are noted here; background reads yield to them. */
  foreground: ForegroundActivity;
  /** Paces background (re-replication) reads while the node is busy with foreground work. */
  backgroundReads: TokenBucket;
  /** Paced reads and append leases use this clock (default: the system clock). */
  clock?: Clock;
  /** Chunk size for record appends (default limits.chunkBytesMax; tests use small chunks). */
  appendChunkBytes?: number;
}

export class DataServer {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  /** Frame and read-piece buffers, recycled once forwarded, written or sent (see BufferPool). */
  readonly pool = new BufferPool(limits.frameBytesMax, 256);
  /** The open write session of each chunk being written here (a SEAL supersedes it). */
  readonly writeSessions = new Map<number, WriteSession>();
  /** Chunks with a write session holding their writer here (what heartbeats report). */
  get openWrites(): number { return this.writeSessions.size; }
  addr = '';
  /** Append chunks this node is primary of (LOG-STREAMS.md). */
  readonly leases: LeaseTable;
  private readonly appendHost: AppendServerHost;

  constructor(private readonly opts: DataServerOptions) {
    const chunkBytes = opts.appendChunkBytes ?? limits.chunkBytesMax;
    if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 4 || chunkBytes > limits.chunkBytesMax) {
      throw new GfsError('INVALID_ARGUMENT', `append chunk size ${chunkBytes} must be between 4 bytes and ${limits.chunkBytesMax}`);
    }
    this.leases = new LeaseTable({
      store: opts.store, clock: opts.clock ?? systemClock, log: opts.log, metrics: opts.metrics,
      chunkBytes, onChunkChanged: opts.onChunkChanged,
    });
    this.appendHost = {
      leases: this.leases, nodeId: opts.nodeId, store: opts.store, log: opts.log,
      onChunkChanged: opts.onChunkChanged,
      endWriteSession: async (handle) => { await this.writeSessions.get(handle)?.supersede(); },
    };
  }

  async start(): Promise<void> {
    const server = net.createServer((socket) => this.accept(socket));
    this.server = server;
    const { host, port } = splitHostPort(this.opts.listen);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => { server.off('error', reject); resolve(); });
    });
    const bound = server.address() as net.AddressInfo;
    this.addr = this.opts.advertise ?? `${host === '0.0.0.0' ? '127.0.0.1' : host}:${bound.port}`;
  }

  async close(): Promise<void> {
    await this.leases.stopAll();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private accept(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.setNoDelay(true);
    socket.setTimeout(limits.dataIdleTimeoutMs, () => socket.destroy());
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    const parser = new FrameParser(this.pool);
    let session: WriteSession | ReadSession | SealSession | AppendSession | FollowSession | ControlSession | undefined;
    socket.on('data', (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = parser.push(chunk);
      } catch (e) {
        socket.end(errorFrame(e));
        socket.destroy();
        return;
      }
      for (const frame of frames) {
        if (!session) {
          if (frame.type === FrameType.WRITE_OPEN) session = new WriteSession(this, socket, () => { session = undefined; });
          else if (frame.type === FrameType.READ) session = new ReadSession(this, socket);
          else if (frame.type === FrameType.SEAL && frame.header.length === undefined) session = new ControlSession(this.appendHost, socket);
          else if (frame.type === FrameType.SEAL) session = new SealSession(this, socket);
          else if (frame.type === FrameType.APPEND) session = new AppendSession(this.appendHost, socket);
          else if (frame.type === FrameType.FOLLOW) session = new FollowSession(this.appendHost, socket);
          else if (frame.type === FrameType.LEASE || frame.type === FrameType.CHUNK_STAT || frame.type === FrameType.TRUNCATE) {
            session = new ControlSession(this.appendHost, socket);
          } else {
            socket.end(errorFrame(new GfsError('PROTOCOL', `unexpected first frame type ${frame.type}`)));
            return;
          }
        }
        try {
          session.onFrame(frame);
        } finally {
          frame.release(); // the parser's reference; holders took their own
        }
      }
    });
  }

  get options(): DataServerOptions { return this.opts; }
}

// ---------------------------------------------------------------- writes

interface PendingSync { seq: number; length: number; writer: ChunkWriter; local: Promise<number>; downstream: Promise<number> }

class WriteSession {
  private writer: ChunkWriter | undefined;
  /** The record-id sidecar, opened on the first RIDS (append chunks only). */
  private sidecar: Promise<RidSidecar> | undefined;
  private downstream: ChainLink | undefined;
  private failed = false;
  private readonly syncs: PendingSync[] = [];
  private draining = false;
  private handle = 0;

  private readonly onUpstreamClose = (): void => this.teardown();

  /** `ended`: the session is over and the connection may carry the next one (CLOSE with keep). */
  constructor(private readonly server: DataServer, private readonly upstream: net.Socket, private readonly ended: () => void) {
    upstream.on('close', this.onUpstreamClose);
  }

  onFrame(frame: Frame): void {
    if (this.failed) return;
    try {
      switch (frame.type) {
        case FrameType.WRITE_OPEN: return void this.open(frame).catch((e) => this.fail(e));
        case FrameType.DATA: return this.data(frame);
        case FrameType.SYNC: return this.sync(frame);
        case FrameType.RIDS: return this.rids(frame);
        case FrameType.CLOSE: return void this.finish(frame.header.keep === true).catch((e) => this.fail(e));
        default: throw new GfsError('PROTOCOL', `unexpected frame type ${frame.type} in a write`);
      }
    } catch (e) {
      this.fail(e);
    }
  }

  private async open(frame: Frame): Promise<void> {
    const h = frame.header;
    const handle = Number(h.handle);
    const version = Number(h.version);
    const chain = Array.isArray(h.chain) ? (h.chain as unknown[]).map(String) : [];
    if (!Number.isSafeInteger(handle) || handle <= 0 || !Number.isSafeInteger(version) || version <= 0) {
      throw new GfsError('INVALID_ARGUMENT', 'WRITE_OPEN needs a positive handle and version');
    }
    if (this.writer) throw new GfsError('PROTOCOL', 'second WRITE_OPEN on one connection');
    this.handle = handle;
    // Hold incoming frames until the writer and the chain below are ready.
    this.upstream.pause();
    // Open locally and down the chain at the same time: opening costs one hop's latency, not three.
    const local = this.server.options.store.openWriter(handle, version, { create: h.create !== false }).then((w) => {
      this.writer = w;
      this.server.writeSessions.set(handle, this);
      this.server.options.metrics.openWrites.set(this.server.openWrites);
      if (this.failed) void this.release();
    });
    this.opening = local;
    let below: Promise<void> = Promise.resolve();
    if (chain.length > 0) {
      this.downstream = new ChainLink(chain[0]!, { onDrain: () => this.upstream.resume(), onFailure: (e) => this.fail(e) });
      below = this.downstream.open({ ...h, chain: chain.slice(1) });
    }
    const [localResult, belowResult] = await Promise.allSettled([local, below]);
    if (localResult.status === 'rejected') throw localResult.reason;
    if (belowResult.status === 'rejected') throw belowResult.reason;
    if (this.failed) return;
    this.upstream.write(encodeFrame(FrameType.OPEN_OK, { node: this.server.options.nodeId }));
    this.upstream.resume();
  }

  private data(frame: Frame): void {
    assert(this.writer, 'DATA before WRITE_OPEN');
    const sumCount = Number(frame.header.sums ?? 0);
    if (!Number.isInteger(sumCount) || sumCount < 0 || sumCount > 1024) throw new GfsError('PROTOCOL', 'bad sum count');
    // Payload = data then its block sums (sums last, so a sender can fill data in place).
    const dataBytes = frame.payload.length - sumCount * 8;
    if (dataBytes < 0) throw new GfsError('PROTOCOL', 'DATA frame shorter than its sums');
    const data = frame.payload.subarray(0, dataBytes);
    const sums = decodeSums(frame.payload.subarray(dataBytes), sumCount);
    if (this.downstream) {
      frame.retain();
      if (!this.downstream.write(frame.raw, data.length, () => frame.release())) this.upstream.pause();
    }
    frame.retain();
    try {
      this.writer.append(data, sumCount > 0 ? sums : undefined, () => frame.release());
    } catch (e) {
      frame.release();
      throw e;
    }
    this.server.options.metrics.bytesWritten.inc(data.length);
    this.server.options.foreground.note();
  }

  /** RIDS: record ids of the appends in the DATA that follows; forwarded, then queued for the sidecar. */
  private rids(frame: Frame): void {
    assert(this.writer, 'RIDS before WRITE_OPEN');
    if (this.downstream) {
      frame.retain();
      if (!this.downstream.write(frame.raw, 0, () => frame.release())) this.upstream.pause();
    }
    if (!this.sidecar) {
      const writer = this.writer;
      const opening = RidSidecar.open(this.server.options.store.sidecarPath(this.handle), writer.durableLength);
      opening.catch(() => undefined);
      this.sidecar = opening;
      writer.setBeforeHeader(async () => (await opening).flush());
    }
    const entries = Buffer.from(frame.payload); // a copy: the frame's buffer is recycled
    void this.sidecar.then((s) => s.append(entries), (e) => this.fail(e));
  }

  private sync(frame: Frame): void {
    assert(this.writer, 'SYNC before WRITE_OPEN');
    const seq = Number(frame.header.seq);
    const length = Number(frame.header.length);
    if (!Number.isSafeInteger(seq) || !Number.isSafeInteger(length)) throw new GfsError('PROTOCOL', 'SYNC needs seq and length');
    const downstream = this.downstream ? this.downstream.sync(length, { seq, raw: frame.raw }) : Promise.resolve(Number.MAX_SAFE_INTEGER);
    const writer = this.writer;
    const local = writer.sync();
    // Keep rejections observed; the drain loop reports them in order.
    local.catch(() => undefined);
    downstream.catch(() => undefined);
    this.syncs.push({ seq, length, writer, local, downstream });
    void this.drainSyncs();
  }

  /** Acknowledges syncs upstream strictly in order. */
  private async drainSyncs(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.syncs.length > 0 && !this.failed) {
        const s = this.syncs[0]!;
        const [localLength, downstreamLength] = await Promise.all([s.local, s.downstream]);
        this.syncs.shift();
        // What the whole chain below us holds durably: at least what the SYNC asked for.
        const length = Math.min(localLength, downstreamLength);
        if (length < s.length) throw new GfsError('IO_ERROR', `sync ${s.seq} made ${length} bytes durable, asked for ${s.length}`);
        assert(length <= s.writer.length, 'a replica never acks more bytes than it received');
        this.server.options.onChunkChanged(this.handle);
        this.upstream.write(encodeFrame(FrameType.SYNC_ACK, { seq: s.seq, length }));
      }
    } catch (e) {
      this.fail(e);
    } finally {
      this.draining = false;
    }
  }

  private async finish(keep: boolean): Promise<void> {
    // CLOSE: the client has every ack it wants; release the writer and the chain.
    this.failed = true; // nothing after CLOSE counts, including the chain hanging up
    this.downstream?.close();
    await this.release();
    if (!keep || this.upstream.destroyed) {
      this.upstream.end();
      return;
    }
    // The connection outlives the session: the next frame starts a new one.
    this.upstream.off('close', this.onUpstreamClose);
    this.ended();
    this.upstream.write(encodeFrame(FrameType.CLOSE_OK, {}));
  }

  private fail(e: unknown): void {
    if (this.failed) return;
    this.failed = true;
    const err = e instanceof GfsError ? e : new GfsError('IO_ERROR', (e as Error).message ?? String(e), { cause: e });
    // Name the node that failed, so the client can leave it out of the next chunk.
    const failedAddr = err.detail.failedAddr ?? this.server.addr;
    this.server.options.log.warn({ handle: this.handle, code: err.code, err: err.message, failedAddr }, 'write session failed');
    if (!this.upstream.destroyed) this.upstream.end(errorFrame(err, { failedAddr }));
    this.downstream?.destroy();
    void this.release();
  }

  private teardown(): void {
    if (!this.failed) {
      this.failed = true;
      this.downstream?.destroy();
      void this.release();
    }
  }

  /**
   * Ends this session because the writer sealed the chunk (it gave up on this chain):
   * nothing more is written or acknowledged; resolves once the chunk writer is closed.
   */
  async supersede(): Promise<void> {
    this.failed = true;
    this.downstream?.destroy();
    this.upstream.destroy();
    await this.release();
  }

  private released: Promise<void> | undefined;
  private opening: Promise<void> | undefined;

  private release(): Promise<void> {
    this.released ??= this.closeWriter();
    return this.released;
  }

  private async closeWriter(): Promise<void> {
    // The writer may still be opening: wait for it, so a caller of release() knows the chunk is free.
    if (!this.writer && this.opening) await this.opening.catch(() => undefined);
    const w = this.writer;
    if (!w) return;
    this.writer = undefined;
    try {
      await w.close();
      if (this.sidecar) {
        // Entries past the durable length were never acknowledged.
        await (await this.sidecar).close();
        await cutSidecar(this.server.options.store.sidecarPath(this.handle), this.server.options.store.get(this.handle)?.length ?? 0);
      }
    } catch (e) {
      this.server.options.log.warn({ handle: this.handle, err: (e as Error).message }, 'closing chunk writer failed');
    } finally {
      // Only now is the chunk free: a SEAL arriving while the writer closes (it may be
      // finishing an fsync) finds this session and waits for the same close.
      if (this.server.writeSessions.get(this.handle) === this) this.server.writeSessions.delete(this.handle);
      this.server.options.metrics.openWrites.set(this.server.openWrites);
    }
  }
}

// ---------------------------------------------------------------- seals

/**
 * SEAL {handle, version, length}: the writer ended the chunk at `length` after a
 * replica failed. Supersedes a write session still open here, checks this replica
 * holds `length` bytes durably, and records the new version before answering SEAL_OK.
 */
class SealSession {
  private done = false;

  constructor(private readonly server: DataServer, private readonly socket: net.Socket) {}

  onFrame(frame: Frame): void {
    if (this.done || frame.type !== FrameType.SEAL) {
      this.socket.end(errorFrame(new GfsError('PROTOCOL', 'a seal connection carries one SEAL')));
      return;
    }
    this.done = true;
    void this.seal(frame.header).then(
      (length) => this.socket.end(encodeFrame(FrameType.SEAL_OK, { node: this.server.options.nodeId, length })),
      (e) => this.socket.end(errorFrame(e)),
    );
  }

  private async seal(h: Record<string, unknown>): Promise<number> {
    const { store, log, onChunkChanged } = this.server.options;
    const handle = Number(h.handle);
    const version = Number(h.version);
    const length = Number(h.length);
    if (![handle, version, length].every((n) => Number.isSafeInteger(n) && n > 0)) {
      throw new GfsError('INVALID_ARGUMENT', 'SEAL needs a positive handle, version and length');
    }
    await this.server.leases.stop(handle);
    await this.server.writeSessions.get(handle)?.supersede();
    // A writer torn down a moment ago (its upstream hung up) may still be closing, an
    // fsync in hand: wait for it, so its durable length is final, rather than fail.
    await store.whenIdle(handle, limits.sealTimeoutMs / 2);
    const chunk = store.get(handle);
    if (!chunk) throw new GfsError('NO_SUCH_CHUNK', `chunk ${handle} is not here`);
    if (chunk.length < length) {
      throw new GfsError('IO_ERROR', `chunk ${handle} holds ${chunk.length} durable bytes here, the writer sealed it at ${length}`);
    }
    await store.setVersion(handle, version);
    log.info({ handle, version, length, durable: chunk.length }, 'chunk sealed at a new version');
    onChunkChanged(handle);
    return chunk.length;
  }
}

// ---------------------------------------------------------------- reads

class ReadSession {
  private queue: Frame[] = [];
  private busy = false;

  constructor(private readonly server: DataServer, private readonly socket: net.Socket) {}

  onFrame(frame: Frame): void {
    if (frame.type !== FrameType.READ) {
      this.socket.end(errorFrame(new GfsError('PROTOCOL', `unexpected frame type ${frame.type} in a read`)));
      return;
    }
    // Reads on one connection are answered one after another, in order.
    this.queue.push(frame);
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    while (this.queue.length > 0 && !this.socket.destroyed) {
      await this.serve(this.queue.shift()!);
    }
    this.busy = false;
  }

  private async serve(frame: Frame): Promise<void> {
    const { store, metrics, onCorrupt, log, foreground, backgroundReads } = this.server.options;
    const h = frame.header;
    const background = h.background === true;
    const paced = background && h.urgent !== true;
    const handle = Number(h.handle);
    const version = Number(h.version);
    const offset = Number(h.offset);
    const length = Number(h.length);
    try {
      if (![handle, version, offset, length].every((n) => Number.isSafeInteger(n) && n >= 0)) {
        throw new GfsError('INVALID_ARGUMENT', 'READ needs handle, version, offset and length');
      }
      // Pieces come in pooled buffers, handed back once the socket has written them.
      for await (const piece of store.readPieces(handle, version, offset, length, this.server.pool)) {
        if (this.socket.destroyed) {
          piece.release();
          return;
        }
        const bytes = piece.bytes;
        if (!background) foreground.note();
        else if (paced && foreground.busy()) await backgroundReads.consume(bytes.length, (ms) => sleep(this.server.options.clock ?? systemClock, ms));
        this.socket.write(encodeFrameHead(FrameType.READ_DATA, {}, bytes.length));
        const ok = this.socket.write(bytes, () => piece.release());
        metrics.bytesRead.inc(bytes.length);
        if (!ok) await waitDrain(this.socket);
      }
      this.socket.write(encodeFrame(FrameType.READ_END, {}));
    } catch (e) {
      if (e instanceof GfsError && e.code === 'CORRUPT') {
        metrics.corruptReads.inc();
        log.error({ handle, err: e.message }, 'corrupt block found by a read');
        onCorrupt(handle);
      }
      if (!this.socket.destroyed) this.socket.write(errorFrame(e));
    }
  }
}

function waitDrain(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = () => { socket.off('drain', done); socket.off('close', done); resolve(); };
    socket.on('drain', done);
    socket.on('close', done);
  });
}
