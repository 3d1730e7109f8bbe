/**
 * Log replication for one master of the group, as a pure state machine: inputs are
 * method calls (becomeLeader, leaseRenewed, leaseLost, receive, tick, propose,
 * storageDone, takeCheckpoint), outputs are effects pushed synchronously to the injected
 * sink (types.ts: send, persist, apply, restore, ack, reject). No I/O, timers or
 * randomness; time comes from the injected clock. The sink must not call back into
 * the replica (asserted): a driver queues its follow-up calls.
 *
 * The protocol is Raft's log replication with the election replaced by an external
 * service (etcd) that names the leader and gives it an epoch, plus a Paxos/VR-style
 * recovery step, because that service does not look at logs:
 *
 * 1. Recovery. A leader of epoch E sends Prepare(E). A peer that has seen no higher
 *    epoch promises E durably (from then on it refuses anything older) and answers with
 *    its (lastEpoch, lastIndex). With promises from a majority, the leader adopts the
 *    log of the promiser with the highest (lastEpoch, lastIndex): it fetches what it
 *    lacks from that peer, cuts its own conflicting suffix, appends a no-op in epoch E
 *    and replicates. Once the no-op is on a majority everything before it is committed
 *    and the leader serves. Every committed entry was on a majority, which meets the
 *    promise majority, and the highest log of that majority contains it (Raft's log
 *    matching), so recovery never loses a committed entry.
 * 2. Replication. Entries go to followers as Raft AppendEntries (consistency check on
 *    (prevIndex, prevEpoch); the leader backs off on a reject, snapshots when it has
 *    compacted what a follower needs). A follower persists, then acks. The leader
 *    commits index N once a majority has it durable and entry N is of epoch E (Raft's
 *    current-term rule); everything committed is applied in order everywhere.
 * 3. Fencing. Requests carry the sender's epoch; a replica refuses older epochs and
 *    answers StaleEpoch with its own; a leader that learns of a newer epoch steps down.
 *    A leader also stops (steps down) once its lease, checked against the local clock
 *    with a safety margin, may have expired, so it refuses proposals before the
 *    election service can name another leader.
 * 4. Quorum contact (Raft's CheckQuorum). The election service sees only its own link
 *    to each master, not the links between masters: a leader cut off from its
 *    followers but not from the service keeps its lease, commits nothing, and no other
 *    master can be named while it holds it. So a leader that has heard nothing in its
 *    epoch from a majority (itself included) for `quorumTimeoutMs` steps down, and its
 *    driver gives up the lease so the service can name a master that reaches a majority.
 *
 * Invariants (asserted in checkInvariants after every input, and where they are used):
 * - The epoch only grows: the promised epoch never decreases, and no log entry is newer
 *   than it. A replica never answers a request of an older epoch than its promise.
 * - A replica never acks an entry, or answers a Prepare, before what it reports is
 *   durable: replies wait for storageDone, and are turned into StaleEpoch if a newer
 *   epoch was promised meanwhile.
 * - commitIndex never decreases (within an incarnation: it is volatile, as in Raft, and
 *   restarts at the checkpoint index), and a committed entry is never truncated or
 *   contradicted by a leader.
 * - At most one leader serves writes per epoch: epochs are unique per leadership, a
 *   leader serves only its own, and a message from another node in its own epoch is an
 *   assertion failure.
 * - snapshotIndex <= appliedIndex <= commitIndex <= lastIndex.
 */
import assert from 'node:assert/strict';
import { ReplicaLog } from './replica-log';
import {
  ENTRY_TYPE_NOOP,
  type Append, type AppendOk, type AppendReject, type DurableState, type EffectSink, type Entry,
  type Fetch, type FetchReply, type InstallSnapshot, type Message, type NodeId, type Prepare, type PrepareOk,
  type ProposeResult, type RejectReason, type Snapshot, type StorageOp,
} from './types';

/**
 * Defaults. They belong in src/common/limits.ts once this module is wired into the
 * master (it is kept self-contained while others edit limits.ts).
 */
export const replicationDefaults = {
  /** Leader → follower heartbeat and retransmission period; well under the 5 s etcd lease TTL. */
  heartbeatIntervalMs: 100,
  /**
   * Subtracted from the lease the leader believes it holds. Covers clock-rate error over
   * one lease TTL (5 s at 1% is 50 ms) with a wide allowance for scheduling delays.
   */
  leaseSafetyMarginMs: 1000,
  /** Entries per Append or FetchReply: bounds a message at 256 × walRecordBytesMax in the worst case, ~100 KiB typically. */
  entriesPerMessageMax: 256,
  /**
   * A leader that has heard from no majority for this long steps down: the 5 s etcd lease
   * TTL, so a leader cut off from its followers is replaced about as fast as a dead one.
   */
  quorumTimeoutMs: 5000,
} as const;

