/**
 * The master process: start, stop, the election and the commit path. Metadata lives in
 * memory (MetaState), kept by a replicated WAL (replication/); the chunkserver registry
 * is fed by heartbeats; the chunk lifecycle (healing, balance, GC) runs while it leads.
 *
 * Invariants:
 * - The state only changes by applying committed log entries, in log order, on every
 *   master alike; an operation is acknowledged once its entry is committed (durable on a
 *   majority) and applied here. A storage failure stops the process.
 * - Only the serving leader proposes, and each proposal gets its own inode or handle id
 *   (reserved above everything applied or handed out), so ids never collide.
 * - Replica locations are soft state and never logged.
 * - A checkpoint is the state at exactly the applied index it is taken at.
 * - Chunk lifecycle (healing, GC) acts only while this master is leader and out of safe
 *   mode (lifecycle/lifecycle.ts holds the rules; this file only gives it a schedule).
 *
 * The gRPC handler table is rpc-service.ts, the operator's views admin-views.ts.
 */
import * as grpc from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { Counter, Histogram } from 'prom-client';
import { MasterService, MetaOp, type MasterStatus } from '../../gen/gfs';
import { GfsError } from '../common/errors';
import { limits } from '../common/limits';
import type { Logger } from '../common/log';
import { sleep, systemClock, type Clock, type Timer } from '../common/clock';
import { bindServer } from '../common/grpc';
import { startAdminServer, newRegistry, type AdminServer } from '../common/admin-http';
import { Wal } from '../wal';
import { ReplicatedLog, loadDurableState } from './replication/replicated-log';
import { ReplicationService, replicationService } from './replication/transport';
import { ENTRY_TYPE_NOOP, type Entry } from './replication/types';
import { Election } from './election';
import { MetaState, type ApplyResult } from './meta-state';
import { NodeRegistry } from './registry';
import { Lifecycle, lifecycleOptions } from './lifecycle/lifecycle';
import { AdminViews } from './admin-views';
import { masterService } from './rpc-service';
import { registerMasterGauges } from './master-metrics';
import { ChunkPlacer } from './chunk-placer';
import { LogService } from './logs/log-service';
import { StreamKeeper } from './streams/stream-keeper';
import { chunkStat, grantLease, querySealReplica, truncateReplica } from '../dataplane';
import { ClusterEvents } from './cluster-events';
import { NatsPublisher, checkClusterName } from '../events';
import { Guard, type AuthMode } from './auth/guard';
import { AuthCalls, Bootstrap, authHandlers } from './auth/auth-rpc';

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
  /** WAL segment size (tests use small ones so checkpoints can drop segments). */
  walSegmentBytes?: number;
  /** Safe mode lasts at least this long after start (default limits.safeModeMinMs). */
  safeModeMinMs?: number;
  /** ...and until this fraction of chunks has a reported replica, at most dead-after. */
  safeModeFraction?: number;
  trashPeriodMs?: number;
  orphanGraceMs?: number;
  /** A pending write whose writer is silent this long is aborted. */
  pendingTimeoutMs?: number;
  /** Cluster-wide re-replication bandwidth. */
  repairBytesPerSec?: number;
  repairClonesMax?: number;
  /** Nodes are never filled past this fraction by placement, healing or balancing. */
  fillCapRatio?: number;
  /** Automatic rebalancing above this fill spread from the mean; 0 = only on demand. */
  balanceThresholdRatio?: number;
  /** Automatic rebalance rounds this often (default limits.balanceIntervalMs). */
  balanceIntervalMs?: number;
  /** An append primary's lease (default limits.appendLeaseMs). */
  leaseMs?: number;
  /** Streams: rolls and retention are checked this often (default limits.streamTickMs). */
  streamTickMs?: number;
  /**
   * The master group: every member's id → its gRPC address (this one included). Empty
   * or absent: a standalone master, leader by itself.
   */
  peers?: ReadonlyMap<string, string>;
  /** etcd endpoints for the election (required with peers). */
  etcd?: string[];
  /** Election lease TTL. */
  electionTtlMs?: number;
  /** Election prefix: one per gfs cluster sharing an etcd; also the NATS subject's cluster token. */
  cluster?: string;
  /** NATS server(s) for cluster events (docs/EVENTS.md); absent: events are only kept for gfsctl events. */
  nats?: string;
  /** Recent events kept for gfsctl events --since (default limits.eventsHistoryMax). */
  eventsHistoryMax?: number;
  /** Token checks: auto (once a token exists), on (always), off (never). */
  auth?: AuthMode;
  /** Create a bootstrap admin token on an empty metadata and write it here (mode 0600). */
  bootstrapCredentials?: string;
  /** Chunkserver heartbeats must carry this secret (gfs master --cluster-secret-file). */
  clusterSecret?: string;
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
  private tickTimer: Timer | undefined;
  private electionTimer: Timer | undefined;
  private lifecycleTimer: Timer | undefined;
  private lifecycle!: Lifecycle;
  private views!: AdminViews;
  private logs!: LogService;
  private streams!: StreamKeeper;
  private streamTimer: Timer | undefined;
  private rlog!: ReplicatedLog;
  private election: Election | undefined;
  private events!: ClusterEvents;
  private nats: NatsPublisher | undefined;
  private bootstrap: Bootstrap | undefined;
  /** Ids handed to proposals not applied yet: each proposal gets its own, in log order. */
  private inodeReserved = 0;
  private handleReserved = 0;
  private lastDurable: Promise<unknown> = Promise.resolve();
  private stopping = false;
  addr = '';
  private readonly metrics = newRegistry('master');
  private readonly opsTotal = new Counter({ name: 'gfs_master_ops_total', help: 'Metadata operations by kind and outcome', labelNames: ['op', 'outcome'], registers: [this.metrics] });
  private readonly commitSeconds = new Histogram({ name: 'gfs_master_commit_seconds', help: 'Time from proposal to committed (durable on a majority) and applied', buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5], registers: [this.metrics] });

  constructor(private readonly opts: MasterOptions) {
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? Math.random;
    this.registry = new NodeRegistry(opts.deadAfterMs);
    registerMasterGauges(this.metrics, {
      state: () => this.state, registry: this.registry, walLastIndex: () => this.wal?.lastIndex ?? 0, lifecycle: () => this.lifecycle,
      walStats: () => this.wal?.stats, proposeStats: () => this.rlog?.proposeStats,
      logs: () => this.logs, streams: () => this.streams,
      isLeader: () => this.isLeader(), epoch: () => this.currentEpoch(), fillCapRatio: this.opts.fillCapRatio ?? limits.fillCapRatio,
    });
  }

  get adminAddr(): string { return this.admin.addr; }

  async start(): Promise<void> {
    const { log } = this.opts;
    const t0 = this.clock.monoMs();
    this.wal = await Wal.open({ dir: `${this.opts.dataDir}/wal`, log, segmentBytes: this.opts.walSegmentBytes });
    const durable = await loadDurableState(this.opts.dataDir, this.wal);
    this.state = durable.checkpoint ? MetaState.restore(durable.checkpoint.image) : new MetaState();
    log.info({ checkpointIndex: durable.checkpoint?.index ?? 0, entries: durable.entries.length, promisedEpoch: durable.promisedEpoch, ms: Math.round(this.clock.monoMs() - t0), ...this.state.counts() }, 'metadata loaded; committed entries are applied as the log learns they are committed');
    this.createEvents(durable.checkpoint?.index ?? 0);
    this.createLifecycle();
    this.server = new grpc.Server({ 'grpc.max_receive_message_length': limits.masterGrpcMessageBytesMax });
    this.server.addService(MasterService, this.service());
    this.server.addService(ReplicationService, replicationService((from, msg) => this.rlog?.receive(from, msg)));
    const port = await bindServer(this.server, this.opts.listen);
    const host = this.opts.listen.slice(0, this.opts.listen.lastIndexOf(':'));
    this.addr = this.opts.advertise ?? `${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`;
    const members = this.opts.peers && this.opts.peers.size > 0 ? this.opts.peers : new Map([[this.opts.id, this.addr]]);
    if (!members.has(this.opts.id)) throw new GfsError('INVALID_ARGUMENT', `--peers must include this master (${this.opts.id})`);
    this.rlog = new ReplicatedLog({
      id: this.opts.id, members, dataDir: this.opts.dataDir, wal: this.wal, log: log.child({ component: 'replication' }), clock: this.clock,
      // A leader cut off from its followers (not from etcd) gives up as fast as a dead one is
      // replaced: one election TTL (etcd grants whole seconds, at least one).
      quorumTimeoutMs: Math.max(1000, this.opts.electionTtlMs ?? limits.electionTtlMs),
      apply: (entry) => this.applyEntry(entry),
      restore: (snap) => {
        this.state = MetaState.restore(snap.image);
        this.events.installed(snap.index);
        log.info({ index: snap.index, epoch: snap.epoch, bytes: snap.image.length }, 'installed a checkpoint from the leader');
      },
    }, durable);
    this.rlog.start();
    if (members.size > 1) {
      if (!this.opts.etcd || this.opts.etcd.length === 0) throw new GfsError('INVALID_ARGUMENT', 'a master group (--peers) needs --etcd for the election');
      await this.startElection();
    } else {
      // Standalone: leader by itself, with an epoch above anything on disk.
      const epoch = Math.max(durable.promisedEpoch, durable.checkpoint?.epoch ?? 0, durable.entries.at(-1)?.epoch ?? 0) + 1;
      this.rlog.becomeLeader(epoch, Number.MAX_SAFE_INTEGER);
      await this.waitServing(limits.standaloneServingTimeoutMs);
    }
    this.admin = await startAdminServer({
      listen: this.opts.adminListen,
      registry: this.metrics,
      log,
      readiness: () => null,
      routes: { '/status': () => this.views.status() },
    });
    const tickMs = Math.min(limits.masterTickMaxMs, Math.max(limits.masterTickMinMs, this.opts.deadAfterMs / limits.masterTicksPerDeadAfter));
    this.tickTimer = this.clock.every(tickMs, () => this.tick());
    this.bootstrap?.maybe(this.state, this.isLeader());
    // Safe mode counts from when the lifecycle starts deciding, not from when it was built.
    this.lifecycle.safeMode.restart(this.clock.monoMs());
    this.scheduleLifecycle(limits.lifecycleTickMs);
    this.streamTimer = this.clock.every(this.opts.streamTickMs ?? limits.streamTickMs, () => void this.streams.tick());
    log.info({ id: this.opts.id, addr: this.addr, admin: this.admin.addr }, 'master serving');
  }

  // ------------------------------------------------------------ chunk lifecycle

  /** The lifecycle, its views and the handler table see this process only through closures. */
  private createLifecycle(): void {
    const { log } = this.opts;
    const o = lifecycleOptions({ ...this.opts, safeModeMaxMs: this.opts.deadAfterMs });
    this.lifecycle = new Lifecycle({
      state: () => this.state, registry: this.registry, commit: (kind, op) => this.commit(kind, op), durable: () => this.lastDurable,
      isLeader: () => this.isLeader(), clock: this.clock, random: this.random, log, onCloned: (c) => this.events.chunkHealed(c),
    }, o);
    this.views = new AdminViews({
      state: () => this.state, registry: this.registry, lifecycle: () => this.lifecycle, commit: (kind, op) => this.commit(kind, op),
      isLeader: () => this.isLeader(), requireLeader: () => this.requireLeader(), masterInfo: () => this.masterInfo(),
      clock: this.clock, log, retention: (nowMs) => this.streams.retentionItems(nowMs), retentionNow: () => this.streams.tick(),
    });
    this.logs = new LogService({
      state: () => this.state, registry: this.registry, commit: (kind, op) => this.commit(kind, op), isLeader: () => this.isLeader(),
      plane: { grantLease, querySealReplica, truncateReplica, chunkStat }, clock: this.clock, log: log.child({ component: 'logs' }),
      leaseMs: this.opts.leaseMs ?? limits.appendLeaseMs, lifecycle: () => this.lifecycle,
      placer: new ChunkPlacer({ registry: this.registry, lifecycle: () => this.lifecycle, clock: this.clock, random: this.random }),
      reserveInode: () => this.reserveInode(), reserveHandle: () => this.reserveHandle(),
      replicationDefault: this.opts.replicationDefault ?? limits.replicationDefault,
    });
    this.streams = new StreamKeeper({
      state: () => this.state, commit: (kind, op) => this.commit(kind, op), isLeader: () => this.isLeader(),
      safeMode: () => this.lifecycle.safeMode.on, reserveInode: () => this.reserveInode(), clock: this.clock, log: log.child({ component: 'streams' }),
      openLength: async (f) => (await this.logs.committed(f)).openLength,
      sealLog: (path) => this.logs.targets.sealLog(path, ''), appendTarget: (req) => this.logs.targets.appendTarget(req),
    });
    log.info({
      safeModeMinMs: o.safeModeMinMs, trashPeriodMs: o.trashPeriodMs, orphanGraceMs: o.orphanGraceMs,
      pendingTimeoutMs: o.pendingTimeoutMs, repairBytesPerSec: o.repairBytesPerSec,
    }, 'chunk lifecycle configured; in safe mode until chunkservers report');
  }

  /** Cluster events: kept for gfsctl events, and published to NATS with --nats (never waited for). */
  private createEvents(appliedIndex: number): void {
    // The name is a subject token only when there is NATS; an election prefix may be any string.
    const cluster = this.opts.nats ? checkClusterName(this.opts.cluster ?? 'default') : this.opts.cluster ?? 'default';
    const log = this.opts.log.child({ component: 'events' });
    if (this.opts.nats) {
      this.nats = new NatsPublisher({ url: this.opts.nats, name: `gfs master ${this.opts.id}`, log, clock: this.clock, random: this.random, metrics: this.metrics });
      this.nats.start();
    }
    this.events = new ClusterEvents({
      id: this.opts.id, cluster, isLeader: () => this.isLeader(), currentEpoch: () => this.currentEpoch(),
      fileByInode: (inode) => this.state.fileByInode(inode), sink: this.nats, clock: this.clock, log,
    }, appliedIndex, this.opts.eventsHistoryMax);
    this.registry.listener = {
      nodeUp: (node, revived) => this.events.nodeUp(node, revived),
      nodeDown: (node) => this.events.nodeDown(node),
      replicaCorrupt: (handle, nodeId) => this.events.replicaCorrupt(handle, nodeId),
    };
  }

  private service() {
    const guard = new Guard({ state: () => this.state, clock: this.clock, mode: this.opts.auth ?? 'auto', clusterSecret: this.opts.clusterSecret });
    const authHost = { state: () => this.state, commit: (kind: string, op: MetaOp) => this.commit(kind, op), guard, clock: this.clock, log: this.opts.log };
    if (this.opts.bootstrapCredentials) this.bootstrap = new Bootstrap(new AuthCalls(authHost), this.opts.bootstrapCredentials, this.opts.log);
    return masterService({
      extraHandlers: { ...authHandlers(authHost), events: this.events.handler(() => this.isLeader(), () => this.notLeader()) }, guard,
      state: () => this.state, registry: this.registry, lifecycle: () => this.lifecycle, views: this.views,
      commit: (kind, op) => this.commit(kind, op), isLeader: () => this.isLeader(), notLeader: () => this.notLeader(),
      reserveInode: () => this.reserveInode(), reserveHandle: () => this.reserveHandle(), currentEpoch: () => this.currentEpoch(),
      logs: this.logs, streams: this.streams, revision: () => this.rlog?.replica.appliedIndex ?? 0, replicationDefault: this.opts.replicationDefault, clock: this.clock, random: this.random, log: this.opts.log,
    });
  }

  /**
   * Rounds walk the whole chunk table, so on a large one the next round waits ten times
   * as long as the last took: the planner never takes more than ~10% of a core from
   * the metadata path, whatever the table size.
   */
  private scheduleLifecycle(delayMs: number): void {
    this.lifecycleTimer = this.clock.after(delayMs, () => {
      const started = this.clock.monoMs();
      try {
        if (!this.stopping) void this.lifecycle.tick(started).then(() => this.events.gcRound(this.lifecycle.collector));
      } finally {
        const took = this.clock.monoMs() - started;
        if (!this.stopping) this.scheduleLifecycle(Math.max(limits.lifecycleTickMs, limits.lifecycleCpuShareInverse * took));
      }
    });
  }

  /**
   * Standalone mode: this master is always the leader. With a master group this is where
   * the election's answer goes; lifecycle decisions stop the moment it turns false.
   */
  isLeader(): boolean {
    return !this.stopping && this.rlog?.replica.serving === true;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.events?.stop(); // long polls answer now, so the server can shut down
    this.lifecycle?.stop();
    this.tickTimer?.cancel();
    this.electionTimer?.cancel();
    this.lifecycleTimer?.cancel();
    this.streamTimer?.cancel();
    await new Promise<void>((resolve) => (this.server ? this.server.tryShutdown(() => resolve()) : resolve()));
    this.server?.forceShutdown();
    await this.admin?.close();
    await this.election?.stop();
    this.rlog?.close();
    await this.lastDurable.catch(() => undefined);
    await this.wal?.close();
    await this.nats?.stop();
  }

  private tick(): void {
    this.maybeCheckpoint();
    this.logs.tick();
    this.events.leadership(this.isLeader(), this.addr);
    this.bootstrap?.maybe(this.state, this.isLeader());
    const died = this.registry.tick(this.clock.monoMs());
    for (const id of died) {
      this.opts.log.warn({ node: id }, 'chunkserver declared dead');
      this.lifecycle.nodeDied(id);
    }
  }

  // ------------------------------------------------------------ the write path

  /**
   * Proposes one operation to the replicated log; resolves with its result once it is
   * committed (durable on a majority of masters) and applied here. Every master applies
   * the same committed entries in the same order, so a refused operation (say, a create
   * that lost a race) is refused identically everywhere and answers its caller with the
   * error. A retried request id answers with the first result without a new entry.
   */
  private async commit(kind: string, op: MetaOp): Promise<ApplyResult> {
    if (this.stopping) throw new GfsError('UNAVAILABLE', 'master is shutting down');
    if (op.requestId) {
      const prior = this.state.seenRequest(op.requestId);
      if (prior !== undefined) {
        this.opsTotal.inc({ op: kind, outcome: 'retry' });
        return prior;
      }
    }
    const started = this.clock.monoMs();
    const done = this.rlog.propose(WAL_TYPE_META_OP, MetaOp.encode(op).finish()) as Promise<ApplyResult>;
    this.lastDurable = done.catch(() => undefined);
    try {
      const result = await done;
      this.commitSeconds.observe((this.clock.monoMs() - started) / 1000);
      this.opsTotal.inc({ op: kind, outcome: 'ok' });
      return result;
    } catch (e) {
      const notLeader = (e as GfsError).code === 'NOT_LEADER';
      this.opsTotal.inc({ op: kind, outcome: notLeader ? 'not_leader' : 'rejected' });
      throw notLeader ? this.notLeader() : e;
    }
  }

  /** Applies one committed log entry (on every master, leader included). */
  private applyEntry(entry: Entry): ApplyResult | undefined {
    this.events.applying(entry);
    if (entry.type === ENTRY_TYPE_NOOP) return undefined;
    assert.equal(entry.type, WAL_TYPE_META_OP, `unknown log entry type ${entry.type} at index ${entry.index}`);
    const op = MetaOp.decode(entry.payload);
    const result = this.state.apply(op);
    this.logs.applied(op, result, entry.index);
    this.events.applied(entry, op, result);
    this.streams.watch.applied(op, result, entry.index);
    return result;
  }

  /** Inode and handle ids for proposals: above what is applied and what is already handed out. */
  private reserveInode(): number {
    this.inodeReserved = Math.max(this.inodeReserved, this.state.nextInode);
    return this.inodeReserved++;
  }

  private reserveHandle(): number {
    this.handleReserved = Math.max(this.handleReserved, this.state.nextHandle);
    return this.handleReserved++;
  }

  /** Checkpoints when enough entries were applied since the last one (state is at appliedIndex here). */
  private maybeCheckpoint(): void {
    const r = this.rlog?.replica;
    if (!r || r.appliedIndex - r.snapshotIndex < (this.opts.checkpointEveryRecords ?? limits.checkpointEveryRecords)) return;
    if (this.rlog.takeCheckpoint(this.state.snapshot())) this.opts.log.info({ index: r.appliedIndex }, 'checkpoint taken');
  }

  private async waitServing(timeoutMs: number): Promise<void> {
    const deadline = this.clock.monoMs() + timeoutMs;
    while (!this.rlog.replica.serving) {
      if (this.clock.monoMs() > deadline) throw new GfsError('TIMEOUT', 'the replicated log did not become ready');
      await sleep(this.clock, limits.servingPollMs);
    }
  }

  /** This master's line in status. */
  private masterInfo(): MasterStatus {
    const r = this.rlog?.replica;
    return {
      id: this.opts.id, addr: this.addr, role: this.roleName(), epoch: this.currentEpoch(),
      commitIndex: r?.commitIndex ?? 0, appliedIndex: r?.appliedIndex ?? 0,
      // How far this master's durable log is behind what it knows is committed.
      lag: Math.max(0, (r?.commitIndex ?? 0) - (r?.appliedIndex ?? 0)),
      pid: process.pid, adminAddr: this.admin?.addr ?? '',
    };
  }

  /** leader (serving), candidate (leading but still recovering the log) or follower. */
  private roleName(): string {
    const r = this.rlog?.replica;
    if (!r || r.role !== 'leader') return 'follower';
    return r.serving ? 'leader' : 'candidate';
  }

  private currentEpoch(): number {
    return this.rlog?.replica.leaderEpoch ?? this.rlog?.replica.promisedEpoch ?? 0;
  }

  /** Not the leader: the caller should go to the one we know of. */
  private notLeader(): GfsError {
    const hint = this.rlog.replica.leaderHint;
    const leader = hint ? this.clientAddrOf(hint) : undefined;
    return new GfsError('NOT_LEADER', 'this master is not the leader', { detail: leader ? { leader } : {} });
  }

  /**
   * Where clients reach a master: the address it advertises in the election (its
   * --advertise), not the --peers entry masters use among themselves, which may be
   * another network (or, in tests, a proxy that can be cut).
   */
  private clientAddrOf(id: string): string | undefined {
    const known = this.election?.currentLeader;
    return known?.memberId === id ? known.value : this.opts.peers?.get(id);
  }

  private requireLeader(): void {
    if (!this.isLeader()) throw this.notLeader();
  }

  private async startElection(): Promise<void> {
    const election = new Election({
      endpoints: this.opts.etcd!, prefix: `/gfs/${this.opts.cluster ?? 'default'}/election`, memberId: this.opts.id, value: this.addr,
      leaseTtlMs: this.opts.electionTtlMs ?? limits.electionTtlMs, log: this.opts.log.child({ component: 'election' }), clock: this.clock,
    });
    this.election = election;
    election.on('elected', (epoch: number) => {
      this.inodeReserved = 0;
      this.handleReserved = 0;
      const ok = this.rlog.becomeLeader(epoch, election.leaseValidUntilMonoMs);
      this.opts.log.info({ epoch, accepted: ok }, ok ? 'leading: recovering the log' : 'elected with an epoch not newer than one seen; waiting');
    });
    election.on('deposed', () => this.rlog.leaseLost(this.rlog.replica.leaderEpoch ?? 0));
    // Renew the core's view of the lease as etcd keepalives succeed.
    this.electionTimer = this.clock.every(limits.electionLeasePollMs, () => this.followElection(election));
    await election.start();
  }

  private followElection(election: Election): void {
    if (!election.isLeader) return;
    const epoch = this.rlog.replica.leaderEpoch;
    if (epoch !== null && election.epoch === epoch) {
      this.rlog.leaseRenewed(epoch, election.leaseValidUntilMonoMs);
    } else if (this.rlog.replica.role !== 'leader' && this.rlog.replica.promisedEpoch >= election.epoch) {
      // Our replication stepped down in this epoch (lease doubt, or a newer epoch seen):
      // it cannot lead in it again, so take a new, larger one.
      this.opts.log.warn({ epoch: election.epoch }, 'leadership in this epoch is over; campaigning for a new one');
      election.recampaign().catch((e: Error) => this.opts.log.warn({ err: e.message }, 'campaigning again failed'));
    }
  }
}
