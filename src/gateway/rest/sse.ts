/**
 * Server-sent events for a followed log: one event per line (record) of the log,
 * `id:` = the file offset just after that line, so a client that reconnects with
 * `Last-Event-ID` resumes exactly after the last line it saw: no gap, no duplicate.
 *
 * Bytes arrive in pieces that need not end at a newline; the framer keeps the partial
 * line until its newline arrives, and flushes it as an event of its own once it passes
 * `lineBytesMax` (bounded memory whatever the records are).
 *
 * SSE carries text: a line's trailing "\r" is dropped by every SSE parser, and bytes
 * that are not UTF-8 arrive as U+FFFD. Clients that need exact bytes follow without
 * `Accept: text/event-stream` (chunked raw bytes).
 *
 * Invariant: the id of every event is exactly `from` plus the bytes of every line
 * framed so far (the ids are file offsets).
 */
import assert from 'node:assert';

export class SseFramer {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  /** `offset` is the file offset of the first byte that will be pushed. */
  constructor(private offset: number, private readonly lineBytesMax: number) {
    assert.ok(Number.isSafeInteger(offset) && offset >= 0 && lineBytesMax > 0);
  }

  /** The events (wire text) completed by `bytes`, which start at `at` (must continue the stream). */
  push(bytes: Buffer, at: number): string {
    assert.equal(at, this.offset + this.pendingBytes, 'follow bytes must be contiguous');
    let out = '';
    let from = 0;
    for (;;) {
      const nl = bytes.indexOf(0x0a, from);
      if (nl === -1) break;
      out += this.event(bytes.subarray(from, nl + 1));
      from = nl + 1;
    }
    if (from < bytes.length) {
      this.pending.push(bytes.subarray(from));
      this.pendingBytes += bytes.length - from;
      if (this.pendingBytes >= this.lineBytesMax) out += this.event(Buffer.alloc(0));
    }
    return out;
  }

  /** The partial line, if any, as a last event (the log ended without a final newline). */
  flush(): string {
    return this.pendingBytes > 0 ? this.event(Buffer.alloc(0)) : '';
  }

  /** The next offset a resumed follow starts at. */
  get nextOffset(): number { return this.offset; }

  private event(tail: Buffer): string {
    const line = Buffer.concat([...this.pending, tail]);
    this.pending = [];
    this.pendingBytes = 0;
    this.offset += line.length;
    const text = line.toString('utf8').replace(/\r?\n$/, '');
    // Lone CRs would end an SSE line early: split there, which SSE shows as "\n".
    const data = text.split(/\r\n|\r|\n/).map((l) => `data: ${l}\n`).join('');
    return `id: ${this.offset}\n${data}\n`;
  }
}
