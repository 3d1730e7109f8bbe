/**
 * Per-RPC authorization on the master (DESIGN §11): every call's bearer token
 * (`authorization: Bearer gfs_...` gRPC metadata) is resolved against the tokens in the
 * metadata and checked for the scope its method needs on the namespace it touches,
 * before the handler runs; quotas are checked there too (quota.ts).
 *
 * When auth is enforced (--auth on, or auto once any token exists): read = stat, list,
 * watch; write = create, allocate, commit, complete, abort, mkdir, rename (both ends),
 * restore, append, seal, streams; delete = delete, and the source of a rename; admin
 * (on every namespace) = fsck, gc, balance, decommission, trash, the gateways' token
 * table. status, nodes and df need any valid token; token and namespace calls check
 * their own rules (auth-rpc.ts). A method not in the table needs cluster admin (fail
 * closed). Anonymous calls may read public namespaces only. Heartbeats are the
 * chunkservers' plane: not token-checked, but with a cluster secret (--cluster-secret-file)
 * they must carry it (x-gfs-cluster-secret), whatever the auth mode (docs/AUTH.md).
 *
 * Invariants: a handler runs only after its check passed; a refused call changes
 * nothing; the principal a handler sees is the one that was checked.
 */
import type * as grpc from '@grpc/grpc-js';
import { GfsError, toGrpcError } from '../../common/errors';
import type { Clock } from '../../common/clock';
import {
  CLUSTER_SECRET_HEADER, allowed, canSee, clusterSecretMatches, isClusterAdmin, parseToken, secretMatches, tokenLive, type Principal, type Scope,
} from '../../common/auth';
import type { MetaState } from '../meta-state';
import { checkQuota } from './quota';
import { namespaceOfPath as namespaceOf } from './paths';

export type AuthMode = 'auto' | 'on' | 'off';

export interface GuardHost {
  state: () => MetaState;
  clock: Clock;
  mode: AuthMode;
  /** Chunkserver heartbeats must carry this (none: they are not checked). */
  clusterSecret?: string;
}

type Rule =
  | { kind: 'path'; field: string; scope: Scope }
  | { kind: 'inode'; scope: Scope }
  | { kind: 'rename' }
  | { kind: 'token' }
  | { kind: 'cluster' }
  | { kind: 'open' }
  | { kind: 'node' };

const RULES: Record<string, Rule> = {
  stat: { kind: 'path', field: 'path', scope: 'read' },
  list: { kind: 'path', field: 'path', scope: 'read' },
  watch: { kind: 'path', field: 'path', scope: 'read' },
  createFile: { kind: 'path', field: 'path', scope: 'write' },
  mkdir: { kind: 'path', field: 'path', scope: 'write' },
  restore: { kind: 'path', field: 'path', scope: 'write' },
  appendTarget: { kind: 'path', field: 'path', scope: 'write' },
  sealLog: { kind: 'path', field: 'path', scope: 'write' },
  createStream: { kind: 'path', field: 'path', scope: 'write' },
  delete: { kind: 'path', field: 'path', scope: 'delete' },
  allocateChunk: { kind: 'inode', scope: 'write' },
  commitChunk: { kind: 'inode', scope: 'write' },
  abandonChunk: { kind: 'inode', scope: 'write' },
  completeFile: { kind: 'inode', scope: 'write' },
  abortFile: { kind: 'inode', scope: 'write' },
  rename: { kind: 'rename' },
  status: { kind: 'token' },
  nodes: { kind: 'token' },
  df: { kind: 'token' },
  createToken: { kind: 'token' },
  revokeToken: { kind: 'token' },
  listTokens: { kind: 'token' },
  setNamespace: { kind: 'token' },
  listNamespaces: { kind: 'open' },
  heartbeat: { kind: 'node' },
  reportCorrupt: { kind: 'token' },
};

/** What a handler may read off a call the guard passed. */
export interface AuthedCall {
  gfsPrincipal?: Principal;
}

export function principalOf(call: { metadata?: grpc.Metadata }): Principal | undefined {
  return (call as AuthedCall).gfsPrincipal;
}

export class Guard {
  constructor(private readonly host: GuardHost) {}

  /** Whether calls are checked now. */
  get enforced(): boolean {
    if (this.host.mode === 'off') return false;
    return this.host.mode === 'on' || this.host.state().auth.enforced;
  }

  /** The token a call presents, checked; undefined when it presents none. */
  resolve(metadata: grpc.Metadata | undefined): Principal | undefined {
    const header = metadata?.get('authorization')?.[0];
    if (header === undefined) return undefined;
    const m = /^Bearer\s+(\S+)\s*$/i.exec(String(header));
    if (!m) throw new GfsError('UNAUTHENTICATED', 'authorization must be "Bearer <token>"');
    const parsed = parseToken(m[1]!);
    const t = parsed ? this.host.state().auth.tokens.get(parsed.id) : undefined;
    if (!parsed || !t || !secretMatches(t.secretSha256, parsed.secret) || !tokenLive(t, this.host.clock.nowMs())) {
      throw new GfsError('UNAUTHENTICATED', 'the token is not valid (unknown, revoked or expired)');
    }
    return { id: t.id, grants: t.grants, expiresAtMs: t.expiresAtMs };
  }

