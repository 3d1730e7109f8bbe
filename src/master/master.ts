/**
 * The master process: metadata in memory (MetaState), made durable by the WAL, served
 * over gRPC; the chunkserver registry from heartbeats; placement of new chunks.
 *
 * Invariants:
 * - An operation is applied to the state and appended to the WAL in the same
 *   synchronous step, so log order is apply order; it is acknowledged only once its
 *   record is durable. A WAL write failure stops the process: memory is then ahead of
 *   the disk, and a restart replays the disk.
 * - Replica locations are soft state and never logged.
 * - A checkpoint covers exactly the records up to its index, and is taken only after
 *   they are durable.
 */
import * as grpc from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { Counter, Gauge, Histogram } from 'prom-client';
import {
  MasterService, MetaOp, FileState,
  type MasterServer, type FileInfo, type ChunkInfo, type HeartbeatRequest, type HeartbeatResponse,
  type StatusResponse, type NodesResponse,
} from '../../gen/gfs';
import { GfsError } from '../common/errors';
import { limits } from '../common/limits';
import type { Logger } from '../common/log';
import { systemClock, type Clock } from '../common/clock';
import { normalizeFilePath, normalizePath } from '../common/paths';
import { bindServer, unaryHandler } from '../common/grpc';
import { startAdminServer, newRegistry, type AdminServer } from '../common/admin-http';
import { Wal } from '../wal';
import { MetaState, type ApplyResult, type FileNode } from './meta-state';
import { NodeRegistry, type NodeEntry } from './registry';
import { choosePlacement } from './placement';

/** WAL record type for a protobuf-encoded MetaOp. */
export const WAL_TYPE_META_OP = 1;

export interface MasterOptions {
  id: string;
  dataDir: string;
  listen: string;
  advertise?: string;
  adminListen: string;
  deadAfterMs: number;
  replicationDefault?: number;
  checkpointEveryRecords?: number;
  log: Logger;
  clock?: Clock;
  random?: () => number;
}

