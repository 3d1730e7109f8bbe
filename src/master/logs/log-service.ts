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
 *   blocks a log for longer than a lease.
 * - A stat never reports less than an acknowledged byte: the primary's committed
 *   length, or, when the primary does not answer, the length after sealing the chunk.
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
  private leading = false;

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
    const leader = this.host.isLeader();
    if (!leader) {
      if (this.leading) this.leaderLost();
      this.leading = false;
      return;
    }
    this.leading = true;
    for (const lease of this.leases.lapsed(this.host.clock.monoMs())) {
      this.sealer.seal(lease.inode, lease.handle, `lease of primary ${lease.primary} lapsed`).catch((e: Error) => {
        this.host.log.warn({ handle: lease.handle, err: e.message }, 'sealing a chunk whose lease lapsed failed; trying again next tick');
      });
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
    if (length !== undefined) return { file, openLength: length };
    await this.sealer.seal(file.inode, open.handle, 'its primary did not answer a stat');
    return { file: this.host.state().fileByInode(file.inode) ?? file, openLength: 0 };
  }

  private async askPrimary(open: ChunkRef): Promise<number | undefined> {
    const lease = this.leases.valid(open.handle, open.version, this.host.clock.monoMs());
    const addr = lease === undefined ? undefined : this.host.registry.nodes.get(lease.primary)?.addr;
    if (addr === undefined) return undefined;
    try {
      const s = await this.host.plane.chunkStat(addr, open.handle, limits.appendStatTimeoutMs);
      return s.version === open.version ? s.committed : undefined;
    } catch {
      return undefined;
    }
  }
}
