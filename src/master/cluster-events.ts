/**
 * The master's cluster events (docs/EVENTS.md): what a committed op or the leader's
 * observation becomes as an event, its position, the history kept for `gfsctl events`,
 * and the hand-off to NATS. The master calls the hooks; nothing here changes metadata
 * or waits for anything.
 *
 * Invariants:
 * - Recording an event never throws into, blocks or fails the operation that caused it
 *   (the publisher only queues; see src/events/nats-publisher.ts).
 * - Positions strictly grow: rev is the applied WAL index, seq counts events at it. An
 *   event from a WAL entry gets the same position on every master (entries apply in
 *   the same order everywhere, and only entries add events at seq 0..); the leader's
 *   own observations come after them at the same index.
 * - Only the serving leader records observations and publishes; every master keeps
 *   the metadata events in its history, so a new leader can answer --since for them.
 */
import type * as grpc from '@grpc/grpc-js';
import type { MetaOp, EventsRequest, EventsResponse } from '../../gen/gfs';
import type { Clock } from '../common/clock';
import { GfsError } from '../common/errors';
import { unaryHandler } from '../common/grpc';
import { limits } from '../common/limits';
import type { Logger } from '../common/log';
import {
  EVENT_FORMAT_VERSION, EventHistory, comparePositions, eventSubject, parsePosition, positionText, POSITION_ZERO,
  type ClusterEvent, type EventKind, type EventPosition, type EventSink,
} from '../events';
import type { ApplyResult, FileNode } from './meta-types';

export interface ClusterEventsHost {
  /** This master's id (the events' source). */
  id: string;
  cluster: string;
  /** The serving leader (observations and publishing happen only there). */
  isLeader: () => boolean;
  currentEpoch: () => number;
  fileByInode: (inode: number) => FileNode | undefined;
  /** NATS, when --nats is given. */
  sink?: EventSink;
  clock: Clock;
  log: Logger;
}

/** GC's running totals (the collector's), read after each lifecycle round. */
export interface GcTotals { purgedTotal: number; orphanDeletesTotal: number; abortedTotal: number }

export class ClusterEvents {
  readonly history: EventHistory;
  private rev: number;
  private seq = 0;
  private wasLeader = false;
  private gcLast: GcTotals | undefined;

  /** `appliedIndex`: the index the state starts at (its checkpoint); events after it are kept. */
  constructor(private readonly host: ClusterEventsHost, appliedIndex: number, capacity: number = limits.eventsHistoryMax) {
    this.rev = appliedIndex;
    this.history = new EventHistory(capacity, { rev: appliedIndex, seq: Infinity });
  }

  // ------------------------------------------------------------ hooks of the master

  /** A committed entry is being applied (on every master), no-ops and refused ops included: the index moves. */
  applying(entry: { index: number }): void {
    if (entry.index <= this.rev) return; // below the history's start (a replay of what the checkpoint holds)
    this.rev = entry.index;
    this.seq = 0;
  }

  /** The entry's op was applied: its events, at the entry's index. */
  applied(entry: { index: number; epoch: number }, op: MetaOp, result: ApplyResult): void {
    if (entry.index !== this.rev || result.replayed) return;
    for (const [kind, data] of this.opEvents(op, result)) this.record(kind, data, entry.epoch);
  }

  /** A checkpoint from the leader replaced the state: what came before `index` is not known here. */
  installed(index: number): void {
    if (index <= this.rev) return;
    this.rev = index;
    this.seq = 0;
    this.history.restart({ rev: index, seq: Infinity });
  }

  /** Called on every master tick: a change to serving leader is an event. */
  leadership(leading: boolean, addr: string): void {
    if (leading && !this.wasLeader) this.observe('leader.changed', { leader: this.host.id, addr, epoch: this.host.currentEpoch() });
    this.wasLeader = leading;
  }

  nodeUp(node: { id: string; addr: string; zone: string; tier: string }, revived: boolean): void {
    this.observe('node.up', { node: node.id, addr: node.addr, zone: node.zone, tier: node.tier, revived });
  }

  nodeDown(node: { id: string; addr: string }): void {
    this.observe('node.down', { node: node.id, addr: node.addr });
  }

  replicaCorrupt(handle: number, nodeId: string): void {
    this.observe('chunk.corrupt', { handle, node: nodeId });
  }

  chunkHealed(c: { handle: number; sourceNodeId: string; targetNodeId: string; length: number }): void {
    this.observe('chunk.healed', { handle: c.handle, source: c.sourceNodeId, target: c.targetNodeId, bytes: c.length });
  }

  /** After a lifecycle round: one gc.swept for whatever GC reclaimed in it. */
  gcRound(totals: GcTotals): void {
    const last = this.gcLast ?? { purgedTotal: 0, orphanDeletesTotal: 0, abortedTotal: 0 };
    this.gcLast = { purgedTotal: totals.purgedTotal, orphanDeletesTotal: totals.orphanDeletesTotal, abortedTotal: totals.abortedTotal };
    const d = {
      purgedFiles: totals.purgedTotal - last.purgedTotal,
      orphanDeletes: totals.orphanDeletesTotal - last.orphanDeletesTotal,
      abortedWrites: totals.abortedTotal - last.abortedTotal,
    };
    if (d.purgedFiles > 0 || d.orphanDeletes > 0 || d.abortedWrites > 0) this.observe('gc.swept', d);
  }

  /** Wakes long polls (the master is stopping). */
  stop(): void {
    this.history.wakeAll();
  }

