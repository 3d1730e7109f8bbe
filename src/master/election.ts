/**
 * Master leader election through etcd (DESIGN §4).
 *
 * Each master holds a lease (TTL `leaseTtlMs`) and puts one key under the election
 * prefix with it; the key with the lowest create revision is the leader, and that
 * create revision is the leader's **epoch**. etcd revisions only grow, and a master
 * that loses its lease campaigns again with a new key, so every leadership gets a
 * larger epoch than any before it.
 *
 * Invariants:
 * - The epoch only grows.
 * - A leader stops serving writes (`isLeaseValid()` false) before etcd can expire its
 *   lease and let another master win: validity runs from the moment a keepalive was
 *   *sent*, for TTL minus a safety margin for clock drift and scheduling delay.
 */
import { EventEmitter } from 'node:events';
import { Etcd3, type Lease } from 'etcd3';
import type { Logger } from '../common/log';
import { systemClock, type Clock } from '../common/clock';

export interface ElectionOptions {
  endpoints: string[];
  /** Election prefix, one per gfs cluster. */
  prefix: string;
  memberId: string;
  /** What followers and clients learn about the leader (its address). */
  value: string;
  leaseTtlMs: number;
  /** Stop serving this long before the lease could expire in etcd. */
  safetyMarginMs?: number;
  log: Logger;
  clock?: Clock;
}

export interface LeaderInfo { memberId: string; value: string; epoch: number }

/**
 * Events: 'leader' (LeaderInfo | undefined) whenever the known leader changes;
 * 'elected' (epoch) when this member becomes leader; 'deposed' when it stops being one.
 */
export class Election extends EventEmitter {
  private readonly client: Etcd3;
  private lease: Lease | undefined;
  private myKey = '';
  private myEpoch = 0;
  private leader: LeaderInfo | undefined;
  private validUntilMonoMs = 0;
  private lastFiredMonoMs = 0;
  private stopped = false;
  private recampaigning = false;
  private pollTimer: NodeJS.Timeout | undefined;
  private readonly clock: Clock;

  constructor(private readonly opts: ElectionOptions) {
    super();
    this.clock = opts.clock ?? systemClock;
    this.client = new Etcd3({ hosts: opts.endpoints, dialTimeout: 2000 });
  }

  /** Our current key is the lowest: an older key of ours (from a lost lease) does not count. */
  get isLeader(): boolean { return this.myEpoch > 0 && this.leader?.epoch === this.myEpoch; }
  get epoch(): number { return this.isLeader ? this.myEpoch : 0; }
  get currentLeader(): LeaderInfo | undefined { return this.leader; }

  /** Until when (monotonic ms) this member's lease surely holds in etcd. */
  get leaseValidUntilMonoMs(): number { return this.validUntilMonoMs; }

  /** True while this member leads and its lease surely has not expired in etcd. */
  isLeaseValid(): boolean {
    return this.isLeader && this.clock.monoMs() < this.validUntilMonoMs;
  }

