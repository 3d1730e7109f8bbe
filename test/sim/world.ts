/**
 * A master group in a deterministic simulation: replicas (src/master/replication) over a
 * virtual clock, a simulated network (delay, loss, duplication, reordering, partitions),
 * simulated disks (sim-disk.ts: unsynced writes lost or torn by a crash), an election
 * service in the manner of etcd (strictly growing epochs, leases with a TTL; it may pick
 * a master whose log is behind; a master cut off from it keeps believing it leads until
 * its own lease runs out), per-master clocks that drift, and clients that propose
 * operations to whoever they think leads and retry elsewhere.
 *
 * Checkers run as the simulation goes (each throws SimFailure):
 * - applied entries are the same at each index on every master, applied in index order
 *   ("committed prefixes are identical", "applied order is the same everywhere");
 * - every acknowledged operation is committed, as proposed, at the index it was acked at;
 * - at most one master accepts or acknowledges writes per epoch;
 * - no master accepts a proposal once the election service has granted a newer epoch
 *   (the lease does its job);
 * - commitIndex never decreases on a master (within one run of its process);
 * - an AppendOk / FetchReply is sent only for entries durable on the sender's disk, and a
 *   PrepareOk only once the promise is durable;
 * - checkpoint images at the same index are identical everywhere.
 * finalCheck() adds: all masters converge to the same state, holding every acknowledged
 * operation.
 */
import assert from 'node:assert/strict';
import { Replica, type Effect, type Entry, type Message, type NodeId, type ReplicaOptions, type Snapshot } from '../../src/master/replication';
import { EventQueue } from './event-queue';
import { ENTRY_TYPE_KV, KvMachine, encodeKvOp, type KvOp } from './kv-machine';
import { Rng } from './prng';
import { SimDisk, type CrashDamage } from './sim-disk';

export class SimFailure extends Error {
  override name = 'SimFailure';
}

function fail(message: string): never {
  throw new SimFailure(message);
}

export interface NetworkConfig {
  lossRate: number;
  duplicateRate: number;
  delayMinMs: number;
  delayMaxMs: number;
  /** Share of messages that take the slow path: late enough to arrive after newer ones. */
  slowRate: number;
  slowDelayMaxMs: number;
}

export interface DiskConfig {
  syncMinMs: number;
  syncMaxMs: number;
  /** Chance that a crash tears the first unsynced WAL append. */
  tearRate: number;
}

export interface ElectionConfig {
  /** Grant leadership automatically when there is none (off in hand-written scenarios). */
  auto: boolean;
  leaseTtlMs: number;
  renewIntervalMs: number;
  grantDelayMinMs: number;
  grantDelayMaxMs: number;
  /** Chance that the service picks the master with the shortest log. */
  staleBias: number;
  /** Delay of each message between a master and the service. */
  messageDelayMaxMs: number;
}

export interface ReplicaTuning {
  heartbeatIntervalMs: number;
  leaseSafetyMarginMs: number;
  entriesPerMessageMax: number;
}

export interface WorldConfig {
  nodeCount: number;
  net: NetworkConfig;
  disk: DiskConfig;
  election: ElectionConfig;
  replica: ReplicaTuning;
  tickIntervalMs: number;
  /** A master checkpoints after applying this many entries. */
  checkpointEveryEntries: number;
  /** Largest clock rate error, e.g. 0.005 for ±0.5 %. */
  clockDriftMax: number;
  clients: number;
  clientTimeoutMs: number;
  clientThinkMaxMs: number;
  keys: number;
  /** Builds each replica (the broken-protocol tests pass a subclass). */
  createReplica?: (opts: ReplicaOptions) => Replica;
  /** Receives a line per notable event when set (GFS_SIM_TRACE). */
  trace?: (line: string) => void;
}

