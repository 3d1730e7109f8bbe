/**
 * Healing decisions (DESIGN §4): which chunks are below their goal and in what order,
 * where each clone reads from and writes to, and which replicas to delete (stale,
 * corrupt, over-replicated). A pure function of the chunk table, the replicas the
 * chunkservers report, the nodes, and what is already in flight, so it is unit-tested
 * and the simulation can drive it; the driver (healer.ts) does the I/O.
 *
 * Invariants:
 * - A replica is healthy only on a usable node (alive, full report received), not
 *   corrupt, with no delete pending, at the master's version (or newer) and at least
 *   the committed length. Only healthy replicas are clone sources.
 * - No plan deletes a healthy replica unless the chunk keeps at least `goal` healthy
 *   replicas without it (deletes already pending count as gone).
 * - A corrupt replica is deleted only once the chunk has its goal in healthy replicas,
 *   or when a healthy copy exists and the corrupt one's node is the only place left for
 *   a new replica. A stale replica is deleted only while a healthy copy exists:
 *   otherwise it is the best data left.
 * - Chunks being written (not committed) are left alone: their length is not final.
 * - A clone's target holds no copy of the chunk and is not already receiving it.
 * - A suspect node (one a client or chunkserver could not reach since its last
 *   heartbeat) is neither a clone's source nor its target; its replicas still count.
 * - A chunk below its goal that no clone can help now (too few eligible nodes, no
 *   reachable healthy source) is not queued: it is reported as unrepairable with its
 *   reason, and planned again every round, so a node joining heals it. Chunks of files
 *   in the trash are healed but never counted as under-replicated.
 */
import assert from 'node:assert/strict';
import type { ReplicaView } from '../registry';
import { choosePlacement, type PlacementCandidate } from '../placement';

export interface HealNode extends PlacementCandidate {
  /** Alive and its full report received. */
  usable: boolean;
  /** Being decommissioned: never a target, and its replicas do not count toward a goal. */
  draining?: boolean;
  /** Unreachable by a client or chunkserver since its last heartbeat: no clone reads or writes it. */
  suspect?: boolean;
}

export interface HealChunk {
  handle: number;
  version: number;
  length: number;
  goal: number;
  committed: boolean;
  /** The file is in the trash: healed, but not reported as under-replicated. */
  trashed?: boolean;
}

export interface ChunkHealth {
  handle: number;
  version: number;
  length: number;
  goal: number;
  /** Healthy replicas that count toward the goal. */
  healthy: string[];
  /** Healthy replicas on draining nodes: readable and usable as sources, not counted. */
  retiring: string[];
  /** On usable nodes: an older version, or fewer bytes than committed. */
  stale: string[];
  /** On usable nodes, reported corrupt. */
  corrupt: string[];
  /** On nodes that are dead or have not sent their full report yet. */
  unavailable: string[];
  /** A delete was issued and not yet confirmed. */
  deleting: string[];
}

export type ReplicaVerdict = 'healthy' | 'retiring' | 'stale' | 'corrupt' | 'unavailable' | 'deleting';

export function replicaVerdict(
  chunk: HealChunk, r: ReplicaView, deleting: ReadonlySet<string>, draining: (nodeId: string) => boolean,
): ReplicaVerdict {
  if (deleting.has(r.nodeId)) return 'deleting';
  if (!r.usable) return 'unavailable';
  if (r.corrupt) return 'corrupt';
  if (r.version < chunk.version || r.length < chunk.length) return 'stale';
  return draining(r.nodeId) ? 'retiring' : 'healthy';
}

export function assessChunk(
  chunk: HealChunk, replicas: readonly ReplicaView[], deleting: ReadonlySet<string> = new Set(),
  draining: (nodeId: string) => boolean = () => false,
): ChunkHealth {
  const h: ChunkHealth = {
    handle: chunk.handle, version: chunk.version, length: chunk.length, goal: chunk.goal,
    healthy: [], retiring: [], stale: [], corrupt: [], unavailable: [], deleting: [],
  };
  for (const r of replicas) h[replicaVerdict(chunk, r, deleting, draining)].push(r.nodeId);
  return h;
}

