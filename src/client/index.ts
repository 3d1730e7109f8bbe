/**
 * The gfs client library: metadata calls with leader discovery and retries, streaming
 * put/get with bounded memory, replica failover on error or corruption.
 */
import { Readable, Writable } from 'node:stream';
import { once } from 'node:events';
import { FileState, type FileInfo, type ListResponse, type NodesResponse, type StatusResponse } from '../../gen/gfs';
import { limits } from '../common/limits';
import { GfsError } from '../common/errors';
import { initChecksums } from '../common/checksum';
import { normalizeFilePath, normalizePath } from '../common/paths';
import { silentLogger, type Logger } from '../common/log';
import { randomId } from '../common/ids';
import { MasterConn } from './master-conn';
import { FileWriter, type PutOptions } from './file-writer';
import { readFileRange } from './file-reader';

export type { FileInfo, PutOptions };
export { readLocalFile } from './local-file';
export { GfsError };

export interface ClientOptions {
  masters: string[];
  log?: Logger;
  retries?: number;
  timeoutMs?: number;
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
  private readonly mastersList: string[];
  private readonly locationCache = new Map<string, { info: FileInfo; expiresAtMs: number }>();

  constructor(opts: ClientOptions) {
    this.conn = new MasterConn({ masters: opts.masters, retries: opts.retries, timeoutMs: opts.timeoutMs });
    this.mastersList = [...opts.masters];
    this.log = opts.log ?? silentLogger;
  }

  /**
   * Writes a whole file from a stream; it becomes visible only once complete. Each chunk
   * of `source` is copied before the next is requested, so a source may reuse its buffer.
   */
  async put(source: NodeJS.ReadableStream | AsyncIterable<Uint8Array> | Uint8Array, remotePath: string, opts: PutOptions = {}): Promise<FileInfo> {
    await initChecksums();
    const path = normalizeFilePath(remotePath);
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
      yield* self.readInfo(info, opts);
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

  status(): Promise<StatusResponse> {
    return this.conn.call('status', {});
  }

  /**
   * The cluster's status with a line for every master: each master in the list is asked
   * for its own view (role, epoch, commit index, lag, pid); the cluster figures come from
   * the leader (or any master that answers). A master that does not answer is listed as
   * unreachable.
   */
  async statusAll(): Promise<StatusResponse> {
    const views: { addr: string; status?: StatusResponse; error?: GfsError }[] = await Promise.all(this.mastersList.map(async (addr) => {
      const one = new MasterConn({ masters: [addr], retries: 0, timeoutMs: 3000 });
      try {
        return { addr, status: await one.call('status', {}) };
      } catch (e) {
        return { addr, error: e as GfsError };
      } finally {
        one.close();
      }
    }));
    const base = views.find((v) => v.status?.masters[0]?.role === 'leader') ?? views.find((v) => v.status);
    if (!base?.status) throw views[0]?.error ?? new GfsError('UNAVAILABLE', 'no master answered');
    const masters = views.map((v) => v.status?.masters[0] ?? {
      id: '', addr: v.addr, role: 'unreachable', epoch: 0, commitIndex: 0, appliedIndex: 0, lag: 0, pid: 0, adminAddr: '',
    });
    return { ...base.status, masters };
  }

  nodes(): Promise<NodesResponse> {
    return this.conn.call('nodes', {});
  }

  async close(): Promise<void> {
    this.conn.close();
  }
}
