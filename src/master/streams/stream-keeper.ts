/**
 * The driver of streams (docs/LOG-STREAMS.md, "Streams, segments and retention"): it
 * gathers each stream's view from the metadata, asks the pure planner (roll-plan.ts)
 * what to roll and drop, and carries the plan out through the commit path; it also
 * gives AppendTarget on a stream directory its active segment, creating it on first use.
 *
 * Invariants:
 * - Only the leader acts, and not in safe mode (a roll's seal must reach every replica,
 *   so their locations must be known; a drop is a delete); every change is a committed
 *   op (OpRollSegment, OpPurge), so a follower that takes over sees exactly what was
 *   done and plans afresh.
 * - One roll and one segment creation per stream at a time: concurrent callers share
 *   them. A roll closes the segment through the log sealer first (its open chunk sealed
 *   at the length every replica holds, then the log closed), so every acknowledged
 *   byte is in the sealed segment and no append lands after it.
 * - Retention drops whole sealed segments straight from the metadata (one OpPurge);
 *   never the active one (the planner asserts it, the state machine refuses it).
 */
import { MetaOp, type AppendTargetRequest, type AppendTargetResponse, type GcItem } from '../../../gen/gfs';
import type { Clock } from '../../common/clock';
import { GfsError } from '../../common/errors';
import { limits } from '../../common/limits';
import type { Logger } from '../../common/log';
import { normalizePath } from '../../common/paths';
import type { ApplyResult, FileNode, MetaState } from '../meta-state';
import type { Dir } from '../namespace';
import { childPath } from '../namespace';
import { storedOffset } from '../logs/writer-windows';
import { planStreams, retentionDrops, type StreamView } from './roll-plan';
import { segmentName } from '../../common/segment-name';
import { StreamWatch } from './stream-watch';

export interface StreamHost {
  state: () => MetaState;
  commit: (kind: string, op: MetaOp) => Promise<ApplyResult>;
  isLeader: () => boolean;
  /** Safe mode: replica locations are not all known yet, so no roll (a seal would miss replicas) and no drop. */
  safeMode: () => boolean;
  reserveInode: () => number;
  clock: Clock;
  log: Logger;
  /** The committed length of an open log's open chunk (0 if none), asked from its primary. */
  openLength: (file: FileNode) => Promise<number>;
  /** Closes a log: seals its open chunk, then commits it closed (SealLog). */
  sealLog: (path: string) => Promise<FileNode>;
  /** AppendTarget of a plain log. */
  appendTarget: (req: AppendTargetRequest) => Promise<AppendTargetResponse>;
}

/** Rounds of "find or create the active segment, then target it" before giving up: a roll in between costs one. */
const targetRoundsMax = 3;

export class StreamKeeper {
  private readonly rolling = new Map<number, Promise<void>>();
  private readonly creating = new Map<string, Promise<FileNode>>();
  private ticking = false;
  /** Running totals for /metrics. */
  createdTotal = 0;
  rolledTotal = 0;
  droppedTotal = 0;
  droppedBytesTotal = 0;
  /** Watchers of stream directories: fed every applied op. */
  readonly watch: StreamWatch;

  constructor(private readonly host: StreamHost) {
    this.watch = new StreamWatch(host.state);
  }

  private get state(): MetaState { return this.host.state(); }

  // ------------------------------------------------------------ the tick

  /** Rolls and drops what is due now. One tick at a time; errors are logged and retried next tick. */
  async tick(): Promise<void> {
    if (!this.host.isLeader() && this.watch.size > 0) this.watch.endAll(new GfsError('NOT_LEADER', 'this master stopped leading: watch again'));
    if (this.ticking || !this.host.isLeader() || this.host.safeMode()) return;
    this.ticking = true;
    try {
      const now = this.host.clock.nowMs();
      const plan = planStreams(await this.views(true), now);
      const dropping = new Set(plan.drop.map((d) => d.inode));
      const unfinished = this.unfinishedRolls().filter((r) => !dropping.has(r.inode));
      const rolls = [...plan.roll, ...unfinished].map((r) => this.roll(r.inode, r.reason).catch((e: Error) => {
        this.host.log.warn({ stream: r.stream, inode: r.inode, err: e.message }, 'rolling a stream segment failed; trying again next tick');
      }));
      if (plan.drop.length > 0) {
        await this.host.commit('retention', MetaOp.fromPartial({ purge: { inodes: plan.drop.map((d) => d.inode) } }));
        this.droppedTotal += plan.drop.length;
        this.droppedBytesTotal += plan.drop.reduce((n, d) => n + d.bytes, 0);
        for (const d of plan.drop) this.host.log.info({ stream: d.stream, segment: d.path, bytes: d.bytes, reason: d.reason }, 'retention dropped a segment');
      }
      await Promise.all(rolls);
    } catch (e) {
      this.host.log.warn({ err: (e as Error).message }, 'stream tick failed; trying again next tick');
    } finally {
      this.ticking = false;
    }
  }

