/**
 * A chunkserver process: the chunk store on disk, the data plane, heartbeats to every
 * master, and the admin HTTP port.
 *
 * Invariants:
 * - The node id comes from the data dir, never from the address: a chunkserver that
 *   comes back on another address is the same node.
 * - A master that does not know us (restart, failover) gets a full chunk report before
 *   any delta; a full report lists every chunk known corrupt, so a new master never
 *   mistakes a corrupt replica for a healthy one.
 * - Commands are obeyed only from a reply whose epoch is at least the newest seen
 *   (fencing: a deposed leader cannot delete or copy anything).
 * - A DELETE removes only a replica at or below the version the master named.
 */
import * as fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { Metric, Registry } from 'prom-client';
import { MasterClient, ChunkCommand_Kind, type HeartbeatRequest, type HeartbeatResponse } from '../../gen/gfs';
import { startAdminServer, newRegistry, type AdminServer } from '../common/admin-http';
import { callUnary, grpcChannelOptions } from '../common/grpc';
import { CLUSTER_SECRET_HEADER } from '../common/auth';
import { limits } from '../common/limits';
import type { Logger } from '../common/log';
import { sleep, systemClock, type Clock, type Timer } from '../common/clock';
import { ChunkStore } from './chunk-store';
import { loadOrCreateNodeId } from './node-identity';
import { DataServer } from './data-server';
import { createChunkserverMetrics, type DataPlaneMetrics } from './metrics';
import { ProcessEvents } from '../events';
import { IoRate } from '../common/io-rate';
import { ForegroundActivity } from './foreground';
import { TokenBucket } from '../common/token-bucket';
import { Replicator } from './replicator';
import { Scrubber } from './scrubber';
import { readReplica } from '../dataplane';

export interface ChunkserverOptions {
  dataDir: string;
  listen: string;
  advertise?: string;
  adminListen: string;
  masters: string[];
  /** Sent with every heartbeat (x-gfs-cluster-secret) when the masters require one (--cluster-secret-file). */
  clusterSecret?: string;
  tier: string;
  zone: string;
  heartbeatIntervalMs: number;
  log: Logger;
  clock?: Clock;
  capacityBytes?: number;
  /** A full scrub pass takes about this long (default limits.scrubIntervalMs). */
  scrubIntervalMs?: number;
  /** The scrubber never reads faster (default limits.scrubBytesPerSec). */
  scrubBytesPerSec?: number;
  /** REPLICATE copies in at most this fast, all together (default limits.replicateBytesPerSec). */
  replicateBytesPerSec?: number;
  /** The copy rate while the node serves clients (limits.replicateBytesPerSecBusy). */
  replicateBytesPerSecBusy?: number;
  /** Record-append chunks end at this size (default limits.chunkBytesMax; tests use small ones). */
  appendChunkBytes?: number;
  /** NATS server(s): this node announces process.started/stopping there (docs/EVENTS.md). */
  nats?: string;
  /** The cluster token of the event subjects (the masters' --cluster). */
  cluster?: string;
}

interface IoSample { readBytesPerSec: number; writeBytesPerSec: number; replicatedBytesTotal: number }

interface MasterLink {
  addr: string;
  client: MasterClient;
  needFull: boolean;
  lastFullMonoMs: number;
  changed: Set<number>;
  removed: Set<number>;
  corrupt: Set<number>;
  replicateFailed: Set<number>;
  inFlight: boolean;
}

export class Chunkserver {
  nodeId = '';
  private store!: ChunkStore;
  private data!: DataServer;
  private admin!: AdminServer;
  private metrics!: DataPlaneMetrics;
  private events: ProcessEvents | undefined;
  private registry!: Registry;
  private readonly foreground: ForegroundActivity;
  private readonly readRate = new IoRate(limits.ioRateWindowMs);
  private readonly writeRate = new IoRate(limits.ioRateWindowMs);
  private links: MasterLink[] = [];
  private timer: Timer | undefined;
  private heartbeatsOk = 0;
  private readonly clock: Clock;
  private replicator!: Replicator;
  private scrubber!: Scrubber;
  /** Newest master epoch seen in a reply: older ones are fenced off. */
  private epochSeen = 0;

