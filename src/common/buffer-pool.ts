/**
 * A free list of equal-sized buffers for data-plane frames. Allocating a fresh 1 MiB
 * buffer per frame made the garbage collector the largest CPU cost of a chunkserver
 * (each one is an external backing store that only a full GC frees); recycling them
 * takes that away.
 *
 * Invariant: a buffer is handed out again only after every holder released it; a
 * frame's holders count their references (see Frame.retain/release) and the last
 * release returns it here.
 */
import assert from 'node:assert/strict';

export class BufferPool {
  private readonly free: Buffer[] = [];
  private readonly out = new WeakSet<Buffer>();

  constructor(readonly bufferBytes: number, private readonly pooledMax: number) {}

  get(): Buffer {
    const buf = this.free.pop() ?? Buffer.allocUnsafeSlow(this.bufferBytes);
    this.out.add(buf);
    return buf;
  }

  put(buf: Buffer): void {
    assert(this.out.has(buf), 'a pooled buffer was released twice or was never handed out');
    this.out.delete(buf);
    if (this.free.length < this.pooledMax) this.free.push(buf);
  }

  get pooled(): number { return this.free.length; }
}