  /** Every stream's view; with `ask`, the active segment's size includes its open chunk's committed bytes. */
  private async views(ask: boolean): Promise<StreamView[]> {
    const views = this.viewsNow();
    if (!ask) return views;
    await Promise.all(views.map(async (view) => {
      const { active, policy } = view;
      if (active === undefined || (policy.rollBytes === 0 && policy.retentionBytes === 0)) return;
      const file = this.state.fileByInode(active.inode);
      if (file !== undefined) active.bytes += await this.host.openLength(file).catch(() => 0);
    }));
    return views;
  }

  /** Every stream's view from the metadata alone: the active segment's size is its sealed chunks. */
  private viewsNow(): StreamView[] {
    const views: StreamView[] = [];
    for (const dir of this.state.streams()) {
      const file = this.state.activeSegment(dir);
      const view: StreamView = { path: dir.path, policy: dir.stream!.policy, sealed: this.sealedSegments(dir) };
      if (file !== undefined) view.active = { inode: file.inode, path: file.path, bytes: file.size, createdMs: file.segment!.createdMs };
      views.push(view);
    }
    return views;
  }

  /**
   * Streams whose active segment was closed but whose roll was never committed (a
   * SealLog of the segment itself, or a leader that failed between the two): the roll
   * is finished, so the stream's offsets and retention move on.
   */
  private unfinishedRolls(): { stream: string; inode: number; reason: string }[] {
    const out: { stream: string; inode: number; reason: string }[] = [];
    for (const dir of this.state.streams()) {
      const inode = dir.stream!.activeInode;
      const file = inode === 0 ? undefined : this.state.fileByInode(inode);
      if (file?.segment === undefined || !file.visible || file.log?.open !== false || this.streamOf(file) !== dir) continue;
      out.push({ stream: dir.path, inode, reason: 'closed without a roll' });
    }
    return out;
  }

  /** A stream's sealed segments, oldest first (names sort by time). */
  private sealedSegments(dir: Dir): StreamView['sealed'] {
    const out: StreamView['sealed'] = [];
    for (const name of [...dir.children.keys()].sort()) {
      const f = dir.children.get(name)!;
      if (f.kind !== 'file' || f.segment === undefined || f.state !== 'sealed') continue;
      out.push({ inode: f.inode, path: f.path, bytes: f.size, sealedMs: f.mtimeMs });
    }
    return out;
  }

  // ------------------------------------------------------------ rolls

  /** Closes the active segment `inode` and commits the roll; the next append creates the next segment. */
  roll(inode: number, reason: string): Promise<void> {
    let p = this.rolling.get(inode);
    if (p === undefined) {
      p = this.rollNow(inode, reason).finally(() => this.rolling.delete(inode));
      this.rolling.set(inode, p);
    }
    return p;
  }

  private async rollNow(inode: number, reason: string): Promise<void> {
    const file = this.state.fileByInode(inode);
    if (file?.segment === undefined) return;
    if (file.log?.open === true) await this.host.sealLog(file.path);
    const sealed = this.state.fileByInode(inode);
    const dir = sealed === undefined ? undefined : this.streamOf(sealed);
    if (dir === undefined || dir.stream!.activeInode !== inode) return;
    await this.host.commit('rollSegment', MetaOp.fromPartial({
      rollSegment: { stream: dir.path, sealedInode: inode, newSegment: '', newInode: 0, baseOffset: 0, mtimeMs: this.host.clock.nowMs() },
    }));
    this.rolledTotal++;
    this.host.log.info({ stream: dir.path, segment: sealed!.path, bytes: sealed!.size, reason }, 'stream segment rolled');
  }

  /** The stream directory a file is directly in, if it is one. */
  private streamOf(file: FileNode): Dir | undefined {
    const i = file.path.lastIndexOf('/');
    const dir = this.state.streamDir(file.path.slice(0, i === 0 ? 1 : i));
    return dir;
  }

  // ------------------------------------------------------------ appends

  /** The stream at `path` (a directory with a policy), or undefined when it is none. */
  isStream(path: string): boolean {
    return this.state.streamDir(normalizePath(path)) !== undefined;
  }

  /**
   * AppendTarget of a stream: its active segment's target, the segment created if there
   * is none. A record already stored in a segment the stream rolled past answers with
   * its offset there (exactly once across a roll).
   */
  async appendTarget(req: AppendTargetRequest): Promise<AppendTargetResponse> {
    const path = normalizePath(req.path);
    const stored = this.storedInRolled(req);
    if (stored !== undefined) return stored;
    let lastError: unknown;
    for (let round = 0; round < targetRoundsMax; round++) {
      const segment = await this.activeSegment(path);
      try {
        return await this.host.appendTarget({ ...req, path: segment.path, create: false });
      } catch (e) {
        // The segment rolled under us (it is being closed, or closed): go to the next one.
        if (!(e instanceof GfsError) || e.code !== 'FILE_NOT_WRITABLE') throw e;
        await this.rolling.get(segment.inode)?.catch(() => undefined);
        if (this.state.fileByInode(segment.inode)?.log?.open === true) throw e;
        lastError = e;
      }
    }
    throw lastError;
  }