  /**
   * The data dir's file system: its device id and size (Node exposes no statfs f_fsid).
   * Nodes sharing a disk report the same id, so df counts the disk once.
   */
  private fsId(capacityBytes: number): string {
    try {
      return `${fs.statSync(this.opts.dataDir).dev}:${capacityBytes}`;
    } catch {
      return '';
    }
  }

  constructor(private readonly opts: ChunkserverOptions) {
    this.clock = opts.clock ?? systemClock;
    this.foreground = new ForegroundActivity(() => this.clock.monoMs());
  }

  get dataAddr(): string { return this.data.addr; }
  get adminAddr(): string { return this.admin.addr; }

  async start(): Promise<void> {
    const { log } = this.opts;
    this.nodeId = await loadOrCreateNodeId(this.opts.dataDir);
    this.store = await ChunkStore.open({
      dir: this.opts.dataDir, log, tier: this.opts.tier, capacityBytes: this.opts.capacityBytes, clock: this.clock,
    });
    const registry = newRegistry('chunkserver');
    this.registry = registry;
    this.metrics = createChunkserverMetrics(registry);
    this.data = new DataServer({
      listen: this.opts.listen,
      advertise: this.opts.advertise,
      store: this.store,
      log,
      metrics: this.metrics,
      nodeId: this.nodeId,
      onCorrupt: (handle) => this.markCorrupt(handle),
      onChunkChanged: (handle) => { for (const l of this.links) l.changed.add(handle); },
      foreground: this.foreground,
      clock: this.clock,
      appendChunkBytes: this.opts.appendChunkBytes,
      backgroundReads: new TokenBucket(this.opts.replicateBytesPerSecBusy ?? limits.replicateBytesPerSecBusy, limits.readPieceBytes, () => this.clock.monoMs()),
    });
    await this.data.start();
    this.replicator = new Replicator({
      store: this.store,
      rateBytesPerSec: this.opts.replicateBytesPerSec ?? limits.replicateBytesPerSec,
      busyRateBytesPerSec: this.opts.replicateBytesPerSecBusy ?? limits.replicateBytesPerSecBusy,
      busy: () => this.foreground.busy(),
      concurrencyMax: limits.replicateConcurrencyMax,
      fetch: (addr, handle, version, offset, length, urgent) => readReplica(addr, handle, version, offset, length, { background: true, urgent }),
      nowMs: () => this.clock.monoMs(),
      sleep: (ms) => sleep(this.clock, ms),
      log: log.child({ component: 'replicator' }),
      onImported: (handle) => {
        for (const l of this.links) { l.changed.add(handle); l.removed.delete(handle); }
        this.heartbeatAll();
      },
      onFailed: (handle) => { for (const l of this.links) l.replicateFailed.add(handle); },
      registry,
    });
    this.scrubber = new Scrubber({
      store: this.store,
      intervalMs: this.opts.scrubIntervalMs ?? limits.scrubIntervalMs,
      rateBytesPerSec: this.opts.scrubBytesPerSec ?? limits.scrubBytesPerSec,
      clock: this.clock,
      log: log.child({ component: 'scrubber' }),
      onCorrupt: (handle) => this.markCorrupt(handle),
      registry,
    });
    this.admin = await startAdminServer({
      listen: this.opts.adminListen,
      registry,
      log,
      readiness: () => (this.heartbeatsOk > 0 ? null : 'no master has answered a heartbeat yet'),
      routes: { '/status': () => ({ nodeId: this.nodeId, addr: this.data.addr, chunks: this.store.list().length }) },
    });
    this.links = this.opts.masters.map((addr) => ({
      addr,
      client: new MasterClient(addr, grpc.credentials.createInsecure(), grpcChannelOptions),
      needFull: true,
      lastFullMonoMs: 0,
      changed: new Set(),
      removed: new Set(),
      corrupt: new Set(this.store.corruptHandles()),
      replicateFailed: new Set(),
      inFlight: false,
    }));
    log.info({ nodeId: this.nodeId, addr: this.data.addr, admin: this.admin.addr, chunks: this.store.list().length }, 'chunkserver started');
    this.heartbeatAll();
    this.timer = this.clock.every(this.opts.heartbeatIntervalMs, () => this.heartbeatAll());
    this.scrubber.start();
    if (this.opts.nats) {
      this.events = new ProcessEvents({
        nats: this.opts.nats, cluster: this.opts.cluster ?? 'default', source: `chunkserver/${this.nodeId}`, log, clock: this.clock, random: Math.random, metrics: registry,
      });
      this.events.emit('process.started', { role: 'chunkserver', node: this.nodeId, addr: this.data.addr, tier: this.opts.tier, zone: this.opts.zone });
    }
  }

