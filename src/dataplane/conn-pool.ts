/**
 * Idle data-plane connections of a client, by chunkserver address, for the next write
 * session to the same node (DATA-PLANE.md, "Writes: a chain", CLOSE with `keep`): a
 * small put then costs no TCP connect and no accept. Only connections whose session
 * ended cleanly (CLOSE answered by CLOSE_OK) come back here.
 *
 * Invariants:
 * - A pooled socket has no listener of its user left, is unref'd (an idle pool never
 *   keeps the process alive), and leaves the pool when it closes or errors.
 * - A socket idle for longer than `idleMs` is closed rather than handed out: the
 *   chunkserver closes connections idle for `dataIdleTimeoutMs`, and idleMs is well under
 *   it, so a socket handed out is not one the server is about to drop.
 * - At most `perAddrMax` idle sockets per address; more are closed.
 */
import type net from 'node:net';
import { limits } from '../common/limits';

interface Idle { socket: net.Socket; sinceMs: number; onGone: () => void }

export class DataConnPool {
  private readonly idle = new Map<string, Idle[]>();
  private closed = false;

  constructor(
    private readonly nowMs: () => number = () => performance.now(),
    private readonly idleMs = limits.dataIdleTimeoutMs / 4,
    private readonly perAddrMax = limits.dataConnsIdlePerNodeMax,
  ) {}

  /** An idle connection to `addr`, ref'd again, or undefined. */
  take(addr: string): net.Socket | undefined {
    const list = this.idle.get(addr);
    while (list && list.length > 0) {
      const entry = list.pop()!;
      entry.socket.off('close', entry.onGone).off('error', entry.onGone);
      if (entry.socket.destroyed || this.nowMs() - entry.sinceMs > this.idleMs) {
        entry.socket.destroy();
        continue;
      }
      entry.socket.ref();
      entry.socket.resume();
      return entry.socket;
    }
    return undefined;
  }

  /** Keeps a connection whose session ended cleanly (its user removed its listeners). */
  put(addr: string, socket: net.Socket): void {
    if (this.closed || socket.destroyed) {
      socket.destroy();
      return;
    }
    let list = this.idle.get(addr);
    if (!list) { list = []; this.idle.set(addr, list); }
    if (list.length >= this.perAddrMax) {
      socket.destroy();
      return;
    }
    const entry: Idle = {
      socket,
      sinceMs: this.nowMs(),
      onGone: () => {
        socket.destroy();
        const at = list.indexOf(entry);
        if (at >= 0) list.splice(at, 1);
      },
    };
    socket.on('close', entry.onGone).on('error', entry.onGone);
    socket.unref();
    list.push(entry);
  }

  /** Idle connections held now. */
  get size(): number {
    let n = 0;
    for (const list of this.idle.values()) n += list.length;
    return n;
  }

  close(): void {
    this.closed = true;
    for (const list of this.idle.values()) for (const e of list.splice(0)) e.socket.destroy();
    this.idle.clear();
  }
}
