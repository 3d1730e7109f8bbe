/**
 * AppendTarget and SealLog (docs/LOG-STREAMS.md, "Leases and the primary"): where a
 * client appends next, and closing a log. The allocation of an open chunk is committed
 * (WAL) before its primary is granted the lease, and the client is answered only after
 * LEASE_OK, so a client never appends to a chunk the metadata does not know.
 *
 * Invariants:
 * - A log has at most one open chunk; one allocation per log at a time (concurrent
 *   callers share it), and none while the log is being closed.
 * - A target is answered only with a lease the table holds as valid now, for the
 *   chunk's current version; an open chunk without one is sealed before a new chunk
 *   is allocated.
 * - A chunk reported ended (ended_handle) is sealed if it is still the open chunk
 *   before anything else, so a retried record found in the seal's writer records is
 *   answered with its offset (stored_offset), never stored twice.
 */
import { MetaOp, type AppendTargetRequest, type AppendTargetResponse, type ChunkInfo } from '../../../gen/gfs';
import { GfsError } from '../../common/errors';
import { limits } from '../../common/limits';
import { normalizeFilePath } from '../../common/paths';
import type { ChunkPlacer } from '../chunk-placer';
import type { Lifecycle } from '../lifecycle/lifecycle';
import type { FileNode } from '../meta-state';
import type { Lease, LeaseTable } from './lease-table';
import type { LogHost } from './log-host';
import type { LogSealer } from './log-sealer';
import { storedOffset } from './writer-windows';

export interface AppendTargetHost extends LogHost {
  placer: ChunkPlacer;
  lifecycle: () => Lifecycle;
  reserveInode: () => number;
  reserveHandle: () => number;
  replicationDefault: number;
}

/** Rounds of "seal the leaseless open chunk, then allocate" before giving up: races end in one or two. */
const targetRoundsMax = 4;

export class AppendTargets {
  private readonly allocating = new Map<number, Promise<void>>();
  private readonly closing = new Set<number>();
  /** Leases granted (LEASE_OK) and grants refused or unanswered, since start. */
  grantsTotal = 0;
  grantFailuresTotal = 0;

  constructor(private readonly host: AppendTargetHost, private readonly leases: LeaseTable, private readonly sealer: LogSealer) {}

  async appendTarget(req: AppendTargetRequest): Promise<AppendTargetResponse> {
    const path = normalizeFilePath(req.path);
    const file = await this.logAt(path, req);
    if (req.failedNode) this.host.lifecycle().unreachableReported([req.failedNode], `a client appending to "${path}"`);
    if (req.endedHandle) {
      const open = this.host.state().openChunk(file);
      if (open?.handle === req.endedHandle) {
        await this.sealer.seal(file.inode, open.handle, req.failedNode ? `primary ${req.failedNode} unreachable` : 'ended by the client');
      }
    }
    const base = { inode: file.inode, path: file.path, leaseMs: this.host.leaseMs };
    if (req.recordId !== undefined && req.recordId.writer !== '') {
      const at = storedOffset(file.log!.writers, req.recordId.writer, req.recordId.seq);
      if (at !== undefined) return { ...base, storedOffset: at };
    }
    return { ...base, chunk: await this.target(file.inode, req.failedNode ? [req.failedNode] : []) };
  }

  /** SealLog: seal the open chunk and close the log. A closed log answers as it is. */
  async sealLog(rawPath: string, requestId: string): Promise<FileNode> {
    const path = normalizeFilePath(rawPath);
    let file = this.logFile(path, false);
    if (!file.log!.open) return file;
    this.closing.add(file.inode);
    try {
      await this.allocating.get(file.inode)?.catch(() => undefined);
      const open = this.host.state().openChunk(file);
      if (open !== undefined) await this.sealer.seal(file.inode, open.handle, 'SealLog');
      file = this.logFile(path, false);
      if (file.log!.open) {
        await this.host.commit('sealLog', MetaOp.fromPartial({
          requestId, completeFile: { inode: file.inode, size: file.size, checksum: '', mtimeMs: this.host.clock.nowMs() },
        }));
      }
      return this.host.state().fileByInode(file.inode)!;
    } finally {
      this.closing.delete(file.inode);
    }
  }

  /** The log at `path`, created (with the log flag) if it is missing and the caller asked to. */
  private async logAt(path: string, req: AppendTargetRequest): Promise<FileNode> {
    const { host } = this;
    if (!req.create || this.exists(path)) return this.logFile(path, true);
    const replication = req.replication || host.replicationDefault;
    if (replication < 1 || replication > limits.replicationMax) {
      throw new GfsError('INVALID_ARGUMENT', `replication must be 1..${limits.replicationMax}`);
    }
    host.state().checkCreate(path, false);
    const inode = host.reserveInode();
    const mtimeMs = host.clock.nowMs();
    // Proposed together: one replication round. A retry with the same request id replays both.
    const created = host.commit('create', MetaOp.fromPartial({
      requestId: req.requestId, createFile: { inode, path, overwrite: false, replication, contentType: '', metadata: {}, mtimeMs },
    }));
    const logged = host.commit('setLog', MetaOp.fromPartial({ requestId: req.requestId ? `${req.requestId}/log` : '', setLog: { inode } }));
    try {
      const [first] = await Promise.all([created, logged]);
      return host.state().fileByInode(first.inode!)!;
    } catch (e) {
      // Another create of the same log won the race: append to it.
      if (e instanceof GfsError && e.code === 'ALREADY_EXISTS' && this.exists(path)) return this.logFile(path, true);
      throw e;
    }
  }

