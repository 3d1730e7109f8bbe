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
 * - At most one campaign runs at a time, and a failed one is retried only after a
 *   jittered backoff that grows to about a TTL: a master without etcd costs a few calls
 *   a second, not a loop (a lost lease once started a second campaign beside the first
 *   on every failure, until the masters spun at 50 % CPU and grew to GBs).
 * - A lease of a campaign that failed is given up, so an old key of ours never outranks
 *   the key we campaign with.
 */
import { EventEmitter } from 'node:events';
import { Etcd3, type Lease } from 'etcd3';
import type { Logger } from '../common/log';
import { systemClock, type Clock, type Timer } from '../common/clock';
import { limits } from '../common/limits';
import { backoffMs, type BackoffPolicy } from '../common/backoff';

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
  /** Jitter for the campaign backoff (default Math.random). */
  random?: () => number;
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
  private pollTimer: Timer | undefined;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly backoff: BackoffPolicy;
  /** The one running campaign loop, if any. */
  private campaigning: Promise<void> | undefined;
  /** Ends the backoff wait now (stop). */
  private wakeCampaign: (() => void) | undefined;
  /** Campaigns that failed in a row: the backoff grows with them. */
  private failures = 0;
  /** Per warning: when it was last logged, and how many were held back since. */
  private readonly warned = new Map<string, { atMonoMs: number; held: number }>();

  constructor(private readonly opts: ElectionOptions) {
    super();
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? Math.random;
    this.backoff = {
      minMs: Math.min(limits.campaignBackoffMinMs, opts.leaseTtlMs),
      maxMs: Math.max(limits.campaignBackoffMinMs, Math.min(limits.campaignBackoffMaxMs, opts.leaseTtlMs * limits.campaignBackoffMaxTtlRatio)),
      jitterRatio: limits.campaignBackoffJitterRatio,
    };
    this.client = new Etcd3({ hosts: opts.endpoints, dialTimeout: limits.electionDialTimeoutMs });
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
    const pollMs = Math.max(limits.electionPollIntervalMinMs, this.opts.leaseTtlMs / limits.electionPollsPerTtl);
    this.pollTimer = this.clock.every(pollMs, () => void this.refresh().catch((e) => this.onError(e)));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.pollTimer?.cancel();
    this.wakeCampaign?.();
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

  /**
   * Campaigns, retrying with backoff while etcd is unreachable, until a key is in place or
   * we stop. Joins the campaign already running instead of starting a second one.
   */
  private campaignUntilDone(): Promise<void> {
    this.campaigning ??= this.campaignLoop().finally(() => { this.campaigning = undefined; });
    return this.campaigning;
  }

  private async campaignLoop(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.campaign();
        this.failures = 0;
        return;
      } catch (e) {
        if (this.stopped) return;
        this.onError(e);
        this.failures++;
        await this.backoffWait(backoffMs(this.failures, this.backoff, this.random));
      }
    }
  }

  private backoffWait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => { timer.cancel(); this.wakeCampaign = undefined; resolve(); };
      const timer = this.clock.after(ms, done);
      this.wakeCampaign = done;
    });
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
      this.warn('lease-lost', { err: err.message }, 'election lease lost; campaigning again');
      this.lease = undefined;
      this.myEpoch = 0;
      this.validUntilMonoMs = 0;
      // A campaign still running sees its lease gone and retries after its backoff.
      void this.refresh().catch((e) => this.onError(e)).then(() => this.campaignUntilDone());
    });
    try {
      const grantedAt = this.clock.monoMs();
      const leaseId = await lease.grant();
      this.checkStillOurs(lease);
      this.validUntilMonoMs = grantedAt + ttlSec * 1000 - this.margin();
      this.myKey = `${this.opts.prefix}/members/${leaseId}`;
      await lease.put(this.myKey).value(JSON.stringify({ memberId: this.opts.memberId, value: this.opts.value })).exec();
      const res = await this.client.get(this.myKey).exec();
      this.checkStillOurs(lease);
      this.myEpoch = Number(res.kvs[0]!.create_revision);
    } catch (e) {
      // Give the lease up (or let it expire if etcd is gone): a key it may have put must
      // not outlive this campaign and outrank the next one's.
      if (this.lease === lease) { this.lease = undefined; this.validUntilMonoMs = 0; }
      lease.revoke().catch(() => undefined);
      throw e;
    }
    this.opts.log.info({ key: this.myKey, createRevision: this.myEpoch }, 'campaigning for leadership');
    await this.refresh();
  }

  /** The lease was lost, or we stopped, while a campaign awaited etcd. */
  private checkStillOurs(lease: Lease): void {
    if (this.stopped) throw new Error('election stopped');
    if (lease !== this.lease) throw new Error('election lease lost while campaigning');
  }

  private margin(): number {
    return this.opts.safetyMarginMs ?? Math.min(limits.electionSafetyMarginMs, this.opts.leaseTtlMs * limits.electionSafetyMarginTtlRatio);
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
    this.warn('etcd-failed', { err: (e as Error).message }, 'election: etcd call failed; retrying');
  }

  /** Logs a warning at most once per electionWarnIntervalMs per kind, with how many were held back; the rest go to debug. */
  private warn(kind: string, fields: Record<string, unknown>, msg: string): void {
    const now = this.clock.monoMs();
    const last = this.warned.get(kind);
    if (last && now - last.atMonoMs < limits.electionWarnIntervalMs) {
      last.held++;
      this.opts.log.debug(fields, msg);
      return;
    }
    this.warned.set(kind, { atMonoMs: now, held: 0 });
    this.opts.log.warn(last?.held ? { ...fields, heldBack: last.held } : fields, msg);
  }
}
