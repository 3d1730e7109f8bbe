/** A Writable that counts and drops what it receives: the cheapest possible reader. */
import { Writable } from 'node:stream';

export class DiscardSink extends Writable {
  receivedBytes = 0;

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.receivedBytes += chunk.length;
    callback();
  }

  override _writev(chunks: { chunk: Buffer }[], callback: (error?: Error | null) => void): void {
    for (const { chunk } of chunks) this.receivedBytes += chunk.length;
    callback();
  }
}
