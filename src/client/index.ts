/**
 * The gfs client library: metadata calls with leader discovery and retries, streaming
 * put/get with bounded memory, replica failover on error or corruption, and the admin
 * surface (`client.admin`: status, nodes, fsck, gc, df, balance, decommission).
 *
 * This file is the library's whole public surface: everything outside src/client
 * imports from here, never a module beside it.
 */
import { Readable, Writable } from 'node:stream';
import { once } from 'node:events';
import { FileState, type FileInfo, type ListResponse, type NodesResponse, type StatusResponse, type TrashResponse } from '../../gen/gfs';
import { limits } from '../common/limits';
import { GfsError } from '../common/errors';
import { initChecksums } from '../common/checksum';
import { normalizeFilePath, normalizePath } from '../common/paths';
import { silentLogger, type Logger } from '../common/log';
import { randomId } from '../common/ids';
import { MasterConn } from './master-conn';
import { FileWriter, type PutOptions } from './file-writer';
import { readFileRange } from './file-reader';
import { AdminClient } from './admin';
import { Appender, type AppendAck, type AppenderOptions } from './log-appender';
import { followLog, type FollowOptions, type FollowPiece } from './log-follower';
import { followStream } from './stream-follower';
import { systemClock } from '../common/clock';

export type { FileInfo, PutOptions };
export { readLocalFile } from './local-file';
export { GfsError };
export { AdminClient };
export { Appender };
export type { AppendAck, AppenderOptions, FollowOptions, FollowPiece };

export interface RecordAppendOptions {
  /** Create the log if it is missing. */
  create?: boolean;
  /** File offset the record must land at; otherwise PRECONDITION_FAILED and nothing is stored. */
  expectedOffset?: number;
  /**
   * The record's identity, for a caller that retries across restarts: the same id is
   * stored once. Without it the client's own writer id and next sequence number are used.
   */
  recordId?: { writer: string; seq: number };
}
export type {
  AuthTableResponse, CreateTokenResponse, ListNamespacesResponse, ListTokensResponse, NamespaceInfo,
  BalanceResponse, DecommissionResponse, DfResponse, EventsResponse, FsckResponse, GcResponse, NodesResponse, StatusResponse,
} from './admin';
/**
 * The raw metadata RPCs, with the same leader discovery and retries: for tools that
 * time or script single master calls (benchmarks, fault tests). Applications use
 * GfsClient.
 */
export { MasterConn, type MasterConnOptions } from './master-conn';

export interface ConcatOptions {
  /** Replace a file at the target (otherwise ALREADY_EXISTS). */
  force?: boolean;
  /** Only if the file now at the target has this inode (PRECONDITION_FAILED otherwise). */
  replacesInode?: number;
  contentType?: string;
  metadata?: Record<string, string>;
  replication?: number;
}

export interface ClientOptions {
  masters: string[];
  log?: Logger;
  /** Caps the retries of one master call; by default only `deadlineMs` does. */
  retries?: number;
  /** Timeout of one master call attempt. */
  timeoutMs?: number;
  /** Time for one master call, following the leader and retrying (limits.clientCallDeadlineMs). */
  deadlineMs?: number;
  /** Bearer token for every master call (gfsctl --token, GFS_TOKEN). */
  token?: string;
}

export interface ReadOptions {
  start?: number;
  /** Exclusive end offset. */
  end?: number;
  onProgress?: (bytes: number) => void;
}

export class GfsClient {
  private readonly conn: MasterConn;
  private readonly log: Logger;
  /** Cluster views and lifecycle calls, for operators and tools. */
  readonly admin: AdminClient;
  private readonly locationCache = new Map<string, { info: FileInfo; expiresAtMs: number }>();
  /** One appender per log (and create flag) for client.append, so concurrent appends share a link and batches. */
  private readonly appenders = new Map<string, Appender>();

  constructor(opts: ClientOptions) {
    this.conn = new MasterConn({ masters: opts.masters, retries: opts.retries, timeoutMs: opts.timeoutMs, deadlineMs: opts.deadlineMs, token: opts.token });
    this.admin = new AdminClient(this.conn, [...opts.masters], opts.token);
    this.log = opts.log ?? silentLogger;
  }

  /**
   * Writes a whole file from a stream; it becomes visible only once complete. Each chunk
   * of `source` is copied before the next is requested, so a source may reuse its buffer.
   */
  async put(source: NodeJS.ReadableStream | AsyncIterable<Uint8Array> | Uint8Array, remotePath: string, opts: PutOptions = {}): Promise<FileInfo> {
    await initChecksums();
    const path = normalizeFilePath(remotePath);
    checkReplication(opts.replication);
    const iterable: AsyncIterable<Uint8Array> = source instanceof Uint8Array
      ? (async function* () { yield source; })()
      : (source as AsyncIterable<Uint8Array>);
    this.forget(path);
    const info = await new FileWriter(this.conn, path, opts, this.log).write(iterable);
    this.forget(path);
    return info;
  }

