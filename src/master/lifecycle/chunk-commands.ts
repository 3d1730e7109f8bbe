/**
 * Commands for chunkservers (DELETE, REPLICATE), delivered in heartbeat replies
 * (DESIGN §6), and the record of what was issued and is not yet confirmed.
 *
 * Invariants:
 * - A replica with an unconfirmed DELETE counts as gone for every later decision, so two
 *   ticks never both trim the same chunk, and readers are not sent to it.
 * - Each command is re-checked against the current state at the moment it is handed to
 *   a heartbeat (`deliver`'s check): a command that no longer holds is forgotten,
 *   never sent. The decision and the delivery are two confirmations.
 * - A command is confirmed by what the chunkserver reports (the replica gone, the clone
 *   present), or forgotten after a timeout so the next plan can decide again.
 * - At most one clone per (handle, target) is outstanding.
 */
import type { ChunkCommand } from '../../../gen/gfs';
import { ChunkCommand_Kind } from '../../../gen/gfs';
import { limits } from '../../common/limits';
import type { DeleteReason } from './heal-plan';

export type DeleteKind = DeleteReason | 'orphan';

export interface PendingDelete {
  kind: 'delete';
  nodeId: string;
  handle: number;
  version: number;
  reason: DeleteKind;
  detail: string;
  queuedMonoMs: number;
  delivered: boolean;
}

export interface PendingClone {
  kind: 'clone';
  handle: number;
  version: number;
  length: number;
  sourceNodeId: string;
  targetNodeId: string;
  queuedMonoMs: number;
  delivered: boolean;
  deadlineMonoMs: number;
  /** Down to one healthy copy: the copy is not slowed for foreground traffic. */
  urgent?: boolean;
}

export type PendingCommand = PendingDelete | PendingClone;

export interface SettleResult {
  completed: PendingClone[];
  failed: PendingClone[];
  confirmedDeletes: PendingDelete[];
  expiredDeletes: PendingDelete[];
}

/**
 * When a clone queued now is given up: the command timeout, or longer for a big chunk
 * copied at the slowest rate we still call working.
 */
export function cloneDeadlineMs(nowMonoMs: number, length: number): number {
  return nowMonoMs + Math.max(limits.chunkCommandTimeoutMs, (length / limits.repairCloneRateMinBytesPerSec) * 1000);
}

export class CommandOutbox {
  private readonly deletes = new Map<number, Map<string, PendingDelete>>();
  private readonly clones = new Map<string, PendingClone>();
  /** Not yet handed to a heartbeat, per node, oldest first. */
  private readonly queues = new Map<string, PendingCommand[]>();

  constructor(private readonly commandTimeoutMs: number) {}

  queueDelete(d: Omit<PendingDelete, 'kind' | 'delivered' | 'queuedMonoMs'>, nowMonoMs: number): boolean {
    let byNode = this.deletes.get(d.handle);
    if (byNode?.has(d.nodeId)) return false;
    if (!byNode) { byNode = new Map(); this.deletes.set(d.handle, byNode); }
    const pending: PendingDelete = { ...d, kind: 'delete', delivered: false, queuedMonoMs: nowMonoMs };
    byNode.set(d.nodeId, pending);
    this.enqueue(d.nodeId, pending);
    return true;
  }

  /** The clone is sent to its target, which reads from the source. */
  queueClone(c: Omit<PendingClone, 'kind' | 'delivered' | 'queuedMonoMs'>, nowMonoMs: number): boolean {
    const key = cloneKey(c.handle, c.targetNodeId);
    if (this.clones.has(key)) return false;
    const pending: PendingClone = { ...c, kind: 'clone', delivered: false, queuedMonoMs: nowMonoMs };
    this.clones.set(key, pending);
    this.enqueue(c.targetNodeId, pending);
    return true;
  }

  /** Nodes with an unconfirmed DELETE of the handle. */
  deletingOf(handle: number): ReadonlySet<string> {
    const byNode = this.deletes.get(handle);
    return byNode ? new Set(byNode.keys()) : EMPTY;
  }

  pendingDelete(handle: number, nodeId: string): PendingDelete | undefined {
    return this.deletes.get(handle)?.get(nodeId);
  }

  allDeletes(): PendingDelete[] {
    const out: PendingDelete[] = [];
    for (const byNode of this.deletes.values()) out.push(...byNode.values());
    return out;
  }

  inflightClones(): PendingClone[] {
    return [...this.clones.values()];
  }

