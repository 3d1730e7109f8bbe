/**
 * The dashboard's overview (GET /v1/admin/overview): cluster health, masters, chunkservers,
 * repair and balance progress and an fsck summary, built from the client's admin calls and
 * cached for one refresh period, so the masters see one round of calls per period however
 * many browsers watch.
 *
 * Invariants:
 * - At most one refresh runs at a time; every request that arrives meanwhile waits for it.
 * - A refresh starts only when the cached answer is at least `refreshMs` old, and a failed
 *   refresh is cached too (the page shows the error), so a down cluster is not hammered.
 * - The fsck summary is at most `fsckRefreshMs` old plus one refresh; its failure never
 *   fails the overview (it is reported beside it).
 */
import assert from 'node:assert/strict';
import type { Counter } from 'prom-client';
import type { FsckResponse, NodesResponse, StatusResponse } from '../../client';
import type { NodeInfo } from '../../../gen/gfs';
import type { Clock } from '../../common/clock';
import { limits } from '../../common/limits';
import { asGfsError } from './errors';

/** What the overview asks the masters (AdminClient's calls). */
export interface OverviewSource {
  statusAll(): Promise<StatusResponse>;
  nodes(): Promise<NodesResponse>;
  fsck(path: string): Promise<FsckResponse>;
}

export type NodeState = 'alive' | 'suspect' | 'dead' | 'draining';

export interface FsckSummary {
  atMs: number;
  healthy: boolean;
  safeMode: boolean;
  filesChecked: number;
  chunksChecked: number;
  underReplicated: number;
  overReplicated: number;
  missing: number;
  corrupt: number;
  truncated: boolean;
  /** The first limits.uiFsckFilesShown files with a problem. */
  problemFiles: string[];
  error?: { code: string; message: string };
}

export interface Overview {
  /** Wall-clock time of the refresh this answer comes from. */
  atMs: number;
  refreshMs: number;
  cluster: {
    safeMode: boolean;
    safeModeReason: string;
    leader: string | null;
    nodesAlive: number;
    nodesDead: number;
    files: number;
    chunks: number;
    underReplicated: number;
    missing: number;
    capacityBytes: number;
    usedBytes: number;
  };
  masters: { id: string; addr: string; role: string; epoch: number; commitIndex: number; appliedIndex: number; lag: number }[];
  chunkservers: {
    id: string; addr: string; zone: string; tier: string; state: NodeState;
    capacityBytes: number; usedBytes: number; freeBytes: number; chunks: number;
    readBytesPerSec: number; writeBytesPerSec: number; openWrites: number;
    repairsIn: number; repairsOut: number; corrupt: number; drainingDetail: string;
    lastHeartbeatMs: number;
  }[];
  repair: StatusResponse['repair'] | null;
  balance: StatusResponse['balance'] | null;
  fsck: FsckSummary | null;
}

/** One state per node, the most telling first: a dead node that was draining is dead. */
export function nodeState(n: NodeInfo): NodeState {
  if (n.state === 'dead') return 'dead';
  if (n.drainingDetail !== '') return 'draining';
  if (n.suspect) return 'suspect';
  return 'alive';
}

export function fsckSummary(f: FsckResponse, atMs: number): FsckSummary {
  return {
    atMs, healthy: f.healthy, safeMode: f.safeMode, filesChecked: f.filesChecked, chunksChecked: f.chunksChecked,
    underReplicated: f.underReplicated, overReplicated: f.overReplicated, missing: f.missing, corrupt: f.corrupt,
    truncated: f.truncated, problemFiles: f.files.slice(0, limits.uiFsckFilesShown).map((x) => x.path),
  };
}

