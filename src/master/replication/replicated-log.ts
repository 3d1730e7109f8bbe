/**
 * The driver of the replication core for a real master: it performs the core's effects
 * with the WAL (persist), gRPC (send) and the metadata state machine (apply, restore),
 * runs its heartbeat tick, and turns proposals into promises that resolve with the
 * state machine's answer once the entry is committed and applied.
 *
 * Invariants:
 * - Storage operations reach the WAL in the order the core emitted them (the WAL keeps
 *   call order as log order), and storageDone(t) is reported in token order, only after
 *   operation t and all before it are durable.
 * - The core is never called from inside its own effect sink: effects are queued and
 *   performed after the call that produced them returns.
 * - A storage failure stops the process: the core has moved on as if it were durable.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { GfsError } from '../../common/errors';
import type { Logger } from '../../common/log';
import type { Clock, Timer } from '../../common/clock';
import { Wal, writeFileAtomically } from '../../wal';
import { Replica, replicationDefaults } from './replica';
import { PeerTransport } from './transport';
import type { DurableState, Effect, Entry, Message, NodeId, Snapshot, StorageOp } from './types';

export interface ReplicatedLogOptions {
  id: NodeId;
  /**
   * Every member (this one included) → its address. One gRPC server per master serves
   * both the client and the replication service, so this is also where clients go.
   */
  members: ReadonlyMap<NodeId, string>;
  dataDir: string;
  wal: Wal;
  log: Logger;
  clock: Clock;
  /** Applies one committed entry; its return value (or thrown error) answers the proposal. */
  apply: (entry: Entry) => unknown;
  /** Replaces the state machine by a snapshot (a follower installing the leader's image). */
  restore: (snapshot: Snapshot) => void;
  heartbeatIntervalMs?: number;
  leaseSafetyMarginMs?: number;
  /** A leader that hears from no majority for this long steps down (replica.ts, 4.). */
  quorumTimeoutMs?: number;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

const PROMISE_FILE = 'promised-epoch';

