/**
 * Reads byte ranges of one chunk replica over the data plane.
 *
 * The socket reads into one reused buffer (`onread`) instead of a fresh 64 KiB buffer
 * per read: the frame parser copies each frame out of it anyway, and a get or a clone
 * moving hundreds of MiB otherwise spends much of its CPU collecting those buffers.
 * Backpressure stays TCP's: with a few frames waiting for the caller the socket stops
 * reading, and the chunkserver's writes wait for drain.
 *
 * Invariants:
 * - Yields only READ_DATA payloads (bytes the replica verified), in order, never more
 *   than `length` in all; it returns only on READ_END after exactly `length` bytes and
 *   throws otherwise (an ERROR, a short or long answer, a hang-up).
 * - The socket is closed when the generator ends, however it ends (also when the
 *   consumer stops early).
 */
import net from 'node:net';
import { GfsError } from '../common/errors';
import { limits } from '../common/limits';
import { splitHostPort } from '../common/admin-http';
import { FrameParser, FrameType, encodeFrame, frameError, type Frame } from './frames';

/** Socket read buffer; frames are up to 1 MiB, so a few reads make one. */
const READ_BUFFER_BYTES = 256 * 1024;
/** Frames parsed and not yet taken by the caller before the socket stops reading. */
const QUEUED_FRAMES_MAX = 4;

export interface ReadReplicaOptions {
  /** A background copy (re-replication): the source paces it while clients are served. */
  background?: boolean;
  /** ...unless it is the copy of a chunk down to one healthy replica. */
  urgent?: boolean;
}

export async function* readReplica(
  addr: string, handle: number, version: number, offset: number, length: number, opts: ReadReplicaOptions = {},
): AsyncGenerator<Buffer> {
  const { host, port } = splitHostPort(addr);
  const parser = new FrameParser();
  const frames: Frame[] = [];
  let failure: GfsError | undefined;
  let ended = false;
  let paused = false;
  let wake: (() => void) | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const socket = net.connect({
    host, port,
    onread: {
      buffer: Buffer.allocUnsafe(READ_BUFFER_BYTES),
      callback: (n: number, buf: Buffer) => {
        try {
          for (const f of parser.push(buf.subarray(0, n))) frames.push(f);
        } catch (e) {
          failure ??= e instanceof GfsError ? e : new GfsError('PROTOCOL', String(e));
        }
        notify();
        if (frames.length >= QUEUED_FRAMES_MAX) {
          paused = true;
          return false; // stops reading until the caller catches up
        }
        return true;
      },
    },
  });
  socket.setNoDelay(true);
  socket.setTimeout(limits.dataIdleTimeoutMs, () => socket.destroy(new Error('read timed out')));
  socket.on('error', (e) => { failure ??= new GfsError('UNAVAILABLE', `replica ${addr}: ${e.message}`, { cause: e }); notify(); });
  socket.on('end', () => { ended = true; notify(); });
  socket.on('close', () => { ended = true; notify(); });
  let received = 0;
  try {
    const header = opts.background ? { handle, version, offset, length, background: true, urgent: opts.urgent === true } : { handle, version, offset, length };
    socket.write(encodeFrame(FrameType.READ, header));
    for (;;) {
      const f = frames.shift();
      if (!f) {
        if (failure) throw failure;
        if (ended) throw new GfsError('UNAVAILABLE', `replica ${addr} closed the connection after ${received} of ${length} bytes`);
        await new Promise<void>((resolve) => { wake = resolve; });
        continue;
      }
      if (paused && frames.length < QUEUED_FRAMES_MAX / 2) {
        paused = false;
        socket.resume();
      }
      if (f.type === FrameType.READ_DATA) {
        received += f.payload.length;
        if (received > length) throw new GfsError('PROTOCOL', `replica ${addr} sent more than asked`);
        yield f.payload;
      } else if (f.type === FrameType.READ_END) {
        if (received !== length) throw new GfsError('PROTOCOL', `replica ${addr} ended after ${received} of ${length} bytes`);
        return;
      } else if (f.type === FrameType.ERROR) {
        throw frameError(f.header);
      } else {
        throw new GfsError('PROTOCOL', `unexpected frame ${f.type} from ${addr}`);
      }
    }
  } finally {
    socket.destroy();
  }
}
