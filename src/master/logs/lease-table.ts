/**
 * Append leases as the leader sees them (docs/LOG-STREAMS.md, "Leases and the
 * primary"): for each log's open chunk, its primary, its chain and until when the
 * primary may acknowledge appends. Soft state, never in the WAL: a new leader starts
 * empty and learns leases from the primaries' heartbeats. Pure: the caller passes
 * monotonic times.
 *
 * Invariants:
 * - At most one lease per chunk handle, for one version; a lease is for the version
 *   the chunk had when it was granted or renewed (a seal bumps the version, which
 *   ends it).
 * - The master's expiry is never earlier than the primary's: a grant counts from
 *   when LEASE_OK arrived and a renewal from when the heartbeat arrived, both later
 *   than the primary's own start (LEASE received, heartbeat sent).
 * - Expiry only moves forward for a lease (renewals never shorten it).
 */
import assert from 'node:assert/strict';

export interface Lease {
  inode: number;
  handle: number;
  version: number;
  /** Node id of the primary (the open chunk's replicas[0]). */
  primary: string;
  /** Node ids of the secondaries, in chain order. */
  chain: string[];
  /** Monotonic ms: the primary acknowledges nothing after this. */
  expiresMonoMs: number;
}

export class LeaseTable {
  private readonly byHandle = new Map<number, Lease>();

  constructor(private readonly durationMs: number) {
    assert.ok(durationMs > 0, 'a lease lasts some time');
  }

  get size(): number {
    return this.byHandle.size;
  }

  get(handle: number): Lease | undefined {
    return this.byHandle.get(handle);
  }

  /** A lease for the open chunk at this version that has not run out at nowMonoMs. */
  valid(handle: number, version: number, nowMonoMs: number): Lease | undefined {
    const l = this.byHandle.get(handle);
    return l !== undefined && l.version === version && l.expiresMonoMs > nowMonoMs ? l : undefined;
  }

  /** The primary answered LEASE_OK at nowMonoMs. */
  grant(l: Omit<Lease, 'expiresMonoMs'>, nowMonoMs: number): Lease {
    const lease: Lease = { ...l, chain: [...l.chain], expiresMonoMs: nowMonoMs + this.durationMs };
    assert.ok(!l.chain.includes(l.primary), 'the primary is not in its own chain');
    this.byHandle.set(l.handle, lease);
    return lease;
  }

  /**
   * A heartbeat from `node` at nowMonoMs lists a lease it holds. The caller has checked
   * that the chunk is still its log's open chunk at `version`. Renewed if this node is
   * the known primary, or (a new leader that never granted it) if no lease is known and
   * `adopt` gives the chain. Returns whether it was renewed.
   */
  renew(
    node: string, handle: number, version: number, nowMonoMs: number,
    adopt: () => { inode: number; chain: string[] } | undefined,
  ): boolean {
    const known = this.byHandle.get(handle);
    if (known !== undefined) {
      if (known.primary !== node || known.version !== version) return false;
      known.expiresMonoMs = Math.max(known.expiresMonoMs, nowMonoMs + this.durationMs);
      return true;
    }
    const chunk = adopt();
    if (chunk === undefined) return false;
    this.grant({ inode: chunk.inode, handle, version, primary: node, chain: chunk.chain.filter((id) => id !== node) }, nowMonoMs);
    return true;
  }

  /** The chunk was sealed (or is no longer open): its lease is over. */
  drop(handle: number): void {
    this.byHandle.delete(handle);
  }

  /** Leases that ran out (no renewal) by nowMonoMs: their chunks are to be sealed. */
  lapsed(nowMonoMs: number): Lease[] {
    return [...this.byHandle.values()].filter((l) => l.expiresMonoMs <= nowMonoMs);
  }

  /** Leadership lost: what a new term knows comes from heartbeats again. */
  clear(): void {
    this.byHandle.clear();
  }
}