/**
 * A snapshot sent to a follower is sent again only after this many heartbeat intervals
 * without an ack: installing an image takes a while (write, fsync, restore).
 */
const SNAPSHOT_RESEND_HEARTBEATS = 10;

export interface ReplicaClock {
  /** Monotonic milliseconds of this process; the lease is measured against it. */
  monoMs(): number;
}

export interface ReplicaOptions {
  id: NodeId;
  /** Every master of the group, this one included (3 or 5 of them; 1 works too). */
  members: readonly NodeId[];
  clock: ReplicaClock;
  effects: EffectSink;
  /** What the disk holds at start (types.ts describes how a driver reads it from the WAL). */
  durable: DurableState;
  heartbeatIntervalMs?: number;
  leaseSafetyMarginMs?: number;
  entriesPerMessageMax?: number;
  quorumTimeoutMs?: number;
}

export type Role = 'follower' | 'leader';
/** A leader's progress: promising → fetching (only if a peer has a better log) → committing (its no-op) → serving. */
export type LeaderPhase = 'promising' | 'fetching' | 'committing' | 'serving';

interface PeerProgress {
  /** Next index to send. Advanced optimistically when not probing. */
  nextIndex: number;
  /** Highest index the peer has acked as durable and equal to ours, in this epoch. */
  matchIndex: number;
  /** True until the peer first acks: send one probe at a time at nextIndex. */
  probing: boolean;
  /** When the snapshot was last sent to this peer (an image can be large: not every heartbeat). */
  snapshotSentMs: number | null;
}

interface FetchPlan {
  source: NodeId;
  /** The best promiser's last entry: recovery adopts the log that ends there. */
  targetIndex: number;
  targetEpoch: number;
  /** The outstanding Fetch asks from here. */
  fromIndex: number;
}

class Leadership {
  phase: LeaderPhase = 'promising';
  readonly promises = new Map<NodeId, PrepareOk>();
  fetch: FetchPlan | null = null;
  noopIndex = 0;
  /** Per follower; filled when the leader starts replicating (committing phase). */
  readonly progress = new Map<NodeId, PeerProgress>();
  /** Accepted, not yet acknowledged proposals: log index → proposal id. */
  readonly proposals = new Map<number, number>();
  /** When each peer last answered in this epoch; a peer not heard yet counts from `sinceMs`. */
  readonly heardMs = new Map<NodeId, number>();
  readonly sinceMs: number;

  constructor(
    readonly epoch: number,
    public leaseUntilMs: number,
    public lastHeartbeatMs: number,
  ) {
    this.sinceMs = lastHeartbeatMs;
  }
}

interface PendingStorage {
  token: number;
  /** log.lastIndex right after the operation was issued: the disk's last index once it is done. */
  lastIndexAfter: number;
  /** The operation changes entries above this index (Infinity: it changes none already written). */
  changesAbove: number;
}

export class Replica {
  readonly id: NodeId;
  private readonly members: readonly NodeId[];
  private readonly peers: readonly NodeId[];
  private readonly clock: ReplicaClock;
  private readonly emit: EffectSink;
  private readonly heartbeatIntervalMs: number;
  private readonly leaseSafetyMarginMs: number;
  private readonly entriesPerMessageMax: number;
  private readonly quorumTimeoutMs: number;

  private promised: number;
  private readonly log: ReplicaLog;
  private commit: number;
  private applied: number;
  private leader: Leadership | null = null;
  private hint: NodeId | null = null;

  private nextToken = 1;
  private doneToken = 0;
  private readonly pending: PendingStorage[] = [];
  /** Highest index that is durable and equal to the in-memory log. */
  private durable: number;
  private readonly waiters: { token: number; run: () => void }[] = [];
  private nextProposalId = 1;

  private busy = false;
  private commitSeen: number;
  private promisedSeen: number;