  /** A chunkserver's call: the cluster secret, when there is one. */
  checkNode(metadata: grpc.Metadata | undefined): void {
    const secret = this.host.clusterSecret;
    if (secret === undefined) return;
    const presented = metadata?.get(CLUSTER_SECRET_HEADER)?.[0];
    if (presented === undefined || !clusterSecretMatches(secret, String(presented))) {
      throw new GfsError('UNAUTHENTICATED', 'a heartbeat needs the cluster secret (gfs chunkserver --cluster-secret-file)');
    }
  }

  /** Throws unless `p` may make this call; checks quotas for the calls that take space. */
  check(method: string, req: Record<string, unknown>, p: Principal | undefined): void {
    const rule = RULES[method] ?? { kind: 'cluster' };
    if (this.enforced) this.authorize(rule, req, p);
    checkQuota(this.host.state(), method, req);
  }

  private authorize(rule: Rule, req: Record<string, unknown>, p: Principal | undefined): void {
    switch (rule.kind) {
      case 'open': case 'node': return;
      case 'token': return void need(p);
      case 'cluster':
        if (!isClusterAdmin(need(p))) throw new GfsError('PERMISSION_DENIED', 'this call needs admin on every namespace ("*")');
        return;
      case 'path': return this.onPath(String(req[rule.field] ?? ''), rule.scope, p);
      case 'inode': {
        const file = this.host.state().fileByInode(Number(req['inode']));
        // An unknown inode answers NO_SUCH_FILE from the handler; nothing to protect.
        if (file !== undefined) this.onPath(file.path, rule.scope, p);
        return;
      }
      case 'rename':
        this.onPath(String(req['source'] ?? ''), 'delete', p);
        this.onPath(String(req['source'] ?? ''), 'write', p);
        this.onPath(String(req['target'] ?? ''), 'write', p);
        return;
    }
  }

  private onPath(path: string, scope: Scope, p: Principal | undefined): void {
    const ns = namespaceOf(path);
    if (ns === undefined) {
      // The root: reading it is filtered by visibility (filterRoot); changing it is cluster admin.
      if (scope === 'read') return;
      if (!isClusterAdmin(need(p))) throw new GfsError('PERMISSION_DENIED', `${scope} on "/" needs admin on "*"`);
      return;
    }
    const visibility = this.host.state().auth.settingsOf(ns).visibility;
    if (!allowed(p, ns, visibility, scope)) {
      if (p === undefined) throw new GfsError('UNAUTHENTICATED', `${scope} in "${ns}" needs a token`);
      throw new GfsError('PERMISSION_DENIED', `token ${p.id} has no ${scope} scope on "${ns}"`);
    }
  }

  /** Wraps every handler of a service with resolve + check; the principal rides on the call. */
  wrap<T extends object>(handlers: T): T {
    const out: Record<string, unknown> = {};
    for (const [name, handler] of Object.entries(handlers)) {
      const inner = handler as (call: unknown, callback?: unknown) => void;
      out[name] = (call: grpc.ServerUnaryCall<unknown, unknown> & AuthedCall, callback?: grpc.sendUnaryData<unknown>) => {
        try {
          if (RULES[name]?.kind === 'node') this.checkNode(call.metadata);
          const p = RULES[name]?.kind === 'node' ? undefined : this.resolve(call.metadata);
          this.check(name, (call.request ?? {}) as Record<string, unknown>, p);
          call.gfsPrincipal = p;
        } catch (e) {
          const err = toGrpcError(e) as grpc.ServiceError;
          if (callback) return callback(err);
          // A server stream (watch): end it with the error.
          return void (call as unknown as grpc.ServerWritableStream<unknown, unknown>).emit('error', err);
        }
        if (callback) inner(call, this.enforced && name === 'list' ? this.filterRoot(call, callback) : callback);
        else inner(call);
      };
    }
    return out as T;
  }

  /** A listing of "/" shows only the namespaces the caller can see. */
  private filterRoot(call: AuthedCall & { request: unknown }, callback: grpc.sendUnaryData<unknown>): grpc.sendUnaryData<unknown> {
    const req = call.request as { path?: string };
    if (namespaceOf(req.path ?? '') !== undefined) return callback;
    return (err, res) => {
      if (err || !res) return callback(err, res);
      const r = res as { entries: { path: string }[] };
      const auth = this.host.state().auth;
      const visible = r.entries.filter((e) => {
        const ns = namespaceOf(e.path);
        return ns !== undefined && canSee(call.gfsPrincipal, ns, auth.settingsOf(ns).visibility);
      });
      callback(null, { ...r, entries: visible });
    };
  }
}

function need(p: Principal | undefined): Principal {
  if (p === undefined) throw new GfsError('UNAUTHENTICATED', 'this call needs a token (--token or GFS_TOKEN)');
  return p;
}