  async start(): Promise<void> {
    // etcd may be down right now: keep trying in the background rather than fail the master.
    void this.campaignUntilDone();
    // Watching would be faster to react; polling at a fraction of the TTL is simpler,
    // bounded, and keeps working across etcd restarts without re-establishing watches.
    this.pollTimer = setInterval(() => void this.refresh().catch((e) => this.onError(e)), Math.max(100, this.opts.leaseTtlMs / 10));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.pollTimer) clearInterval(this.pollTimer);
    const wasLeader = this.announcedEpoch !== 0;
    this.leader = undefined;
    this.announcedEpoch = 0;
    if (wasLeader) this.emit('deposed');
    try {
      await this.lease?.revoke();
    } catch { /* etcd may be gone; the lease then expires by itself */ }
    this.client.close();
  }

  /**
   * Gives up the current key and campaigns with a new one (a larger epoch). For a leader
   * whose log replication stepped down (its lease looked expired while etcd was
   * unreachable) but whose key survived: that epoch cannot serve again.
   */
  async recampaign(): Promise<void> {
    if (this.recampaigning || this.stopped) return;
    this.recampaigning = true;
    try {
      const old = this.lease;
      this.lease = undefined;
      this.myEpoch = 0;
      this.validUntilMonoMs = 0;
      try {
        await old?.revoke();
      } catch { /* etcd expires it */ }
      await this.campaignUntilDone();
    } finally {
      this.recampaigning = false;
    }
  }

  /** Campaigns, retrying while etcd is unreachable, until a key is in place or we stop. */
  private async campaignUntilDone(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.campaign();
        return;
      } catch (e) {
        this.onError(e);
        await new Promise((r) => setTimeout(r, Math.min(1000, this.opts.leaseTtlMs / 4)));
      }
    }
  }

  private async campaign(): Promise<void> {
    const ttlSec = Math.max(1, Math.round(this.opts.leaseTtlMs / 1000));
    const lease = this.client.lease(ttlSec, { autoKeepAlive: true });
    this.lease = lease;
    lease.on('keepaliveFired', () => { this.lastFiredMonoMs = this.clock.monoMs(); });
    lease.on('keepaliveSucceeded', () => {
      if (lease !== this.lease) return;
      this.validUntilMonoMs = this.lastFiredMonoMs + ttlSec * 1000 - this.margin();
    });
    lease.on('lost', (err) => {
      if (lease !== this.lease || this.stopped) return;
      this.opts.log.warn({ err: err.message }, 'election lease lost; campaigning again');
      this.lease = undefined;
      this.myEpoch = 0;
      this.validUntilMonoMs = 0;
      void this.refresh().catch((e) => this.onError(e)).then(() => this.campaignUntilDone());
    });
    const grantedAt = this.clock.monoMs();
    const leaseId = await lease.grant();
    this.validUntilMonoMs = grantedAt + ttlSec * 1000 - this.margin();
    this.myKey = `${this.opts.prefix}/members/${leaseId}`;
    await lease.put(this.myKey).value(JSON.stringify({ memberId: this.opts.memberId, value: this.opts.value })).exec();
    const res = await this.client.get(this.myKey).exec();
    this.myEpoch = Number(res.kvs[0]!.create_revision);
    this.opts.log.info({ key: this.myKey, createRevision: this.myEpoch }, 'campaigning for leadership');
    await this.refresh();
  }

  private margin(): number {
    return this.opts.safetyMarginMs ?? Math.min(1000, this.opts.leaseTtlMs / 5);
  }

  /** Reads the members; the lowest create revision leads. */
  private async refresh(): Promise<void> {
    if (this.stopped) return;
    const res = await this.client.getAll().prefix(`${this.opts.prefix}/members/`).exec();
    let best: { rev: number; memberId: string; value: string } | undefined;
    for (const kv of res.kvs) {
      const rev = Number(kv.create_revision);
      if (!best || rev < best.rev) {
        const v = JSON.parse(kv.value.toString()) as { memberId: string; value: string };
        best = { rev, memberId: v.memberId, value: v.value };
      }
    }
    const next: LeaderInfo | undefined = best ? { memberId: best.memberId, value: best.value, epoch: best.rev } : undefined;
    const changed = next?.epoch !== this.leader?.epoch;
    this.leader = next;
    if (changed) this.emit('leader', this.leader);
    // Compared with what was announced, not with isLeader before this refresh: isLeader
    // also turns true when campaign() learns its own epoch, and a poll that had already
    // seen our key as the lowest would then never announce it (three masters once sat
    // as followers under a leader that never knew it was one).
    if (this.isLeader && this.announcedEpoch !== this.myEpoch) {
      this.announcedEpoch = this.myEpoch;
      this.opts.log.info({ epoch: this.myEpoch }, 'elected leader');
      this.emit('elected', this.myEpoch);
    } else if (!this.isLeader && this.announcedEpoch !== 0) {
      this.announcedEpoch = 0;
      this.opts.log.warn({ leader: next }, 'no longer leader');
      this.emit('deposed');
    }
  }

  /** The epoch 'elected' was last emitted for; 0 after 'deposed' (or before any). */
  private announcedEpoch = 0;

  private onError(e: unknown): void {
    // Visible, but at most every few seconds: an election stuck on etcd must say why
    // (a CI run once saw three masters campaign and none lead for 15 s, with no trace).
    const now = this.clock.monoMs();
    if (now - this.lastErrorLogMonoMs >= 5000) {
      this.lastErrorLogMonoMs = now;
      this.opts.log.warn({ err: (e as Error).message }, 'election: etcd call failed; retrying');
    } else {
      this.opts.log.debug({ err: (e as Error).message }, 'election: etcd call failed; retrying');
    }
  }

  private lastErrorLogMonoMs = -Infinity;
}
