/**
 * The master's token and namespace calls (gfsctl token ..., ns ...; gateways' token
 * table) and the bootstrap admin token (`gfs master --bootstrap-credentials FILE`).
 *
 * Invariants:
 * - A bearer secret leaves the master once, in the answer to the call that created it;
 *   only its sha256 is logged (OpTokenCreate) and kept.
 * - A token creates only tokens with less than or as much as it has (mayDelegate); it
 *   lists and revokes only tokens it could have created (mayManage).
 * - While auth is not enforced (no token yet, --auth auto) the cluster is open: anyone
 *   may create the first token, which must be admin on "*" (anything less would lock
 *   everyone out), and from then on every call needs one.
 * - The bootstrap token is created at most once per metadata: OpTokenCreate.bootstrap is
 *   refused at apply once any token exists, so two leaders racing cannot both make one,
 *   and only the master whose op applied writes the file.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import {
  MetaOp,
  type AuthTableResponse, type CreateTokenResponse, type ListNamespacesResponse, type ListTokensResponse,
  type MasterServer, type NamespaceInfo, type TokenInfo,
} from '../../../gen/gfs';
import { GfsError, toGrpcError } from '../../common/errors';
import type { Clock } from '../../common/clock';
import type { Logger } from '../../common/log';
import {
  ALL_NAMESPACES, canSee, checkNamespaceName, hasScope, isClusterAdmin, mayDelegate, mayManage, newTokenSecrets,
  normalizeGrants, parseVisibility, sha256Hex, tokenLive, type Grant, type NamespaceSettings, type Principal, type TokenRecord,
} from '../../common/auth';
import type { ApplyResult, MetaState } from '../meta-state';
import { grantsProto } from './auth-state';
import { principalOf, type Guard } from './guard';
import { namespaceUsage } from './quota';

export interface AuthRpcHost {
  state: () => MetaState;
  commit: (kind: string, op: MetaOp) => Promise<ApplyResult>;
  guard: Guard;
  clock: Clock;
  randomBytes?: (n: number) => Buffer;
  log: Logger;
}

type Unary<Req, Res> = (call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>;

function handler<Req, Res>(fn: Unary<Req, Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    fn(call).then((res) => callback(null, res), (e) => callback(toGrpcError(e) as grpc.ServiceError));
  };
}

export function authHandlers(host: AuthRpcHost): Partial<MasterServer> {
  const calls = new AuthCalls(host);
  return {
    createToken: handler(async (call) => calls.createToken(principalOf(call), call.request)),
    revokeToken: handler(async (call) => { await calls.revokeToken(principalOf(call), call.request.id); return {}; }),
    listTokens: handler(async (call) => calls.listTokens(principalOf(call))),
    setNamespace: handler(async (call) => calls.setNamespace(principalOf(call), call.request)),
    listNamespaces: handler(async (call) => calls.listNamespaces(principalOf(call))),
    authTable: handler(async () => calls.authTable()),
  };
}

export class AuthCalls {
  constructor(private readonly host: AuthRpcHost) {}

  private get state(): MetaState { return this.host.state(); }

  async createToken(p: Principal | undefined, req: { grants: { namespace: string; scopes: string[] }[]; expiresInMs: number; description: string }, bootstrap = false): Promise<CreateTokenResponse> {
    const grants: Grant[] = normalizeGrants(req.grants);
    if (this.state.auth.tokens.size === 0 && !isClusterAdmin({ id: '', grants, expiresAtMs: 0 })) {
      // The first token closes an open cluster: anything less than admin on "*" would lock everyone out.
      throw new GfsError('INVALID_ARGUMENT', 'the first token must have admin on "*" (--ns \'*\' --scope admin): from then on every call needs a token');
    }
    const now = this.host.clock.nowMs();
    let expiresAtMs = req.expiresInMs > 0 ? now + req.expiresInMs : 0;
    if (this.host.guard.enforced && !bootstrap) {
      if (p === undefined) throw new GfsError('UNAUTHENTICATED', 'creating a token needs a token');
      expiresAtMs = mayDelegate(p, grants, expiresAtMs);
    }
    const s = newTokenSecrets(this.host.randomBytes ?? crypto.randomBytes);
    await this.host.commit('tokenCreate', MetaOp.fromPartial({
      tokenCreate: {
        id: s.id, secretSha256: sha256Hex(s.secret), grants: grantsProto(grants), createdAtMs: now, expiresAtMs,
        accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey, description: req.description ?? '',
        parentId: p?.id ?? '', bootstrap,
      },
    }));
    this.host.log.info({ token: s.id, grants, expiresAtMs, parent: p?.id, bootstrap }, 'token created');
    return { id: s.id, token: s.token, accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey, expiresAtMs };
  }

  async revokeToken(p: Principal | undefined, id: string): Promise<void> {
    const t = this.state.auth.tokens.get(id);
    if (t === undefined) throw new GfsError('NO_SUCH_FILE', `no token ${id}`);
    if (this.host.guard.enforced && (p === undefined || !mayManage(p, t))) {
      throw new GfsError('PERMISSION_DENIED', `token ${p?.id ?? '(none)'} may not revoke token ${id}`);
    }
    await this.host.commit('tokenRevoke', MetaOp.fromPartial({ tokenRevoke: { id, revokedAtMs: this.host.clock.nowMs() } }));
    this.host.log.info({ token: id, by: p?.id }, 'token revoked');
  }

  listTokens(p: Principal | undefined): ListTokensResponse {
    const enforced = this.host.guard.enforced;
    const tokens = [...this.state.auth.tokens.values()]
      .filter((t) => !enforced || (p !== undefined && mayManage(p, t)))
      .sort((a, b) => a.createdAtMs - b.createdAtMs || (a.id < b.id ? -1 : 1))
      .map(tokenInfo);
    return { tokens };
  }

  async setNamespace(p: Principal | undefined, req: { name: string; create: boolean; visibility: string; quotaBytes: number; quotaFiles: number }): Promise<NamespaceInfo> {
    const name = checkNamespaceName(req.name);
    if (this.host.guard.enforced) {
      if (p === undefined) throw new GfsError('UNAUTHENTICATED', 'namespace settings need a token');
      if (!hasScope(p, name, 'admin')) throw new GfsError('PERMISSION_DENIED', `token ${p.id} has no admin scope on "${name}"`);
    }
    const auth = this.state.auth;
    if (req.create && auth.namespaces.has(name)) throw new GfsError('ALREADY_EXISTS', `namespace "${name}" exists`);
    if (!req.create && !auth.namespaces.has(name) && !this.dirExists(name)) throw new GfsError('NO_SUCH_FILE', `no namespace "${name}"`);
    const old = auth.settingsOf(name);
    const next: NamespaceSettings = {
      name,
      visibility: req.visibility ? parseVisibility(req.visibility) : old.visibility,
      quotaBytes: keep(req.quotaBytes, old.quotaBytes),
      quotaFiles: keep(req.quotaFiles, old.quotaFiles),
    };
    if (!this.dirExists(name)) {
      this.state.checkMkdir(`/${name}`);
      await this.host.commit('mkdir', MetaOp.fromPartial({ mkdir: { path: `/${name}`, mtimeMs: this.host.clock.nowMs() } }));
    }
    await this.host.commit('namespaceSet', MetaOp.fromPartial({ namespaceSet: next }));
    this.host.log.info({ ...next, by: p?.id }, req.create ? 'namespace created' : 'namespace changed');
    return this.namespaceInfo(next);
  }

  listNamespaces(p: Principal | undefined): ListNamespacesResponse {
    const auth = this.state.auth;
    const names = new Set(auth.namespaces.keys());
    for (const e of this.state.list('/', { recursive: false, limit: 0, startAfter: '' }).entries) {
      if (e.kind === 'dir') names.add(e.path.slice(1));
    }
    const enforced = this.host.guard.enforced;
    const namespaces = [...names].sort()
      .map((n) => auth.settingsOf(n))
      .filter((s) => !enforced || canSee(p, s.name, s.visibility))
      .map((s) => this.namespaceInfo(s));
    return { namespaces };
  }

  /** Every live token with its hash and S3 secret, and the namespace settings: for gateways (cluster admin). */
  authTable(): AuthTableResponse {
    const auth = this.state.auth;
    const now = this.host.clock.nowMs();
    return {
      tokens: [...auth.tokens.values()].filter((t) => tokenLive(t, now)).map((t) => ({
        info: tokenInfo(t), secretSha256: t.secretSha256, secretAccessKey: t.secretAccessKey,
      })),
      namespaces: [...auth.namespaces.values()].map((s) => ({ name: s.name, visibility: s.visibility, quotaBytes: s.quotaBytes, quotaFiles: s.quotaFiles, usedBytes: 0, usedFiles: 0 })),
      enforced: this.host.guard.enforced,
    };
  }

  private dirExists(name: string): boolean {
    try {
      return this.state.stat(`/${name}`).kind === 'dir';
    } catch {
      return false;
    }
  }

  private namespaceInfo(s: NamespaceSettings): NamespaceInfo {
    const used = namespaceUsage(this.state, s.name);
    return { name: s.name, visibility: s.visibility, quotaBytes: s.quotaBytes, quotaFiles: s.quotaFiles, usedBytes: used.bytes, usedFiles: used.files };
  }
}