/** Healthy replicas that can serve a read or a clone: counted ones first. */
export function readableReplicas(h: ChunkHealth): string[] {
  return [...h.healthy, ...h.retiring];
}

/** What a chunk needs, in words, for fsck; '' when it is at its goal. */
export function chunkProblem(h: ChunkHealth): '' | 'missing' | 'under-replicated' | 'corrupt' {
  if (h.length === 0) return '';
  if (readableReplicas(h).length === 0) return 'missing';
  if (h.healthy.length < h.goal) return 'under-replicated';
  if (h.corrupt.length > 0) return 'corrupt';
  return '';
}

export interface InflightClone {
  handle: number;
  sourceNodeId: string;
  targetNodeId: string;
  bytes: number;
}

export interface HealingBudget {
  /** More clones that may start now, cluster-wide. */
  clonesMax: number;
  /** Bytes that may still be scheduled now (token bucket); a clone starts while this is > 0. */
  bytesMax: number;
  sourcesPerNodeMax: number;
  targetsPerNodeMax: number;
  fillCapRatio: number;
}

export interface HealingInput {
  chunks: Iterable<HealChunk>;
  replicasOf: (handle: number) => readonly ReplicaView[];
  nodes: readonly HealNode[];
  inflight: readonly InflightClone[];
  /** Nodes with an unconfirmed DELETE of the handle. */
  deletingOf: (handle: number) => ReadonlySet<string>;
  budget: HealingBudget;
  /** [0, 1); injected so plans are reproducible. */
  random: () => number;
  /** Replicas to remove first when the chunk is over-replicated (the source of a rebalance move). */
  trimFirst?: (handle: number) => ReadonlySet<string> | undefined;
}

export interface CloneAction {
  handle: number;
  version: number;
  length: number;
  sourceNodeId: string;
  targetNodeId: string;
  /** Healthy replicas when planned: the urgency it was ordered by. */
  healthy: number;
  goal: number;
}

export type DeleteReason = 'stale' | 'corrupt' | 'over-replicated';

export interface DeleteAction {
  handle: number;
  /** The replica's version: a chunkserver deletes only a replica at or below it. */
  version: number;
  nodeId: string;
  reason: DeleteReason;
  detail: string;
}

export interface HealingSummary {
  /** Committed chunks with data, checked. */
  chunks: number;
  /** Healthy replicas below goal, at least one healthy. */
  underReplicated: number;
  /** Chunks still short after this plan's clones and those in flight. */
  queuedChunks: number;
  queuedBytes: number;
  /** No readable replica anywhere. */
  missing: number;
  corruptReplicas: number;
  staleReplicas: number;
  overReplicated: number;
  /** Chunks below goal with no node able to take another replica. */
  unplaceable: number;
  /** Chunks with at least one readable replica (for safe mode). */
  available: number;
  /** Below their goal with nothing healing can do now: handle -> reason. Not queued. */
  unrepairable: Map<number, string>;
}

export function emptyHealingSummary(): HealingSummary {
  return {
    chunks: 0, underReplicated: 0, queuedChunks: 0, queuedBytes: 0, missing: 0, corruptReplicas: 0,
    staleReplicas: 0, overReplicated: 0, unplaceable: 0, available: 0, unrepairable: new Map(),
  };
}

export interface HealingPlan {
  clones: CloneAction[];
  deletes: DeleteAction[];
  summary: HealingSummary;
}

interface Need {
  chunk: HealChunk;
  health: ChunkHealth;
  /** Clones still wanted after those in flight. */
  wanted: number;
  inflightTargets: string[];
}

/** What is already moving: clone counts per source and target, bytes coming into each node. */
interface Traffic {
  sources: Map<string, number>;
  targets: Map<string, number>;
  inboundBytes: Map<string, number>;
  inflightByHandle: Map<number, InflightClone[]>;
}