  private storedInRolled(req: AppendTargetRequest): AppendTargetResponse | undefined {
    if (!req.endedHandle || req.recordId === undefined || req.recordId.writer === '') return undefined;
    const owner = this.state.chunkOwner(req.endedHandle);
    const file = owner === undefined ? undefined : this.state.fileByInode(owner.inode);
    if (file?.segment === undefined || file.log === undefined || file.log.open) return undefined;
    const at = storedOffset(file.log.writers, req.recordId.writer, req.recordId.seq);
    return at === undefined ? undefined : { inode: file.inode, path: file.path, storedOffset: at, leaseMs: 0 };
  }

  /** The stream's active segment, created (OpRollSegment without a sealed one) if it has none. */
  async activeSegment(path: string): Promise<FileNode> {
    for (let round = 0; ; round++) {
      const dir = this.requireStream(path);
      const active = this.state.activeSegment(dir);
      if (active !== undefined) return active;
      let p = this.creating.get(dir.path);
      if (p === undefined) {
        p = this.createSegment(dir).finally(() => this.creating.delete(dir.path));
        this.creating.set(dir.path, p);
      }
      try {
        return await p;
      } catch (e) {
        // Another master's or caller's segment won: take it.
        if (round >= targetRoundsMax || !(e instanceof GfsError) || (e.code !== 'ALREADY_EXISTS' && e.code !== 'INVALID_ARGUMENT')) throw e;
      }
    }
  }

  private async createSegment(dir: Dir): Promise<FileNode> {
    const state = dir.stream!;
    const mtimeMs = Math.max(this.host.clock.nowMs(), state.lastCreatedMs + 1);
    const baseOffset = this.state.streamEnd(dir);
    const result = await this.host.commit('rollSegment', MetaOp.fromPartial({
      rollSegment: {
        stream: dir.path, sealedInode: 0, newSegment: childPath(dir.path, segmentName(mtimeMs, baseOffset)),
        newInode: this.host.reserveInode(), baseOffset, mtimeMs,
      },
    }));
    this.createdTotal++;
    this.host.log.info({ stream: dir.path, segment: result.file!.path, baseOffset }, 'stream segment created');
    return result.file!;
  }

  private requireStream(path: string): Dir {
    const dir = this.state.streamDir(normalizePath(path));
    if (dir === undefined) throw new GfsError('NO_SUCH_FILE', `no stream "${path}"`);
    return dir;
  }

  /** SealLog of a stream: roll its active segment now; answers the sealed segment (or undefined if none was active). */
  async rollNowFor(path: string): Promise<FileNode | undefined> {
    const dir = this.requireStream(path);
    const active = this.state.activeSegment(dir);
    if (active === undefined) return undefined;
    await this.roll(active.inode, 'SealLog');
    return this.state.fileByInode(active.inode);
  }

  // ------------------------------------------------------------ views (gc --dry-run, df)

  /**
   * What retention will drop: due now (at the next stream tick), and, for streams with a
   * retention age, when each other sealed segment will go. Bytes count every replica.
   */
  retentionItems(nowMs: number): GcItem[] {
    const items: GcItem[] = [];
    for (const view of this.viewsNow()) {
      const due = new Set<number>();
      for (const d of retentionDrops(view, nowMs)) {
        due.add(d.inode);
        const why = d.reason === 'age'
          ? `sealed segment past the stream's retention age (${view.policy.retentionAgeMs} ms)`
          : `stream "${view.path}" holds more than its retention of ${view.policy.retentionBytes} bytes`;
        items.push(this.item(d.inode, d.path, true, 0, `dropped by retention at the next stream tick: ${why}`));
      }
      if (view.policy.retentionAgeMs === 0) continue;
      for (const s of view.sealed) {
        if (due.has(s.inode)) continue;
        const dueInMs = Math.max(0, s.sealedMs + view.policy.retentionAgeMs - nowMs);
        items.push(this.item(s.inode, s.path, false, dueInMs, `dropped by retention once past the stream's retention age (${view.policy.retentionAgeMs} ms)`));
      }
    }
    return items.slice(0, limits.gcItemsMax);
  }

  private item(inode: number, path: string, due: boolean, dueInMs: number, reason: string): GcItem {
    const f = this.state.fileByInode(inode)!;
    return { kind: 'retention', reason, handle: 0, nodeId: '', path, inode, bytes: f.size * f.replication, due, dueInMs };
  }
}
