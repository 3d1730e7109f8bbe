/**
 * The append side of the data server (DATA-PLANE.md, "Record append"): connections that
 * start with LEASE, APPEND, FOLLOW, CHUNK_STAT, TRUNCATE, or a SEAL without length.
 *
 * Invariants:
 * - APPEND answers go out in the order the APPENDs came on the connection, one each.
 * - A connection holds at most limits.appendInFlightMax unanswered appends: past that
 *   its socket is paused (backpressure), and one append's bytes are bounded.
 * - A follower is sent only committed bytes, each exactly once and in order, read from
 *   the chunk on disk; the socket's drain paces the reads (bounded memory per follower).
 * - A query-SEAL or TRUNCATE ends the chunk's primary and any write session on it before
 *   it touches the chunk.
 */
import type net from 'node:net';
import { GfsError } from '../../common/errors';
import { limits } from '../../common/limits';
import type { Logger } from '../../common/log';
import { FrameType, encodeFrame, encodeFrameHead, errorFrame, type Frame } from '../../dataplane';
import type { ChunkStore } from '../chunk-store';
import type { LeaseTable } from './lease-table';
import type { IncomingRecord, Primary } from './primary';
import { readSidecar } from './rid-sidecar';

export interface AppendServerHost {
  readonly leases: LeaseTable;
  readonly nodeId: string;
  readonly store: ChunkStore;
  readonly log: Logger;
  /** Ends the chain-write session open on the chunk here, if any (a seal supersedes it). */
  endWriteSession(handle: number): Promise<void>;
  onChunkChanged(handle: number): void;
}

function int(h: Record<string, unknown>, key: string, min = 0): number {
  const n = h[key];
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min) throw new GfsError('INVALID_ARGUMENT', `frame field ${key} must be an integer ≥ ${min}`);
  return n;
}

/** One-frame requests: LEASE, CHUNK_STAT, TRUNCATE, query-SEAL; answered, then the connection ends. */
export async function answerControl(host: AppendServerHost, frame: Frame): Promise<Buffer> {
  const h = frame.header;
  switch (frame.type) {
    case FrameType.LEASE: {
      const chain = Array.isArray(h.chain) ? h.chain.map(String) : [];
      await host.leases.grant(int(h, 'handle', 1), int(h, 'version', 1), chain, int(h, 'durationMs', 1));
      return encodeFrame(FrameType.LEASE_OK, { node: host.nodeId });
    }
    case FrameType.CHUNK_STAT: return encodeFrame(FrameType.CHUNK_STAT_OK, chunkStat(host, int(h, 'handle', 1)));
    case FrameType.TRUNCATE: {
      const { length, writers } = await truncate(host, h);
      return encodeFrame(FrameType.TRUNCATE_OK, { node: host.nodeId, length }, Buffer.from(JSON.stringify({ writers })));
    }
    case FrameType.SEAL: {
      const handle = int(h, 'handle', 1);
      const length = await querySeal(host, handle, int(h, 'version', 1));
      return encodeFrame(FrameType.SEAL_OK, { node: host.nodeId, length });
    }
    default: throw new GfsError('PROTOCOL', `frame type ${frame.type} is not a request`);
  }
}

/**
 * CHUNK_STAT: `committed` is the primary's (every byte of it durable on every replica of
 * the chain) only when `primary` is true. Without a primary here (a secondary, or a seal
 * is taking the chunk) it is the local durable length, which for an open chunk may hold
 * bytes no replica acknowledged and a seal will cut: the master trusts it only from the
 * primary.
 */
function chunkStat(host: AppendServerHost, handle: number): Record<string, unknown> {
  const chunk = host.store.get(handle);
  const p = host.leases.get(handle);
  if (!chunk) throw new GfsError('NO_SUCH_CHUNK', `no chunk ${handle} here`);
  return {
    node: host.nodeId, version: chunk.version, durable: chunk.length,
    committed: p ? p.committed : chunk.length, primary: p !== undefined, ended: p ? p.ended : false, leaseValid: p ? p.leaseValid : false,
  };
}

/** Ends whatever writes the chunk here, then waits for its writer to be closed. */
async function takeChunk(host: AppendServerHost, handle: number): Promise<void> {
  await host.leases.stop(handle);
  await host.endWriteSession(handle);
  await host.store.whenIdle(handle, limits.sealTimeoutMs / 2);
}

/** SEAL without length (the master sealing an open append chunk, step 1): the durable length after recording `version`. */
async function querySeal(host: AppendServerHost, handle: number, version: number): Promise<number> {
  await takeChunk(host, handle);
  const chunk = host.store.get(handle);
  if (!chunk) throw new GfsError('NO_SUCH_CHUNK', `chunk ${handle} is not here`);
  await host.store.setVersion(handle, version);
  host.log.info({ handle, version, durable: chunk.length }, 'append chunk sealed at a new version');
  host.onChunkChanged(handle);
  return chunk.length;
}

