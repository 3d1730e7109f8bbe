/**
 * One chain-replicated write of one chunk, seen from the client: a TCP connection to
 * the head replica, which forwards to the rest (client → A → B → C).
 */
import net from 'node:net';
import { GfsError } from '../common/errors';
import { limits } from '../common/limits';
import { splitHostPort } from '../common/admin-http';
import { FrameParser, FrameType, encodeFrame, frameError, type Frame } from '../dataplane';
import type { ChunkInfo } from '../../gen/gfs';

export class ChainWriter {
  private readonly socket: net.Socket;
  private readonly parser = new FrameParser();
  private readonly acks = new Map<number, { length: number; resolve: (len: number) => void; reject: (e: GfsError) => void }>();
  private openWaiter: { resolve: () => void; reject: (e: GfsError) => void } | undefined;
  private drainWaiters: (() => void)[] = [];
  private nextSeq = 1;
  /** Largest length every replica acknowledged durable. */
  ackedLength = 0;
  failure: GfsError | undefined;
  private closed = false;

  constructor(readonly chunk: ChunkInfo) {
    const head = chunk.replicas[0];
    if (!head) throw new GfsError('NO_CHUNKSERVERS', `chunk ${chunk.handle} has no replicas`);
    const { host, port } = splitHostPort(head.addr);
    this.socket = net.connect({ host, port });
    this.socket.setNoDelay(true);
    this.socket.setTimeout(limits.dataIdleTimeoutMs, () => this.fail(new GfsError('TIMEOUT', `chunkserver ${head.addr} timed out`, { detail: { failedAddr: head.addr } })));
    this.socket.on('error', (e) => this.fail(new GfsError('UNAVAILABLE', `chunkserver ${head.addr}: ${e.message}`, { detail: { failedAddr: head.addr } })));
    this.socket.on('close', () => this.fail(new GfsError('UNAVAILABLE', `chunkserver ${head.addr} closed the connection`, { detail: { failedAddr: head.addr } })));
    this.socket.on('drain', () => this.wakeDrain());
    this.socket.on('data', (chunkBytes: Buffer) => {
      try {
        for (const f of this.parser.push(chunkBytes)) this.onFrame(f);
      } catch (e) {
        this.fail(e instanceof GfsError ? e : new GfsError('PROTOCOL', String(e)));
      }
    });
  }

  open(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      this.openWaiter = { resolve, reject };
      this.socket.write(encodeFrame(FrameType.WRITE_OPEN, {
        handle: this.chunk.handle, version: this.chunk.version, create: true,
        chain: this.chunk.replicas.slice(1).map((r) => r.addr),
      }));
    });
  }

  /**
   * Sends an encoded DATA frame; resolves when the socket can take more. `onWritten`
   * runs exactly once, when the socket no longer needs the bytes (or never will).
   */
  async send(frame: Buffer, onWritten: () => void): Promise<void> {
    if (this.failure) {
      onWritten();
      throw this.failure;
    }
    if (!this.socket.write(frame, () => onWritten())) {
      await new Promise<void>((resolve) => this.drainWaiters.push(resolve));
      if (this.failure) throw this.failure;
    }
  }

  /** Asks every replica to make `length` bytes durable; resolves with the acked length. */
  sync(length: number): Promise<number> {
    return new Promise((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      const seq = this.nextSeq++;
      this.acks.set(seq, { length, resolve, reject });
      this.socket.write(encodeFrame(FrameType.SYNC, { seq, length }));
    });
  }

  /**
   * Ends a session whose every ack has arrived. The chunkserver ends its side on CLOSE;
   * if it never does, the idle timeout destroys the socket. Nothing after this is a
   * failure of the write.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.failure) this.socket.destroy();
    else this.socket.end(encodeFrame(FrameType.CLOSE, {}));
  }

  destroy(): void {
    this.fail(new GfsError('INTERNAL', 'chain writer destroyed'));
  }

  private onFrame(f: Frame): void {
    if (f.type === FrameType.OPEN_OK) {
      this.openWaiter?.resolve();
      this.openWaiter = undefined;
    } else if (f.type === FrameType.SYNC_ACK) {
      const seq = Number(f.header.seq);
      const waiter = this.acks.get(seq);
      if (!waiter) return this.fail(new GfsError('PROTOCOL', `unexpected SYNC_ACK ${seq}`));
      const length = Number(f.header.length);
      if (!(length >= waiter.length)) {
        return this.fail(new GfsError('PROTOCOL', `replicas acked ${length} bytes durable, asked for ${waiter.length}`));
      }
      this.acks.delete(seq);
      this.ackedLength = Math.max(this.ackedLength, length);
      waiter.resolve(length);
    } else if (f.type === FrameType.ERROR) {
      const e = frameError(f.header);
      this.fail(new GfsError(e.code, e.message, { detail: { failedAddr: e.detail.failedAddr ?? this.chunk.replicas[0]!.addr } }));
    }
  }

  private fail(e: GfsError): void {
    if (this.closed) {
      this.socket.destroy();
      return;
    }
    if (this.failure) return;
    this.failure = e;
    this.openWaiter?.reject(e);
    for (const a of this.acks.values()) a.reject(e);
    this.acks.clear();
    this.wakeDrain();
    this.socket.destroy();
  }

  private wakeDrain(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }
}