  async stop(): Promise<void> {
    await this.events?.stop({ role: 'chunkserver', node: this.nodeId, addr: this.data?.addr });
    this.timer?.cancel();
    this.replicator?.close();
    await this.scrubber?.stop();
    for (const l of this.links) l.client.close();
    await this.data?.close();
    await this.admin?.close();
    await this.store?.close();
  }

  private markCorrupt(handle: number): void {
    for (const l of this.links) l.corrupt.add(handle);
    this.heartbeatAll();
  }

  private heartbeatAll(): void {
    // One I/O sample per round: every master hears the same rates.
    const io = this.sampleIo();
    io.catch(() => undefined); // awaited by each heartbeat
    for (const link of this.links) void this.heartbeat(link, io);
  }

  private async heartbeat(link: MasterLink, ioSample: Promise<IoSample>): Promise<void> {
    if (link.inFlight) return;
    link.inFlight = true;
    const now = this.clock.monoMs();
    const full = link.needFull || now - link.lastFullMonoMs >= limits.fullReportIntervalMs;
    const changed = [...link.changed];
    const removed = [...link.removed];
    // A full report names every corrupt replica: the master rebuilds its view from it.
    const corrupt = full ? [...new Set([...this.store.corruptHandles(), ...link.corrupt])] : [...link.corrupt];
    const replicateFailed = [...link.replicateFailed];
    link.changed.clear();
    link.removed.clear();
    link.replicateFailed.clear();
    try {
      const space = await this.store.space();
      this.metrics.usedBytes.set(space.usedBytes);
      this.metrics.capacityBytes.set(space.capacityBytes);
      this.metrics.freeBytes.set(space.freeBytes);
      this.metrics.chunks.set(this.store.chunkCount);
      // Every chunk only in a full report: a delta costs what changed, not the whole store.
      const report = full ? this.store.list() : changed.map((h) => this.store.get(h)).filter((c) => c !== undefined);
      const io = await ioSample;
      const req: HeartbeatRequest = {
        nodeId: this.nodeId,
        // Append leases held as primary: the leader renews those still open (LOG-STREAMS.md).
        leases: this.data.leases.held().map((l) => ({ handle: l.handle, version: l.version, durationMs: 0 })),
        addr: this.data.addr,
        adminAddr: this.admin.addr,
        zone: this.opts.zone,
        tier: this.opts.tier,
        capacityBytes: space.capacityBytes,
        usedBytes: space.usedBytes,
        freeBytes: space.freeBytes,
        openWrites: this.data.openWrites,
        fullReport: full,
        chunks: report.map((c) => ({ handle: c.handle, version: c.version, length: c.length })),
        removed: full ? [] : removed,
        corrupt,
        replicateFailed,
        replicating: this.replicator.pending,
        readBytesPerSec: io.readBytesPerSec,
        writeBytesPerSec: io.writeBytesPerSec,
        replicatedBytesTotal: io.replicatedBytesTotal,
        foregroundBusy: this.foreground.localBusy(),
        fsId: this.fsId(space.capacityBytes),
      };
      const timeoutMs = Math.max(limits.heartbeatTimeoutMinMs, this.opts.heartbeatIntervalMs * limits.heartbeatTimeoutIntervals);
      const sentMono = this.clock.monoMs();
      const res: HeartbeatResponse = await callUnary(link.client, link.client.heartbeat, req, timeoutMs,
        this.opts.clusterSecret ? { [CLUSTER_SECRET_HEADER]: this.opts.clusterSecret } : {});
      this.heartbeatsOk++;
      // A renewal counts from when the heartbeat was sent: never later than the leader's view of it.
      for (const l of res.leases ?? []) this.data.leases.renew(l.handle, l.version, sentMono + l.durationMs);
      for (const h of corrupt) link.corrupt.delete(h);
      if (full) { link.needFull = false; link.lastFullMonoMs = now; }
      if (res.needFullReport) link.needFull = true;
      if (res.clusterBusy) this.foreground.noteClusterBusy(this.opts.heartbeatIntervalMs * limits.clusterBusyHeartbeats);
      await this.runCommands(res);
    } catch (e) {
      // Not delivered: report the same changes next time.
      for (const h of changed) link.changed.add(h);
      for (const h of removed) link.removed.add(h);
      for (const h of replicateFailed) link.replicateFailed.add(h);
      link.needFull = link.needFull || full;
      this.metrics.heartbeatFailures.inc();
      this.opts.log.debug({ master: link.addr, err: (e as Error).message }, 'heartbeat failed');
    } finally {
      link.inFlight = false;
    }
  }

