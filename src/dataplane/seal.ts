/**
 * One-request calls to a chunkserver's data port: SEAL (HDFS calls it pipeline recovery:
 * a writer ends a chunk whose chain failed at its acknowledged length), the master's
 * query-SEAL and TRUNCATE that seal an open append chunk, LEASE (grant a primary lease)
 * and CHUNK_STAT.
 *
 * A sealed replica moves to the new version: replicas that were not sealed keep the old
 * one, so when a failed node comes back the master sees its copy as stale and deletes it.
 *
 * Invariants: each call settles once, on the one answer frame it expects (or ERROR, or
 * the timeout: a stopped process still accepts connections, only a timeout ends the
 * wait); the connection is closed when it settles.
 */
import net from 'node:net';
import { GfsError } from '../common/errors';
import { limits } from '../common/limits';
import { splitHostPort } from '../common/admin-http';
import { FrameParser, FrameType, encodeFrame, frameError } from './frames';

/** Sends one frame on a new connection and resolves with the header (and payload) of the `answer` frame. */
export function requestOnce(addr: string, type: number, header: object, answer: number, timeoutMs: number,
  what: string): Promise<Record<string, unknown> & { payload?: Buffer }> {
  return new Promise((resolve, reject) => {
    let host: string;
    let port: number;
    try {
      ({ host, port } = splitHostPort(addr));
    } catch (e) {
      reject(new GfsError('INVALID_ARGUMENT', (e as Error).message));
      return;
    }
    const socket = net.connect({ host, port });
    const parser = new FrameParser();
    let settled = false;
    const settle = (e: GfsError | undefined, h: Record<string, unknown> & { payload?: Buffer } = {}) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      if (e) reject(e);
      else resolve(h);
    };
    socket.setNoDelay(true);
    socket.setTimeout(timeoutMs, () => settle(new GfsError('TIMEOUT', `replica ${addr} did not answer a ${what} within ${timeoutMs} ms`)));
    socket.on('error', (e) => settle(new GfsError('UNAVAILABLE', `replica ${addr}: ${e.message}`)));
    socket.on('close', () => settle(new GfsError('UNAVAILABLE', `replica ${addr} closed the connection before answering a ${what}`)));
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const f of parser.push(chunk)) {
          if (f.type === answer) settle(undefined, { ...f.header, payload: Buffer.from(f.payload) });
          else if (f.type === FrameType.ERROR) settle(frameError(f.header));
          else settle(new GfsError('PROTOCOL', `unexpected frame ${f.type} from ${addr}`));
        }
      } catch (e) {
        settle(e instanceof GfsError ? e : new GfsError('PROTOCOL', String(e)));
      }
    });
    socket.write(encodeFrame(type, header));
  });
}

/** Resolves with the replica's durable length once it recorded the new version. */
export async function sealReplica(
  addr: string, handle: number, version: number, length: number, timeoutMs = limits.sealTimeoutMs,
): Promise<number> {
  const h = await requestOnce(addr, FrameType.SEAL, { handle, version, length }, FrameType.SEAL_OK, timeoutMs, 'seal');
  return Number(h.length);
}

/** master seal step 1: resolves with the replica's durable length after it recorded `version`. */
export async function querySealReplica(addr: string, handle: number, version: number, timeoutMs = limits.sealTimeoutMs): Promise<number> {
  const h = await requestOnce(addr, FrameType.SEAL, { handle, version }, FrameType.SEAL_OK, timeoutMs, 'seal');
  return Number(h.length);
}

/** master → primary: grant the lease; resolves on LEASE_OK (the primary created its copy and opened its chain). */
export async function grantLease(addr: string, req: { handle: number; version: number; chain: string[]; durationMs: number },
  timeoutMs = limits.sealTimeoutMs): Promise<void> {
  await requestOnce(addr, FrameType.LEASE, req, FrameType.LEASE_OK, timeoutMs, 'lease');
}

/** master seal step 2: cut to `length` (never extends: a shorter replica answers ERROR) and report each writer's last `perWriter` records. */
export async function truncateReplica(addr: string, handle: number, version: number, length: number, perWriter: number,
  timeoutMs = limits.sealTimeoutMs): Promise<{ length: number; writers: { writer: string; seqs: number[]; offsets: number[] }[] }> {
  const h = await requestOnce(addr, FrameType.TRUNCATE, { handle, version, length, perWriter }, FrameType.TRUNCATE_OK, timeoutMs, 'truncate');
  // The writers list can outgrow a frame header: it travels as the payload's JSON.
  let body: { writers?: unknown };
  try {
    body = h.payload && h.payload.length > 0 ? JSON.parse(h.payload.toString('utf8')) : {};
  } catch {
    throw new GfsError('PROTOCOL', `TRUNCATE_OK from ${addr} does not carry JSON`);
  }
  const writers = Array.isArray(body.writers) ? (body.writers as { writer: unknown; seqs: unknown; offsets: unknown }[]) : [];
  return {
    length: Number(h.length),
    writers: writers.map((w) => ({
      writer: String(w.writer),
      seqs: Array.isArray(w.seqs) ? w.seqs.map(Number) : [],
      offsets: Array.isArray(w.offsets) ? w.offsets.map(Number) : [],
    })),
  };
}

export async function chunkStat(addr: string, handle: number, timeoutMs = limits.appendStatTimeoutMs): Promise<{
  node: string; version: number; durable: number; committed: number; primary: boolean; ended: boolean; leaseValid: boolean }> {
  const h = await requestOnce(addr, FrameType.CHUNK_STAT, { handle }, FrameType.CHUNK_STAT_OK, timeoutMs, 'chunk stat');
  return {
    node: String(h.node), version: Number(h.version), durable: Number(h.durable), committed: Number(h.committed),
    primary: h.primary === true, ended: h.ended === true, leaseValid: h.leaseValid === true,
  };
}
