/**
 * One hop of a chain-replicated write (DATA-PLANE.md, "Writes: a chain"): a TCP
 * connection to the next replica, seen from the one sending. The client holds one to
 * the head of the chain; every replica with a successor holds one to it. Both send
 * WRITE_OPEN, DATA, SYNC and CLOSE down the link and wait for OPEN_OK and SYNC_ACK.
 *
 * Invariants:
 * - Acks answer syncs in the order they were sent: a SYNC_ACK must carry the seq of the
 *   oldest sync still waiting, or the link fails (PROTOCOL). A replica acks in order
 *   (data-server.ts), so anything else is a broken peer.
 * - An ack is never beyond what was sent: it resolves a sync this link sent, for at
 *   least the length that sync asked, and (for a chunk this chain creates, which starts
 *   empty) for no more bytes than this link sent down. Anything else fails the link.
 * - `ackedLength` only grows, and only through acks.
 * - A failed link fails every pending write: the open and every sync still waiting are
 *   rejected with the failure, later calls are refused with it, and a DATA frame handed
 *   to a failed link is released at once (its `onWritten` runs). The failure names the
 *   node that failed (`detail.failedAddr`): the one that reported it down the chain, or
 *   the next hop itself.
 * - After close() nothing counts as a failure of the write: the peer hanging up then is
 *   the normal end of the session.
 *
 * DATA frames are written as they are given (the raw bytes of a frame received from
 * upstream, or a frame filled in place by the client): no copy, no re-encoding; the
 * caller's buffer goes back to its pool when `onWritten` runs.
 */
import net from 'node:net';
import assert from 'node:assert/strict';
import { GfsError } from '../common/errors';
import { limits } from '../common/limits';
import { splitHostPort } from '../common/admin-http';
import { FrameParser, FrameType, encodeFrame, frameError, type Frame } from './frames';
import type { DataConnPool } from './conn-pool';

export interface ChainLinkOptions {
  /** The socket can take more after write() returned false (a replica resumes its upstream). */
  onDrain?: () => void;
  /** Called once, when the link fails (not after close()). */
  onFailure?: (e: GfsError) => void;
  /**
   * Idle connections: the link starts on one to `addr` if there is one, and a session
   * that closes cleanly gives its connection back (CLOSE with `keep`, then CLOSE_OK).
   */
  pool?: DataConnPool;
}

interface PendingSync { seq: number; length: number; resolve: (length: number) => void; reject: (e: GfsError) => void }

export class ChainLink {
  private readonly socket: net.Socket;
  private readonly parser = new FrameParser();
  /** Syncs sent and not yet acknowledged, oldest first. */
  private readonly pending: PendingSync[] = [];
  private openWaiter: { resolve: () => void; reject: (e: GfsError) => void } | undefined;
  private drainWaiters: (() => void)[] = [];
  private nextSeq = 1;
  /** Data bytes sent down; undefined when the chunk existed before this write (its start is the peer's). */
  private sentLength: number | undefined = 0;
  /** Largest length every replica from the next one down acknowledged durable. */
  ackedLength = 0;
  failure: GfsError | undefined;
  private closed = false;

  private readonly listeners: [string, Parameters<net.Socket['off']>[1]][];
  /** Set by close() on a pooled link: the connection goes back to the pool on CLOSE_OK. */
  private keeping = false;

  constructor(readonly addr: string, private readonly opts: ChainLinkOptions = {}) {
    const pooled = opts.pool?.take(addr);
    if (pooled) {
      this.socket = pooled;
    } else {
      const { host, port } = splitHostPort(addr);
      this.socket = net.connect({ host, port });
      this.socket.setNoDelay(true);
    }
    this.socket.setTimeout(limits.dataIdleTimeoutMs);
    this.listeners = [
      ['timeout', () => this.fail(new GfsError('TIMEOUT', `replica ${addr} timed out`))],
      ['drain', () => {
        this.wakeDrain();
        this.opts.onDrain?.();
      }],
      ['error', (e: Error) => this.fail(new GfsError('UNAVAILABLE', `replica ${addr}: ${e.message}`))],
      ['close', () => this.fail(new GfsError('UNAVAILABLE', `replica ${addr} closed the connection`))],
      ['data', (bytes: Buffer) => {
        try {
          for (const f of this.parser.push(bytes)) this.onFrame(f);
        } catch (e) {
          this.fail(e instanceof GfsError ? e : new GfsError('PROTOCOL', String(e)));
        }
      }],
    ];
    for (const [event, fn] of this.listeners) this.socket.on(event, fn);
  }

