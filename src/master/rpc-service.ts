/**
 * The master's gRPC service: the handler table (DESIGN §12). Metadata calls check what
 * they can locally, then propose an op through the commit path and answer from the
 * applied state; heartbeats go to the registry, and their replies carry what the
 * lifecycle has for the node (one hop); the admin calls are the views.
 *
 * Invariants:
 * - Every call but heartbeats and cluster views needs the serving leader: a follower's
 *   state may lag, so it answers NOT_LEADER with the leader's address.
 * - A new chunk's replicas are distinct, alive, not draining nodes, none past the fill
 *   cap (placement decides; chunk-placer.ts asserts it).
 * - Logs (record append) go through logs/: an open log's stat and list report its
 *   committed length, and a delete seals the open logs it removes first.
 * - Clients are only sent to healthy replicas (not corrupt, stale or being deleted).
 */
import * as grpc from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import {
  MetaOp, FileState,
  type MasterServer, type FileInfo, type ChunkInfo, type HeartbeatRequest, type HeartbeatResponse,
} from '../../gen/gfs';
import { GfsError, toGrpcError } from '../common/errors';
import { limits } from '../common/limits';
import type { Logger } from '../common/log';
import type { Clock } from '../common/clock';
import { normalizeFilePath, normalizePath } from '../common/paths';
import { unaryHandler } from '../common/grpc';
import type { ApplyResult, DirNode, FileNode, MetaState } from './meta-state';
import type { NodeRegistry } from './registry';
import { ChunkPlacer } from './chunk-placer';
import type { Lifecycle } from './lifecycle/lifecycle';
import { readableReplicas } from './lifecycle/heal-plan';
import type { AdminViews } from './admin-views';
import type { LogService } from './logs/log-service';
import { logHandlers, sealBeforeDelete, statInfo, type LogRpcHost } from './logs/log-rpc';
import type { StreamKeeper } from './streams/stream-keeper';
import { streamHandlers } from './streams/stream-rpc';

/** What the handlers need from the master process. */
export interface RpcHost {
  state: () => MetaState;
  registry: NodeRegistry;
  lifecycle: () => Lifecycle;
  views: AdminViews;
  commit: (kind: string, op: MetaOp) => Promise<ApplyResult>;
  isLeader: () => boolean;
  notLeader: () => GfsError;
  /** Inode and handle ids for proposals: each proposal gets its own. */
  reserveInode: () => number;
  reserveHandle: () => number;
  currentEpoch: () => number;
  /** Record append: leases, seals, targets, watchers. */
  logs: LogService;
  /** The applied index (watch events' revision). */
  revision: () => number;
  /** Streams: segments, rolls, retention. */
  streams: StreamKeeper;
  replicationDefault?: number;
  clock: Clock;
  random: () => number;
  log: Logger;
  /** Calls beyond the file and admin ones (auth/auth-rpc.ts: tokens, namespaces). */
  extraHandlers?: Handlers;
  /** Checks each call's token and scope before its handler runs (auth/guard.ts). */
  guard?: { wrap: <T extends object>(handlers: T) => T };
}

type Handlers = Partial<MasterServer>;

/** The service table: leader-only calls wrapped to answer NOT_LEADER elsewhere. */
export function masterService(host: RpcHost): MasterServer {
  const files = new FileCalls(host);
  const all = { ...files.handlers(), ...adminHandlers(host), heartbeat: heartbeatHandler(host), ...host.extraHandlers };
  // The leader check comes first: a follower's tokens may lag, its answer is NOT_LEADER.
  const handlers = (host.guard ? host.guard.wrap(all) : all) as MasterServer;
  // Watch is a stream: it checks leadership itself.
  const anyMaster = new Set(['heartbeat', 'status', 'nodes', 'watch']);
  for (const [name, handler] of Object.entries(handlers)) {
    if (anyMaster.has(name)) continue;
    const inner = handler as grpc.handleUnaryCall<unknown, unknown>;
    (handlers as unknown as Record<string, grpc.handleUnaryCall<unknown, unknown>>)[name] = (call, callback) => {
      if (!host.isLeader()) return callback(toGrpcError(host.notLeader()) as grpc.ServiceError);
      inner(call, callback);
    };
  }
  return handlers;
}

function adminHandlers(host: RpcHost): Handlers {
  const { views } = host;
  return {
    reportCorrupt: unaryHandler(async (req) => {
      host.log.error({ handle: req.handle, node: req.nodeId, detail: req.detail }, 'replica reported corrupt');
      host.registry.markCorrupt(req.handle, req.nodeId);
      return {};
    }),
    fsck: unaryHandler(async (req) => views.fsck(req.path)),
    gc: unaryHandler(async (req) => views.gc(req.dryRun)),
    df: unaryHandler(async () => views.df()),
    balance: unaryHandler(async (req) => views.balance(req.dryRun, req.thresholdRatio)),
    decommission: unaryHandler(async (req) => views.decommission(req.node, req.cancel)),
    status: unaryHandler(async () => views.status()),
    nodes: unaryHandler(async () => views.nodes()),
  };
}