export const defaultWorldConfig: WorldConfig = {
  nodeCount: 3,
  net: { lossRate: 0, duplicateRate: 0, delayMinMs: 1, delayMaxMs: 4, slowRate: 0, slowDelayMaxMs: 60 },
  disk: { syncMinMs: 0, syncMaxMs: 2, tearRate: 0.5 },
  election: {
    auto: true, leaseTtlMs: 300, renewIntervalMs: 75, grantDelayMinMs: 5, grantDelayMaxMs: 40, staleBias: 0.3, messageDelayMaxMs: 3,
  },
  replica: { heartbeatIntervalMs: 20, leaseSafetyMarginMs: 30, entriesPerMessageMax: 16 },
  tickIntervalMs: 20,
  checkpointEveryEntries: 25,
  clockDriftMax: 0.005,
  clients: 2,
  clientTimeoutMs: 150,
  clientThinkMaxMs: 20,
  keys: 5,
};

/** A master's clock: monotonic, runs at its own rate, which a scenario may change. */
class NodeClock {
  private anchorRealMs = 0;
  private anchorLocalMs: number;

  constructor(private readonly world: World, offsetMs: number, private rate: number) {
    this.anchorRealMs = world.nowMs;
    this.anchorLocalMs = offsetMs;
  }

  monoMs(): number {
    return this.anchorLocalMs + (this.world.nowMs - this.anchorRealMs) * this.rate;
  }

  setRate(rate: number): void {
    this.anchorLocalMs = this.monoMs();
    this.anchorRealMs = this.world.nowMs;
    this.rate = rate;
  }
}

interface WaitingProposal {
  client: SimClient | null;
  attempt: number;
  op: KvOp;
  entry: { epoch: number; index: number; payload: Uint8Array };
}

export class SimNode {
  readonly disk = new SimDisk();
  up = false;
  incarnation = 0;
  replica: Replica | null = null;
  machine = new KvMachine();
  clock!: NodeClock;
  readonly clockRate: number;
  electionConnected = true;
  /** Network partition group: messages flow only within a group. */
  group = 0;
  /** Time the last issued write will be synced (syncs complete in order). */
  diskSyncedAtMs = 0;
  /** Extra sync latency a scenario sets to hold writes unsynced. */
  diskSlowMs = 0;
  appliedIndex = 0;
  commitSeen = 0;
  sinceCheckpoint = 0;
  checkpointDue = false;
  readonly proposals = new Map<number, WaitingProposal>();

  constructor(readonly id: NodeId, clockRate: number) {
    this.clockRate = clockRate;
  }
}

class SimClient {
  seq = 0;
  op: KvOp | null = null;
  target: NodeId | null = null;
  attempt = 0;
  stopped = false;
  constructor(readonly id: string) {}
}

export interface AckedOp {
  op: KvOp;
  node: NodeId;
  epoch: number;
  index: number;
}

export interface WorldStats {
  events: number;
  messages: number;
  acked: number;
  grants: number;
  crashes: number;
  /** How often each protocol path ran: message kinds, storage operations, torn writes, restores, ... */
  coverage: Map<string, number>;
}

export class World {
  readonly queue = new EventQueue();
  nowMs = 0;
  readonly rng: Rng;
  readonly cfg: WorldConfig;
  readonly nodes = new Map<NodeId, SimNode>();
  readonly ids: NodeId[];
  readonly clients: SimClient[] = [];
  readonly acked: AckedOp[] = [];
  readonly stats: WorldStats = { events: 0, messages: 0, acked: 0, grants: 0, crashes: 0, coverage: new Map() };

  // the election service
  serviceEpoch = 0;
  serviceLeader: NodeId | null = null;
  serviceExpiresAtMs = 0;
  private electionScheduled = false;

  // checker state
  private readonly committed: (Entry | undefined)[] = [];
  private readonly images = new Map<number, Uint8Array>();
  private readonly writerOfEpoch = new Map<number, NodeId>();
  private opSeq = 0;

  constructor(cfg: WorldConfig, seed: number) {
    this.cfg = cfg;
    this.rng = new Rng(seed);
    this.ids = Array.from({ length: cfg.nodeCount }, (_, i) => `m${i}`);
    for (const id of this.ids) {
      const drift = (this.rng.next() * 2 - 1) * cfg.clockDriftMax;
      this.nodes.set(id, new SimNode(id, 1 + drift));
    }
  }