  constructor(opts: ReplicaOptions) {
    assert(opts.members.includes(opts.id), 'a replica is a member of its own group');
    assert.equal(new Set(opts.members).size, opts.members.length, 'members are distinct');
    this.id = opts.id;
    this.members = [...opts.members];
    this.peers = this.members.filter((m) => m !== opts.id);
    this.clock = opts.clock;
    this.emit = opts.effects;
    this.heartbeatIntervalMs = opts.heartbeatIntervalMs ?? replicationDefaults.heartbeatIntervalMs;
    this.leaseSafetyMarginMs = opts.leaseSafetyMarginMs ?? replicationDefaults.leaseSafetyMarginMs;
    this.entriesPerMessageMax = opts.entriesPerMessageMax ?? replicationDefaults.entriesPerMessageMax;
    assert(this.entriesPerMessageMax >= 1);
    this.quorumTimeoutMs = opts.quorumTimeoutMs ?? replicationDefaults.quorumTimeoutMs;
    assert(this.quorumTimeoutMs > this.heartbeatIntervalMs, 'peers get more than a heartbeat interval to answer before the leader gives up');

    this.log = new ReplicaLog(opts.durable.checkpoint, opts.durable.entries);
    // The promise file and the WAL are separate: a crash can keep entries of an epoch
    // whose promise was not yet synced. Having the entries is as binding as the promise.
    this.promised = Math.max(opts.durable.promisedEpoch, this.log.lastEpoch);
    this.commit = this.log.snapshotIndex;
    this.applied = this.log.snapshotIndex;
    this.durable = this.log.lastIndex;
    this.commitSeen = this.commit;
    this.promisedSeen = this.promised;
    this.checkInvariants();
  }

  // ------------------------------------------------------------------ views

  get role(): Role {
    return this.leader ? 'leader' : 'follower';
  }

  /** The leader's phase, or null on a follower. */
  get leaderPhase(): LeaderPhase | null {
    return this.leader?.phase ?? null;
  }

  /** True when proposals are accepted (subject to the lease check at propose time). */
  get serving(): boolean {
    return this.leader?.phase === 'serving';
  }

  /** The highest epoch seen and promised. */
  get promisedEpoch(): number {
    return this.promised;
  }

  /** The epoch this replica leads, or null. */
  get leaderEpoch(): number | null {
    return this.leader?.epoch ?? null;
  }

  /** The node believed to lead the current epoch (for NOT_LEADER answers), or null. */
  get leaderHint(): NodeId | null {
    return this.hint;
  }

  get commitIndex(): number {
    return this.commit;
  }

  get appliedIndex(): number {
    return this.applied;
  }

  get lastIndex(): number {
    return this.log.lastIndex;
  }

  get lastEpoch(): number {
    return this.log.lastEpoch;
  }

  get snapshotIndex(): number {
    return this.log.snapshotIndex;
  }

  /** Highest index durable on this replica's own disk and equal to its log. */
  get durableIndex(): number {
    return this.durable;
  }

  /** Epoch of entry `index` in this replica's log, if it holds it (or its snapshot ends there). */
  epochAt(index: number): number | undefined {
    return this.log.epochAt(index);
  }

  // ------------------------------------------------------------------ inputs

  /**
   * The election service made this replica leader of `epoch` with a lease that ends at
   * `leaseUntilMs` on this replica's clock (measured from when it asked, not when it
   * heard back). Ignored (false) when `epoch` is not newer than every epoch seen: that
   * leadership is already over, and the driver should resign it.
   */
  becomeLeader(epoch: number, leaseUntilMs: number): boolean {
    return this.run(() => {
      if (epoch <= this.promised) return false;
      this.stepDown();
      this.raisePromise(epoch);
      const leader = new Leadership(epoch, leaseUntilMs, this.clock.monoMs());
      this.leader = leader;
      this.hint = this.id;
      this.afterDurable(() => {
        if (this.leader === leader) this.onPromise(this.id, this.describeLog(epoch));
      });
      for (const peer of this.peers) this.send(peer, { kind: 'prepare', epoch });
      return true;
    });
  }

  /** The election service extended the lease of `epoch` to `untilMs` (this replica's clock). */
  leaseRenewed(epoch: number, untilMs: number): void {
    this.run(() => {
      if (this.leader?.epoch === epoch) this.leader.leaseUntilMs = Math.max(this.leader.leaseUntilMs, untilMs);
    });
  }

  /** The election service says the leadership of `epoch` is over (lease lost, resigned). */
  leaseLost(epoch: number): void {
    this.run(() => {
      if (this.leader?.epoch === epoch) this.stepDown();
    });
  }

  /** Retransmissions, heartbeats, the lease check. Call it at least every heartbeat interval. */
  tick(): void {
    this.run(() => {
      const leader = this.leader;
      if (!leader) return;
      const nowMs = this.clock.monoMs();
      if (!this.leaseValid(leader, nowMs) || !this.quorumHeard(leader, nowMs)) {
        this.stepDown();
        return;
      }
      if (nowMs - leader.lastHeartbeatMs < this.heartbeatIntervalMs) return;
      leader.lastHeartbeatMs = nowMs;
      this.heartbeat(leader);
    });
  }