function countInflight(inflight: readonly InflightClone[]): Traffic {
  const t: Traffic = { sources: new Map(), targets: new Map(), inboundBytes: new Map(), inflightByHandle: new Map() };
  for (const c of inflight) {
    t.sources.set(c.sourceNodeId, (t.sources.get(c.sourceNodeId) ?? 0) + 1);
    t.targets.set(c.targetNodeId, (t.targets.get(c.targetNodeId) ?? 0) + 1);
    t.inboundBytes.set(c.targetNodeId, (t.inboundBytes.get(c.targetNodeId) ?? 0) + c.bytes);
    const list = t.inflightByHandle.get(c.handle) ?? [];
    list.push(c);
    t.inflightByHandle.set(c.handle, list);
  }
  return t;
}

export function planHealing(input: HealingInput): HealingPlan {
  const nodes = new Map(input.nodes.map((n) => [n.id, n]));
  const traffic = countInflight(input.inflight);
  const summary = emptyHealingSummary();
  const deletes: DeleteAction[] = [];
  const needs: Need[] = [];
  for (const chunk of input.chunks) assessForPlan(input, nodes, traffic, chunk, summary, deletes, needs);

  // Most endangered first: fewest healthy replicas, then the largest gap, then handle
  // order so equal urgency is served first-allocated first and plans are reproducible.
  needs.sort((a, b) => a.health.healthy.length - b.health.healthy.length ||
    (b.chunk.goal - b.health.healthy.length) - (a.chunk.goal - a.health.healthy.length) ||
    a.chunk.handle - b.chunk.handle);

  const clones: CloneAction[] = [];
  const budget = { clones: input.budget.clonesMax, bytes: input.budget.bytesMax };
  for (const need of needs) {
    const planned = planNeed(input, nodes, traffic, need, budget, clones, deletes, summary);
    const stuck = summary.unrepairable.has(need.chunk.handle);
    if (planned < need.wanted && !stuck) {
      summary.queuedChunks++;
      summary.queuedBytes += (need.wanted - planned) * need.chunk.length;
    }
  }
  return { clones, deletes, summary };
}

function versionOn(replicas: readonly ReplicaView[], id: string): number {
  return replicas.find((r) => r.nodeId === id)?.version ?? 0;
}

/** One chunk: its counts, the deletes it needs now, and what it lacks (pushed to needs). */
function assessForPlan(
  input: HealingInput, nodes: ReadonlyMap<string, HealNode>, traffic: Traffic, chunk: HealChunk,
  summary: HealingSummary, deletes: DeleteAction[], needs: Need[],
): void {
  // Being written: not final. Empty: nothing to lose (a replica with no durable byte
  // may even be dropped by its chunkserver at start-up).
  if (!chunk.committed || chunk.length === 0) return;
  summary.chunks++;
  const replicas = input.replicasOf(chunk.handle);
  const health = assessChunk(chunk, replicas, input.deletingOf(chunk.handle), (id) => nodes.get(id)?.draining === true);
  const readable = health.healthy.length + health.retiring.length;
  summary.corruptReplicas += health.corrupt.length;
  summary.staleReplicas += health.stale.length;
  if (readable === 0) {
    // Keep every stale or corrupt copy: it is all that is left.
    summary.missing++;
    summary.unrepairable.set(chunk.handle, 'no healthy replica');
    return;
  }
  summary.available++;
  for (const nodeId of health.stale) {
    deletes.push({
      handle: chunk.handle, version: versionOn(replicas, nodeId), nodeId, reason: 'stale',
      detail: `replica is behind the master (version ${versionOn(replicas, nodeId)} < ${chunk.version}, or shorter than ${chunk.length} bytes)`,
    });
  }
  if (health.healthy.length >= chunk.goal) {
    for (const nodeId of health.corrupt) {
      deletes.push({ handle: chunk.handle, version: versionOn(replicas, nodeId), nodeId, reason: 'corrupt', detail: 'replaced: the chunk has its goal in healthy replicas' });
    }
  }
  const inflight = traffic.inflightByHandle.get(chunk.handle) ?? [];
  if (health.healthy.length > chunk.goal && inflight.length === 0) {
    summary.overReplicated++;
    const trim = chooseTrim(health, nodes, health.healthy.length - chunk.goal, input.trimFirst?.(chunk.handle));
    // Postcondition: the chunk keeps its goal in healthy replicas after the trim.
    assert.ok(health.healthy.length - trim.length >= chunk.goal, `a trim would take chunk ${chunk.handle} below its goal`);
    for (const nodeId of trim) {
      deletes.push({ handle: chunk.handle, version: versionOn(replicas, nodeId), nodeId, reason: 'over-replicated', detail: `${health.healthy.length} healthy replicas, goal ${chunk.goal}` });
    }
  }
  if (health.healthy.length < chunk.goal) {
    // A trashed file's chunk is still healed (it may be restored, or sit on a draining
    // node) but is not reported as under-replicated: no visible file is at risk.
    if (chunk.trashed !== true) summary.underReplicated++;
    const wanted = chunk.goal - health.healthy.length - inflight.length;
    if (wanted > 0) needs.push({ chunk, health, wanted, inflightTargets: inflight.map((c) => c.targetNodeId) });
  }
}