  /** Streams a file (or a range of it) into `target`, honouring its backpressure. */
  async get(remotePath: string, target: NodeJS.WritableStream, opts: ReadOptions = {}): Promise<FileInfo> {
    const info = await this.locations(remotePath);
    const writable = target as Writable;
    for await (const piece of this.readInfo(info, opts)) {
      opts.onProgress?.(piece.length);
      if (!writable.write(piece)) await once(writable, 'drain');
    }
    return info;
  }

  /** A Readable over a file or a range of it. */
  createReadStream(remotePath: string, opts: ReadOptions = {}): Readable {
    const self = this;
    return Readable.from((async function* () {
      const info = await self.locations(remotePath);
      for await (const piece of self.readInfo(info, opts)) {
        opts.onProgress?.(piece.length);
        yield piece;
      }
    })(), { objectMode: false });
  }

  /**
   * A Readable over exactly the file version `info` describes (from stat): what a reader
   * that already sent that version's size and headers must stream, even if the path
   * has been replaced since (a replaced file's chunks live on in the trash).
   */
  openRead(info: FileInfo, opts: ReadOptions = {}): Readable {
    const self = this;
    return Readable.from((async function* () {
      for await (const piece of self.readInfo(info, opts)) {
        opts.onProgress?.(piece.length);
        yield piece;
      }
    })(), { objectMode: false });
  }

