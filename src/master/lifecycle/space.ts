/**
 * Where used space goes (`gfsctl df`), so "why is my space not free" has an answer:
 * every replica a chunkserver reports falls in exactly one class, and what the nodes
 * use beyond their replicas' bytes (checksum files, temporary files) is "other".
 *
 * Invariant: per node, live + trash + orphan + stale + corrupt + overReplicated +
 * writing + other = used (other is clamped at 0 when reports and usage disagree for a
 * moment).
 */
import type { ReplicaVerdict } from './heal-plan';
import type { InodeLocation } from '../meta-state';

export type SpaceClass = 'live' | 'trash' | 'orphan' | 'stale' | 'corrupt' | 'overReplicated' | 'writing';

export const spaceClasses: readonly SpaceClass[] = ['live', 'trash', 'orphan', 'stale', 'corrupt', 'overReplicated', 'writing'];

/**
 * The class of one replica. `owner` is where the referencing file is (undefined: no
 * file references it); `extra` marks a healthy replica beyond the chunk's goal.
 */
export function spaceClass(
  owner: { location: InodeLocation; committed: boolean } | undefined, verdict: ReplicaVerdict | undefined, extra: boolean,
): SpaceClass {
  if (owner === undefined) return 'orphan';
  if (owner.location === 'trash') return 'trash';
  if (owner.location === 'pending' || !owner.committed) return 'writing';
  if (verdict === 'stale') return 'stale';
  if (verdict === 'corrupt') return 'corrupt';
  return extra ? 'overReplicated' : 'live';
}

export interface SpaceNode {
  id: string;
  addr: string;
  state: string;
  capacityBytes: number;
  usedBytes: number;
  freeBytes: number;
  /** Counted in the cluster totals (alive). */
  counted: boolean;
}

export type SpaceSplit = Record<SpaceClass | 'other', number>;

export interface NodeSpace extends SpaceNode { split: SpaceSplit }

export interface SpaceReport {
  capacityBytes: number;
  usedBytes: number;
  freeBytes: number;
  split: SpaceSplit;
  nodes: NodeSpace[];
}

function emptySplit(): SpaceSplit {
  return { live: 0, trash: 0, orphan: 0, stale: 0, corrupt: 0, overReplicated: 0, writing: 0, other: 0 };
}

export function accountSpace(
  nodes: readonly SpaceNode[],
  replicasOn: (nodeId: string) => Iterable<{ handle: number; length: number }>,
  classify: (handle: number, nodeId: string) => SpaceClass,
): SpaceReport {
  const report: SpaceReport = { capacityBytes: 0, usedBytes: 0, freeBytes: 0, split: emptySplit(), nodes: [] };
  for (const n of nodes) {
    const split = emptySplit();
    let replicaBytes = 0;
    for (const r of replicasOn(n.id)) {
      split[classify(r.handle, n.id)] += r.length;
      replicaBytes += r.length;
    }
    split.other = Math.max(0, n.usedBytes - replicaBytes);
    report.nodes.push({ ...n, split });
    if (!n.counted) continue;
    report.capacityBytes += n.capacityBytes;
    report.usedBytes += n.usedBytes;
    report.freeBytes += n.freeBytes;
    for (const k of Object.keys(split) as (keyof SpaceSplit)[]) report.split[k] += split[k];
  }
  return report;
}
