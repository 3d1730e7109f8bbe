/**
 * The GC driver on the leader: purges expired trash (a WAL op), aborts abandoned
 * writes (a WAL op), and queues heartbeat DELETEs for orphans whose grace is over. The
 * decisions are gc-plan.ts; this file does the waiting, the logging and the ops.
 *
 * Invariants:
 * - Nothing happens unless `isActive()` (leader, out of safe mode, not stopping), and it
 *   is asked again after every wait.
 * - An orphan's grace starts only after every op applied before it was seen
 *   unreferenced is durable: a purge or abort that a crash could still undo never
 *   starts a grace clock.
 * - The DELETE of an orphan is decided only for a handle no file references (checked by
 *   orphanDeletes and asserted again by the master when it is delivered).
 * - Imports nothing from src/master: what it reads and where it sends is gc-view.ts.
 */
import assert, { AssertionError } from 'node:assert/strict';
import { MetaOp, type GcItem } from '../../gen/gfs';
import type { Clock } from '../common/clock';
import { limits } from '../common/limits';
import type { Logger } from '../common/log';
import { formatDuration } from '../common/units';
import type { GcCommandSink, GcCommitResult, GcMetadata, GcReplicas } from './gc-view';
import { abandonedWrites, orphanCandidates, orphanDeletes, OrphanTracker, trashExpiry } from './gc-plan';

export interface CollectorOptions {
  trashPeriodMs: number;
  orphanGraceMs: number;
  pendingTimeoutMs: number;
}

export interface CollectorHost {
  state: () => GcMetadata;
  registry: GcReplicas;
  outbox: GcCommandSink;
  commit: (kind: string, op: MetaOp) => Promise<GcCommitResult>;
  /** Resolves once every op applied so far is durable. */
  durable: () => Promise<unknown>;
  isActive: () => boolean;
  clock: Clock;
  log: Logger;
}

export class Collector {
  readonly orphans = new OrphanTracker();
  /** Pending inode → last time its writer did something (monotonic ms). Soft state. */
  private readonly activity = new Map<number, number>();
  private running: Promise<void> | undefined;
  purgedTotal = 0;
  abortedTotal = 0;
  orphanDeletesTotal = 0;

  constructor(private readonly host: CollectorHost, readonly opts: CollectorOptions) {}

  /** The writer of a pending file did something (create, allocate, commit, abandon). */
  touch(inode: number): void {
    this.activity.set(inode, this.host.clock.monoMs());
  }

  /** One pass; concurrent calls share the running pass. */
  tick(): Promise<void> {
    if (!this.running) {
      this.running = this.pass().catch((e: Error) => {
        // A broken invariant is a programmer error: never swallowed, it stops the process.
        if (e instanceof AssertionError) throw e;
        this.host.log.error({ err: e.message }, 'gc pass failed');
      }).finally(() => { this.running = undefined; });
    }
    return this.running;
  }

  private async pass(): Promise<void> {
    const { log, clock } = this.host;
    this.refreshActivity();
    if (!this.host.isActive()) {
      // A new term starts every grace clock afresh.
      this.orphans.clear();
      return;
    }

    const trash = trashExpiry(this.host.state().trash(), clock.nowMs(), this.opts.trashPeriodMs);
    for (let i = 0; i < trash.due.length && this.host.isActive(); i += limits.purgeInodesPerOpMax) {
      const batch = trash.due.slice(i, i + limits.purgeInodesPerOpMax);
      try {
        const result = await this.host.commit('purge', MetaOp.fromPartial({ purge: { inodes: batch.map((f) => f.inode) } }));
        this.purgedTotal += batch.length;
        log.info({ files: batch.length, chunks: result.released?.length ?? 0, paths: batch.slice(0, 5).map((f) => f.path) }, 'purged expired trash');
      } catch (e) {
        log.warn({ err: (e as Error).message }, 'trash purge refused; will retry');
      }
    }

    const now = clock.monoMs();
    const abandoned = abandonedWrites(this.pendingWrites(now), this.opts.pendingTimeoutMs);
    for (const p of abandoned.due) {
      if (!this.host.isActive()) break;
      try {
        await this.host.commit('abort', MetaOp.fromPartial({ abortFile: { inode: p.inode } }));
        this.abortedTotal++;
        this.activity.delete(p.inode);
        log.warn({ inode: p.inode, path: p.path, idleMs: Math.round(p.idleMs) }, 'aborted abandoned write; its chunks become orphans');
      } catch (e) {
        // Completed or aborted by its writer meanwhile: nothing to do.
        log.debug({ inode: p.inode, err: (e as Error).message }, 'abandoned write already gone');
      }
    }

    // Seen now, counted from when everything applied so far is durable.
    const state = this.host.state();
    const candidates = orphanCandidates(this.host.registry.reportedHandles(), (h) => state.chunkOwner(h) !== undefined, state.nextHandle);
    await this.host.durable();
    if (!this.host.isActive()) return;
    this.orphans.update(candidates, clock.monoMs());
    const due = orphanDeletes(this.orphans, clock.monoMs(), this.opts.orphanGraceMs, (h) => state.chunkOwner(h) !== undefined, state.nextHandle);
    for (const handle of due) {
      assert.equal(state.chunkOwner(handle), undefined, 'GC never deletes a chunk that metadata references');
      for (const r of this.host.registry.replicaViews(handle)) {
        if (!r.usable) continue;
        const queued = this.host.outbox.queueDelete({
          nodeId: r.nodeId, handle, version: r.version, reason: 'orphan',
          detail: `no file references it; unreferenced for ${formatDuration(clock.monoMs() - (this.orphans.sinceMs(handle) ?? 0))}`,
        }, clock.monoMs());
        if (queued) {
          this.orphanDeletesTotal++;
          log.info({ handle, node: r.nodeId, version: r.version }, 'deleting orphan replica');
        }
      }
    }
  }