  // ================================================================== running

  start(): void {
    for (const id of this.ids) this.restart(id);
    this.every(10, () => this.electionServiceTick());
    for (let i = 0; i < this.cfg.clients; i++) {
      const client = new SimClient(`c${i}`);
      this.clients.push(client);
      this.at(this.rng.between(0, 20), () => this.clientStep(client));
    }
  }

  at(delayMs: number, run: () => void): void {
    this.queue.push(this.nowMs + delayMs, run);
  }

  private every(periodMs: number, run: () => void): void {
    const loop = (): void => {
      run();
      this.at(periodMs, loop);
    };
    this.at(periodMs, loop);
  }

  /** Runs every event up to `untilMs` (absolute virtual time). */
  runUntil(untilMs: number): void {
    for (;;) {
      const next = this.queue.peekTimeMs();
      if (next === undefined || next > untilMs) break;
      this.step();
    }
    this.nowMs = Math.max(this.nowMs, untilMs);
  }

  runFor(ms: number): void {
    this.runUntil(this.nowMs + ms);
  }

  /** Runs until `done()` holds (checked after each event) or `budgetMs` pass; returns whether it held. */
  runUntilTrue(done: () => boolean, budgetMs: number): boolean {
    const deadline = this.nowMs + budgetMs;
    if (done()) return true;
    for (;;) {
      const next = this.queue.peekTimeMs();
      if (next === undefined || next > deadline) break;
      this.step();
      if (done()) return true;
    }
    this.nowMs = Math.max(this.nowMs, deadline);
    return done();
  }

  private step(): void {
    const event = this.queue.pop()!;
    this.nowMs = event.timeMs;
    this.stats.events++;
    event.run();
  }

  count(what: string): void {
    this.stats.coverage.set(what, (this.stats.coverage.get(what) ?? 0) + 1);
  }

  private trace(line: string): void {
    this.cfg.trace?.(`${this.nowMs.toFixed(1).padStart(8)} ${line}`);
  }

  // ================================================================== nodes

  node(id: NodeId): SimNode {
    const node = this.nodes.get(id);
    assert(node, `no node ${id}`);
    return node;
  }

  crash(id: NodeId, damage?: CrashDamage): void {
    const node = this.node(id);
    if (!node.up) return;
    const d = damage ?? node.disk.randomDamage(this.rng, this.cfg.disk.tearRate);
    this.trace(`${id} CRASH keep wal=${d.walOpsKept} promise=${d.promiseOpsKept} tear=${d.tear}`);
    if (node.disk.crash(d)) this.count('crash tore a write');
    node.up = false;
    node.replica = null;
    node.proposals.clear();
    this.stats.crashes++;
  }

  restart(id: NodeId): void {
    const node = this.node(id);
    if (node.up) return;
    const durable = node.disk.recover();
    node.up = true;
    node.incarnation++;
    const incarnation = node.incarnation;
    node.clock = new NodeClock(this, this.rng.between(0, 1_000_000), node.clockRate);
    node.diskSyncedAtMs = this.nowMs;
    const cp = durable.checkpoint;
    if (cp) this.checkImage(node.id, cp.index, cp.image);
    node.machine = cp ? KvMachine.restore(cp.image) : new KvMachine();
    node.appliedIndex = cp?.index ?? 0;
    node.commitSeen = node.appliedIndex;
    node.sinceCheckpoint = 0;
    node.checkpointDue = false;
    const opts: ReplicaOptions = {
      id, members: this.ids, clock: node.clock, durable,
      effects: (effect) => this.onEffect(node, incarnation, effect),
      ...this.cfg.replica,
    };
    node.replica = this.cfg.createReplica ? this.cfg.createReplica(opts) : new Replica(opts);
    this.trace(`${id} START promised=${durable.promisedEpoch} checkpoint=${cp?.index ?? 0} last=${node.replica.lastIndex}`);
    const alive = (): boolean => node.up && node.incarnation === incarnation;
    const tick = (): void => {
      if (!alive()) return;
      this.call(node, (r) => r.tick());
      this.at(this.cfg.tickIntervalMs, tick);
    };
    this.at(this.rng.between(1, this.cfg.tickIntervalMs), tick);
    const renew = (): void => {
      if (!alive()) return;
      this.keepAlive(node);
      this.at(this.cfg.election.renewIntervalMs, renew);
    };
    this.at(this.cfg.election.renewIntervalMs, renew);
  }

