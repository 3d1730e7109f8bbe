/**
 * The client's connection to the master group: one gRPC client per master, and every
 * call through the retry policy (retry-policy.ts), which follows NOT_LEADER redirects
 * and retries until the call's deadline.
 *
 * Invariants:
 * - A retry sends the very same request, request id included, so a mutation whose
 *   answer was lost is applied once.
 * - A request is repeated after an unknown outcome only when that is harmless: it is
 *   read-only, idempotent, or carries a request id (the master deduplicates those).
 * - The leader found by one call is where the next call starts.
 */
import * as grpc from '@grpc/grpc-js';
import { MasterClient, type MasterServer, type WatchEvent, type WatchRequest } from '../../gen/gfs';
import { GfsError } from '../common/errors';
import { callUnary, grpcChannelOptions } from '../common/grpc';
import { limits } from '../common/limits';
import { systemClock, type Clock } from '../common/clock';
import { callWithRetry, LeaderCursor } from './retry-policy';

type Method = keyof MasterServer & Exclude<keyof MasterClient, keyof grpc.Client>;
type ReqOf<M extends Method> = MasterServer[M] extends grpc.handleUnaryCall<infer Req, infer _Res> ? Req : never;
type ResOf<M extends Method> = MasterServer[M] extends grpc.handleUnaryCall<infer _Req, infer Res> ? Res : never;

export interface MasterConnOptions {
  masters: string[];
  /** Caps the retries of one call; by default only the deadline does. */
  retries?: number;
  /** Timeout of one attempt. */
  timeoutMs?: number;
  /** Time for one call, its retries included. */
  deadlineMs?: number;
  clock?: Clock;
  /** Bearer token sent with every call (gRPC metadata `authorization: Bearer ...`). */
  token?: string;
}

/**
 * Calls that change nothing, or whose repetition has the same effect as one
 * (committing the same length, abandoning or aborting twice, a drain already asked).
 * Every other call is repeated after an unknown outcome only with a request id.
 */
const REPEATABLE = new Set<Method>([
  'stat', 'list', 'status', 'nodes', 'fsck', 'df', 'commitChunk', 'abandonChunk', 'abortFile', 'reportCorrupt', 'decommission', 'gc', 'trash', 'events',
  'listTokens', 'listNamespaces', 'authTable', 'revokeToken',
]);

function repeatable(method: Method, req: unknown): boolean {
  if (REPEATABLE.has(method)) return true;
  const r = req as { requestId?: string; dryRun?: boolean };
  return Boolean(r.requestId) || r.dryRun === true;
}

export class MasterConn {
  private readonly clients = new Map<string, MasterClient>();
  private readonly cursor: LeaderCursor;
  private readonly clock: Clock;

  constructor(private readonly opts: MasterConnOptions) {
    this.cursor = new LeaderCursor(opts.masters);
    this.clock = opts.clock ?? systemClock;
  }

  private client(addr: string): MasterClient {
    let c = this.clients.get(addr);
    if (!c) {
      c = new MasterClient(addr, grpc.credentials.createInsecure(), grpcChannelOptions);
      this.clients.set(addr, c);
    }
    return c;
  }

  call<M extends Method>(method: M, req: ReqOf<M>): Promise<ResOf<M>> {
    return callWithRetry(this.cursor, (addr, timeoutMs) => {
      const client = this.client(addr);
      const fn = client[method] as unknown as Parameters<typeof callUnary>[1];
      return callUnary(client, fn, req, timeoutMs, this.opts.token ? { authorization: `Bearer ${this.opts.token}` } : {}) as Promise<ResOf<M>>;
    }, {
      clock: this.clock,
      deadlineMs: this.opts.deadlineMs ?? limits.clientCallDeadlineMs,
      attemptTimeoutMs: this.opts.timeoutMs ?? limits.rpcTimeoutMs,
      repeatable: repeatable(method, req),
      maxAttempts: this.opts.retries === undefined ? undefined : this.opts.retries + 1,
      backoffBaseMs: limits.clientBackoffBaseMs,
      backoffMaxMs: limits.clientBackoffMaxMs,
    });
  }

  /**
   * Opens the Watch stream (server streaming) on the master this connection last found
   * leading. The caller reads it and, when it fails, calls `moveOn` before opening again.
   */
  openWatch(req: WatchRequest): { stream: grpc.ClientReadableStream<WatchEvent>; addr: string } {
    const addr = this.cursor.current;
    const metadata = new grpc.Metadata();
    if (this.opts.token) metadata.set('authorization', `Bearer ${this.opts.token}`);
    return { stream: this.client(addr).watch(req, metadata), addr };
  }

  /** After a streaming call on `addr` failed: go to the leader it named, or to the next master. */
  moveOn(addr: string, err: GfsError): void {
    if (this.cursor.current !== addr) return; // another call moved already
    const leader = err.code === 'NOT_LEADER' ? err.detail.leader : undefined;
    if (leader && leader !== addr) this.cursor.follow(leader); else this.cursor.advance();
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