/** TRUNCATE (seal step 2): cut to `length` and report each writer's last `perWriter` records below it. */
async function truncate(host: AppendServerHost, h: Record<string, unknown>): Promise<{ length: number; writers: WriterRecords[] }> {
  const handle = int(h, 'handle', 1);
  const version = int(h, 'version', 1);
  const length = int(h, 'length');
  const perWriter = Math.min(int(h, 'perWriter'), limits.appendDedupPerWriter);
  await takeChunk(host, handle);
  await host.store.truncate(handle, version, length);
  host.onChunkChanged(handle);
  const byWriter = new Map<string, { seq: number; offset: number }[]>();
  for (const e of await readSidecar(host.store.sidecarPath(handle))) {
    if (e.writer === '' || e.offset + e.length > length) continue;
    const list = byWriter.get(e.writer) ?? [];
    list.push({ seq: e.seq, offset: e.offset });
    if (list.length > perWriter) list.shift();
    byWriter.set(e.writer, list);
  }
  // The answer must fit in one frame: with very many writers, each keeps fewer (its newest).
  let keep = perWriter;
  let writers = writerRecords(byWriter, keep);
  while (keep > 1 && JSON.stringify({ writers }).length > limits.frameBytesMax - limits.frameHeaderBytesMax) {
    keep = Math.floor(keep / 2);
    writers = writerRecords(byWriter, keep);
  }
  host.log.info({ handle, version, length, writers: writers.length, perWriter: keep }, 'append chunk truncated');
  return { length, writers };
}

interface WriterRecords { writer: string; seqs: number[]; offsets: number[] }

function writerRecords(byWriter: Map<string, { seq: number; offset: number }[]>, keep: number): WriterRecords[] {
  return [...byWriter].filter(([, l]) => l.length > 0).map(([writer, all]) => {
    const l = all.slice(-keep).sort((a, b) => a.seq - b.seq);
    return { writer, seqs: l.map((x) => x.seq), offsets: l.map((x) => x.offset) };
  });
}

/** A connection carrying one LEASE, CHUNK_STAT, TRUNCATE or query-SEAL. */
export class ControlSession {
  private done = false;

  constructor(private readonly host: AppendServerHost, private readonly socket: net.Socket) {}

  onFrame(frame: Frame): void {
    if (this.done) {
      this.socket.end(errorFrame(new GfsError('PROTOCOL', 'a control connection carries one request')));
      return;
    }
    this.done = true;
    answerControl(this.host, frame).then(
      (answer) => this.socket.end(answer),
      (e: unknown) => {
        this.host.log.debug({ type: frame.type, err: (e as Error).message }, 'append control request failed');
        this.socket.end(errorFrame(e));
      },
    );
  }
}

// ---------------------------------------------------------------- appends

interface Assembling { id: number; handle: number; version: number; meta: [string, number, number][]; expectedOffset?: number; buf: Buffer; have: number }

/** A client's append connection: APPEND (+ APPEND_MORE) in, APPEND_OK / APPEND_FAIL out, in order. */
export class AppendSession {
  private assembling: Assembling | undefined;
  private answers: Promise<void> = Promise.resolve();
  private unanswered = 0;
  private unansweredBytes = 0;

  constructor(private readonly host: AppendServerHost, private readonly socket: net.Socket) {
    // A writer may pause between appends for long: keep its connection (TCP keepalive finds a dead peer).
    socket.setTimeout(0);
    socket.setKeepAlive(true, limits.dataIdleTimeoutMs);
  }

  onFrame(frame: Frame): void {
    try {
      if (frame.type === FrameType.APPEND) this.start(frame);
      else if (frame.type === FrameType.APPEND_MORE) this.more(frame);
      else throw new GfsError('PROTOCOL', `unexpected frame type ${frame.type} in an append connection`);
    } catch (e) {
      this.socket.end(errorFrame(e));
    }
  }

  private start(frame: Frame): void {
    if (this.assembling) throw new GfsError('PROTOCOL', 'APPEND before the previous append was complete');
    const h = frame.header;
    const meta = Array.isArray(h.records) ? (h.records as unknown[]) : [];
    const total = int(h, 'total');
    let sum = 0;
    const parsed: [string, number, number][] = meta.map((m) => {
      if (!Array.isArray(m) || typeof m[0] !== 'string' || !Number.isSafeInteger(m[1]) || !Number.isSafeInteger(m[2]) || m[2] < 0 || m[1] < 0) {
        throw new GfsError('PROTOCOL', 'APPEND records must be [writer, seq, bytes]');
      }
      sum += m[2] as number;
      return [m[0], m[1] as number, m[2] as number];
    });
    if (parsed.length === 0 || sum !== total) throw new GfsError('PROTOCOL', 'APPEND records do not add up to its total');
    if (total > Math.max(limits.recordBytesMax, limits.appendBatchBytesMax)) throw new GfsError('TOO_LARGE', `an append of ${total} bytes is too large`);
    const a: Assembling = {
      id: int(h, 'id'), handle: int(h, 'handle'), version: int(h, 'version'), meta: parsed,
      expectedOffset: h.expectedOffset === undefined ? undefined : int(h, 'expectedOffset'), buf: Buffer.allocUnsafe(total), have: 0,
    };
    this.assembling = a;
    this.take(frame.payload);
  }

