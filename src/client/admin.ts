/**
 * The client library's admin surface: the cluster views and lifecycle calls an operator
 * makes (gfsctl status, nodes, fsck, gc, df, balance, decommission; the benchmarks and
 * tests watching healing). Each is one master call through the library's connection,
 * so it follows the leader and retries like every other call.
 *
 * Invariants:
 * - Only `gc` without dryRun, `balance` without dryRun and `decommission` change
 *   anything; every other call is a read.
 * - statusAll() asks every master in the list itself, each on its own connection with
 *   no retries, so one dead master costs one short timeout and shows as unreachable.
 */
import type {
  AuthTableResponse, CreateTokenResponse, ListNamespacesResponse, ListTokensResponse, NamespaceInfo,
  BalanceResponse, DecommissionResponse, DfResponse, EventsResponse, FileInfo, FsckResponse, GcResponse, NodesResponse, StatusResponse,
  StreamPolicy,
} from '../../gen/gfs';
import { randomId } from '../common/ids';
import { GfsError } from '../common/errors';
import { limits } from '../common/limits';
import { MasterConn } from './master-conn';

export type { AuthTableResponse, CreateTokenResponse, ListNamespacesResponse, ListTokensResponse, NamespaceInfo };
export type { BalanceResponse, DecommissionResponse, DfResponse, EventsResponse, FsckResponse, GcResponse, NodesResponse, StatusResponse, StreamPolicy };

export class AdminClient {
  constructor(private readonly conn: MasterConn, private readonly masters: readonly string[], private readonly token?: string) {}

  /** The leader's view: nodes, files, chunks, replication, repair and balance progress. */
  status(): Promise<StatusResponse> {
    return this.conn.call('status', {});
  }

  /**
   * The cluster's status with a line for every master: each master in the list is asked
   * for its own view (role, epoch, commit index, lag, pid); the cluster figures come from
   * the leader (or any master that answers). A master that does not answer is listed as
   * unreachable.
   */
  async statusAll(): Promise<StatusResponse> {
    const views: { addr: string; status?: StatusResponse; error?: GfsError }[] = await Promise.all(this.masters.map(async (addr) => {
      const one = new MasterConn({ masters: [addr], retries: 0, timeoutMs: limits.statusAllTimeoutMs, token: this.token });
      try {
        return { addr, status: await one.call('status', {}) };
      } catch (e) {
        return { addr, error: e as GfsError };
      } finally {
        one.close();
      }
    }));
    const base = views.find((v) => v.status?.masters[0]?.role === 'leader') ?? views.find((v) => v.status);
    if (!base?.status) throw views[0]?.error ?? new GfsError('UNAVAILABLE', 'no master answered');
    const masters = views.map((v) => v.status?.masters[0] ?? {
      id: '', addr: v.addr, role: 'unreachable', epoch: 0, commitIndex: 0, appliedIndex: 0, lag: 0, pid: 0, adminAddr: '',
    });
    return { ...base.status, masters };
  }

  /** Every chunkserver the master knows: address, labels, capacity, load, state. */
  nodes(): Promise<NodesResponse> {
    return this.conn.call('nodes', {});
  }

  /** Every chunk under `path` (a file or a directory) against its replication goal. */
  fsck(path = '/'): Promise<FsckResponse> {
    return this.conn.call('fsck', { path });
  }

  /** What garbage collection would reclaim and why; without dryRun, a pass runs first. */
  gc(opts: { dryRun?: boolean } = {}): Promise<GcResponse> {
    return this.conn.call('gc', { dryRun: opts.dryRun === true });
  }

  /** Used space split into live, trash, orphaned, stale and more, per node and in total. */
  df(): Promise<DfResponse> {
    return this.conn.call('df', {});
  }

  /**
   * One balancing round now (or only its plan, with dryRun); `thresholdRatio` 0 or
   * absent means the master's own threshold.
   */
  balance(opts: { dryRun?: boolean; thresholdRatio?: number } = {}): Promise<BalanceResponse> {
    return this.conn.call('balance', { dryRun: opts.dryRun === true, thresholdRatio: opts.thresholdRatio ?? 0 });
  }

  /**
   * Starts draining `node` (an id, a unique id prefix or an address), or stops with
   * cancel; answers its state, so calling it again polls the drain.
   */
  decommission(node: string, opts: { cancel?: boolean } = {}): Promise<DecommissionResponse> {
    return this.conn.call('decommission', { node, cancel: opts.cancel === true });
  }

  /**
   * The leader's recent cluster events after `since` ("REV" or "REV.SEQ"; "" = the oldest
   * kept), oldest first, as JSON lines (docs/EVENTS.md). With waitMs, a call that finds
   * none waits up to that long for one (long poll). `gap` says events after `since` are no
   * longer all kept: reconcile from state.
   */
  events(opts: { since?: string; limit?: number; waitMs?: number } = {}): Promise<EventsResponse> {
    return this.conn.call('events', { since: opts.since ?? '', limit: opts.limit ?? 0, waitMs: opts.waitMs ?? 0 });
  }

  /**
   * Creates a stream directory with its roll and retention policy, or with update changes
   * an existing stream's policy (docs/LOG-STREAMS.md). 0 means never (roll) or keep
   * (retention); replication 0 means the master's default.
   */
  createStream(path: string, policy: Partial<StreamPolicy>, opts: { update?: boolean } = {}): Promise<FileInfo> {
    const full: StreamPolicy = { rollBytes: 0, rollAgeMs: 0, retentionAgeMs: 0, retentionBytes: 0, replication: 0, ...policy };
    return this.conn.call('createStream', { path, policy: full, update: opts.update === true, requestId: randomId(8) });
  }

  // ---- tokens and namespaces (DESIGN §11)

  /** A new token with these grants (each at most what the caller's token has); its secret is in this answer only. */
  createToken(grants: { namespace: string; scopes: string[] }[], opts: { expiresInMs?: number; description?: string } = {}): Promise<CreateTokenResponse> {
    return this.conn.call('createToken', { grants, expiresInMs: opts.expiresInMs ?? 0, description: opts.description ?? '', requestId: '' });
  }

  /** Tokens the caller may manage: ids, grants, expiry, revocation (never secrets). */
  listTokens(): Promise<ListTokensResponse> {
    return this.conn.call('listTokens', {});
  }

  async revokeToken(id: string): Promise<void> {
    await this.conn.call('revokeToken', { id });
  }

  /**
   * Creates (create) or changes a namespace: visibility private|visible|public, quotas
   * in bytes and files (0: none; undefined keeps them).
   */
  setNamespace(name: string, opts: { create?: boolean; visibility?: string; quotaBytes?: number; quotaFiles?: number } = {}): Promise<NamespaceInfo> {
    return this.conn.call('setNamespace', {
      name, create: opts.create === true, visibility: opts.visibility ?? '', quotaBytes: opts.quotaBytes ?? -1, quotaFiles: opts.quotaFiles ?? -1,
    });
  }

  /** The namespaces the caller can see, with settings and usage. */
  listNamespaces(): Promise<ListNamespacesResponse> {
    return this.conn.call('listNamespaces', {});
  }

  /** Every live token's hash and S3 secret, and the namespace settings: for gateways (admin on "*"). */
  authTable(): Promise<AuthTableResponse> {
    return this.conn.call('authTable', {});
  }
}