  /**
   * Asks to append an entry. Accepted only by a serving leader whose lease holds now;
   * an accepted proposal ends in exactly one `ack` (committed and applied) or `reject`
   * (LEADERSHIP_LOST: outcome unknown) effect, unless the process dies first.
   */
  propose(type: number, payload: Uint8Array): ProposeResult {
    return this.proposeMany([{ type, payload }])[0]!;
  }

  /**
   * Proposes several entries at once, in order: they are appended to the log together
   * (one persist), and go to each follower in one Append (one follower write, one ack).
   * All are accepted or all refused, for the same reason.
   */
  proposeMany(items: readonly { type: number; payload: Uint8Array }[]): ProposeResult[] {
    return this.run((): ProposeResult[] => {
      assert(items.length > 0, 'a batch proposes at least one entry');
      for (const { type } of items) assert(type !== ENTRY_TYPE_NOOP && Number.isInteger(type) && type > 0 && type <= 0xff, `bad entry type ${type}`);
      const leader = this.leader;
      const refused = (reason: RejectReason): ProposeResult[] => items.map(() => this.refuse(reason));
      if (!leader) return refused('NOT_LEADER');
      if (!this.leaseValid(leader, this.clock.monoMs())) {
        this.stepDown();
        return refused('LEASE_EXPIRED');
      }
      if (leader.phase !== 'serving') return refused('RECOVERING');
      const first = this.log.lastIndex + 1;
      const entries: Entry[] = items.map(({ type, payload }, i) => Object.freeze({ epoch: leader.epoch, index: first + i, type, payload }));
      this.appendLocal(entries);
      const results: ProposeResult[] = entries.map((entry) => {
        const proposalId = this.nextProposalId++;
        leader.proposals.set(entry.index, proposalId);
        return { accepted: true, proposalId, index: entry.index, epoch: entry.epoch };
      });
      for (const [peer, progress] of leader.progress) {
        if (!progress.probing && progress.nextIndex <= this.log.lastIndex) this.sendAppend(leader, peer, progress, progress.nextIndex);
      }
      return results;
    });
  }

  receive(from: NodeId, msg: Message): void {
    this.run(() => {
      if (from === this.id || !this.members.includes(from)) return;
      if (this.leader && msg.epoch === this.leader.epoch) this.leader.heardMs.set(from, this.clock.monoMs());
      switch (msg.kind) {
        case 'prepare': return this.onPrepare(from, msg);
        case 'prepareOk': return this.onPrepareOk(from, msg);
        case 'fetch': return this.onFetch(from, msg);
        case 'fetchReply': return this.onFetchReply(from, msg);
        case 'append': return this.onAppend(from, msg);
        case 'appendOk': return this.onAppendOk(from, msg);
        case 'appendReject': return this.onAppendReject(from, msg);
        case 'installSnapshot': return this.onInstallSnapshot(from, msg);
        case 'staleEpoch': return this.onStaleEpoch(msg.epoch);
      }
    });
  }

  /** Every storage operation with a token <= `token` is durable. */
  storageDone(token: number): void {
    this.run(() => {
      assert(token < this.nextToken, `storage token ${token} was never issued`);
      if (token <= this.doneToken) return;
      this.doneToken = token;
      let last: PendingStorage | undefined;
      while (this.pending.length > 0 && this.pending[0]!.token <= token) last = this.pending.shift();
      assert(last, 'a new storage token completes at least one operation');
      let durable = last.lastIndexAfter;
      for (const p of this.pending) durable = Math.min(durable, p.changesAbove);
      this.durable = durable;
      while (this.waiters.length > 0 && this.waiters[0]!.token <= token) this.waiters.shift()!.run();
      if (this.leader) this.advanceCommit(this.leader);
    });
  }

  /**
   * The state machine's image after applying everything up to appliedIndex (taken right
   * after the last `apply` effect). Makes it the log's base, persists it as a checkpoint,
   * and lets the in-memory entries before it go. False when there is nothing new to cover.
   */
  takeCheckpoint(image: Uint8Array): boolean {
    return this.run(() => {
      const index = this.applied;
      if (index <= this.log.snapshotIndex) return false;
      const snapshot: Snapshot = { index, epoch: this.log.epochAt(index)!, image };
      const replaced = this.log.installSnapshot(snapshot);
      assert(!replaced, 'an applied entry is in the log');
      this.persist({ kind: 'checkpoint', snapshot }, Infinity);
      return true;
    });
  }