  /**
   * Hands the node's queued commands to its heartbeat reply. `check` is the second
   * confirmation: a command it refuses is forgotten (the next plan decides again).
   */
  deliver(nodeId: string, check: (cmd: PendingCommand) => boolean, addrOf: (nodeId: string) => string | undefined): ChunkCommand[] {
    const queue = this.queues.get(nodeId);
    if (!queue || queue.length === 0) return [];
    this.queues.delete(nodeId);
    const out: ChunkCommand[] = [];
    for (const cmd of queue) {
      if (!check(cmd)) {
        this.forget(cmd);
        continue;
      }
      cmd.delivered = true;
      if (cmd.kind === 'delete') {
        out.push({ kind: ChunkCommand_Kind.DELETE, handle: cmd.handle, version: cmd.version, sourceAddr: '', length: 0, urgent: false });
      } else {
        const sourceAddr = addrOf(cmd.sourceNodeId);
        if (sourceAddr === undefined) { this.forget(cmd); continue; }
        out.push({ kind: ChunkCommand_Kind.REPLICATE, handle: cmd.handle, version: cmd.version, sourceAddr, length: cmd.length, urgent: cmd.urgent === true });
      }
    }
    return out;
  }

  /**
   * Confirms or expires what was issued. A clone is complete when its target holds a
   * healthy replica; it failed when its deadline passed or a node it needs is gone.
   */
  settle(nowMonoMs: number, world: {
    holds: (nodeId: string, handle: number) => boolean;
    healthyOn: (handle: number, nodeId: string) => boolean;
    usable: (nodeId: string) => boolean;
  }): SettleResult {
    const result: SettleResult = { completed: [], failed: [], confirmedDeletes: [], expiredDeletes: [] };
    for (const byNode of this.deletes.values()) {
      for (const d of byNode.values()) {
        if (d.delivered && !world.holds(d.nodeId, d.handle)) {
          result.confirmedDeletes.push(d);
          this.forget(d);
        } else if (nowMonoMs - d.queuedMonoMs > this.commandTimeoutMs) {
          result.expiredDeletes.push(d);
          this.forget(d);
        }
      }
    }
    for (const c of this.clones.values()) {
      if (world.healthyOn(c.handle, c.targetNodeId)) {
        result.completed.push(c);
        this.forget(c);
      } else if (nowMonoMs > c.deadlineMonoMs || !world.usable(c.targetNodeId) || !world.usable(c.sourceNodeId)) {
        result.failed.push(c);
        this.forget(c);
      }
    }
    return result;
  }

  /** The target said the clone failed: forget it, so the next plan picks again. */
  cloneFailed(targetNodeId: string, handle: number): PendingClone | undefined {
    const c = this.clones.get(cloneKey(handle, targetNodeId));
    if (c) this.forget(c);
    return c;
  }

  /** Drops commands a dead node will never receive. */
  dropUndelivered(nodeId: string): void {
    for (const cmd of this.queues.get(nodeId) ?? []) this.forget(cmd);
    this.queues.delete(nodeId);
  }

  /** Forgets everything (no longer leader: a new leader plans from scratch). */
  clear(): void {
    this.deletes.clear();
    this.clones.clear();
    this.queues.clear();
  }

  private enqueue(nodeId: string, cmd: PendingCommand): void {
    const q = this.queues.get(nodeId) ?? [];
    q.push(cmd);
    this.queues.set(nodeId, q);
  }

  private forget(cmd: PendingCommand): void {
    if (cmd.kind === 'delete') {
      const byNode = this.deletes.get(cmd.handle);
      if (byNode?.get(cmd.nodeId) === cmd) {
        byNode.delete(cmd.nodeId);
        if (byNode.size === 0) this.deletes.delete(cmd.handle);
      }
    } else {
      const key = cloneKey(cmd.handle, cmd.targetNodeId);
      if (this.clones.get(key) === cmd) this.clones.delete(key);
    }
    const nodeId = cmd.kind === 'delete' ? cmd.nodeId : cmd.targetNodeId;
    const q = this.queues.get(nodeId);
    if (q) {
      const i = q.indexOf(cmd);
      if (i >= 0) q.splice(i, 1);
      if (q.length === 0) this.queues.delete(nodeId);
    }
  }
}

const EMPTY: ReadonlySet<string> = new Set();

function cloneKey(handle: number, targetNodeId: string): string {
  return `${handle}/${targetNodeId}`;
}