  /** Calls into a running replica, then runs the per-call checkers and a due checkpoint. */
  call<T>(node: SimNode, input: (r: Replica) => T): T | undefined {
    const replica = node.replica;
    if (!node.up || !replica) return undefined;
    const result = input(replica);
    if (replica.commitIndex < node.commitSeen) {
      fail(`${node.id}: commitIndex went down from ${node.commitSeen} to ${replica.commitIndex}`);
    }
    node.commitSeen = replica.commitIndex;
    if (node.checkpointDue && node.replica === replica) {
      node.checkpointDue = false;
      node.sinceCheckpoint = 0;
      assert.equal(replica.appliedIndex, node.appliedIndex, 'the machine is in step with the replica');
      const image = node.machine.image();
      if (replica.takeCheckpoint(image)) this.checkImage(node.id, replica.appliedIndex, image);
    }
    return result;
  }

  setClockRate(id: NodeId, rate: number): void {
    this.node(id).clock.setRate(rate);
  }

  // ================================================================== effects

  private onEffect(node: SimNode, incarnation: number, effect: Effect): void {
    assert(node.up && node.incarnation === incarnation, 'effects come from the running replica');
    switch (effect.kind) {
      case 'send':
        this.count(`message ${effect.msg.kind}`);
        this.checkDurableBeforeReply(node, effect.msg);
        this.send(node.id, effect.to, effect.msg);
        return;
      case 'persist': {
        this.count(`storage ${effect.op.kind}`);
        node.disk.write(effect.token, effect.op);
        const syncedAt = Math.max(node.diskSyncedAtMs, this.nowMs + this.rng.between(this.cfg.disk.syncMinMs, this.cfg.disk.syncMaxMs) + node.diskSlowMs);
        node.diskSyncedAtMs = syncedAt;
        const token = effect.token;
        this.queue.push(syncedAt, () => {
          if (!node.up || node.incarnation !== incarnation) return;
          node.disk.sync(token);
          this.call(node, (r) => r.storageDone(token));
        });
        return;
      }
      case 'apply':
        this.onApply(node, effect.entry);
        return;
      case 'restore':
        this.onRestore(node, effect.snapshot);
        return;
      case 'ack':
        this.onAck(node, effect.proposalId, effect.index);
        return;
      case 'reject': {
        const waiting = node.proposals.get(effect.proposalId);
        node.proposals.delete(effect.proposalId);
        this.count(`proposal abandoned ${effect.reason}`);
        this.trace(`${node.id} REJECT proposal ${effect.proposalId} ${effect.reason}`);
        const client = waiting?.client;
        if (client && client.attempt === waiting.attempt) {
          client.target = null;
          this.at(this.rng.between(1, 10), () => this.clientStep(client));
        }
        return;
      }
    }
  }

  private onApply(node: SimNode, entry: Entry): void {
    if (entry.index !== node.appliedIndex + 1) fail(`${node.id} applied ${entry.index} after ${node.appliedIndex}`);
    node.appliedIndex = entry.index;
    const first = this.committed[entry.index];
    if (first === undefined) {
      this.committed[entry.index] = entry;
    } else if (!sameEntry(first, entry)) {
      fail(`committed entries diverge at index ${entry.index}: ${describe(first)} was applied elsewhere, ${node.id} applied ${describe(entry)}`);
    }
    node.machine.apply(entry);
    if (++node.sinceCheckpoint >= this.cfg.checkpointEveryEntries) node.checkpointDue = true;
  }

  private onRestore(node: SimNode, snapshot: Snapshot): void {
    if (snapshot.index <= node.appliedIndex) fail(`${node.id} restored an image at ${snapshot.index}, not past applied ${node.appliedIndex}`);
    this.checkImage(node.id, snapshot.index, snapshot.image);
    this.count('snapshot restored');
    this.trace(`${node.id} RESTORE snapshot ${snapshot.index}`);
    node.machine = KvMachine.restore(snapshot.image);
    node.appliedIndex = snapshot.index;
    node.sinceCheckpoint = 0;
  }