  // ------------------------------------------------------------------ fault-model hooks
  // Protected so the simulation can prove its checkers catch a protocol that cuts these
  // corners (test/sim/broken-replicas.ts). Production code does not override them.

  /** Promises a recovering leader needs, itself included. */
  protected promiseQuorumSize(): number {
    return this.majority();
  }

  /** Durable copies an entry needs to commit, the leader's included. */
  protected commitQuorumSize(): number {
    return this.majority();
  }

  protected leaseValid(leader: { leaseUntilMs: number }, nowMs: number): boolean {
    return nowMs < leader.leaseUntilMs - this.leaseSafetyMarginMs;
  }

  /** Runs `reply` once everything written so far is durable. */
  protected afterDurable(reply: () => void): void {
    if (this.pending.length === 0) {
      reply();
      return;
    }
    const token = this.nextToken - 1;
    this.waiters.push({
      token,
      run: () => {
        assert(this.doneToken >= token, 'a reply waits for its writes to be durable');
        reply();
      },
    });
  }

  private majority(): number {
    return Math.floor(this.members.length / 2) + 1;
  }

  /** A majority, this leader included, answered within quorumTimeoutMs (see 4. above). */
  private quorumHeard(leader: Leadership, nowMs: number): boolean {
    let heard = 1;
    for (const peer of this.peers) {
      if (nowMs - (leader.heardMs.get(peer) ?? leader.sinceMs) < this.quorumTimeoutMs) heard++;
    }
    return heard >= this.majority();
  }

  // ------------------------------------------------------------------ recovery (leader)

  private onPromise(from: NodeId, ok: PrepareOk): void {
    const leader = this.leader!;
    if (leader.phase !== 'promising') return;
    leader.promises.set(from, ok);
    if (leader.promises.size < this.promiseQuorumSize()) return;
    let best: { node: NodeId; ok: PrepareOk } | undefined;
    // Ties go to this replica (no fetch), then to the first member in group order.
    for (const node of [this.id, ...this.peers]) {
      const candidate = leader.promises.get(node);
      if (!candidate) continue;
      if (!best || candidate.lastEpoch > best.ok.lastEpoch ||
          (candidate.lastEpoch === best.ok.lastEpoch && candidate.lastIndex > best.ok.lastIndex)) {
        best = { node, ok: candidate };
      }
    }
    assert(best);
    if (this.log.has(best.ok.lastIndex, best.ok.lastEpoch)) {
      this.adoptRecoveredLog(leader, best.ok.lastIndex);
      return;
    }
    leader.phase = 'fetching';
    // Everything this replica knows committed is in the best log, so it fetches after that.
    leader.fetch = { source: best.node, targetIndex: best.ok.lastIndex, targetEpoch: best.ok.lastEpoch, fromIndex: this.commit + 1 };
    this.sendFetch(leader);
  }

  private sendFetch(leader: Leadership): void {
    const plan = leader.fetch!;
    this.send(plan.source, { kind: 'fetch', epoch: leader.epoch, fromIndex: plan.fromIndex });
  }

  private onFetchReply(from: NodeId, msg: FetchReply): void {
    const leader = this.leader;
    if (!leader || leader.phase !== 'fetching' || msg.epoch !== leader.epoch) return;
    const plan = leader.fetch!;
    if (from !== plan.source || msg.fromIndex !== plan.fromIndex) return; // a duplicate or an old answer
    if (msg.snapshot && msg.snapshot.index > this.commit) this.installSnapshotLocal(msg.snapshot);
    this.mergeEntries(msg.entries);
    if (this.log.has(plan.targetIndex, plan.targetEpoch)) {
      this.adoptRecoveredLog(leader, plan.targetIndex);
      return;
    }
    const lastReceived = msg.entries.at(-1)?.index ?? msg.snapshot?.index;
    if (lastReceived !== undefined && lastReceived >= plan.fromIndex) {
      plan.fromIndex = lastReceived + 1;
      this.sendFetch(leader);
    } // else: nothing new; the heartbeat asks again
  }

  /** The log now equals the best promiser's up to `lastIndex`: cut the rest, append the no-op, replicate. */
  private adoptRecoveredLog(leader: Leadership, lastIndex: number): void {
    if (this.log.lastIndex > lastIndex) this.truncateLocal(lastIndex);
    leader.phase = 'committing';
    leader.fetch = null;
    leader.noopIndex = this.log.lastIndex + 1;
    this.appendLocal([Object.freeze({ epoch: leader.epoch, index: leader.noopIndex, type: ENTRY_TYPE_NOOP, payload: new Uint8Array(0) })]);
    for (const peer of this.peers) {
      const promise = leader.promises.get(peer);
      // A promiser told us where its log ends: probe there first instead of at the end.
      const nextIndex = promise ? Math.min(promise.lastIndex, leader.noopIndex - 1) + 1 : leader.noopIndex;
      const progress: PeerProgress = { nextIndex: Math.max(nextIndex, 1), matchIndex: 0, probing: true, snapshotSentMs: null };
      leader.progress.set(peer, progress);
      this.sendAppend(leader, peer, progress, progress.nextIndex);
    }
    this.advanceCommit(leader);
  }