/** Clones for one chunk below its goal, within the budget. Returns how many it planned. */
function planNeed(
  input: HealingInput, nodes: ReadonlyMap<string, HealNode>, traffic: Traffic, need: Need,
  budget: { clones: number; bytes: number }, clones: CloneAction[], deletes: DeleteAction[], summary: HealingSummary,
): number {
  const { chunk, health } = need;
  const { sources, targets, inboundBytes } = traffic;
  const holders = new Set<string>([
    ...health.healthy, ...health.retiring, ...health.stale, ...health.corrupt, ...health.unavailable, ...health.deleting,
    ...need.inflightTargets,
  ]);
  const zones = new Set<string>();
  for (const id of [...health.healthy, ...need.inflightTargets]) {
    const z = nodes.get(id)?.zone;
    if (z !== undefined) zones.add(z);
  }
  let planned = 0;
  for (let k = 0; k < need.wanted; k++) {
    const structural = input.nodes.filter((n) => eligibleTarget(n) && !holders.has(n.id) &&
      fits(n, chunk.length, inboundBytes.get(n.id) ?? 0, input.budget.fillCapRatio));
    if (structural.length === 0) {
      summary.unplaceable++;
      summary.unrepairable.set(chunk.handle, noTargetReason(input.nodes, chunk.goal));
      // The only node that could take it holds a corrupt copy: that copy must go
      // first (a healthy one exists, or we would not be here). Next tick places it.
      const corruptHere = health.corrupt.find((id) => !deletes.some((d) => d.handle === chunk.handle && d.nodeId === id));
      if (corruptHere !== undefined && k === 0 && planned === 0) {
        deletes.push({ handle: chunk.handle, version: versionOn(input.replicasOf(chunk.handle), corruptHere), nodeId: corruptHere, reason: 'corrupt', detail: 'no other node can take a new replica: deleted first to make room' });
      }
      break;
    }
    if (!readableReplicas(health).some((id) => nodes.get(id)?.usable === true && nodes.get(id)?.suspect !== true)) {
      summary.unrepairable.set(chunk.handle, 'no healthy replica reachable (its nodes are suspect)');
      break;
    }
    if (budget.clones <= 0 || budget.bytes <= 0) break;
    const free = structural.filter((n) => (targets.get(n.id) ?? 0) < input.budget.targetsPerNodeMax);
    const source = chooseSource(readableReplicas(health), nodes, sources, input.budget.sourcesPerNodeMax, input.random);
    if (free.length === 0 || source === undefined) break;
    const [target] = choosePlacement(free.map((n) => ({ ...n, freeBytes: n.freeBytes - (inboundBytes.get(n.id) ?? 0) })), 1, {
      random: input.random, chunkBytes: Math.max(1, chunk.length), fillCapRatio: input.budget.fillCapRatio, avoidZones: zones,
    });
    if (target === undefined) break;
    // A clone reads a readable replica and writes to a node that holds no copy, within the fill cap.
    assert.ok(readableReplicas(health).includes(source), `clone source ${source} of chunk ${chunk.handle} is not a healthy replica`);
    assert.ok(!holders.has(target.id), `clone target ${target.id} already holds chunk ${chunk.handle}`);
    assert.ok(fits(nodes.get(target.id)!, chunk.length, inboundBytes.get(target.id) ?? 0, input.budget.fillCapRatio), `clone target ${target.id} would pass the fill cap`);
    clones.push({
      handle: chunk.handle, version: chunk.version, length: chunk.length, sourceNodeId: source, targetNodeId: target.id,
      healthy: health.healthy.length, goal: chunk.goal,
    });
    planned++;
    budget.clones--;
    budget.bytes -= chunk.length;
    holders.add(target.id);
    zones.add(target.zone);
    sources.set(source, (sources.get(source) ?? 0) + 1);
    targets.set(target.id, (targets.get(target.id) ?? 0) + 1);
    inboundBytes.set(target.id, (inboundBytes.get(target.id) ?? 0) + chunk.length);
  }
  return planned;
}

