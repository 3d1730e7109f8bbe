/**
 * Reads byte ranges of one chunk replica over the data plane. The socket is consumed
 * as an async iterator, so TCP flow control is the backpressure: when the caller stops
 * pulling, the socket stops being read and the chunkserver's writes wait for drain.
 */
import net from 'node:net';
import { GfsError } from '../common/errors';
import { limits } from '../common/limits';
import { splitHostPort } from '../common/admin-http';
import { FrameParser, FrameType, encodeFrame, frameError } from '../common/frames';

export async function* readReplica(
  addr: string, handle: number, version: number, offset: number, length: number,
): AsyncGenerator<Buffer> {
  const { host, port } = splitHostPort(addr);
  const socket = net.connect({ host, port });
  socket.setNoDelay(true);
  socket.setTimeout(limits.dataIdleTimeoutMs, () => socket.destroy(new Error('read timed out')));
  const parser = new FrameParser();
  let received = 0;
  try {
    socket.write(encodeFrame(FrameType.READ, { handle, version, offset, length }));
    for await (const chunk of socket) {
      for (const f of parser.push(chunk as Buffer)) {
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
    }
    throw new GfsError('UNAVAILABLE', `replica ${addr} closed the connection after ${received} of ${length} bytes`);
  } catch (e) {
    if (e instanceof GfsError) throw e;
    throw new GfsError('UNAVAILABLE', `replica ${addr}: ${(e as Error).message}`, { cause: e });
  } finally {
    socket.destroy();
  }
}