  private onAck(node: SimNode, proposalId: number, index: number): void {
    const waiting = node.proposals.get(proposalId);
    assert(waiting, `${node.id} acked unknown proposal ${proposalId}`);
    node.proposals.delete(proposalId);
    const { entry, op } = waiting;
    if (index !== entry.index) fail(`${node.id} acked proposal ${proposalId} at ${index}, proposed at ${entry.index}`);
    const committed = this.committed[index];
    if (!committed || committed.epoch !== entry.epoch || !Buffer.from(committed.payload).equals(entry.payload)) {
      fail(`${node.id} acknowledged ${op.opId} at ${index} (epoch ${entry.epoch}) but the committed entry there is ${committed ? describe(committed) : 'missing'}`);
    }
    this.noteWriter(entry.epoch, node.id);
    this.acked.push({ op, node: node.id, epoch: entry.epoch, index });
    this.stats.acked++;
    this.trace(`${node.id} ACK ${op.opId} at ${index}`);
    const client = waiting.client;
    if (client && client.attempt === waiting.attempt) {
      client.op = null;
      client.target = node.id;
      this.at(this.rng.between(0, this.cfg.clientThinkMaxMs), () => this.clientStep(client));
    }
  }

  private checkDurableBeforeReply(node: SimNode, msg: Message): void {
    const disk = node.disk;
    switch (msg.kind) {
      case 'appendOk':
        if (disk.durableLastIndex < msg.matchIndex) {
          fail(`${node.id} acked ${msg.matchIndex} (epoch ${msg.epoch}) with only ${disk.durableLastIndex} durable`);
        }
        return;
      case 'fetchReply': {
        const last = msg.entries.at(-1)?.index ?? 0;
        if (disk.durableLastIndex < last) fail(`${node.id} sent entries up to ${last} with only ${disk.durableLastIndex} durable`);
        return;
      }
      case 'prepareOk':
        if (Math.max(disk.durablePromise, disk.durableLastEpoch) < msg.epoch) {
          fail(`${node.id} promised epoch ${msg.epoch} before the promise was durable (disk has ${disk.durablePromise})`);
        }
        return;
      default:
    }
  }

  private checkImage(id: NodeId, index: number, image: Uint8Array): void {
    const known = this.images.get(index);
    if (!known) this.images.set(index, image);
    else if (!Buffer.from(known).equals(image)) fail(`${id}: the state image at index ${index} differs from another master's`);
  }

  private noteWriter(epoch: number, id: NodeId): void {
    const writer = this.writerOfEpoch.get(epoch);
    if (writer === undefined) this.writerOfEpoch.set(epoch, id);
    else if (writer !== id) fail(`two masters served writes in epoch ${epoch}: ${writer} and ${id}`);
  }

  // ================================================================== network