export function buildOverview(status: StatusResponse, nodes: NodesResponse, fsck: FsckSummary | null, atMs: number, refreshMs: number): Overview {
  const leader = status.masters.find((m) => m.role === 'leader');
  return {
    atMs, refreshMs,
    cluster: {
      safeMode: status.safeMode, safeModeReason: status.safeModeReason, leader: leader?.addr ?? null,
      nodesAlive: status.nodesAlive, nodesDead: status.nodesDead, files: status.files, chunks: status.chunks,
      underReplicated: status.underReplicated, missing: status.missing,
      capacityBytes: status.capacityBytes, usedBytes: status.usedBytes,
    },
    masters: status.masters.map((m) => ({
      id: m.id, addr: m.addr, role: m.role, epoch: m.epoch, commitIndex: m.commitIndex, appliedIndex: m.appliedIndex, lag: m.lag,
    })),
    chunkservers: [...nodes.nodes].sort((a, b) => a.addr.localeCompare(b.addr)).map((n) => ({
      id: n.id, addr: n.addr, zone: n.zone, tier: n.tier, state: nodeState(n),
      capacityBytes: n.capacityBytes, usedBytes: n.usedBytes, freeBytes: n.freeBytes, chunks: n.chunkCount,
      readBytesPerSec: n.readBytesPerSec, writeBytesPerSec: n.writeBytesPerSec, openWrites: n.openWrites,
      repairsIn: n.repairsIn, repairsOut: n.repairsOut, corrupt: n.corruptCount, drainingDetail: n.drainingDetail,
      lastHeartbeatMs: n.lastHeartbeatMs,
    })),
    repair: status.repair ?? null,
    balance: status.balance ?? null,
    fsck,
  };
}

type Outcome = { ok: true; value: Overview } | { ok: false; error: unknown };

export class OverviewCache {
  private last: { atMonoMs: number; outcome: Outcome } | undefined;
  private inflight: Promise<Outcome> | undefined;
  private fsck: { atMonoMs: number; summary: FsckSummary } | undefined;

  constructor(
    private readonly source: OverviewSource,
    private readonly clock: Clock,
    private readonly calls?: Counter,
    private readonly refreshMs = limits.uiRefreshMs,
    private readonly fsckRefreshMs = limits.uiFsckRefreshMs,
  ) {
    assert.ok(refreshMs > 0 && fsckRefreshMs >= refreshMs);
  }

  /** The overview, at most one refresh period old (or the error of the last refresh). */
  async get(): Promise<Overview> {
    const now = this.clock.monoMs();
    let outcome: Outcome;
    if (this.last !== undefined && now - this.last.atMonoMs < this.refreshMs) outcome = this.last.outcome;
    else {
      this.inflight ??= this.refresh().finally(() => { this.inflight = undefined; });
      outcome = await this.inflight;
    }
    if (!outcome.ok) throw outcome.error;
    return outcome.value;
  }

  private async refresh(): Promise<Outcome> {
    const startedMs = this.clock.monoMs();
    const fsckDue = this.fsck === undefined || startedMs - this.fsck.atMonoMs >= this.fsckRefreshMs;
    const count = (call: string) => this.calls?.inc({ call });
    let outcome: Outcome;
    try {
      count('status');
      count('nodes');
      if (fsckDue) count('fsck');
      const [status, nodes, fsck] = await Promise.all([
        this.source.statusAll(), this.source.nodes(), fsckDue ? this.runFsck(startedMs) : Promise.resolve(this.fsck!.summary),
      ]);
      outcome = { ok: true, value: buildOverview(status, nodes, fsck, this.clock.nowMs(), this.refreshMs) };
    } catch (e) {
      outcome = { ok: false, error: asGfsError(e) };
    }
    // Stamped with the start: the answer describes the cluster as of then.
    this.last = { atMonoMs: startedMs, outcome };
    return outcome;
  }

  private async runFsck(startedMs: number): Promise<FsckSummary> {
    let summary: FsckSummary;
    try {
      summary = fsckSummary(await this.source.fsck('/'), this.clock.nowMs());
    } catch (e) {
      const err = asGfsError(e);
      // The last good counts stay on the page, marked with why they are not fresh.
      summary = {
        ...(this.fsck?.summary ?? fsckSummary({ files: [], filesChecked: 0, chunksChecked: 0, underReplicated: 0, missing: 0, corrupt: 0, healthy: false, safeMode: false, truncated: false, overReplicated: 0 }, 0)),
        error: { code: err.code, message: err.message },
      };
    }
    this.fsck = { atMonoMs: startedMs, summary };
    return summary;
  }
}