  private more(frame: Frame): void {
    if (!this.assembling || Number(frame.header.id) !== this.assembling.id) throw new GfsError('PROTOCOL', 'APPEND_MORE for no append in progress');
    this.take(frame.payload);
  }

  private take(bytes: Buffer): void {
    const a = this.assembling!;
    if (a.have + bytes.length > a.buf.length) throw new GfsError('PROTOCOL', `append ${a.id} has more bytes than its total`);
    bytes.copy(a.buf, a.have);
    a.have += bytes.length;
    if (a.have < a.buf.length) return;
    this.assembling = undefined;
    let at = 0;
    const records: IncomingRecord[] = a.meta.map(([writer, seq, n]) => {
      const data = a.buf.subarray(at, at + n);
      at += n;
      return { writer, seq, data };
    });
    const primary = this.host.leases.get(a.handle);
    const result = primary
      ? primary.append(a.version, records, a.expectedOffset)
      : Promise.reject(new GfsError('NOT_PRIMARY', `this node holds no lease on chunk ${a.handle}; ask the master`));
    result.catch(() => undefined); // answered in order below
    this.unanswered++;
    this.unansweredBytes += a.buf.length;
    if (this.full()) this.socket.pause();
    const held = a.buf.length;
    this.answers = this.answers.then(() => result.then(
      (r) => this.answer(held, encodeFrame(FrameType.APPEND_OK, { id: a.id, offsets: r.offsets, dup: r.dup })),
      (e: unknown) => this.answer(held, failFrame(a.id, e, primary)),
    ));
  }

  /** Appends (and bytes) held for this connection: past either bound, stop reading it. */
  private full(): boolean {
    return this.unanswered >= limits.appendInFlightMax || this.unansweredBytes > limits.recordBytesMax + limits.appendBatchBytesMax;
  }

  private answer(bytes: number, frame: Buffer): void {
    this.unanswered--;
    this.unansweredBytes -= bytes;
    if (this.socket.destroyed) return;
    this.socket.write(frame);
    if (!this.full()) this.socket.resume();
  }
}

function failFrame(id: number, e: unknown, primary: Primary | undefined): Buffer {
  const err = e instanceof GfsError ? e : new GfsError('INTERNAL', String(e));
  return encodeFrame(FrameType.APPEND_FAIL, { id, code: err.code, message: err.message, length: primary ? primary.orderedEnd : 0 });
}

// ---------------------------------------------------------------- follow

/** FOLLOW: committed bytes from `from` as they commit, then FOLLOW_END. */
export class FollowSession {
  private started = false;
  private closed = false;
  private readonly gone: Promise<void>;

  constructor(private readonly host: AppendServerHost, private readonly socket: net.Socket) {
    this.gone = new Promise((resolve) => socket.once('close', () => { this.closed = true; resolve(); }));
  }

  onFrame(frame: Frame): void {
    if (this.started || frame.type !== FrameType.FOLLOW) {
      this.socket.end(errorFrame(new GfsError('PROTOCOL', 'a follow connection carries one FOLLOW')));
      return;
    }
    this.started = true;
    void this.run(frame.header).catch((e) => { if (!this.socket.destroyed) this.socket.end(errorFrame(e)); });
  }

  private async run(h: Record<string, unknown>): Promise<void> {
    const handle = int(h, 'handle', 1);
    const version = int(h, 'version', 1);
    let pos = int(h, 'from');
    const p = this.host.leases.get(handle);
    if (!p) throw new GfsError('NOT_PRIMARY', `this node is not the primary of chunk ${handle}; ask the master`);
    if (p.version !== version) throw new GfsError('STALE_VERSION', `chunk ${handle} is at version ${p.version} here, not ${version}`);
    if (pos > p.committed) throw new GfsError('INVALID_ARGUMENT', `chunk ${handle} has ${p.committed} committed bytes, cannot follow from ${pos}`);
    // The socket has no idle timeout while following: an idle follower is one quiet connection.
    this.socket.setTimeout(0);
    this.socket.setKeepAlive(true, limits.dataIdleTimeoutMs);
    while (!this.closed) {
      const changed = p.changed();
      const final = p.final;
      const committed = p.committed;
      if (pos < committed) {
        for await (const piece of this.host.store.read(handle, version, pos, committed - pos)) {
          if (this.closed) return;
          this.socket.write(encodeFrameHead(FrameType.FOLLOW_DATA, { offset: pos }, piece.length));
          const ok = this.socket.write(piece);
          pos += piece.length;
          if (!ok) await drained(this.socket);
        }
        continue;
      }
      if (final) {
        this.socket.end(encodeFrame(FrameType.FOLLOW_END, { length: committed }));
        return;
      }
      await Promise.race([changed, this.gone]);
    }
  }
}

function drained(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = () => { socket.off('drain', done); socket.off('close', done); resolve(); };
    socket.on('drain', done);
    socket.on('close', done);
  });
}