  send(from: NodeId, to: NodeId, msg: Message): void {
    this.stats.messages++;
    const net = this.cfg.net;
    if (this.blocked(from, to) || this.rng.chance(net.lossRate)) return;
    const copies = this.rng.chance(net.duplicateRate) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const delayMs = this.rng.chance(net.slowRate)
        ? this.rng.between(net.delayMaxMs, net.slowDelayMaxMs)
        : this.rng.between(net.delayMinMs, net.delayMaxMs);
      this.at(delayMs, () => this.deliver(from, to, msg));
    }
  }

  private deliver(from: NodeId, to: NodeId, msg: Message): void {
    if (this.blocked(from, to)) return;
    const node = this.node(to);
    if (!node.up) return;
    if (this.cfg.trace) this.trace(`${from}->${to} ${describeMessage(msg)}`);
    this.call(node, (r) => r.receive(from, msg));
  }

  private readonly blockedLinks = new Set<string>();

  private blocked(from: NodeId, to: NodeId): boolean {
    return this.node(from).group !== this.node(to).group || (this.blockedLinks.size > 0 && this.blockedLinks.has(`${from}>${to}`));
  }

  /** Drops every message from `from` to `to` (one direction only) until unblockLinks(). */
  blockLink(from: NodeId, to: NodeId): void {
    this.blockedLinks.add(`${from}>${to}`);
    this.trace(`BLOCK ${from}->${to}`);
  }

  unblockLinks(): void {
    this.blockedLinks.clear();
  }

  /** Splits the group: each listed set talks only among itself; unlisted masters form one more set. */
  partition(sets: NodeId[][]): void {
    for (const node of this.nodes.values()) node.group = 0;
    sets.forEach((set, i) => { for (const id of set) this.node(id).group = i + 1; });
    this.trace(`PARTITION ${sets.map((s) => s.join(',')).join(' | ')}`);
  }

  healPartition(): void {
    for (const node of this.nodes.values()) node.group = 0;
    this.blockedLinks.clear();
    this.trace('HEAL network');
  }

  // ================================================================== election service

  private electionServiceTick(): void {
    if (this.serviceLeader !== null && this.nowMs >= this.serviceExpiresAtMs) {
      this.trace(`ELECTION lease of ${this.serviceLeader} (epoch ${this.serviceEpoch}) expired at the service`);
      this.serviceLeader = null;
    }
    if (this.cfg.election.auto && this.serviceLeader === null && !this.electionScheduled) {
      this.electionScheduled = true;
      this.at(this.rng.between(this.cfg.election.grantDelayMinMs, this.cfg.election.grantDelayMaxMs), () => {
        this.electionScheduled = false;
        if (this.serviceLeader !== null) return;
        const candidates = this.ids.filter((id) => this.node(id).up && this.node(id).electionConnected);
        if (candidates.length === 0) return;
        let choice = this.rng.pick(candidates);
        if (this.rng.chance(this.cfg.election.staleBias)) {
          choice = candidates.reduce((a, b) => (this.node(b).replica!.lastIndex < this.node(a).replica!.lastIndex ? b : a));
        }
        this.grant(choice);
      });
    }
  }

  /** The service makes `id` leader now, with a fresh epoch; `id` hears of it shortly after. */
  grant(id: NodeId): number {
    assert(this.serviceLeader === null || this.nowMs >= this.serviceExpiresAtMs, 'the service grants only once the previous lease is over');
    this.serviceEpoch += this.rng.between(1, 3); // like etcd revisions: growing, not contiguous
    const epoch = this.serviceEpoch;
    this.serviceLeader = id;
    this.serviceExpiresAtMs = this.nowMs + this.cfg.election.leaseTtlMs;
    this.stats.grants++;
    const node = this.node(id);
    // The candidate measures its lease from when it asked, which is no later than now.
    const leaseUntilMs = node.clock.monoMs() + this.cfg.election.leaseTtlMs;
    const incarnation = node.incarnation;
    this.trace(`ELECTION grant epoch ${epoch} to ${id}`);
    this.at(this.rng.between(0, this.cfg.election.messageDelayMaxMs), () => {
      if (!node.up || node.incarnation !== incarnation || !node.electionConnected) return;
      this.call(node, (r) => r.becomeLeader(epoch, leaseUntilMs));
    });
    return epoch;
  }

  private keepAlive(node: SimNode): void {
    const replica = node.replica!;
    const epoch = replica.leaderEpoch;
    if (epoch === null || !node.electionConnected) return;
    const sentLocalMs = node.clock.monoMs();
    const incarnation = node.incarnation;
    const delay = (): number => this.rng.between(0, this.cfg.election.messageDelayMaxMs);
    this.at(delay(), () => {
      if (!node.electionConnected) return;
      const renewed = this.serviceLeader === node.id && this.serviceEpoch === epoch && this.nowMs < this.serviceExpiresAtMs;
      if (renewed) this.serviceExpiresAtMs = this.nowMs + this.cfg.election.leaseTtlMs;
      this.at(delay(), () => {
        if (!node.up || node.incarnation !== incarnation || !node.electionConnected) return;
        if (renewed) this.call(node, (r) => r.leaseRenewed(epoch, sentLocalMs + this.cfg.election.leaseTtlMs));
        else this.call(node, (r) => r.leaseLost(epoch));
      });
    });
  }

  /**
   * The leader resigns: it steps down, then tells the service, which elects another after
   * its delay. Only a master that knows it leads can resign (it may not have heard of its
   * grant yet), and only if it can reach the service.
   */
  resign(): void {
    const id = this.serviceLeader;
    if (id === null) return;
    const node = this.node(id);
    if (!node.up || !node.electionConnected || node.replica!.leaderEpoch !== this.serviceEpoch) return;
    this.trace(`ELECTION ${id} resigns epoch ${this.serviceEpoch}`);
    this.call(node, (r) => r.leaseLost(this.serviceEpoch));
    this.serviceLeader = null;
  }

  setElectionConnected(id: NodeId, connected: boolean): void {
    this.node(id).electionConnected = connected;
    this.trace(`ELECTION ${id} ${connected ? 'reconnected to' : 'cut off from'} the service`);
  }

  /**
   * Hand-written scenarios: makes `id` leader the way the service would, waiting for the
   * current lease to end (the current leader resigns if it can hear the service).
   */
  elect(id: NodeId): number {
    const current = this.serviceLeader;
    if (current !== null) {
      this.runUntilTrue(() => this.node(current).replica?.leaderEpoch === this.serviceEpoch, 2 * this.cfg.election.messageDelayMaxMs);
    }
    this.resign();
    this.runUntilTrue(() => this.serviceLeader === null || this.nowMs >= this.serviceExpiresAtMs, 10 * this.cfg.election.leaseTtlMs);
    this.serviceLeader = null;
    return this.grant(id);
  }

  // ================================================================== clients

  private clientStep(client: SimClient): void {
    if (client.stopped) return;
    if (!client.op) {
      client.op = { opId: `${client.id}.${client.seq++}`, key: `k${this.rng.int(this.cfg.keys)}`, value: `v${this.opSeq++}` };
    }
    const target = client.target ?? this.rng.pick(this.ids);
    const attempt = ++client.attempt;
    const retry = (delayMs: number): void => this.at(delayMs, () => { if (client.attempt === attempt) this.clientStep(client); });
    const result = this.proposeAt(target, client.op, client, attempt);
    if (result === undefined) {
      client.target = null;
      retry(this.rng.between(5, 20));
    } else if (!result.accepted) {
      client.target = result.leaderHint;
      retry(this.rng.between(2, 10));
    } else {
      this.at(this.cfg.clientTimeoutMs, () => {
        if (client.attempt !== attempt) return;
        client.target = null;
        this.clientStep(client);
      });
    }
  }

  /** Proposes `op` at `id` (a scenario may call this directly); undefined when `id` is down. */
  proposeAt(id: NodeId, op: KvOp, client: SimClient | null = null, attempt = 0):
    | { accepted: true; index: number; epoch: number } | { accepted: false; leaderHint: NodeId | null } | undefined {
    const node = this.node(id);
    const payload = encodeKvOp(op);
    const result = this.call(node, (r) => r.propose(ENTRY_TYPE_KV, payload));
    if (result === undefined) return undefined;
    if (!result.accepted) {
      this.count(`proposal refused ${result.reason}`);
      return { accepted: false, leaderHint: result.leaderHint };
    }
    if (this.serviceEpoch > result.epoch) {
      fail(`${id} accepted ${op.opId} in epoch ${result.epoch} after the service granted epoch ${this.serviceEpoch}: its lease did not stop it`);
    }
    this.noteWriter(result.epoch, id);
    node.proposals.set(result.proposalId, { client, attempt, op, entry: { epoch: result.epoch, index: result.index, payload } });
    this.trace(`${id} ACCEPT ${op.opId} at ${result.index} epoch ${result.epoch}`);
    return { accepted: true, index: result.index, epoch: result.epoch };
  }

  stopClients(): void {
    for (const c of this.clients) c.stopped = true;
  }

  /** A fresh client that proposes one operation until it is acknowledged; resolves to whether it was. */
  probeProgress(budgetMs: number): AckedOp | undefined {
    const client = new SimClient(`probe${this.clients.length}`);
    this.clients.push(client);
    this.clientStep(client);
    const opId = `${client.id}.0`;
    const acked = (): AckedOp | undefined => this.acked.find((a) => a.op.opId === opId);
    this.runUntilTrue(() => acked() !== undefined, budgetMs);
    client.stopped = true;
    return acked();
  }

  // ================================================================== final checks

  get leaderNode(): SimNode | undefined {
    return [...this.nodes.values()].find((n) => n.replica?.serving);
  }

  /** Waits until every master has applied as much as any, then checks they agree on everything. */
  finalCheck(budgetMs: number): void {
    // A follower may keep an old leader's uncommitted tail past the leader's log (Raft cuts
    // it only when new entries conflict), so "caught up" means: applied the leader's commit.
    const converged = (): boolean => {
      const nodes = [...this.nodes.values()];
      const leader = this.leaderNode;
      if (!leader || !nodes.every((n) => n.up)) return false;
      const target = leader.replica!.commitIndex;
      return leader.replica!.lastIndex === target && nodes.every((n) => n.appliedIndex === target);
    };
    if (!this.runUntilTrue(converged, budgetMs)) fail(`masters did not converge within ${budgetMs} ms: ${this.describeNodes()}`);
    const nodes = [...this.nodes.values()];
    const image = Buffer.from(nodes[0]!.machine.image());
    for (const n of nodes) {
      if (!image.equals(n.machine.image())) fail(`${n.id}'s final state differs from ${nodes[0]!.id}'s`);
      for (const a of this.acked) {
        if (!n.machine.hasApplied(a.op.opId)) fail(`acknowledged ${a.op.opId} (index ${a.index}, epoch ${a.epoch}) is missing on ${n.id}`);
      }
    }
  }

  committedEntry(index: number): Entry | undefined {
    return this.committed[index];
  }

  describeNodes(): string {
    return [...this.nodes.values()].map((n) => {
      const r = n.replica;
      if (!n.up || !r) return `${n.id}:down`;
      return `${n.id}:${r.role}${r.leaderPhase ? `/${r.leaderPhase}` : ''} e${r.promisedEpoch} commit=${r.commitIndex} last=${r.lastIndex}` +
        ` applied=${n.appliedIndex} group=${n.group}${n.electionConnected ? '' : ' no-etcd'}`;
    }).join('; ') + ` | service: ${this.serviceLeader ?? 'none'} e${this.serviceEpoch}`;
  }
}