/** Registry first, then the lifecycle's commands for the node: one hop. */
function heartbeatHandler(host: RpcHost): MasterServer['heartbeat'] {
  return unaryHandler(async (req: HeartbeatRequest): Promise<HeartbeatResponse> => {
    if (!req.nodeId) throw new GfsError('INVALID_ARGUMENT', 'heartbeat without a node id');
    const { registry, clock, log } = host;
    const lifecycle = host.lifecycle();
    const known = registry.nodes.get(req.nodeId);
    const wasCorrupt = new Set(known?.corrupt ?? []);
    const { needFullReport, revived } = registry.heartbeat(req, clock.monoMs(), clock.nowMs());
    if (revived) log.info({ node: req.nodeId, addr: req.addr }, 'chunkserver back');
    for (const handle of req.corrupt) {
      if (!wasCorrupt.has(handle)) log.error({ handle, node: req.nodeId }, 'replica reported corrupt');
    }
    lifecycle.clonesFailed(req.nodeId, req.replicateFailed ?? []);
    const commands = needFullReport ? [] : lifecycle.commandsFor(req.nodeId);
    const leases = host.logs.renew(req.nodeId, req.leases ?? []);
    return { needFullReport, epoch: host.currentEpoch(), commands, clusterBusy: lifecycle.clusterBusy, leases };
  });
}

/** The namespace and write-path calls. */
class FileCalls {
  private readonly placer: ChunkPlacer;

  constructor(private readonly host: RpcHost) {
    this.placer = new ChunkPlacer(host);
  }

  private get state(): MetaState { return this.host.state(); }

  private now(): number { return this.host.clock.nowMs(); }

  private requireLeader(): void {
    if (!this.host.isLeader()) throw this.host.notLeader();
  }

  handlers(): Handlers {
    const { host } = this;
    const streams = streamHandlers({
      state: host.state, commit: host.commit, streams: host.streams, clock: host.clock,
      isLeader: host.isLeader, notLeader: host.notLeader, revision: host.revision,
      replicationDefault: host.replicationDefault ?? limits.replicationDefault, fileInfo: (f) => this.fileInfo(f), dirInfo,
    }, logHandlers(this.logHost()));
    return { ...this.writeHandlers(), ...this.namespaceHandlers(), ...logHandlers(this.logHost()), ...streams };
  }

  private logHost(): LogRpcHost {
    const { host } = this;
    return {
      state: host.state, logs: host.logs, isLeader: host.isLeader, notLeader: host.notLeader, revision: host.revision,
      fileInfo: (f, openLength) => this.fileInfo(f, openLength),
    };
  }

  private writeHandlers(): Handlers {
    const { host } = this;
    return {
      createFile: unaryHandler(async (req) => this.createFile(req)),
      allocateChunk: unaryHandler(async (req) => this.allocate(req.inode, req.excludeNodes, req.requestId)),
      commitChunk: unaryHandler(async (req) => {
        await this.commitChunk(req);
        return {};
      }),
      abandonChunk: unaryHandler(async (req) => {
        host.lifecycle().touch(req.inode);
        await host.commit('abandonChunk', MetaOp.fromPartial({ abandonChunk: { inode: req.inode, handle: req.handle } }));
        return {};
      }),
      completeFile: unaryHandler(async (req) => {
        // Commit of the last chunk and the completion share one group commit.
        const committed = req.lastChunk ? this.commitChunk(req.lastChunk) : undefined;
        const completed = host.commit('complete', MetaOp.fromPartial({
          requestId: req.requestId, completeFile: { inode: req.inode, size: req.size, checksum: req.checksum, mtimeMs: this.now(), metadata: req.metadata, replaces: req.replaces },
        }));
        await Promise.all([committed, completed]);
        const file = this.state.fileByInode(req.inode);
        if (!file) throw new GfsError('NO_SUCH_FILE', `inode ${req.inode} vanished`);
        return this.fileInfo(file);
      }),
      concatFiles: unaryHandler(async (req) => {
        this.requireLeader();
        const retried = req.requestId ? this.state.seenRequest(req.requestId) : undefined;
        if (retried?.file !== undefined) return this.fileInfo(retried.file);
        const path = normalizeFilePath(req.path);
        const replication = req.replication || host.replicationDefault || limits.replicationDefault;
        const op = MetaOp.fromPartial({
          requestId: req.requestId,
          concatFiles: {
            inode: host.reserveInode(), path, parts: req.parts, overwrite: req.overwrite, contentType: req.contentType,
            metadata: req.metadata, replaces: req.replaces, replication, mtimeMs: this.now(),
          },
        });
        this.state.validate(op);
        const result = await host.commit('concat', op);
        assert.ok(result.file !== undefined);
        return this.fileInfo(result.file);
      }),
      abortFile: unaryHandler(async (req) => {
        await host.commit('abort', MetaOp.fromPartial({ abortFile: { inode: req.inode } }));
        return {};
      }),
    };
  }

