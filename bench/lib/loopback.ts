/** TCP on 127.0.0.1 with explicit backpressure: the plumbing the baselines share. */
import { once } from 'node:events';
import { connect, type AddressInfo, type NetConnectOpts, type Server, type Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { MiB } from './units';

/**
 * Node's default socket high-water mark (16 KiB) is smaller than one 64 KiB read, so
 * every forwarded read would pause the source; 1 MiB lets a few reads queue while the
 * kernel drains, and still bounds memory.
 */
export const socketHighWaterBytes = 1 * MiB;

export async function listenLoopback(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** allowHalfOpen: after we end our side, the peer still answers on its side (the ack). */
export async function connectLoopback(port: number): Promise<Socket> {
  // Node passes writableHighWaterMark on to the Duplex constructor; @types/node does
  // not list it, hence the widened type.
  const options: NetConnectOpts & { writableHighWaterMark: number } = {
    host: '127.0.0.1', port, allowHalfOpen: true, writableHighWaterMark: socketHighWaterBytes,
  };
  const socket = connect(options);
  await once(socket, 'connect');
  return socket;
}

/**
 * Backpressure for one source feeding several targets: if any target's buffer is
 * full, stop reading until every full one has drained.
 */
export function pauseUntilDrained(source: Readable, targets: Writable[]): void {
  const full = targets.filter((target) => target.writableNeedDrain);
  if (full.length === 0) return;
  source.pause();
  Promise.all(full.map((target) => once(target, 'drain'))).then(
    () => source.resume(),
    (error: Error) => source.destroy(error),
  );
}

/** Everything a socket sends until it ends (used for the small acks). */
export function readToEnd(socket: Socket): Promise<Buffer> {
  const pieces: Buffer[] = [];
  socket.on('data', (piece: Buffer) => pieces.push(piece));
  return once(socket, 'end').then(() => Buffer.concat(pieces));
}

/** A promise that only ever rejects: with the first 'error' any of the emitters raises. */
export function firstError(emitters: NodeJS.EventEmitter[]): Promise<never> {
  return new Promise((_resolve, reject) => {
    for (const emitter of emitters) emitter.once('error', reject);
  });
}

/** Ends our side of the socket with `last` and resolves once it is flushed to the kernel. */
export function endWith(socket: Socket, last: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.end(last, () => resolve());
  });
}