  private exists(path: string): boolean {
    try {
      this.host.state().stat(path);
      return true;
    } catch (e) {
      if (e instanceof GfsError && e.code === 'NO_SUCH_FILE') return false;
      throw e;
    }
  }

  /** The log at `path`; with `open`, FILE_NOT_WRITABLE unless appends may go on. */
  private logFile(path: string, open: boolean): FileNode {
    const node = this.host.state().stat(path);
    if (node.kind === 'dir') throw new GfsError('IS_A_DIRECTORY', `"${path}" is a directory`);
    if (node.log === undefined) throw new GfsError('FILE_NOT_WRITABLE', `"${path}" is not a log (it was written by a put)`);
    if (open && !node.log.open) throw new GfsError('FILE_NOT_WRITABLE', `log "${path}" is sealed`);
    return node;
  }

  /** The open chunk with a valid lease: sealing a leaseless one and allocating as needed. */
  private async target(inode: number, exclude: string[]): Promise<ChunkInfo> {
    const { host } = this;
    for (let round = 0; round < targetRoundsMax; round++) {
      if (this.closing.has(inode)) throw new GfsError('FILE_NOT_WRITABLE', `log ${inode} is being sealed`);
      const file = host.state().checkAppendable(inode, false);
      const allocating = this.allocating.get(inode);
      if (allocating !== undefined) {
        await allocating;
        continue;
      }
      const open = host.state().openChunk(file);
      if (open === undefined) {
        await this.allocateShared(inode, exclude);
        continue;
      }
      const lease = this.leases.valid(open.handle, open.version, host.clock.monoMs());
      if (lease !== undefined) return this.chunkInfo(file, lease);
      await this.sealer.seal(inode, open.handle, 'its primary holds no lease the master knows of');
    }
    throw new GfsError('UNAVAILABLE', `log ${inode}: no open chunk with a lease after ${targetRoundsMax} tries; retry`);
  }

  private allocateShared(inode: number, exclude: string[]): Promise<void> {
    let p = this.allocating.get(inode);
    if (p === undefined) {
      p = this.allocate(inode, exclude).finally(() => this.allocating.delete(inode));
      this.allocating.set(inode, p);
    }
    return p;
  }

  /** Places, commits and leases a new open chunk; a primary that refuses the lease is avoided next time. */
  private async allocate(inode: number, excludeIds: string[]): Promise<void> {
    const { host } = this;
    const replication = host.state().checkAppendable(inode, true).replication;
    await host.placer.waitForPlaceable(replication);
    const exclude = new Set(excludeIds);
    let lastError: unknown;
    for (let attempt = 0; attempt < limits.appendGrantAttemptsMax; attempt++) {
      const nodes = host.placer.place(replication, exclude);
      const result = await host.commit('allocate', MetaOp.fromPartial({ allocateChunk: { inode, handle: host.reserveHandle(), version: 1 } }));
      const handle = result.handle!;
      const version = result.version!;
      const [primary, ...secondaries] = nodes;
      try {
        await host.plane.grantLease(primary!.addr, {
          handle, version, chain: secondaries.map((n) => n.addr), durationMs: host.leaseMs,
        }, limits.appendSealReplicaTimeoutMs);
      } catch (e) {
        // Nobody appended without a lease: the chunk is dropped (GC reclaims any copy made).
        host.log.warn({ inode, handle, primary: primary!.id, err: (e as Error).message }, 'lease grant failed; trying another placement');
        await host.commit('abandonChunk', MetaOp.fromPartial({ abandonChunk: { inode, handle } }));
        exclude.add(primary!.id);
        this.grantFailuresTotal++;
        lastError = e;
        continue;
      }
      this.leases.grant({ inode, handle, version, primary: primary!.id, chain: secondaries.map((n) => n.id) }, host.clock.monoMs());
      this.grantsTotal++;
      host.registry.recordWrite(handle, version, 0, nodes.map((n) => n.id));
      if (nodes.length < replication) host.log.warn({ handle, replicas: nodes.length, goal: replication }, 'log chunk allocated under-replicated');
      return;
    }
    throw lastError instanceof GfsError ? lastError : new GfsError('UNAVAILABLE', `no primary took the lease: ${String(lastError)}`);
  }

  private chunkInfo(file: FileNode, lease: Lease): ChunkInfo {
    const replicas = [lease.primary, ...lease.chain].map((id) => {
      const n = this.host.registry.nodes.get(id);
      return { nodeId: id, addr: n?.addr ?? '', zone: n?.zone ?? '' };
    });
    return { handle: lease.handle, version: lease.version, offset: file.size, length: 0, replicas, goal: file.replication };
  }
}
