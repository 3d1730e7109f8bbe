/**
 * The append chunks this chunkserver is primary of (LOG-STREAMS.md, "Leases and the
 * primary"): LEASE creates one, heartbeats list and renew them, a seal or truncate of
 * the chunk ends one.
 *
 * Invariants: at most one Primary per handle; a handle is claimed while its LEASE is
 * being set up, so two LEASEs for one chunk cannot both create it; an ended primary
 * stays listed (for CHUNK_STAT and followers) until a seal, truncate or delete starts
 * taking the chunk (before its version changes: CHUNK_STAT then answers primary:false),
 * but is no longer offered for renewal.
 */
import { GfsError } from '../../common/errors';
import { Primary, type PrimaryHost } from './primary';

export class LeaseTable {
  private readonly primaries = new Map<number, Primary>();
  private readonly starting = new Map<number, Promise<Primary>>();

  constructor(private readonly host: PrimaryHost) {}

  get(handle: number): Primary | undefined {
    return this.primaries.get(handle);
  }

  /** LEASE: a new primary, or a renewal of the one already here at that version. */
  async grant(handle: number, version: number, chain: string[], durationMs: number): Promise<void> {
    const current = this.primaries.get(handle);
    if (current && current.version === version && !current.ended) {
      current.renew(version, this.host.clock.monoMs() + durationMs);
      return;
    }
    if (current) throw new GfsError('ALREADY_EXISTS', `chunk ${handle} already had a primary here at version ${current.version}`);
    if (this.starting.has(handle)) throw new GfsError('FILE_NOT_WRITABLE', `a lease on chunk ${handle} is being set up`);
    const p = Primary.create(this.host, handle, version, chain, durationMs);
    this.starting.set(handle, p);
    try {
      this.primaries.set(handle, await p);
    } finally {
      this.starting.delete(handle);
    }
  }

  /** The leases to list in a heartbeat: valid ones only. */
  held(): { handle: number; version: number }[] {
    return [...this.primaries.values()].filter((p) => p.leaseValid).map((p) => ({ handle: p.handle, version: p.version }));
  }

  /** A heartbeat answer renewed this lease until `untilMono` (send time + duration). */
  renew(handle: number, version: number, untilMono: number): void {
    this.primaries.get(handle)?.renew(version, untilMono);
  }

  /** The chunk is being sealed, truncated or deleted: its primary (if any) stops and lets go of it. */
  async stop(handle: number): Promise<void> {
    await this.starting.get(handle)?.catch(() => undefined);
    const p = this.primaries.get(handle);
    if (!p) return;
    this.primaries.delete(handle);
    await p.stop();
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.primaries.keys()].map((h) => this.stop(h)));
  }
}