  // ------------------------------------------------------------ the Events RPC

  /** `gfsctl events`: served by the leader, whose history has its observations too. */
  handler(isLeader: () => boolean, notLeader: () => GfsError): grpc.handleUnaryCall<EventsRequest, EventsResponse> {
    return unaryHandler(async (req: EventsRequest): Promise<EventsResponse> => {
      if (!isLeader()) throw notLeader();
      const since = req.since === '' ? POSITION_ZERO : parsePosition(req.since);
      const limit = Math.min(req.limit || limits.eventsPageMax, limits.eventsPageMax);
      const waitMs = Math.min(req.waitMs, limits.eventsWaitMaxMs);
      // From the oldest kept: whatever the horizon is, that is no gap.
      const from = req.since === '' && this.history.horizon.rev > 0 ? this.history.horizon : since;
      await this.history.waitAfter(from, waitMs, this.host.clock);
      const page = this.history.after(from, limit);
      return {
        events: page.events.map((e) => JSON.stringify(e)), gap: page.gap, horizon: positionText(page.horizon),
        latest: page.latest ? positionText(page.latest) : '', more: page.more,
      };
    });
  }

  // ------------------------------------------------------------ internals

  /** The leader's own observation, at the current index after the entries' events. */
  private observe(kind: EventKind, data: Record<string, unknown>): void {
    if (!this.host.isLeader()) return;
    this.record(kind, data, this.host.currentEpoch());
  }

  private record(kind: EventKind, data: Record<string, unknown>, epoch: number): void {
    const at: EventPosition = { rev: this.rev, seq: this.seq++ };
    const floor = this.history.latest() ?? this.history.horizon;
    if (comparePositions(at, floor) <= 0) {
      // Only an observation right after a checkpoint install could land here (a leader does
      // not install one): dropping a hint beats an out-of-order history or a crash.
      this.host.log.warn({ kind, at: positionText(at), after: positionText(floor) }, 'event not after the history; dropped');
      return;
    }
    const event: ClusterEvent = {
      v: EVENT_FORMAT_VERSION, id: positionText(at), rev: at.rev, seq: at.seq, epoch, kind, cluster: this.host.cluster,
      source: `master/${this.host.id}`, timeMs: this.host.clock.nowMs(), data,
    };
    this.history.record(event);
    if (this.host.sink && this.host.isLeader()) this.host.sink.publish(eventSubject(this.host.cluster, kind), JSON.stringify(event));
  }

  /** What an applied op means to a consumer (most ops, chunk bookkeeping, mean nothing). */
  private opEvents(op: MetaOp, result: ApplyResult): [EventKind, Record<string, unknown>][] {
    const out: [EventKind, Record<string, unknown>][] = [];
    const replaced = (inodes: number[] | undefined) => {
      for (const inode of inodes ?? []) out.push(['file.deleted', { path: this.host.fileByInode(inode)?.path ?? '', inode, reason: 'replaced' }]);
    };
    switch (result.op as string) {
      case 'createFile':
        out.push(['file.created', { path: result.file?.path ?? op.createFile?.path ?? '', inode: result.inode }]);
        break;
      case 'setLog': // a log is visible (and replaces a file there) from its creation on
        replaced(result.trashed);
        break;
      case 'completeFile':
        replaced(result.trashed);
        out.push(['file.sealed', { path: result.file?.path ?? '', inode: result.inode, size: result.file?.size ?? 0, log: result.file?.log !== undefined }]);
        break;
      case 'concatFiles': // the parts are gone (their chunks are the new file's), the new file is sealed
        for (const part of result.consumed ?? []) out.push(['file.deleted', { path: part.path, inode: part.inode, reason: 'concatenated' }]);
        replaced(result.trashed);
        out.push(['file.sealed', { path: result.file?.path ?? '', inode: result.inode, size: result.file?.size ?? 0, log: false }]);
        break;
      case 'rename':
        replaced(result.trashed);
        out.push(['file.renamed', { source: op.rename?.source ?? '', target: op.rename?.target ?? '' }]);
        break;
      case 'delete': {
        const trashed = result.trashed ?? [];
        const file = trashed.length === 1 ? this.host.fileByInode(trashed[0]!) : undefined;
        // A file, or a directory (recursive): one event, however many files went to trash.
        if (file && file.path === op.delete?.path) out.push(['file.deleted', { path: file.path, inode: file.inode, reason: 'deleted' }]);
        else out.push(['dir.deleted', { path: op.delete?.path ?? '', files: trashed.length }]);
        break;
      }
      case 'restore':
        out.push(['file.restored', { path: result.file?.path ?? '', inode: result.inode }]);
        break;
    }
    // Streams (issue 10): a roll applied by the state machine is an event whatever its result shape.
    if (op.rollSegment) {
      const r = op.rollSegment;
      out.push(['segment.rolled', { stream: r.stream, sealedInode: r.sealedInode, newSegment: r.newSegment, newInode: r.newInode, baseOffset: r.baseOffset }]);
    }
    // Tokens (DESIGN §11): a revocation, so consumers (gateways, auditors) can drop the token at once.
    if (op.tokenCreate) out.push(['token.created', { id: op.tokenCreate.id }]);
    if (op.tokenRevoke) out.push(['token.revoked', { id: op.tokenRevoke.id }]);
    if (op.namespaceSet) out.push(['namespace.changed', { name: op.namespaceSet.name, visibility: op.namespaceSet.visibility }]);
    return out;
  }
}
