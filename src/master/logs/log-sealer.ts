/**
 * Sealing a log's open chunk (docs/LOG-STREAMS.md, "Sealing an open chunk"): query-seal
 * every replica at version v+1, cut the answerers to the smallest durable length L,
 * then commit OpSealChunk with them and the writers' last records.
 *
 * Invariants:
 * - L is the smallest durable length among the replicas that answered the query-seal.
 *   An acknowledged record is durable on every replica of the chain, so L covers every
 *   acknowledged byte; bytes past L were never acknowledged and are cut.
 * - Once a replica recorded v+1 it refuses the old primary's chain (STALE_VERSION), so
 *   nothing is acknowledged past the seal; replicas that did not answer keep v and are
 *   stale after the commit (healing deletes them once a healthy copy exists).
 * - One seal per chunk at a time: concurrent callers share it. No replica answering
 *   leaves the chunk open and fails with UNAVAILABLE (nothing was decided).
 */
import { MetaOp } from '../../../gen/gfs';
import { GfsError } from '../../common/errors';
import { limits } from '../../common/limits';
import type { LeaseTable } from './lease-table';
import type { LogHost } from './log-host';

export interface SealResult {
  /** The chunk was open and is sealed now (false: someone else had sealed it already). */
  sealed: boolean;
  length: number;
  nodes: string[];
}

export class LogSealer {
  private readonly inflight = new Map<number, Promise<SealResult>>();
  /** Seals committed, and seals that failed (no replica answered, or the commit failed), since start. */
  sealedTotal = 0;
  failedTotal = 0;

  constructor(private readonly host: LogHost, private readonly leases: LeaseTable) {}

  /** Seals chunk `handle` of log `inode` if it is still the log's open chunk; concurrent callers share one seal. */
  seal(inode: number, handle: number, why: string): Promise<SealResult> {
    const running = this.inflight.get(handle);
    if (running !== undefined) return running;
    const p = this.run(inode, handle, why).then((r) => {
      if (r.sealed) this.sealedTotal++;
      return r;
    }, (e: unknown) => {
      this.failedTotal++;
      throw e;
    }).finally(() => this.inflight.delete(handle));
    this.inflight.set(handle, p);
    return p;
  }

  /** Seals in flight now (tests and status). */
  get running(): number {
    return this.inflight.size;
  }

  private async run(inode: number, handle: number, why: string): Promise<SealResult> {
    const { host } = this;
    const file = host.state().fileByInode(inode);
    const open = file === undefined ? undefined : host.state().openChunk(file);
    if (file === undefined || open === undefined || open.handle !== handle) {
      this.leases.drop(handle);
      return { sealed: false, length: 0, nodes: [] };
    }
    const version = open.version + 1;
    const start = file.size;
    const replicas = this.replicaAddrs(handle);
    const t = limits.appendSealReplicaTimeoutMs;
    const durable = await settled(replicas, (r) => host.plane.querySealReplica(r.addr, handle, version, t));
    if (durable.length === 0) {
      throw new GfsError('UNAVAILABLE', `cannot seal chunk ${handle} of "${file.path}": none of its ${replicas.length} replicas answered`);
    }
    const length = Math.min(...durable.map((d) => d.value));
    const cut = await settled(durable.map((d) => d.replica),
      (r) => host.plane.truncateReplica(r.addr, handle, version, length, limits.appendDedupPerWriter, t));
    if (cut.length === 0) throw new GfsError('UNAVAILABLE', `cannot seal chunk ${handle} of "${file.path}": no replica took the cut to ${length}`);
    const writers = cut[0]!.value.writers.map((w) => ({ writer: w.writer, seqs: w.seqs, offsets: w.offsets.map((o) => start + o) }));
    const nodes = cut.map((c) => c.replica.id);
    await host.commit('sealChunk', MetaOp.fromPartial({
      sealChunk: { inode, handle, length, version, replicaNodes: nodes, writers, mtimeMs: host.clock.nowMs() },
    }));
    this.leases.drop(handle);
    host.registry.recordWrite(handle, version, length, nodes);
    host.log.info({ path: file.path, handle, version, length, replicas: nodes, asked: replicas.length, why }, 'log chunk sealed');
    return { sealed: true, length, nodes };
  }

  /** Every node that may hold a copy: the lease's primary and chain, and whoever reports the handle. */
  private replicaAddrs(handle: number): { id: string; addr: string }[] {
    const ids = new Set<string>();
    const lease = this.leases.get(handle);
    if (lease !== undefined) for (const id of [lease.primary, ...lease.chain]) ids.add(id);
    for (const r of this.host.registry.replicaViews(handle)) ids.add(r.nodeId);
    const out: { id: string; addr: string }[] = [];
    for (const id of ids) {
      const node = this.host.registry.nodes.get(id);
      if (node !== undefined && node.addr !== '') out.push({ id, addr: node.addr });
    }
    return out;
  }
}

/** Runs fn on each replica in parallel; the ones that answered, in input order. */
async function settled<R, T>(replicas: readonly R[], fn: (r: R) => Promise<T>): Promise<{ replica: R; value: T }[]> {
  const results = await Promise.allSettled(replicas.map((r) => fn(r)));
  const out: { replica: R; value: T }[] = [];
  results.forEach((res, i) => {
    if (res.status === 'fulfilled') out.push({ replica: replicas[i]!, value: res.value });
  });
  return out;
}