  /** Sends WRITE_OPEN with `header` as it is; resolves on OPEN_OK, once the whole chain below is open. */
  open(header: Record<string, unknown>): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      assert(!this.openWaiter, 'a chain link opens once');
      this.openWaiter = { resolve, reject };
      if (header.create === false) this.sentLength = undefined;
      this.socket.write(encodeFrame(FrameType.WRITE_OPEN, header));
    });
  }

  /**
   * Writes an encoded DATA frame holding `dataBytes` of chunk data; `onWritten` runs
   * exactly once, when the socket no longer needs the bytes (at once on a failed link).
   * Returns false when the socket is full: wait for drain (onDrain or `drained()`).
   */
  write(frame: Buffer, dataBytes: number, onWritten: () => void): boolean {
    if (this.failure) {
      onWritten();
      return true;
    }
    if (this.sentLength !== undefined) this.sentLength += dataBytes;
    return this.socket.write(frame, () => onWritten());
  }

  /** write(), then waits while the socket is full; rejects with the link's failure. */
  async send(frame: Buffer, dataBytes: number, onWritten: () => void): Promise<void> {
    if (this.failure) {
      onWritten();
      throw this.failure;
    }
    if (!this.write(frame, dataBytes, onWritten)) {
      await new Promise<void>((resolve) => this.drainWaiters.push(resolve));
      if (this.failure) throw this.failure;
    }
  }

  /**
   * Asks every replica from the next one down to make `length` bytes durable; resolves
   * with the length they acknowledged (at least `length`). A replica relays the SYNC
   * frame it received (`relayed`: the writer's seq, forwarded as it is); the client
   * lets the link number its syncs.
   */
  sync(length: number, relayed?: { seq: number; raw: Buffer }): Promise<number> {
    return new Promise((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      const seq = relayed ? relayed.seq : this.nextSeq++;
      this.pending.push({ seq, length, resolve, reject });
      this.socket.write(relayed ? relayed.raw : encodeFrame(FrameType.SYNC, { seq, length }));
    });
  }

  /**
   * Ends a session whose every ack has arrived: CLOSE, and the peer ends its side; if
   * it never does, the idle timeout destroys the socket. Nothing after this is a
   * failure of the write.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.failure) {
      this.socket.destroy();
    } else if (this.opts.pool && this.pending.length === 0) {
      // The peer answers CLOSE_OK once its session is over; the connection is then idle.
      this.keeping = true;
      this.socket.write(encodeFrame(FrameType.CLOSE, { keep: true }));
    } else {
      this.socket.end(encodeFrame(FrameType.CLOSE, {}));
    }
  }

  /** CLOSE_OK: the session is over on the peer; the connection goes back to the pool. */
  private reuse(): void {
    if (!this.keeping || this.parser.buffered > 0) {
      this.socket.destroy();
      return;
    }
    this.keeping = false;
    for (const [event, fn] of this.listeners) this.socket.off(event, fn);
    this.socket.setTimeout(0);
    this.socket.pause(); // nothing is expected while idle; the next user resumes
    this.opts.pool!.put(this.addr, this.socket);
  }

  /** Gives up on the link: it fails (if it had not) and its socket is closed. */
  destroy(): void {
    this.fail(new GfsError('UNAVAILABLE', `write chain to ${this.addr} abandoned`));
  }

  private onFrame(f: Frame): void {
    if (this.closed) {
      if (f.type === FrameType.CLOSE_OK) this.reuse();
      else this.socket.destroy();
      return;
    }
    if (f.type === FrameType.OPEN_OK) {
      this.openWaiter?.resolve();
    } else if (f.type === FrameType.SYNC_ACK) {
      this.onAck(Number(f.header.seq), Number(f.header.length));
    } else if (f.type === FrameType.ERROR) {
      this.fail(frameError(f.header));
    }
  }

  private onAck(seq: number, length: number): void {
    const oldest = this.pending[0];
    if (!oldest || oldest.seq !== seq) {
      return this.fail(new GfsError('PROTOCOL', `unexpected SYNC_ACK ${seq} (waiting for ${oldest ? oldest.seq : 'none'})`));
    }
    if (!(length >= oldest.length)) {
      return this.fail(new GfsError('PROTOCOL', `replicas acked ${length} bytes durable, asked for ${oldest.length}`));
    }
    if (this.sentLength !== undefined && length > this.sentLength) {
      return this.fail(new GfsError('PROTOCOL', `replicas acked ${length} bytes durable, only ${this.sentLength} were sent`));
    }
    this.pending.shift();
    this.ackedLength = Math.max(this.ackedLength, length);
    oldest.resolve(length);
  }

  private fail(e: GfsError): void {
    if (this.closed) {
      this.socket.destroy();
      return;
    }
    if (this.failure) return;
    // Name the node that failed: the one a replica further down reported, else this hop.
    const err = e.detail.failedAddr ? e : new GfsError(e.code, e.message, { cause: e.cause, detail: { ...e.detail, failedAddr: this.addr } });
    this.failure = err;
    this.openWaiter?.reject(err);
    this.openWaiter = undefined;
    for (const s of this.pending.splice(0)) s.reject(err);
    this.wakeDrain();
    this.socket.destroy();
    assert(this.pending.length === 0 && this.drainWaiters.length === 0, 'a failed chain link leaves nothing waiting');
    this.opts.onFailure?.(err);
  }

  private wakeDrain(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }
}