function sameEntry(a: Entry, b: Entry): boolean {
  return a.epoch === b.epoch && a.index === b.index && a.type === b.type && Buffer.from(a.payload).equals(b.payload);
}

function describe(e: Entry): string {
  return `(epoch ${e.epoch}, type ${e.type}, ${Buffer.from(e.payload).toString() || 'no-op'})`;
}

function describeMessage(msg: Message): string {
  switch (msg.kind) {
    case 'append':
      return `append e${msg.epoch} prev=${msg.prevIndex}/${msg.prevEpoch} n=${msg.entries.length} commit=${msg.commitIndex}`;
    case 'appendOk': return `appendOk e${msg.epoch} match=${msg.matchIndex}`;
    case 'appendReject': return `appendReject e${msg.epoch} prev=${msg.prevIndex} hint=${msg.hintIndex}`;
    case 'prepareOk': return `prepareOk e${msg.epoch} last=${msg.lastIndex}/${msg.lastEpoch} commit=${msg.commitIndex}`;
    case 'fetch': return `fetch e${msg.epoch} from=${msg.fromIndex}`;
    case 'fetchReply': return `fetchReply e${msg.epoch} from=${msg.fromIndex} snap=${msg.snapshot?.index ?? '-'} n=${msg.entries.length}`;
    case 'installSnapshot': return `installSnapshot e${msg.epoch} at=${msg.snapshot.index}`;
    default: return `${msg.kind} e${msg.epoch}`;
  }
}