  /**
   * Recent disk I/O from the byte counters the data plane and the replicator keep:
   * verified bytes sent (reads, and clone sources) and bytes written (chain writes, and
   * clones copied in). The scrubber's reads are left out: paced to the same low rate
   * on every node, they would not tell one node's load from another's.
   */
  private async sampleIo(): Promise<IoSample> {
    const [read, written, copied] = await Promise.all([
      counterTotal(this.metrics.bytesRead),
      counterTotal(this.metrics.bytesWritten),
      counterTotal(this.registry.getSingleMetric('gfs_chunkserver_replicated_bytes_total')),
    ]);
    const now = this.clock.monoMs();
    return {
      readBytesPerSec: Math.round(this.readRate.sample(read, now)),
      writeBytesPerSec: Math.round(this.writeRate.sample(written + copied, now)),
      replicatedBytesTotal: copied,
    };
  }

  private async runCommands(res: HeartbeatResponse): Promise<void> {
    if (res.epoch < this.epochSeen) {
      if (res.commands.length > 0) this.opts.log.warn({ epoch: res.epoch, newest: this.epochSeen, commands: res.commands.length }, 'ignoring commands from a deposed master');
      return;
    }
    this.epochSeen = res.epoch;
    for (const cmd of res.commands) {
      try {
        if (cmd.kind === ChunkCommand_Kind.DELETE) {
          const have = this.store.get(cmd.handle);
          // Only delete the replica the master meant: a newer version may have arrived since.
          if (have && have.version <= cmd.version) {
            await this.store.delete(cmd.handle);
            for (const l of this.links) { l.removed.add(cmd.handle); l.changed.delete(cmd.handle); l.corrupt.delete(cmd.handle); }
            this.opts.log.info({ handle: cmd.handle, version: have.version }, 'deleted replica on master command');
          }
        } else if (cmd.kind === ChunkCommand_Kind.REPLICATE) {
          this.replicator.enqueue({ handle: cmd.handle, version: cmd.version, sourceAddr: cmd.sourceAddr, length: cmd.length, urgent: cmd.urgent });
        } else if (cmd.kind === ChunkCommand_Kind.VERIFY) {
          this.scrubber.verifySoon(cmd.handle);
        }
      } catch (e) {
        this.opts.log.warn({ handle: cmd.handle, kind: cmd.kind, err: (e as Error).message }, 'chunk command failed');
      }
    }
  }
}

async function counterTotal(metric: Metric | undefined): Promise<number> {
  if (!metric) return 0;
  return (await metric.get()).values.reduce((sum, v) => sum + v.value, 0);
}
