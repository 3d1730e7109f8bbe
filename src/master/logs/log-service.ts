/**
 * The master's logs (docs/LOG-STREAMS.md) behind one object: the lease table, the
 * sealer, append targets and the watch hub, and the three places the rest of the
 * master touches them: heartbeats (lease renewal), the tick (lapsed leases), applied
 * ops (watch events), plus the committed length a stat reports.
 *
 * Invariants:
 * - Leases are renewed only for a chunk that is still its log's open chunk at the
 *   version the primary names, and only while this master leads; a master that stops
 *   leading forgets every lease and ends every watcher.
 * - A lease that lapsed without renewal gets its chunk sealed, so a dead primary never
 *   blocks a log for longer than a lease. A new leader (or a restarted one) knows no
 *   lease: live primaries name theirs in their next heartbeats, so one lease period
 *   into its term it seals every open chunk whose primary named none.
 * - A stat never reports less than an acknowledged byte, nor more than the log will
 *   keep: the committed length of the node that is still the chunk's primary, or,
 *   when there is none (it does not answer, or a seal has taken the chunk there), the
 *   length after sealing the chunk.
 */
import type { LeaseRenewal, MetaOp } from '../../../gen/gfs';
import { GfsError } from '../../common/errors';
import { limits } from '../../common/limits';
import type { ApplyResult, ChunkRef, FileNode } from '../meta-state';
import { AppendTargets, type AppendTargetHost } from './append-target';
import { LeaseTable } from './lease-table';
import { LogSealer } from './log-sealer';
import { WatchHub } from './watch-hub';

export class LogService {
  readonly leases: LeaseTable;
  readonly sealer: LogSealer;
  readonly targets: AppendTargets;
  readonly hub: WatchHub;
  /** Monotonic ms this master's term started (its tick first saw it lead); undefined while not leading. */
  private leadingSinceMs: number | undefined;
  /** The once-a-term sweep for open chunks no primary claimed is done. */
  private swept = false;

  constructor(private readonly host: AppendTargetHost) {
    this.leases = new LeaseTable(host.leaseMs);
    this.sealer = new LogSealer(host, this.leases);
    this.targets = new AppendTargets(host, this.leases, this.sealer);
    this.hub = new WatchHub(host.state, limits.watchersMax);
  }

  /** The leases a heartbeat from `nodeId` asks to renew that still hold (HeartbeatResponse.leases). */
  renew(nodeId: string, asked: readonly LeaseRenewal[]): LeaseRenewal[] {
    if (!this.host.isLeader() || asked.length === 0) return [];
    const state = this.host.state();
    const now = this.host.clock.monoMs();
    const out: LeaseRenewal[] = [];
    for (const l of asked) {
      const owner = state.chunkOwner(l.handle);
      const file = owner === undefined ? undefined : state.fileByInode(owner.inode);
      const open = file === undefined ? undefined : state.openChunk(file);
      if (open === undefined || open.handle !== l.handle || open.version !== l.version) continue;
      const adopt = () => ({
        inode: file!.inode,
        chain: this.host.registry.replicaViews(l.handle).filter((r) => r.usable && r.version === l.version).map((r) => r.nodeId),
      });
      if (this.leases.renew(nodeId, l.handle, l.version, now, adopt)) out.push({ handle: l.handle, version: l.version, durationMs: this.host.leaseMs });
    }
    return out;
  }

  /** On the master's tick: seal chunks whose lease lapsed; forget everything when not leading. */
  tick(): void {
    const now = this.host.clock.monoMs();
    if (!this.host.isLeader()) {
      if (this.leadingSinceMs !== undefined) this.leaderLost();
      this.leadingSinceMs = undefined;
      return;
    }
    if (this.leadingSinceMs === undefined) {
      this.leadingSinceMs = now;
      this.swept = false;
    }
    for (const lease of this.leases.lapsed(now)) this.sealInBackground(lease.inode, lease.handle, `lease of primary ${lease.primary} lapsed`);
    if (!this.swept && now - this.leadingSinceMs >= this.host.leaseMs) {
      this.swept = true;
      for (const { inode, handle } of this.unclaimedOpenChunks()) this.sealInBackground(inode, handle, 'no primary claimed its lease since this master leads');
    }
  }

  private sealInBackground(inode: number, handle: number, why: string): void {
    this.sealer.seal(inode, handle, why).catch((e: Error) => {
      this.host.log.warn({ handle, err: e.message, why }, 'sealing an open chunk failed; a client, a stat or the lapsed lease tries again');
    });
  }

  /** Open log chunks the lease table knows no lease of (one walk of the chunk table). */
  private *unclaimedOpenChunks(): Iterable<{ inode: number; handle: number }> {
    const state = this.host.state();
    for (const c of state.lifecycleChunks()) {
      if (c.committed || this.leases.get(c.handle) !== undefined) continue;
      const file = state.fileByInode(c.inode);
      if (file !== undefined && state.openChunk(file)?.handle === c.handle) yield { inode: c.inode, handle: c.handle };
    }
  }

  private leaderLost(): void {
    this.leases.clear();
    const err = new GfsError('NOT_LEADER', 'this master stopped leading: watch again');
    for (const w of [...this.hub.all()]) w.end(err);
  }

  /** Every applied op, on every master, in log order. */
  applied(op: MetaOp, result: ApplyResult | undefined, revision: number): void {
    this.hub.applied(op, result, revision);
  }

  /**
   * The committed length of an open log's open chunk (0 if it has none), from its primary;
   * if the primary does not answer, the chunk is sealed first. Returns the file as it is
   * after, and the open chunk's committed length.
   */
  async committed(file: FileNode): Promise<{ file: FileNode; openLength: number }> {
    const open = this.host.state().openChunk(file);
    if (open === undefined) return { file, openLength: 0 };
    const length = await this.askPrimary(open);
    if (length !== undefined) {
      // The chunk may have been sealed while the primary answered: its length is then in
      // the file's size already, and adding the answer would count it twice.
      const now = this.host.state().fileByInode(file.inode) ?? file;
      const still = this.host.state().openChunk(now);
      const same = still !== undefined && still.handle === open.handle && still.version === open.version;
      return { file: now, openLength: same ? length : 0 };
    }
    await this.sealer.seal(file.inode, open.handle, 'its primary did not answer a stat');
    return { file: this.host.state().fileByInode(file.inode) ?? file, openLength: 0 };
  }

  private async askPrimary(open: ChunkRef): Promise<number | undefined> {
    const lease = this.leases.valid(open.handle, open.version, this.host.clock.monoMs());
    const addr = lease === undefined ? undefined : this.host.registry.nodes.get(lease.primary)?.addr;
    if (addr === undefined) return undefined;
    try {
      const s = await this.host.plane.chunkStat(addr, open.handle, limits.appendStatTimeoutMs);
      // Only a node that is still the chunk's primary knows what committed. While a seal
      // takes the chunk there (its primary stopped, the version not yet bumped) the node
      // answers at the old version with its durable length, which may hold a batch the
      // chain never acknowledged and the seal will cut: reporting it would let a reader
      // (a follower) take bytes that are not in the log. Not the primary: seal first.
      return s.primary && s.version === open.version ? s.committed : undefined;
    } catch {
      return undefined;
    }
  }
}
