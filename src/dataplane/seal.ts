/**
 * Seals a replica of a chunk whose write chain failed (HDFS calls this pipeline
 * recovery): the replica stops any write still open on the chunk, checks it holds the
 * acknowledged length durably and moves the chunk to a new version. Replicas that were
 * not sealed keep the old version, so when a failed node comes back the master sees its
 * copy as stale and deletes it instead of counting it.
 *
 * Invariants: the call settles once; it resolves only on SEAL_OK (the replica recorded
 * the new version durably); a replica that does not answer within the timeout counts as
 * not sealed; the connection is closed when it settles.
 */
import net from 'node:net';
import { GfsError } from '../common/errors';
import { limits } from '../common/limits';
import { splitHostPort } from '../common/admin-http';
import { FrameParser, FrameType, encodeFrame, frameError } from './frames';

/** Resolves with the replica's durable length once it recorded the new version. */
export function sealReplica(
  addr: string, handle: number, version: number, length: number, timeoutMs = limits.sealTimeoutMs,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const { host, port } = splitHostPort(addr);
    const socket = net.connect({ host, port });
    const parser = new FrameParser();
    let settled = false;
    const settle = (e: GfsError | undefined, durable = 0) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      if (e) reject(e);
      else resolve(durable);
    };
    socket.setNoDelay(true);
    // A stopped process still accepts connections (the kernel does): only a timeout ends the wait.
    socket.setTimeout(timeoutMs, () => settle(new GfsError('TIMEOUT', `replica ${addr} did not answer a seal within ${timeoutMs} ms`)));
    socket.on('error', (e) => settle(new GfsError('UNAVAILABLE', `replica ${addr}: ${e.message}`)));
    socket.on('close', () => settle(new GfsError('UNAVAILABLE', `replica ${addr} closed the connection before sealing`)));
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const f of parser.push(chunk)) {
          if (f.type === FrameType.SEAL_OK) settle(undefined, Number(f.header.length));
          else if (f.type === FrameType.ERROR) settle(frameError(f.header));
          else settle(new GfsError('PROTOCOL', `unexpected frame ${f.type} from ${addr}`));
        }
      } catch (e) {
        settle(e instanceof GfsError ? e : new GfsError('PROTOCOL', String(e)));
      }
    });
    socket.write(encodeFrame(FrameType.SEAL, { handle, version, length }));
  });
}