  // ------------------------------------------------------------------ replication (leader)

  private heartbeat(leader: Leadership): void {
    switch (leader.phase) {
      case 'promising':
        for (const peer of this.peers) {
          if (!leader.promises.has(peer)) this.send(peer, { kind: 'prepare', epoch: leader.epoch });
        }
        return;
      case 'fetching':
        this.sendFetch(leader);
        return;
      case 'committing':
      case 'serving':
        for (const [peer, progress] of leader.progress) {
          // A probing peer gets its probe again; otherwise resend whatever is unacked
          // (lost or late), or an empty append that carries the commit index.
          const fromIndex = progress.probing ? progress.nextIndex : Math.min(progress.matchIndex, this.log.lastIndex) + 1;
          this.sendAppend(leader, peer, progress, fromIndex);
        }
        return;
    }
  }

  private sendAppend(leader: Leadership, peer: NodeId, progress: PeerProgress, fromIndex: number): void {
    const prevIndex = fromIndex - 1;
    if (prevIndex < this.log.snapshotIndex) {
      const snapshot = this.log.snapshot;
      assert(snapshot, 'a log with a snapshot index has a snapshot');
      const nowMs = this.clock.monoMs();
      const resendMs = SNAPSHOT_RESEND_HEARTBEATS * this.heartbeatIntervalMs;
      if (progress.snapshotSentMs !== null && nowMs - progress.snapshotSentMs < resendMs) return;
      progress.snapshotSentMs = nowMs;
      this.send(peer, { kind: 'installSnapshot', epoch: leader.epoch, snapshot, commitIndex: this.commit });
      return;
    }
    const entries = this.log.slice(fromIndex, fromIndex + this.entriesPerMessageMax - 1);
    this.send(peer, {
      kind: 'append', epoch: leader.epoch, prevIndex, prevEpoch: this.log.epochAt(prevIndex)!, entries, commitIndex: this.commit,
    });
    if (!progress.probing) progress.nextIndex = Math.max(progress.nextIndex, prevIndex + entries.length + 1);
  }

  private onAppendOk(from: NodeId, msg: AppendOk): void {
    const leader = this.leader;
    if (!leader || msg.epoch !== leader.epoch) return;
    const progress = leader.progress.get(from);
    if (!progress) return;
    assert(msg.matchIndex <= this.log.lastIndex, `${from} acked ${msg.matchIndex}, past the leader's log`);
    progress.matchIndex = Math.max(progress.matchIndex, msg.matchIndex);
    progress.nextIndex = Math.max(progress.nextIndex, msg.matchIndex + 1);
    progress.probing = false;
    progress.snapshotSentMs = null;
    if (progress.nextIndex <= this.log.lastIndex) this.sendAppend(leader, from, progress, progress.nextIndex);
    this.advanceCommit(leader);
  }

  private onAppendReject(from: NodeId, msg: AppendReject): void {
    const leader = this.leader;
    if (!leader || msg.epoch !== leader.epoch) return;
    const progress = leader.progress.get(from);
    // The peer holds our log up to matchIndex durably: a reject at or below it is old news.
    if (!progress || msg.prevIndex <= progress.matchIndex) return;
    progress.probing = true;
    progress.nextIndex = Math.max(progress.matchIndex + 1, Math.min(progress.nextIndex, msg.hintIndex + 1));
    this.sendAppend(leader, from, progress, progress.nextIndex);
  }

  /** Commits the highest index of this epoch that a quorum holds durably (Raft's current-term rule). */
  private advanceCommit(leader: Leadership): void {
    if (leader.phase !== 'committing' && leader.phase !== 'serving') return;
    const matches = [this.durable];
    for (const progress of leader.progress.values()) matches.push(progress.matchIndex);
    matches.sort((a, b) => b - a);
    const candidate = matches[this.commitQuorumSize() - 1]!;
    // Epochs never decrease along the log, so if the candidate is older, so is all below it.
    if (candidate > this.commit && this.log.epochAt(candidate) === leader.epoch) this.advanceCommitTo(candidate);
  }

