/**
 * The client's connection to the master group: finds the leader, follows NOT_LEADER
 * redirects, and retries retryable failures with backoff.
 *
 * Invariants:
 * - A retry sends the very same request, request id included, so a mutation whose
 *   answer was lost is applied once.
 * - At most `retries` + 1 attempts; only retryable codes (NOT_LEADER, UNAVAILABLE,
 *   TIMEOUT, SAFE_MODE) are retried, every other error reaches the caller at once.
 */
import * as grpc from '@grpc/grpc-js';
import { MasterClient, type MasterServer } from '../../gen/gfs';
import { GfsError } from '../common/errors';
import { callUnary, grpcChannelOptions } from '../common/grpc';
import { limits } from '../common/limits';

type Method = keyof MasterServer & Exclude<keyof MasterClient, keyof grpc.Client>;
type ReqOf<M extends Method> = MasterServer[M] extends grpc.handleUnaryCall<infer Req, infer _Res> ? Req : never;
type ResOf<M extends Method> = MasterServer[M] extends grpc.handleUnaryCall<infer _Req, infer Res> ? Res : never;

export interface MasterConnOptions {
  masters: string[];
  retries?: number;
  timeoutMs?: number;
}

export class MasterConn {
  private readonly clients = new Map<string, MasterClient>();
  private readonly masters: string[];
  private current = 0;

  constructor(private readonly opts: MasterConnOptions) {
    if (opts.masters.length === 0) throw new GfsError('INVALID_ARGUMENT', 'no master address given (use --masters or GFS_MASTERS)');
    this.masters = [...opts.masters];
  }

  private client(addr: string): MasterClient {
    let c = this.clients.get(addr);
    if (!c) {
      c = new MasterClient(addr, grpc.credentials.createInsecure(), grpcChannelOptions);
      this.clients.set(addr, c);
    }
    return c;
  }

  async call<M extends Method>(method: M, req: ReqOf<M>): Promise<ResOf<M>> {
    const retries = this.opts.retries ?? limits.clientRetries;
    let lastError: GfsError | undefined;
    for (let attempt = 0; attempt <= retries; attempt++) {
      const addr = this.masters[this.current % this.masters.length]!;
      const client = this.client(addr);
      try {
        const fn = client[method] as unknown as Parameters<typeof callUnary>[1];
        return (await callUnary(client, fn, req, this.opts.timeoutMs ?? limits.rpcTimeoutMs)) as ResOf<M>;
      } catch (e) {
        const err = e as GfsError;
        if (!err.retryable) throw err;
        lastError = err;
        const leader = err.detail.leader;
        if (err.code === 'NOT_LEADER' && leader) {
          if (!this.masters.includes(leader)) this.masters.push(leader);
          this.current = this.masters.indexOf(leader);
        } else {
          this.current++;
        }
        // Back off only once every master has been tried this round.
        // Capped low: during a failover the next leader serves within a second or two,
        // and a long sleep here would be most of the client's failover time.
        if ((attempt + 1) % this.masters.length === 0) await sleep(Math.min(400, 50 * 2 ** Math.min(attempt, 4)));
      }
    }
    throw lastError ?? new GfsError('UNAVAILABLE', 'no master answered');
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