  private namespaceHandlers(): Handlers {
    const { host } = this;
    return {
      stat: unaryHandler(async (req) => {
        const node = this.state.stat(normalizePath(req.path));
        return node.kind === 'file' ? statInfo(this.logHost(), node) : dirInfo(node);
      }),
      list: unaryHandler(async (req) => {
        const limit = Math.min(req.limit || limits.listEntriesDefault, limits.listEntriesMax);
        const { entries, truncated } = this.state.list(normalizePath(req.path), { recursive: req.recursive, limit, startAfter: req.startAfter });
        const infos = await Promise.all(entries.map(async (e) => (e.kind === 'file' ? { ...await statInfo(this.logHost(), e), chunks: [] } : dirInfo(e))));
        return { entries: infos, truncated };
      }),
      mkdir: unaryHandler(async (req) => {
        const path = normalizePath(req.path);
        this.state.checkMkdir(path);
        await host.commit('mkdir', MetaOp.fromPartial({ requestId: req.requestId, mkdir: { path, mtimeMs: this.now() } }));
        return {};
      }),
      rename: unaryHandler(async (req) => {
        const source = normalizePath(req.source);
        const target = normalizePath(req.target);
        this.state.checkRename(source, target, req.overwrite);
        if (req.overwrite) await sealBeforeDelete(this.logHost(), target, true);
        await host.commit('rename', MetaOp.fromPartial({ requestId: req.requestId, rename: { source, target, overwrite: req.overwrite, mtimeMs: this.now() } }));
        return {};
      }),
      delete: unaryHandler(async (req) => {
        const path = normalizePath(req.path);
        this.state.checkDelete(path, req.recursive);
        await sealBeforeDelete(this.logHost(), path);
        await host.commit('delete', MetaOp.fromPartial({ requestId: req.requestId, delete: { path, recursive: req.recursive, mtimeMs: this.now() } }));
        return {};
      }),
      trash: unaryHandler(async () => {
        const periodMs = host.lifecycle().opts.trashPeriodMs;
        return {
          entries: this.state.trash().map((e) => ({
            path: e.path, inode: e.inode, deletedAtMs: e.deletedAtMs,
            size: this.state.fileByInode(e.inode)?.size ?? 0, purgeAtMs: e.deletedAtMs + periodMs,
          })),
        };
      }),
      restore: unaryHandler(async (req) => {
        // A retry of an applied restore answers with the file where it now is.
        const retried = req.requestId ? this.state.seenRequest(req.requestId) : undefined;
        if (retried?.file !== undefined) return this.fileInfo(retried.file);
        const { inode } = this.state.findTrashed(req.path, { deletedAtMs: req.deletedAtMs, inode: req.inode });
        const target = req.target === '' ? '' : normalizeFilePath(req.target);
        this.state.checkRestore(inode, target);
        const result = await host.commit('restore', MetaOp.fromPartial({ requestId: req.requestId, restore: { inode, target, mtimeMs: this.now() } }));
        assert.ok(result.file !== undefined);
        return this.fileInfo(result.file);
      }),
    };
  }

  private async createFile(req: Parameters<MasterServer['createFile']>[0]['request']): Promise<{ inode: number; firstChunk?: ChunkInfo }> {
    const path = normalizeFilePath(req.path);
    const replication = req.replication || this.host.replicationDefault || limits.replicationDefault;
    if (replication < 1 || replication > limits.replicationMax) {
      throw new GfsError('INVALID_ARGUMENT', `replication must be 1..${limits.replicationMax}`);
    }
    this.requireLeader();
    const retried = req.requestId ? this.state.seenRequest(req.requestId) : undefined;
    if (retried) return { inode: retried.inode! };
    this.state.checkCreate(path, req.overwrite);
    const inode = this.host.reserveInode();
    const created = this.host.commit('create', MetaOp.fromPartial({
      requestId: req.requestId,
      createFile: { inode, path, overwrite: req.overwrite, replication, contentType: req.contentType, metadata: req.metadata, mtimeMs: this.now() },
    }));
    this.host.lifecycle().touch(inode);
    if (!req.allocateChunk) {
      await created;
      return { inode };
    }
    // The create and the first chunk are proposed together (one replication round).
    // If no chunk can be placed, the create still stands: the client's own allocate
    // call then fails with the reason and it aborts the file.
    const allocated = this.allocateFor(inode, replication, [], req.requestId ? `${req.requestId}/chunk` : '', []).catch(() => ({ chunk: undefined }));
    const [, { chunk }] = await Promise.all([created, allocated]);
    return { inode, firstChunk: chunk };
  }