  // ------------------------------------------------------------------ follower side

  /**
   * Fences a request of `epoch` from `from`: refuses an older epoch, adopts a newer one
   * (stepping down). Returns whether to go on.
   */
  private admit(from: NodeId, epoch: number): boolean {
    if (epoch < this.promised) {
      this.send(from, { kind: 'staleEpoch', epoch: this.promised });
      return false;
    }
    if (epoch > this.promised) {
      this.stepDown();
      this.raisePromise(epoch);
    }
    assert(this.leader === null, `two leaders claim epoch ${epoch}: ${this.id} and ${from}`);
    this.hint = from;
    return true;
  }

  private onPrepare(from: NodeId, msg: Prepare): void {
    if (!this.admit(from, msg.epoch)) return;
    this.replyWhenDurable(from, this.describeLog(msg.epoch));
  }

  private onPrepareOk(from: NodeId, msg: PrepareOk): void {
    if (this.leader && msg.epoch === this.leader.epoch) this.onPromise(from, msg);
  }

  private onFetch(from: NodeId, msg: Fetch): void {
    if (!this.admit(from, msg.epoch)) return;
    let snapshot: Snapshot | null = null;
    let fromIndex = msg.fromIndex;
    if (fromIndex <= this.log.snapshotIndex) {
      snapshot = this.log.snapshot;
      fromIndex = this.log.snapshotIndex + 1;
    }
    const entries = this.log.slice(fromIndex, fromIndex + this.entriesPerMessageMax - 1);
    this.replyWhenDurable(from, { kind: 'fetchReply', epoch: msg.epoch, fromIndex: msg.fromIndex, snapshot, entries });
  }

  private onAppend(from: NodeId, msg: Append): void {
    if (!this.admit(from, msg.epoch)) return;
    const log = this.log;
    if (msg.prevIndex > log.lastIndex) {
      this.send(from, { kind: 'appendReject', epoch: msg.epoch, prevIndex: msg.prevIndex, hintIndex: log.lastIndex });
      return;
    }
    // Below the snapshot everything is committed, hence equal to the leader's log.
    if (msg.prevIndex >= log.snapshotIndex && log.epochAt(msg.prevIndex) !== msg.prevEpoch) {
      assert(msg.prevIndex > this.commit, `committed entry ${msg.prevIndex} on ${this.id} differs from leader ${from}'s`);
      const hintIndex = Math.max(this.commit, log.firstIndexOfEpochRun(msg.prevIndex) - 1);
      this.send(from, { kind: 'appendReject', epoch: msg.epoch, prevIndex: msg.prevIndex, hintIndex });
      return;
    }
    this.mergeEntries(msg.entries);
    // Only what this message proved equal may be committed: entries past it may be stale.
    const matchIndex = msg.prevIndex + msg.entries.length;
    const commitIndex = Math.min(msg.commitIndex, matchIndex);
    if (commitIndex > this.commit) this.advanceCommitTo(commitIndex);
    this.replyWhenDurable(from, { kind: 'appendOk', epoch: msg.epoch, matchIndex });
  }

  private onInstallSnapshot(from: NodeId, msg: InstallSnapshot): void {
    if (!this.admit(from, msg.epoch)) return;
    if (msg.snapshot.index > this.commit) this.installSnapshotLocal(msg.snapshot);
    this.replyWhenDurable(from, { kind: 'appendOk', epoch: msg.epoch, matchIndex: msg.snapshot.index });
  }

  private onStaleEpoch(epoch: number): void {
    if (epoch <= this.promised) return;
    this.stepDown();
    this.raisePromise(epoch);
    this.hint = null;
  }

  // ------------------------------------------------------------------ shared mechanics

  /**
   * Merges entries that continue the log (entries[0].index <= lastIndex + 1): skips what
   * the log already holds, cuts the log at the first conflict, appends the rest.
   */
  private mergeEntries(entries: readonly Entry[]): void {
    let i = 0;
    for (; i < entries.length; i++) {
      const entry = entries[i]!;
      if (entry.index <= this.log.snapshotIndex) continue;
      if (entry.index > this.log.lastIndex) break;
      if (this.log.epochAt(entry.index) === entry.epoch) continue;
      this.truncateLocal(entry.index - 1);
      break;
    }
    if (i < entries.length) this.appendLocal(entries.slice(i));
  }

  private appendLocal(entries: Entry[]): void {
    for (const e of entries) assert(e.epoch <= this.promised, 'no entry is newer than the promise');
    this.log.append(entries);
    this.persist({ kind: 'append', entries }, Infinity);
  }