export class Master {
  private wal!: Wal;
  state!: MetaState;
  readonly registry: NodeRegistry;
  private server: grpc.Server | undefined;
  private admin!: AdminServer;
  private readonly clock: Clock;
  private readonly random: () => number;
  private tickTimer: NodeJS.Timeout | undefined;
  private epoch = 1;
  private recordsSinceCheckpoint = 0;
  private checkpointing = false;
  private lastDurable: Promise<unknown> = Promise.resolve();
  private stopping = false;
  addr = '';
  private readonly metrics = newRegistry('master');
  private readonly opsTotal = new Counter({ name: 'gfs_master_ops_total', help: 'Metadata operations by kind and outcome', labelNames: ['op', 'outcome'], registers: [this.metrics] });
  private readonly walAppendSeconds = new Histogram({ name: 'gfs_master_wal_append_seconds', help: 'Time from apply to durable WAL record', buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5], registers: [this.metrics] });

  constructor(private readonly opts: MasterOptions) {
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? Math.random;
    this.registry = new NodeRegistry(opts.deadAfterMs);
    const self = this;
    new Gauge({ name: 'gfs_master_files', help: 'Visible files', registers: [this.metrics], collect() { this.set(self.state?.counts().files ?? 0); } });
    new Gauge({ name: 'gfs_master_chunks', help: 'Chunks referenced by metadata', registers: [this.metrics], collect() { this.set(self.state?.counts().chunks ?? 0); } });
    new Gauge({ name: 'gfs_master_nodes_alive', help: 'Chunkservers alive', registers: [this.metrics], collect() { this.set(self.registry.alive().length); } });
    new Gauge({ name: 'gfs_master_wal_last_index', help: 'Last WAL index', registers: [this.metrics], collect() { this.set(self.wal?.lastIndex ?? 0); } });
  }

  get adminAddr(): string { return this.admin.addr; }

  async start(): Promise<void> {
    const { log } = this.opts;
    const t0 = this.clock.monoMs();
    this.wal = await Wal.open({ dir: `${this.opts.dataDir}/wal`, log });
    const cp = await this.wal.loadCheckpoint();
    this.state = cp ? MetaState.restore(cp.image) : new MetaState();
    let replayed = 0;
    for await (const rec of this.wal.readFrom((cp?.index ?? 0) + 1)) {
      assert.equal(rec.type, WAL_TYPE_META_OP, `unknown WAL record type ${rec.type} at index ${rec.index}`);
      this.state.apply(MetaOp.decode(rec.payload));
      replayed++;
    }
    this.epoch = Math.max(1, this.wal.lastEpoch);
    log.info({ checkpointIndex: cp?.index ?? 0, replayed, lastIndex: this.wal.lastIndex, ms: Math.round(this.clock.monoMs() - t0), ...this.state.counts() }, 'metadata recovered');

    this.server = new grpc.Server({ 'grpc.max_receive_message_length': 64 * 1024 * 1024 });
    this.server.addService(MasterService, this.handlers());
    const port = await bindServer(this.server, this.opts.listen);
    const host = this.opts.listen.slice(0, this.opts.listen.lastIndexOf(':'));
    this.addr = this.opts.advertise ?? `${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`;
    this.admin = await startAdminServer({
      listen: this.opts.adminListen,
      registry: this.metrics,
      log,
      readiness: () => null,
      routes: { '/status': () => this.status() },
    });
    this.tickTimer = setInterval(() => this.tick(), Math.min(1000, Math.max(100, this.opts.deadAfterMs / 4)));
    log.info({ id: this.opts.id, addr: this.addr, admin: this.admin.addr }, 'master serving');
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.tickTimer) clearInterval(this.tickTimer);
    await new Promise<void>((resolve) => (this.server ? this.server.tryShutdown(() => resolve()) : resolve()));
    this.server?.forceShutdown();
    await this.admin?.close();
    await this.lastDurable.catch(() => undefined);
    await this.wal?.close();
  }

  private tick(): void {
    const died = this.registry.tick(this.clock.monoMs());
    for (const id of died) this.opts.log.warn({ node: id }, 'chunkserver declared dead');
  }

  // ------------------------------------------------------------ the write path

  /**
   * Applies one operation and appends its record, synchronously (so log order is apply
   * order, and a rejected operation throws here with nothing written). `durable`
   * resolves once the record is on disk; only then may the caller answer.
   */
  private applyAndLog(kind: string, op: MetaOp): { result: ApplyResult; durable: Promise<unknown> } {
    if (this.stopping) throw new GfsError('UNAVAILABLE', 'master is shutting down');
    if (op.requestId) {
      const prior = this.state.seenRequest(op.requestId);
      if (prior !== undefined) {
        this.opsTotal.inc({ op: kind, outcome: 'retry' });
        return { result: prior, durable: this.lastDurable };
      }
    }
    let result: ApplyResult;
    try {
      result = this.state.apply(op);
    } catch (e) {
      this.opsTotal.inc({ op: kind, outcome: 'rejected' });
      throw e;
    }
    const started = this.clock.monoMs();
    const durable = this.wal.append(this.epoch, WAL_TYPE_META_OP, MetaOp.encode(op).finish()).then(() => {
      this.walAppendSeconds.observe((this.clock.monoMs() - started) / 1000);
      this.opsTotal.inc({ op: kind, outcome: 'ok' });
      if (++this.recordsSinceCheckpoint >= (this.opts.checkpointEveryRecords ?? limits.checkpointEveryRecords)) {
        void this.checkpoint();
      }
    }, (e: Error) => {
      // Memory is now ahead of the disk: the only safe move is to stop and replay.
      this.opts.log.fatal({ err: e.message }, 'WAL append failed; stopping');
      process.exit(70);
    });
    this.lastDurable = durable;
    return { result, durable };
  }

  /** Applies and logs one operation; resolves once it is durable. */
  private async commit(kind: string, op: MetaOp): Promise<ApplyResult> {
    const { result, durable } = this.applyAndLog(kind, op);
    await durable;
    return result;
  }

  async checkpoint(): Promise<void> {
    if (this.checkpointing) return;
    this.checkpointing = true;
    try {
      // State and log are in step here (same synchronous section): the image covers lastIndex.
      const index = this.wal.lastIndex;
      const image = this.state.snapshot();
      this.recordsSinceCheckpoint = 0;
      await this.lastDurable;
      await this.wal.writeCheckpoint({ index, epoch: this.epoch, image });
      this.opts.log.info({ index, bytes: image.length }, 'checkpoint written');
    } catch (e) {
      this.opts.log.error({ err: (e as Error).message }, 'checkpoint failed');
    } finally {
      this.checkpointing = false;
    }
  }

  // ------------------------------------------------------------ handlers

  private handlers(): MasterServer {
    const now = () => this.clock.nowMs();
    return {
      createFile: unaryHandler(async (req) => {
        const path = normalizeFilePath(req.path);
        const replication = req.replication || this.opts.replicationDefault || limits.replicationDefault;
        if (replication < 1 || replication > limits.replicationMax) {
          throw new GfsError('INVALID_ARGUMENT', `replication must be 1..${limits.replicationMax}`);
        }
        if (!(req.requestId && this.state.seenRequest(req.requestId))) this.state.checkCreate(path, req.overwrite);
        // Throws here, with nothing written, if the create is refused.
        const created = this.applyAndLog('create', MetaOp.fromPartial({
          requestId: req.requestId,
          createFile: { inode: this.state.nextInode, path, overwrite: req.overwrite, replication, contentType: req.contentType, metadata: req.metadata, mtimeMs: now() },
        }));
        const inode = created.result.inode!;
        if (!req.allocateChunk) {
          await created.durable;
          return { inode };
        }
        // The create record and the first chunk's share one group commit. If no chunk can
        // be placed, the create still stands: the client's own allocate call then fails
        // with the reason and it aborts the file.
        const allocated = this.allocate(inode, [], req.requestId ? `${req.requestId}/chunk` : '').catch(() => ({ chunk: undefined }));
        const [, { chunk }] = await Promise.all([created.durable, allocated]);
        return { inode, firstChunk: chunk };
      }),

      allocateChunk: unaryHandler(async (req) => this.allocate(req.inode, req.excludeNodes, req.requestId)),

      commitChunk: unaryHandler(async (req) => {
        await this.commitChunk(req);
        return {};
      }),

      abandonChunk: unaryHandler(async (req) => {
        await this.commit('abandonChunk', MetaOp.fromPartial({ abandonChunk: { inode: req.inode, handle: req.handle } }));
        return {};
      }),

      completeFile: unaryHandler(async (req) => {
        // Commit of the last chunk and the completion share one group commit.
        const committed = req.lastChunk ? this.commitChunk(req.lastChunk) : undefined;
        const completed = this.commit('complete', MetaOp.fromPartial({
          requestId: req.requestId, completeFile: { inode: req.inode, size: req.size, checksum: req.checksum, mtimeMs: now() },
        }));
        await Promise.all([committed, completed]);
        const file = this.state.fileByInode(req.inode);
        if (!file) throw new GfsError('NO_SUCH_FILE', `inode ${req.inode} vanished`);
        return this.fileInfo(file);
      }),
      abortFile: unaryHandler(async (req) => {
        await this.commit('abort', MetaOp.fromPartial({ abortFile: { inode: req.inode } }));
        return {};
      }),

      stat: unaryHandler(async (req) => {
        const node = this.state.stat(normalizePath(req.path));
        return node.kind === 'file' ? this.fileInfo(node) : this.dirInfo(node.path, node.mtimeMs);
      }),

      list: unaryHandler(async (req) => {
        const limit = Math.min(req.limit || 10_000, 100_000);
        const { entries, truncated } = this.state.list(normalizePath(req.path), { recursive: req.recursive, limit, startAfter: req.startAfter });
        return {
          entries: entries.map((e) => (e.kind === 'file' ? { ...this.fileInfo(e), chunks: [] } : this.dirInfo(e.path, e.mtimeMs))),
          truncated,
        };
      }),

      mkdir: unaryHandler(async (req) => {
        const path = normalizePath(req.path);
        this.state.checkMkdir(path);
        await this.commit('mkdir', MetaOp.fromPartial({ requestId: req.requestId, mkdir: { path, mtimeMs: now() } }));
        return {};
      }),

      rename: unaryHandler(async (req) => {
        const source = normalizePath(req.source);
        const target = normalizePath(req.target);
        this.state.checkRename(source, target, req.overwrite);
        await this.commit('rename', MetaOp.fromPartial({ requestId: req.requestId, rename: { source, target, overwrite: req.overwrite, mtimeMs: now() } }));
        return {};
      }),

      delete: unaryHandler(async (req) => {
        const path = normalizePath(req.path);
        this.state.checkDelete(path, req.recursive);
        await this.commit('delete', MetaOp.fromPartial({ requestId: req.requestId, delete: { path, recursive: req.recursive, mtimeMs: now() } }));
        return {};
      }),

      reportCorrupt: unaryHandler(async (req) => {
        this.opts.log.error({ handle: req.handle, node: req.nodeId, detail: req.detail }, 'replica reported corrupt');
        this.registry.dropReplica(req.handle, req.nodeId);
        return {};
      }),

      status: unaryHandler(async () => this.status()),

      nodes: unaryHandler(async (): Promise<NodesResponse> => ({
        nodes: [...this.registry.nodes.values()].map((n) => this.registry.toInfo(n)),
      })),

      heartbeat: unaryHandler(async (req: HeartbeatRequest): Promise<HeartbeatResponse> => {
        if (!req.nodeId) throw new GfsError('INVALID_ARGUMENT', 'heartbeat without a node id');
        const { needFullReport, revived } = this.registry.heartbeat(req, this.clock.monoMs(), this.clock.nowMs());
        if (revived) this.opts.log.info({ node: req.nodeId, addr: req.addr }, 'chunkserver back');
        for (const handle of req.corrupt) {
          this.opts.log.error({ handle, node: req.nodeId }, 'replica reported corrupt');
          this.registry.dropReplica(handle, req.nodeId);
        }
        return { needFullReport, epoch: this.epoch, commands: [] };
      }),
    };
  }

  /**
   * Allocates the next chunk of a file being written. A retried allocate gets the chunk
   * it allocated before; its replicas were never told about it (the client did not get
   * the answer), so a fresh placement is fine.
   */
  private async allocate(inode: number, excludeNodes: string[], requestId: string): Promise<{ chunk: ChunkInfo }> {
    const file = this.state.checkWritable(inode);
    const nodes = this.placeChunk(file, new Set(excludeNodes));
    const result = await this.commit('allocate', MetaOp.fromPartial({
      requestId, allocateChunk: { inode: file.inode, handle: this.state.nextHandle, version: 1 },
    }));
    const handle = result.handle!;
    let offset = 0;
    for (const c of file.chunks) { if (c.handle === handle) break; offset += c.length; }
    if (nodes.length < file.replication) {
      this.opts.log.warn({ handle, replicas: nodes.length, goal: file.replication }, 'chunk allocated under-replicated: too few chunkservers alive');
    }
    return {
      chunk: {
        handle, version: result.version!, offset, length: 0, goal: file.replication,
        replicas: nodes.map((n) => ({ nodeId: n.id, addr: n.addr, zone: n.zone })),
      },
    };
  }

  private async commitChunk(req: { inode: number; handle: number; length: number; replicaNodes: string[] }): Promise<void> {
    await this.commit('commitChunk', MetaOp.fromPartial({ commitChunk: { inode: req.inode, handle: req.handle, length: req.length } }));
    const owner = this.state.chunkOwner(req.handle);
    this.registry.recordWrite(req.handle, owner?.ref.version ?? 1, req.length, req.replicaNodes);
  }

  private placeChunk(file: FileNode, exclude: Set<string>): NodeEntry[] {
    const alive = this.registry.alive();
    if (alive.length === 0) throw new GfsError('NO_CHUNKSERVERS', 'no chunkserver is alive');
    const chosen = choosePlacement(alive, file.replication, { exclude, random: this.random });
    if (chosen.length === 0) {
      throw new GfsError('NO_SPACE', `no chunkserver can take a new chunk (${alive.length} alive, ${exclude.size} excluded, or all full)`);
    }
    return chosen.map((c) => this.registry.nodes.get(c.id)!);
  }

  // ------------------------------------------------------------ views

  private fileInfo(f: FileNode): FileInfo {
    let offset = 0;
    const chunks: ChunkInfo[] = f.chunks.map((c) => {
      const replicas = this.registry.replicas(c.handle, c.version, c.length).map((n) => ({ nodeId: n.id, addr: n.addr, zone: n.zone }));
      const info: ChunkInfo = { handle: c.handle, version: c.version, offset, length: c.length, replicas, goal: f.replication };
      offset += c.length;
      return info;
    });
    return {
      path: f.path, inode: f.inode, isDir: false, size: f.size, mtimeMs: f.mtimeMs,
      state: f.state === 'sealed' ? FileState.FILE_STATE_SEALED : FileState.FILE_STATE_WRITING,
      chunks, contentType: f.contentType, checksum: f.checksum, replication: f.replication, metadata: f.metadata,
    };
  }

  private dirInfo(path: string, mtimeMs: number): FileInfo {
    return {
      path, inode: 0, isDir: true, size: 0, mtimeMs, state: FileState.FILE_STATE_UNSPECIFIED, chunks: [],
      contentType: '', checksum: '', replication: 0, metadata: {},
    };
  }

  status(): StatusResponse {
    let underReplicated = 0;
    let missing = 0;
    for (const c of this.state.allChunks()) {
      const live = this.registry.replicas(c.handle, c.version, c.length).length;
      if (live === 0) missing++;
      else if (live < c.replication) underReplicated++;
    }
    const nodes = [...this.registry.nodes.values()];
    return {
      masters: [{
        id: this.opts.id, addr: this.addr, role: 'leader', epoch: this.epoch, commitIndex: this.wal.lastIndex,
        appliedIndex: this.wal.lastIndex, lag: 0, pid: process.pid, adminAddr: this.admin?.addr ?? '',
      }],
      nodesAlive: nodes.filter((n) => n.alive).length,
      nodesDead: nodes.filter((n) => !n.alive).length,
      files: this.state.counts().files,
      chunks: this.state.counts().chunks,
      underReplicated,
      missing,
      capacityBytes: nodes.filter((n) => n.alive).reduce((s, n) => s + n.capacityBytes, 0),
      usedBytes: nodes.filter((n) => n.alive).reduce((s, n) => s + n.usedBytes, 0),
      safeMode: false,
    };
  }
}