  async readAll(remotePath: string): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const p of this.createReadStream(remotePath)) parts.push(p as Buffer);
    return Buffer.concat(parts);
  }

  private readInfo(info: FileInfo, opts: ReadOptions): AsyncGenerator<Buffer> {
    if (info.isDir) throw new GfsError('IS_A_DIRECTORY', `${info.path} is a directory`);
    return readFileRange(this.conn, info, opts.start ?? 0, opts.end ?? info.size, this.log);
  }

  stat(path: string): Promise<FileInfo> {
    return this.conn.call('stat', { path: normalizePath(path) });
  }

  /**
   * Chunk locations for reads, cached per path for `locationCacheMs`: range reads of a
   * log segment should not cost a master round trip each. Safe because sealed files
   * never change in place (a replaced file has a new inode, which the reader checks
   * when it refreshes), and a reader that finds every cached replica failing asks the
   * master again.
   */
  private async locations(path: string): Promise<FileInfo> {
    const key = normalizePath(path);
    const now = Date.now();
    const hit = this.locationCache.get(key);
    if (hit && hit.expiresAtMs > now) return hit.info;
    const info = await this.stat(key);
    if (!info.isDir && info.state === FileState.FILE_STATE_SEALED) {
      if (this.locationCache.size >= limits.locationCacheEntriesMax) {
        this.locationCache.delete(this.locationCache.keys().next().value!);
      }
      this.locationCache.set(key, { info, expiresAtMs: now + limits.locationCacheMs });
    }
    return info;
  }

  /** Forgets cached locations (after a write or delete through this client). */
  private forget(path: string): void {
    this.locationCache.delete(normalizePath(path));
  }

  async list(path: string, opts: { recursive?: boolean; limit?: number; startAfter?: string } = {}): Promise<ListResponse> {
    return this.conn.call('list', { path: normalizePath(path), recursive: opts.recursive ?? false, limit: opts.limit ?? 0, startAfter: opts.startAfter ?? '' });
  }

  async mkdir(path: string): Promise<void> {
    await this.conn.call('mkdir', { path: normalizePath(path), parents: true, requestId: randomId() });
  }

  async rename(source: string, target: string, opts: { overwrite?: boolean } = {}): Promise<void> {
    this.locationCache.clear();
    await this.conn.call('rename', { source: normalizePath(source), target: normalizePath(target), overwrite: opts.overwrite ?? false, requestId: randomId() });
    this.locationCache.clear();
  }

  async delete(path: string, opts: { recursive?: boolean } = {}): Promise<void> {
    this.locationCache.clear();
    await this.conn.call('delete', { path: normalizePath(path), recursive: opts.recursive ?? false, requestId: randomId() });
    this.locationCache.clear();
  }

  /**
   * Makes `target` out of existing files' chunks, in order, without copying data (S3
   * multipart complete): the parts (sealed files, named by inode so a part replaced
   * meanwhile is refused) disappear, their chunks become the new file's. Atomic: the
   * file appears whole or not at all. `replacesInode`: only if the file now at target is
   * that one (PRECONDITION_FAILED); without `force`, ALREADY_EXISTS if a file is there.
   * The new file has no whole-file checksum. A retry is applied once.
   */
  async concat(target: string, parts: readonly { inode: number }[], opts: ConcatOptions = {}): Promise<FileInfo> {
    checkReplication(opts.replication);
    const path = normalizeFilePath(target);
    this.locationCache.clear();
    const info = await this.conn.call('concatFiles', {
      path, parts: parts.map((p) => p.inode), overwrite: opts.force ?? false, contentType: opts.contentType ?? '',
      metadata: opts.metadata ?? {}, replaces: opts.replacesInode === undefined ? undefined : { inode: opts.replacesInode },
      replication: opts.replication ?? 0, requestId: randomId(),
    });
    this.locationCache.clear();
    return info;
  }

  /** What is in the trash: original path, inode, deletion time, size, when its trash period ends. */
  trash(): Promise<TrashResponse> {
    return this.conn.call('trash', {});
  }

  /**
   * Puts a trashed file back at its original path (or `to`). Among several trashed
   * versions of the path the newest is restored unless deletedAtMs or inode picks one.
   * ALREADY_EXISTS when a live file is there. Carries a request id: a retry is applied once.
   */
  async restore(path: string, opts: { to?: string; deletedAtMs?: number; inode?: number } = {}): Promise<FileInfo> {
    const target = opts.to === undefined ? '' : normalizeFilePath(opts.to);
    const info = await this.conn.call('restore', {
      path: normalizePath(path), target, deletedAtMs: opts.deletedAtMs ?? 0, inode: opts.inode ?? 0, requestId: randomId(),
    });
    this.locationCache.clear();
    return info;
  }

  /** The leader's cluster view (admin.status()). */
  status(): Promise<StatusResponse> {
    return this.admin.status();
  }

  /** The cluster view with a line for every master (admin.statusAll()). */
  statusAll(): Promise<StatusResponse> {
    return this.admin.statusAll();
  }

  /** Every chunkserver (admin.nodes()). */
  nodes(): Promise<NodesResponse> {
    return this.admin.nodes();
  }

  /**
   * Appends one record to a log; resolves with the file offset it was stored at, once
   * every replica has it durable. Concurrent calls on one client share a writer (and
   * its batches); a failed attempt is retried with the same record id, so a record is
   * stored once.
   */
  append(path: string, record: Buffer | string, opts: RecordAppendOptions = {}): Promise<AppendAck> {
    const p = normalizeFilePath(path);
    if (opts.recordId) {
      const one = new Appender(this.conn, p, {
        create: opts.create, writerId: opts.recordId.writer, firstSeq: opts.recordId.seq, resumed: true, log: this.log,
      });
      return one.append(record, { expectedOffset: opts.expectedOffset }).finally(() => one.close());
    }
    const key = `${opts.create ? 'c' : '-'}${p}`;
    let a = this.appenders.get(key);
    if (!a) {
      a = new Appender(this.conn, p, { create: opts.create, log: this.log });
      this.appenders.set(key, a);
    }
    return a.append(record, { expectedOffset: opts.expectedOffset });
  }

  /** A writer of its own (random writer id, growing sequence numbers) for many appends in flight. */
  appender(path: string, opts: Omit<AppenderOptions, 'clock' | 'log'> = {}): Appender {
    return new Appender(this.conn, normalizeFilePath(path), { ...opts, log: this.log });
  }

  /**
   * The log's bytes from `fromOffset` as they are committed: what is there, then every
   * new record, each byte once, in order. Ends when the log is sealed, or on `signal`.
   * A stream is followed across its segments in stream offsets (from its oldest kept
   * byte by default) and does not end by itself.
   */
  follow(path: string, opts: FollowOptions = {}): AsyncGenerator<FollowPiece> {
    const p = normalizePath(path);
    const { conn, log } = this;
    return (async function* () {
      const info = await conn.call('stat', { path: p });
      // A stream: its segments one after another, in stream offsets; it never ends by itself.
      if (info.isDir && info.stream) yield* followStream(conn, p, opts, systemClock, log);
      else yield* followLog(conn, p, opts, systemClock, log);
    })();
  }

  /** Seals a log: no more appends; its size is final. */
  sealLog(path: string): Promise<FileInfo> {
    return this.conn.call('sealLog', { path: normalizePath(path), requestId: randomId() });
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.appenders.values()].map((a) => a.close()));
    this.appenders.clear();
    this.conn.close();
  }
}

/**
 * A replication goal must be a whole number in 1..replicationMax. Checked here because
 * on the wire 0 means "the cluster default", so a 0 (or a NaN, which the encoder would
 * refuse as INTERNAL) must never reach the master.
 */
function checkReplication(replication: number | undefined): void {
  if (replication === undefined) return;
  if (!Number.isInteger(replication) || replication < 1 || replication > limits.replicationMax) {
    throw new GfsError('INVALID_ARGUMENT', `replication must be a whole number from 1 to ${limits.replicationMax}, not ${replication}`);
  }
}