  private truncateLocal(afterIndex: number): void {
    assert(afterIndex >= this.commit, `truncating after ${afterIndex} would drop committed entries (commit ${this.commit})`);
    this.log.truncateAfter(afterIndex);
    this.persist({ kind: 'truncate', afterIndex }, afterIndex);
  }

  private installSnapshotLocal(snapshot: Snapshot): void {
    assert(snapshot.index > this.commit);
    const replaced = this.log.installSnapshot(snapshot);
    this.persist({ kind: 'checkpoint', snapshot }, replaced ? 0 : Infinity);
    this.commit = snapshot.index;
    this.applied = snapshot.index;
    this.emit({ kind: 'restore', snapshot });
  }

  private advanceCommitTo(index: number): void {
    assert(index >= this.commit, 'commitIndex never decreases');
    this.commit = index;
    const leader = this.leader;
    while (this.applied < this.commit) {
      const entry = this.log.entryAt(this.applied + 1);
      this.applied = entry.index;
      this.emit({ kind: 'apply', entry });
      const proposalId = leader?.proposals.get(entry.index);
      if (proposalId !== undefined) {
        leader!.proposals.delete(entry.index);
        this.emit({ kind: 'ack', proposalId, index: entry.index });
      }
    }
    if (leader && leader.phase === 'committing' && this.commit >= leader.noopIndex) leader.phase = 'serving';
  }

  private raisePromise(epoch: number): void {
    assert(epoch > this.promised, 'the epoch only grows');
    this.promised = epoch;
    this.persist({ kind: 'promise', epoch }, Infinity);
  }

  private stepDown(): void {
    const leader = this.leader;
    if (!leader) return;
    this.leader = null;
    if (this.hint === this.id) this.hint = null;
    for (const proposalId of leader.proposals.values()) this.emit({ kind: 'reject', proposalId, reason: 'LEADERSHIP_LOST' });
  }

  private describeLog(epoch: number): PrepareOk {
    return { kind: 'prepareOk', epoch, lastIndex: this.log.lastIndex, lastEpoch: this.log.lastEpoch, commitIndex: this.commit };
  }

  private replyWhenDurable(to: NodeId, msg: PrepareOk | AppendOk | FetchReply): void {
    this.afterDurable(() => {
      // A newer epoch was promised meanwhile: answer with it instead. Not needed for safety
      // (what this reply covers was in the log when the newer Prepare was answered, so the
      // newer leader saw it), but it keeps "never answer an older epoch than the promise"
      // absolute, and the old leader steps down a round trip sooner.
      if (msg.epoch < this.promised) this.send(to, { kind: 'staleEpoch', epoch: this.promised });
      else this.send(to, msg);
    });
  }

  private refuse(reason: RejectReason): ProposeResult {
    return { accepted: false, reason, leaderHint: reason === 'RECOVERING' ? this.id : this.hint };
  }

  private persist(op: StorageOp, changesAbove: number): void {
    const token = this.nextToken++;
    this.pending.push({ token, lastIndexAfter: this.log.lastIndex, changesAbove });
    this.durable = Math.min(this.durable, changesAbove);
    this.emit({ kind: 'persist', token, op });
  }

  private send(to: NodeId, msg: Message): void {
    this.emit({ kind: 'send', to, msg });
  }

  /** Runs one input: no re-entry from the effect sink, invariants checked on the way out. */
  private run<T>(input: () => T): T {
    assert(!this.busy, 'the effect sink must not call back into the replica');
    this.busy = true;
    try {
      const result = input();
      this.checkInvariants();
      return result;
    } finally {
      this.busy = false;
    }
  }

  private checkInvariants(): void {
    assert(this.promised >= this.promisedSeen, 'the epoch only grows');
    assert(this.promised >= this.log.lastEpoch, 'no entry is newer than the promise');
    assert(this.commit >= this.commitSeen, 'commitIndex never decreases');
    assert(this.log.snapshotIndex <= this.applied && this.applied <= this.commit && this.commit <= this.log.lastIndex,
      `snapshot ${this.log.snapshotIndex} <= applied ${this.applied} <= commit ${this.commit} <= last ${this.log.lastIndex}`);
    assert(this.durable <= this.log.lastIndex);
    if (this.leader) {
      assert.equal(this.leader.epoch, this.promised, 'a leader steps down when it sees a newer epoch');
      if (this.leader.phase === 'serving') assert(this.commit >= this.leader.noopIndex, 'a leader serves only once its no-op is committed');
    }
    this.promisedSeen = this.promised;
    this.commitSeen = this.commit;
  }
}