/** A node that may receive a new replica: alive with its report in, not draining, not suspect. */
function eligibleTarget(n: HealNode): boolean {
  return n.usable && n.draining !== true && n.suspect !== true;
}

/** Why no node can take another replica of a chunk, in the operator's words. */
function noTargetReason(nodes: readonly HealNode[], goal: number): string {
  const eligible = nodes.filter(eligibleTarget).length;
  return eligible < goal ? `goal ${goal}, only ${eligible} nodes` : 'no eligible node has room for another replica';
}

function fits(n: HealNode, bytes: number, inbound: number, fillCapRatio: number): boolean {
  const free = n.freeBytes - inbound;
  return free >= bytes && n.capacityBytes - free + bytes <= n.capacityBytes * fillCapRatio;
}

/** The healthy replica whose node serves the fewest clones now; ties broken at random. */
function chooseSource(
  candidates: readonly string[], nodes: ReadonlyMap<string, HealNode>, sources: ReadonlyMap<string, number>,
  perNodeMax: number, random: () => number,
): string | undefined {
  let best: string | undefined;
  let bestScore = Infinity;
  for (const id of candidates) {
    const busy = sources.get(id) ?? 0;
    const n = nodes.get(id);
    if (busy >= perNodeMax || n?.usable !== true || n.suspect === true) continue;
    const score = busy + random() * 0.5;
    if (score < bestScore) { best = id; bestScore = score; }
  }
  return best;
}

/**
 * Which healthy replicas to remove from an over-replicated chunk: first those named in
 * `first` (a rebalance move's source), then from zones
 * holding more than one (so zone spread survives), then from the fullest nodes (so
 * trimming also evens out space), node id breaking ties.
 */
export function chooseTrim(
  h: ChunkHealth, nodes: ReadonlyMap<string, PlacementCandidate>, count: number, first?: ReadonlySet<string>,
): string[] {
  const keep = [...h.healthy];
  const removed: string[] = [];
  for (const id of first ?? []) {
    const i = keep.indexOf(id);
    if (i >= 0 && removed.length < count && keep.length > h.goal) removed.push(...keep.splice(i, 1));
  }
  while (removed.length < count && keep.length > h.goal) {
    const perZone = new Map<string, number>();
    for (const id of keep) {
      const z = nodes.get(id)?.zone ?? '';
      perZone.set(z, (perZone.get(z) ?? 0) + 1);
    }
    const fill = (id: string) => {
      const n = nodes.get(id);
      return n && n.capacityBytes > 0 ? 1 - n.freeBytes / n.capacityBytes : 1;
    };
    keep.sort((a, b) => (perZone.get(nodes.get(b)?.zone ?? '') ?? 0) - (perZone.get(nodes.get(a)?.zone ?? '') ?? 0) ||
      fill(b) - fill(a) || (a < b ? -1 : a > b ? 1 : 0));
    removed.push(keep.shift()!);
  }
  return removed;
}
