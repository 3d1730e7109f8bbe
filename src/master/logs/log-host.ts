/**
 * What the master's log modules (append targets, sealing, leases, watch) need from the
 * master process and from the data plane. Types only: the master wires the real data
 * plane (src/dataplane) in; unit tests pass their own.
 */
import type { MetaOp } from '../../../gen/gfs';
import type { Clock } from '../../common/clock';
import type { Logger } from '../../common/log';
import type { ApplyResult, MetaState } from '../meta-state';
import type { NodeRegistry } from '../registry';

/** The master's side of the append data plane (docs/LOG-STREAMS.md; API in src/dataplane). */
export interface AppendPlane {
  grantLease(addr: string, req: { handle: number; version: number; chain: string[]; durationMs: number }, timeoutMs?: number): Promise<void>;
  querySealReplica(addr: string, handle: number, version: number, timeoutMs?: number): Promise<number>;
  truncateReplica(addr: string, handle: number, version: number, length: number, perWriter: number, timeoutMs?: number): Promise<{
    length: number; writers: { writer: string; seqs: number[]; offsets: number[] }[];
  }>;
  chunkStat(addr: string, handle: number, timeoutMs?: number): Promise<{
    node: string; version: number; durable: number; committed: number; primary: boolean; ended: boolean; leaseValid: boolean;
  }>;
}

export interface LogHost {
  state: () => MetaState;
  registry: NodeRegistry;
  commit: (kind: string, op: MetaOp) => Promise<ApplyResult>;
  isLeader: () => boolean;
  plane: AppendPlane;
  clock: Clock;
  log: Logger;
  /** The lease a primary gets (`gfs master --lease-ms`, default limits.appendLeaseMs). */
  leaseMs: number;
}
