/**
 * FOLLOW (LOG-STREAMS.md, "Follow (push)"): committed bytes of an open append chunk,
 * pushed by its primary as they commit, then the chunk's final length when it ends.
 *
 * Invariants: pieces come in offset order, without gap or overlap, starting at `from`;
 * `{end}` is the last item; the socket is read only while fewer than a few pieces wait
 * for the consumer (backpressure reaches the primary through TCP); the connection is
 * closed when iteration stops for any reason.
 */
import net from 'node:net';
import { GfsError } from '../common/errors';
import { limits } from '../common/limits';
import { splitHostPort } from '../common/admin-http';
import { FrameParser, FrameType, encodeFrame, frameError } from './frames';

const FOLLOW_QUEUE_MAX = limits.followQueueMax;

export type FollowItem = { offset: number; data: Buffer } | { end: number };

/**
 * Committed bytes of the open chunk from `from`; ends with {end} when the chunk ends.
 * Throws UNAVAILABLE/NOT_PRIMARY if the primary is gone (the caller then asks the master).
 */
export async function* followChunk(addr: string, handle: number, version: number, from: number,
  signal?: AbortSignal): AsyncIterable<FollowItem> {
  const { host, port } = splitHostPort(addr);
  const socket = net.connect({ host, port });
  socket.setNoDelay(true);
  const parser = new FrameParser();
  const queue: FollowItem[] = [];
  let failure: GfsError | undefined;
  let ended = false;
  let wake: (() => void) | undefined;
  const poke = () => { const w = wake; wake = undefined; w?.(); };
  const fail = (e: GfsError) => { failure ??= e; poke(); };
  socket.on('error', (e) => fail(new GfsError('UNAVAILABLE', `primary ${addr}: ${e.message}`)));
  socket.on('close', () => fail(new GfsError('UNAVAILABLE', `primary ${addr} closed the follow connection`)));
  let aborted = signal?.aborted === true;
  const onAbort = () => { aborted = true; poke(); };
  signal?.addEventListener('abort', onAbort);
  let expect = from;
  socket.on('data', (bytes: Buffer) => {
    try {
      for (const f of parser.push(bytes)) {
        if (f.type === FrameType.FOLLOW_DATA) {
          const offset = Number(f.header.offset);
          if (offset !== expect) throw new GfsError('PROTOCOL', `FOLLOW_DATA at ${offset}, expected ${expect}`);
          expect += f.payload.length;
          queue.push({ offset, data: f.payload });
        } else if (f.type === FrameType.FOLLOW_END) {
          queue.push({ end: Number(f.header.length) });
          ended = true;
        } else if (f.type === FrameType.ERROR) {
          throw frameError(f.header);
        } else {
          throw new GfsError('PROTOCOL', `unexpected frame ${f.type} in a follow`);
        }
      }
    } catch (e) {
      fail(e instanceof GfsError ? e : new GfsError('PROTOCOL', String(e)));
    }
    if (queue.length >= FOLLOW_QUEUE_MAX) socket.pause();
    poke();
  });
  socket.write(encodeFrame(FrameType.FOLLOW, { handle, version, from }));
  try {
    for (;;) {
      if (aborted) return;
      const item = queue.shift();
      if (item) {
        if (queue.length < FOLLOW_QUEUE_MAX && !ended) socket.resume();
        yield item;
        if ('end' in item) return;
        continue;
      }
      if (failure) throw failure;
      await new Promise<void>((resolve) => { wake = resolve; });
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    socket.destroy();
  }
}