  private refreshActivity(): void {
    const now = this.host.clock.monoMs();
    const pending = new Set<number>();
    for (const f of this.host.state().pendingFiles()) {
      pending.add(f.inode);
      // First seen by this master (start, failover): its clock starts now.
      if (!this.activity.has(f.inode)) this.activity.set(f.inode, now);
    }
    for (const inode of this.activity.keys()) if (!pending.has(inode)) this.activity.delete(inode);
  }

  private pendingWrites(nowMonoMs: number): { inode: number; path: string; idleMs: number }[] {
    return this.host.state().pendingFiles().map((f) => ({
      inode: f.inode, path: f.path, idleMs: nowMonoMs - (this.activity.get(f.inode) ?? nowMonoMs),
    }));
  }

  /** What GC would reclaim, and why (gfsctl gc --dry-run): trash, abandoned writes, orphans. */
  report(active: boolean): GcItem[] {
    const { clock, registry } = this.host;
    const state = this.host.state();
    this.refreshActivity();
    const items: GcItem[] = [];
    const bytesOfHandle = (h: number) => registry.replicaViews(h).reduce((s, r) => s + r.length, 0);
    const trash = trashExpiry(state.trash(), clock.nowMs(), this.opts.trashPeriodMs);
    const trashItem = (f: { inode: number; path: string; deletedAtMs: number }, dueInMs: number): GcItem => {
      const file = state.fileByInode(f.inode);
      const bytes = (file?.chunks ?? []).reduce((s, c) => s + bytesOfHandle(c.handle), 0);
      const deleted = new Date(f.deletedAtMs).toISOString();
      return {
        kind: 'trash', handle: 0, nodeId: '', path: f.path, inode: f.inode, bytes, due: dueInMs === 0, dueInMs,
        reason: dueInMs === 0
          ? `deleted ${deleted}; trash period (${formatDuration(this.opts.trashPeriodMs)}) is over: purged at the next pass, then its replicas wait out the orphan grace`
          : `deleted ${deleted}; stays restorable in trash for ${formatDuration(dueInMs)} more`,
      };
    };
    for (const f of trash.due) items.push(trashItem(f, 0));
    for (const w of trash.waiting) items.push(trashItem(w.item, Math.round(w.dueInMs)));

    const abandoned = abandonedWrites(this.pendingWrites(clock.monoMs()), this.opts.pendingTimeoutMs);
    const pendingItem = (p: { inode: number; path: string; idleMs: number }, dueInMs: number): GcItem => {
      const file = state.fileByInode(p.inode);
      const bytes = (file?.chunks ?? []).reduce((s, c) => s + bytesOfHandle(c.handle), 0);
      return {
        kind: 'abandoned-write', handle: 0, nodeId: '', path: p.path, inode: p.inode, bytes, due: dueInMs === 0, dueInMs,
        reason: dueInMs === 0
          ? `writer silent for ${formatDuration(p.idleMs)} (timeout ${formatDuration(this.opts.pendingTimeoutMs)}): aborted at the next pass, its chunks become orphans`
          : `being written; aborted if its writer stays silent ${formatDuration(dueInMs)} more`,
      };
    };
    for (const p of abandoned.due) items.push(pendingItem(p, 0));
    for (const w of abandoned.waiting) items.push(pendingItem(w.item, Math.round(w.dueInMs)));

    const candidates = orphanCandidates(registry.reportedHandles(), (h) => state.chunkOwner(h) !== undefined, state.nextHandle);
    const now = clock.monoMs();
    for (const handle of [...candidates].sort((a, b) => a - b)) {
      const since = active ? this.orphans.sinceMs(handle) : undefined;
      for (const r of registry.replicaViews(handle)) {
        const pending = this.host.outbox.pendingDelete(handle, r.nodeId);
        let dueInMs = since === undefined ? this.opts.orphanGraceMs : Math.max(0, Math.round(since + this.opts.orphanGraceMs - now));
        let reason: string;
        if (pending) {
          dueInMs = 0;
          reason = 'no file references it; delete sent, waiting for the chunkserver to confirm';
        } else if (since === undefined) {
          reason = active
            ? `no file references it; its grace (${formatDuration(this.opts.orphanGraceMs)}) starts at the next pass`
            : `no file references it; its grace (${formatDuration(this.opts.orphanGraceMs)}) starts when the master leaves safe mode`;
        } else if (dueInMs === 0) {
          reason = `no file references it for ${formatDuration(now - since)} (grace ${formatDuration(this.opts.orphanGraceMs)}): deleted at the next pass`;
        } else {
          reason = `no file references it for ${formatDuration(now - since)}; deleted after the grace, in ${formatDuration(dueInMs)}`;
        }
        if (!r.usable) reason += ' (its chunkserver is down or has not reported)';
        items.push({ kind: 'orphan', handle, nodeId: r.nodeId, path: '', inode: 0, bytes: r.length, due: dueInMs === 0 && r.usable, dueInMs, reason });
      }
    }
    return items;
  }
}
