/**
 * Where used space goes (`gfsctl df`), so "why is my space not free" has an answer:
 * every replica a chunkserver reports falls in exactly one class, and what the nodes
 * use beyond their replicas' bytes (checksum files, temporary files) is "other".
 *
 * Invariants:
 * - Per node, live + trash + orphan + stale + corrupt + overReplicated + writing + other
 *   = gfsUsed, the chunk files the node reports (other is clamped at 0 when reports and
 *   usage disagree for a moment).
 * - Per node and in total, used + free = capacity: used is the file system's
 *   (capacity - free, whoever wrote it), not only gfs's.
 * - The totals count each file system once, however many counted nodes share it (gfs
 *   dev's chunkservers share one disk); gfsUsed is summed over nodes, since each node's
 *   chunk files are its own.
 */
import assert from 'node:assert/strict';
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
  /** The chunk files it reports (data + checksums). */
  usedBytes: number;
  freeBytes: number;
  /** Counted in the cluster totals (alive). */
  counted: boolean;
  /** Its data dir's file system ('' = unknown: counted as its own). */
  fsId?: string;
}

export type SpaceSplit = Record<SpaceClass | 'other', number>;

export interface NodeSpace extends SpaceNode {
  split: SpaceSplit;
  /** What the node reported as usedBytes: its chunk files. (usedBytes here = capacity - free.) */
  gfsUsedBytes: number;
  /** Other nodes on the same file system. */
  sharesFsWith: string[];
}

export interface SpaceReport {
  /** Each file system once: used = capacity - free. */
  capacityBytes: number;
  usedBytes: number;
  freeBytes: number;
  gfsUsedBytes: number;
  filesystems: number;
  /** One line per file system shared by several counted nodes. */
  sharedNotes: string[];
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
  const report: SpaceReport = {
    capacityBytes: 0, usedBytes: 0, freeBytes: 0, gfsUsedBytes: 0, filesystems: 0, sharedNotes: [], split: emptySplit(), nodes: [],
  };
  const fsKey = (n: SpaceNode) => (n.fsId ? `fs:${n.fsId}` : `node:${n.id}`);
  const sharing = new Map<string, string[]>();
  for (const n of nodes) sharing.set(fsKey(n), [...(sharing.get(fsKey(n)) ?? []), n.id]);
  const countedFs = new Map<string, string[]>();
  for (const n of nodes) {
    const split = emptySplit();
    let replicaBytes = 0;
    for (const r of replicasOn(n.id)) {
      split[classify(r.handle, n.id)] += r.length;
      replicaBytes += r.length;
    }
    split.other = Math.max(0, n.usedBytes - replicaBytes);
    const capacity = Math.max(n.capacityBytes, n.freeBytes);
    const sharesFsWith = (sharing.get(fsKey(n)) ?? []).filter((id) => id !== n.id);
    report.nodes.push({ ...n, capacityBytes: capacity, usedBytes: capacity - n.freeBytes, gfsUsedBytes: n.usedBytes, split, sharesFsWith });
    if (!n.counted) continue;
    report.gfsUsedBytes += n.usedBytes;
    for (const k of Object.keys(split) as (keyof SpaceSplit)[]) report.split[k] += split[k];
    const onFs = countedFs.get(fsKey(n));
    if (onFs) { onFs.push(n.id); continue; }
    countedFs.set(fsKey(n), [n.id]);
    report.capacityBytes += capacity;
    report.freeBytes += n.freeBytes;
  }
  report.usedBytes = report.capacityBytes - report.freeBytes;
  report.filesystems = countedFs.size;
  for (const ids of countedFs.values()) {
    if (ids.length > 1) report.sharedNotes.push(`${ids.join(', ')} share one file system (counted once in the totals)`);
  }
  // Postcondition: the totals add up, per node and overall.
  for (const n of report.nodes) assert.equal(n.usedBytes + n.freeBytes, n.capacityBytes, `df line of ${n.id} does not add up`);
  assert.equal(report.usedBytes + report.freeBytes, report.capacityBytes, 'df totals do not add up');
  return report;
}