/** Reads what the disk holds for the core (and the checkpoint to restore the state machine from). */
export async function loadDurableState(dataDir: string, wal: Wal): Promise<DurableState> {
  let promisedEpoch = 0;
  try {
    promisedEpoch = Number((await fs.readFile(path.join(dataDir, PROMISE_FILE), 'utf8')).trim()) || 0;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const checkpoint = await wal.loadCheckpoint();
  const entries: Entry[] = [];
  for await (const r of wal.readFrom((checkpoint?.index ?? 0) + 1)) entries.push({ epoch: r.epoch, index: r.index, type: r.type, payload: r.payload });
  return { promisedEpoch, checkpoint, entries };
}

export class ReplicatedLog {
  readonly replica: Replica;
  private readonly transport: PeerTransport;
  private readonly effects: Effect[] = [];
  private draining = false;
  private durableChain: Promise<void> = Promise.resolve();
  private promiseChain: Promise<void> = Promise.resolve();
  private readonly waiting = new Map<number, { index: number; resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  /** Outcomes of applied entries that a local proposal waits for, by index. */
  private readonly outcomes = new Map<number, Outcome>();
  private readonly proposalIndexes = new Set<number>();
  private timer: Timer | undefined;
  private closed = false;
  /** Proposals of this turn, not yet given to the core. */
  private readonly proposals: { type: number; payload: Uint8Array; resolve: (v: unknown) => void; reject: (e: unknown) => void }[] = [];
  private proposeScheduled = false;
  /** Proposals and the core calls that carried them: proposals / batches is the batching. */
  readonly proposeStats = { proposals: 0, batches: 0 };

  constructor(private readonly opts: ReplicatedLogOptions, durable: DurableState) {
    this.transport = new PeerTransport(opts.id, opts.members);
    this.replica = new Replica({
      id: opts.id,
      members: [...opts.members.keys()],
      clock: { monoMs: () => opts.clock.monoMs() },
      effects: (e) => { this.effects.push(e); },
      durable,
      heartbeatIntervalMs: opts.heartbeatIntervalMs ?? replicationDefaults.heartbeatIntervalMs,
      leaseSafetyMarginMs: opts.leaseSafetyMarginMs ?? 0,
      quorumTimeoutMs: opts.quorumTimeoutMs,
    });
    this.drain();
  }

  start(): void {
    const every = this.opts.heartbeatIntervalMs ?? replicationDefaults.heartbeatIntervalMs;
    this.timer = this.opts.clock.every(every, () => this.call(() => this.replica.tick()));
  }

  close(): void {
    this.closed = true;
    this.timer?.cancel();
    this.transport.close();
    for (const w of this.waiting.values()) w.reject(new GfsError('UNAVAILABLE', 'master is shutting down'));
    this.waiting.clear();
    for (const p of this.proposals.splice(0, this.proposals.length)) p.reject(new GfsError('UNAVAILABLE', 'master is shutting down'));
  }

  /**
   * Proposes an entry; resolves with the state machine's answer once committed and
   * applied. Proposals made in the same turn of the event loop go to the core as one
   * batch (proposeBatch): one WAL append and one replication round for all of them.
   */
  propose(type: number, payload: Uint8Array): Promise<unknown> {
    if (this.closed) return Promise.reject(new GfsError('UNAVAILABLE', 'master is shutting down'));
    return new Promise((resolve, reject) => {
      this.proposals.push({ type, payload, resolve, reject });
      if (!this.proposeScheduled) {
        this.proposeScheduled = true;
        setImmediate(() => this.proposeBatch());
      }
    });
  }

  private proposeBatch(): void {
    this.proposeScheduled = false;
    const batch = this.proposals.splice(0, this.proposals.length);
    if (batch.length === 0) return;
    if (this.closed) {
      for (const p of batch) p.reject(new GfsError('UNAVAILABLE', 'master is shutting down'));
      return;
    }
    this.proposeStats.proposals += batch.length;
    this.proposeStats.batches++;
    const results = this.replica.proposeMany(batch);
    for (let i = 0; i < batch.length; i++) {
      const r = results[i]!;
      const p = batch[i]!;
      if (!r.accepted) {
        const leader = r.leaderHint ? this.opts.members.get(r.leaderHint) : undefined;
        const code = r.reason === 'RECOVERING' ? 'UNAVAILABLE' : 'NOT_LEADER';
        p.reject(new GfsError(code, r.reason === 'RECOVERING' ? 'the new leader is still recovering; retry' : 'this master is not the leader',
          { detail: leader ? { leader } : {} }));
        continue;
      }
      this.proposalIndexes.add(r.index);
      this.waiting.set(r.proposalId, { index: r.index, resolve: p.resolve, reject: p.reject });
    }
    // Outside the core call: its effects are performed after it returned.
    this.drain();
  }

  receive(from: NodeId, msg: Message): void { this.call(() => this.replica.receive(from, msg)); }
  becomeLeader(epoch: number, leaseUntilMs: number): boolean { return this.call(() => this.replica.becomeLeader(epoch, leaseUntilMs)); }
  leaseRenewed(epoch: number, untilMs: number): void { this.call(() => this.replica.leaseRenewed(epoch, untilMs)); }
  leaseLost(epoch: number): void { this.call(() => this.replica.leaseLost(epoch)); }
  takeCheckpoint(image: Uint8Array): boolean { return this.call(() => this.replica.takeCheckpoint(image)); }

  /** Calls into the core, then performs the effects it produced. */
  private call<T>(fn: () => T): T {
    const result = fn();
    this.drain();
    return result;
  }

  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    try {
      for (let e = this.effects.shift(); e; e = this.effects.shift()) this.perform(e);
    } finally {
      this.draining = false;
    }
  }

  private perform(e: Effect): void {
    switch (e.kind) {
      case 'send':
        if (!this.closed) this.transport.send(e.to, e.msg);
        return;
      case 'persist':
        return this.persist(e.token, e.op);
      case 'apply': {
        let outcome: Outcome;
        try {
          outcome = { ok: true, value: this.opts.apply(e.entry) };
        } catch (error) {
          outcome = { ok: false, error };
        }
        if (this.proposalIndexes.delete(e.entry.index)) this.outcomes.set(e.entry.index, outcome);
        return;
      }
      case 'restore':
        this.opts.restore(e.snapshot);
        return;
      case 'ack': {
        const w = this.waiting.get(e.proposalId);
        if (!w) return;
        this.waiting.delete(e.proposalId);
        const outcome = this.outcomes.get(w.index);
        this.outcomes.delete(w.index);
        if (!outcome) return w.reject(new GfsError('INTERNAL', `entry ${w.index} acknowledged before it was applied`));
        if (outcome.ok) w.resolve(outcome.value);
        else w.reject(outcome.error);
        return;
      }
      case 'reject': {
        const w = this.waiting.get(e.proposalId);
        if (!w) return;
        this.waiting.delete(e.proposalId);
        this.proposalIndexes.delete(w.index);
        // Outcome unknown: a later leader may still commit it; the client retries with its request id.
        w.reject(new GfsError('UNAVAILABLE', 'leadership changed before the operation was committed; retry'));
        return;
      }
    }
  }

  /** Issues the storage operation now (the WAL keeps call order) and reports it durable in token order. */
  private persist(token: number, op: StorageOp): void {
    const { wal, dataDir } = this.opts;
    let done: Promise<unknown>;
    switch (op.kind) {
      case 'append':
        done = wal.appendReplicated(op.entries.map((en) => ({ epoch: en.epoch, index: en.index, type: en.type, payload: en.payload })));
        break;
      case 'truncate':
        done = wal.truncateAfter(op.afterIndex);
        break;
      case 'checkpoint':
        done = wal.writeCheckpoint(op.snapshot);
        break;
      case 'promise': {
        // One promise write at a time, in order: two racing renames could leave an older
        // epoch on disk (and share the temp file).
        const file = path.join(dataDir, PROMISE_FILE);
        done = this.promiseChain = this.promiseChain.then(() => writeFileAtomically(file, `${file}.tmp`, [Buffer.from(`${op.epoch}\n`)]));
        break;
      }
    }
    done.catch(() => undefined);
    this.durableChain = this.durableChain.then(() => done).then(() => {
      if (!this.closed) this.call(() => this.replica.storageDone(token));
    }, (err: Error) => {
      if (this.closed) return; // shutting down: the WAL was closed under pending writes
      this.opts.log.fatal({ err: err.message, op: op.kind }, 'replicated log storage failed; stopping');
      process.exit(70);
    });
  }
}