  /**
   * Allocates the next chunk of a file being written. A retried allocate gets the chunk
   * it allocated before; its replicas were never told about it (the client did not get
   * the answer), so a fresh placement is fine.
   */
  private async allocate(inode: number, excludeNodes: string[], requestId: string): Promise<{ chunk: ChunkInfo }> {
    this.requireLeader();
    const file = this.state.checkWritable(inode);
    // The client excludes nodes its writes failed on: none gets a chunk or a clone until it heartbeats again.
    this.host.lifecycle().unreachableReported(excludeNodes, `a client writing inode ${inode}`);
    return this.allocateFor(inode, file.replication, excludeNodes, requestId, file.chunks);
  }

  /** Places and proposes a new chunk for a file (which may still be a proposal itself). */
  private async allocateFor(
    inode: number, replication: number, excludeNodes: string[], requestId: string, earlier: readonly { handle: number; length: number }[],
  ): Promise<{ chunk: ChunkInfo }> {
    this.host.lifecycle().touch(inode);
    await this.placer.waitForPlaceable(replication);
    const nodes = this.placer.place(replication, new Set(excludeNodes));
    const result = await this.host.commit('allocate', MetaOp.fromPartial({
      requestId, allocateChunk: { inode, handle: this.host.reserveHandle(), version: 1 },
    }));
    const handle = result.handle!;
    let offset = 0;
    for (const c of result.file?.chunks ?? earlier) { if (c.handle === handle) break; offset += c.length; }
    if (nodes.length < replication) {
      this.host.log.warn({ handle, replicas: nodes.length, goal: replication }, 'chunk allocated under-replicated: too few chunkservers alive');
    }
    return {
      chunk: {
        handle, version: result.version!, offset, length: 0, goal: replication,
        replicas: nodes.map((n) => ({ nodeId: n.id, addr: n.addr, zone: n.zone })),
      },
    };
  }

  private async commitChunk(req: { inode: number; handle: number; length: number; replicaNodes: string[]; version?: number }): Promise<void> {
    this.host.lifecycle().touch(req.inode);
    await this.host.commit('commitChunk', MetaOp.fromPartial({
      commitChunk: { inode: req.inode, handle: req.handle, length: req.length, version: req.version ?? 0 },
    }));
    const owner = this.state.chunkOwner(req.handle);
    this.host.registry.recordWrite(req.handle, owner?.ref.version ?? 1, req.length, req.replicaNodes);
  }

  /** openLength: an open log's open chunk's committed length (soft state, from its primary). */
  private fileInfo(f: FileNode, openLength = 0): FileInfo {
    const lifecycle = this.host.lifecycle();
    let offset = 0;
    const chunks: ChunkInfo[] = f.chunks.map((c) => {
      // Healthy replicas only: not corrupt, not stale, not about to be deleted.
      const health = lifecycle.chunkHealth(lifecycle.healChunkOf(c, f.inode));
      const replicas = readableReplicas(health).map((id) => this.host.registry.nodes.get(id)!).map((n) => ({ nodeId: n.id, addr: n.addr, zone: n.zone }));
      const length = c.committed ? c.length : openLength;
      const info: ChunkInfo = { handle: c.handle, version: c.version, offset, length, replicas, goal: f.replication };
      offset += length;
      return info;
    });
    return {
      path: f.path, inode: f.inode, isDir: false, size: f.size + openLength, mtimeMs: f.mtimeMs,
      state: f.state === 'sealed' ? FileState.FILE_STATE_SEALED : FileState.FILE_STATE_WRITING,
      chunks, contentType: f.contentType, checksum: f.checksum, replication: f.replication, metadata: f.metadata,
      log: f.log !== undefined,
    };
  }
}

/** A directory as FileInfo; a stream directory with its policy. */
function dirInfo(dir: DirNode): FileInfo {
  return {
    path: dir.path, inode: 0, isDir: true, size: 0, mtimeMs: dir.mtimeMs, state: FileState.FILE_STATE_UNSPECIFIED, chunks: [],
    contentType: '', checksum: '', replication: 0, metadata: {}, log: false, stream: dir.stream?.policy,
  };
}