function keep(value: number, old: number): number {
  if (value === undefined || value < 0) return old;
  if (!Number.isSafeInteger(value)) throw new GfsError('INVALID_ARGUMENT', `bad quota ${value}`);
  return value;
}

export function tokenInfo(t: TokenRecord): TokenInfo {
  return {
    id: t.id, grants: grantsProto(t.grants), createdAtMs: t.createdAtMs, expiresAtMs: t.expiresAtMs, revokedAtMs: t.revokedAtMs,
    accessKeyId: t.accessKeyId, description: t.description, parentId: t.parentId,
  };
}

/**
 * The bootstrap admin: once this master leads a metadata with no token, it creates one
 * with admin on "*" and writes `{"token","accessKeyId","secretAccessKey"}` to `file`
 * (mode 0600, written beside it and renamed). Tried on every tick until done.
 */
export class Bootstrap {
  private running = false;
  private done = false;

  constructor(private readonly calls: AuthCalls, private readonly file: string, private readonly log: Logger) {}

  maybe(state: MetaState, isLeader: boolean): void {
    if (this.done || this.running || !isLeader) return;
    if (state.auth.tokens.size > 0) {
      this.done = true;
      return;
    }
    this.running = true;
    this.calls.createToken(undefined, { grants: [{ namespace: ALL_NAMESPACES, scopes: ['admin'] }], expiresInMs: 0, description: 'bootstrap admin' }, true)
      .then((t) => {
        writePrivateFile(this.file, JSON.stringify({ token: t.token, accessKeyId: t.accessKeyId, secretAccessKey: t.secretAccessKey, id: t.id }, null, 2) + '\n');
        this.done = true;
        this.log.info({ file: this.file, token: t.id }, 'bootstrap admin token created');
      })
      .catch((e: Error) => this.log.warn({ err: e.message }, 'bootstrap token not created (yet)'))
      .finally(() => { this.running = false; });
  }
}

/** Writes a file of mode 0600 whole: beside its name, then renamed over it. */
export function writePrivateFile(file: string, text: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, text, { mode: 0o600 });
  fs.chmodSync(tmp, 0o600);
  fs.renameSync(tmp, file);
}

