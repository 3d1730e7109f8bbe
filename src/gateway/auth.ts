/**
 * The gateway's side of tokens (DESIGN §11): bearer tokens (REST) and S3 access keys
 * are verified against a copy of the master's token table (AuthTable, fetched with the
 * gateway's own admin token), refreshed every limits.gatewayAuthRefreshMs and on a miss
 * (at most every limits.gatewayAuthMissRefreshMs). A revoked token is refused once the
 * next refresh lands: within about 1 s (plus one master call), 2 s at worst. An expired
 * token is refused at once (expiry is checked locally).
 *
 * Each token (and anonymous callers, per address) has a request-rate bucket: past it a
 * request gets SLOW_DOWN (REST 429, S3 503 SlowDown). Every /v1 (and S3) request gets one
 * JSON audit line: time, token id ("" anonymous, "invalid" for a refused token),
 * action, path, HTTP status, ms.
 *
 * Invariants:
 * - Nothing is allowed on a table the gateway never fetched while the master enforces
 *   tokens (UNAVAILABLE until it has one); an open cluster (no token yet) is open here too.
 * - The rules are the master's (src/common/auth.ts): the same scopes, visibility, and
 *   anonymous read on public namespaces only.
 * - Secrets are compared in constant time; only their hashes and the S3 secret keys
 *   (SigV4 needs them) are held.
 */
import fs from 'node:fs';
import type { AuthTableResponse } from '../../gen/gfs';
import { GfsError } from '../common/errors';
import { limits } from '../common/limits';
import type { Clock } from '../common/clock';
import type { Logger } from '../common/log';
import { TokenBucket } from '../common/token-bucket';
import {
  allowed, canSee, isClusterAdmin, parseToken, secretMatches, sortScopes, tokenIdOfAccessKey, tokenLive,
  type Principal, type Scope, type Visibility,
} from '../common/auth';

interface CachedToken {
  principal: Principal;
  secretSha256: string;
  secretAccessKey: string;
}

export interface GatewayAuthOptions {
  /** The master's token table (AdminClient.authTable with the gateway's admin token). */
  fetch: () => Promise<AuthTableResponse>;
  clock: Clock;
  log: Logger;
  /** Requests per second per token (and per anonymous address). */
  ratePerSec?: number;
  burst?: number;
  /** JSON audit lines go here (append, mode 0600). */
  auditLog?: string;
}

export class GatewayAuth {
  private tokens = new Map<string, CachedToken>();
  private visibility = new Map<string, Visibility>();
  private enforcedByMaster = true;
  private fetchedAtMs = -Infinity;
  private fetched = false;
  private failing = false;
  private inFlight: Promise<void> | undefined;
  /** A change was announced while a read was under way: read again after it. */
  private dirty = false;
  private timer: { cancel(): void } | undefined;
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly audit: fs.WriteStream | undefined;

  constructor(private readonly opts: GatewayAuthOptions) {
    if (opts.auditLog) {
      this.audit = fs.createWriteStream(opts.auditLog, { flags: 'a', mode: 0o600 });
      this.audit.on('error', (e) => opts.log.error({ err: e.message, file: opts.auditLog }, 'audit log write failed'));
    }
  }

  /** periodMs: how often the table is re-read whatever happens (shorter without an event feed). */
  start(periodMs: number = limits.gatewayAuthRefreshMs): void {
    void this.refresh();
    this.timer = this.opts.clock.every(periodMs, () => void this.refresh());
  }

  /**
   * Something changed (a token or namespace event, a NATS reconnect): re-read the table.
   * A read already under way may have started before the change, so one more follows it.
   */
  invalidate(): void {
    if (this.inFlight) {
      this.dirty = true;
      return;
    }
    void this.refresh();
  }

  async stop(): Promise<void> {
    this.timer?.cancel();
    await this.inFlight;
    if (this.audit) await new Promise<void>((resolve) => this.audit!.end(() => resolve()));
  }

  /** Whether tokens are checked (the master has one). */
  get enforced(): boolean {
    return this.enforcedByMaster;
  }

  /** Fetches the table now (one fetch at a time); a failure keeps the last table. */
  refresh(): Promise<void> {
    if (this.inFlight) return this.inFlight;
    this.inFlight = this.opts.fetch().then((t) => {
      const tokens = new Map<string, CachedToken>();
      for (const e of t.tokens) {
        const info = e.info!;
        tokens.set(info.id, {
          principal: { id: info.id, grants: info.grants.map((g) => ({ namespace: g.namespace, scopes: sortScopes(g.scopes as Scope[]) })), expiresAtMs: info.expiresAtMs },
          secretSha256: e.secretSha256, secretAccessKey: e.secretAccessKey,
        });
      }
      this.tokens = tokens;
      this.visibility = new Map(t.namespaces.map((n) => [n.name, n.visibility as Visibility]));
      this.enforcedByMaster = t.enforced;
      this.fetched = true;
      if (this.failing) this.opts.log.info({ tokens: tokens.size }, 'token table refreshed from the master again');
      this.failing = false;
    }, (e: GfsError) => {
      // Once per outage, not once a second: the next success says it is over.
      if (!this.failing) this.opts.log.warn({ err: e.message, code: e.code }, 'could not refresh the token table from the master; keeping the last one');
      this.failing = true;
    }).finally(() => {
      this.fetchedAtMs = this.opts.clock.monoMs();
      this.inFlight = undefined;
      if (this.dirty) {
        this.dirty = false;
        void this.refresh();
      }
    });
    return this.inFlight;
  }

  /** A token not in the table: refresh (rate-limited) and look again. */
  private async lookup(id: string): Promise<CachedToken | undefined> {
    let t = this.tokens.get(id);
    if (t === undefined && this.opts.clock.monoMs() - this.fetchedAtMs >= limits.gatewayAuthMissRefreshMs) {
      await this.refresh();
      t = this.tokens.get(id);
    }
    return t;
  }

  private async ready(): Promise<void> {
    if (!this.fetched) await this.refresh();
    if (!this.fetched) throw new GfsError('UNAVAILABLE', 'the gateway has not got the token table from the master yet');
  }

  /** The principal of `Authorization: Bearer <token>`; undefined when none is presented. */
  async bearer(header: string | undefined): Promise<Principal | undefined> {
    await this.ready();
    if (header === undefined) return undefined;
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) throw new GfsError('UNAUTHENTICATED', 'Authorization must be "Bearer <token>"');
    const parsed = parseToken(m[1]!);
    const t = parsed ? await this.lookup(parsed.id) : undefined;
    if (!parsed || !t || !secretMatches(t.secretSha256, parsed.secret) || !tokenLive(t.principal, this.opts.clock.nowMs())) {
      throw new GfsError('UNAUTHENTICATED', 'the token is not valid (unknown, revoked or expired)');
    }
    return t.principal;
  }

  /** For the S3 API's SigV4 check: the secret key of an access key id and its token's principal. */
  async lookupSecret(accessKeyId: string): Promise<{ secretAccessKey: string; principal: Principal } | undefined> {
    await this.ready();
    const id = tokenIdOfAccessKey(accessKeyId);
    const t = id === undefined ? undefined : await this.lookup(id);
    if (!t || !tokenLive(t.principal, this.opts.clock.nowMs())) return undefined;
    return { secretAccessKey: t.secretAccessKey, principal: t.principal };
  }

  /**
   * Synchronous, for the S3 API's SigV4 check (its LookupSecret): the cached secret key of
   * a live token's access key. A miss starts a refresh (rate-limited), so a key made a
   * moment ago works on the client's retry.
   */
  s3Secret(accessKeyId: string): string | undefined {
    const p = this.principalOfAccessKey(accessKeyId);
    return p === undefined ? undefined : this.tokens.get(p.id)!.secretAccessKey;
  }

  /** The principal an S3 access key stands for (undefined: unknown, revoked or expired). */
  principalOfAccessKey(accessKeyId: string): Principal | undefined {
    const id = tokenIdOfAccessKey(accessKeyId);
    const t = id === undefined ? undefined : this.tokens.get(id);
    if (t === undefined) {
      if (this.opts.clock.monoMs() - this.fetchedAtMs >= limits.gatewayAuthMissRefreshMs) void this.refresh();
      return undefined;
    }
    return tokenLive(t.principal, this.opts.clock.nowMs()) ? t.principal : undefined;
  }

  visibilityOf(ns: string): Visibility {
    return this.visibility.get(ns) ?? 'private';
  }

  /** Throws unless `p` may do `scope` in `ns` (the master's rules). */
  check(p: Principal | undefined, ns: string, scope: Scope): void {
    if (!this.enforced) return;
    if (allowed(p, ns, this.visibilityOf(ns), scope)) return;
    if (p === undefined) throw new GfsError('UNAUTHENTICATED', `${scope} in "${ns}" needs a token (Authorization: Bearer <token>)`);
    throw new GfsError('PERMISSION_DENIED', `token ${p.id} has no ${scope} scope on "${ns}"`);
  }

  /** Any valid token (cluster status). */
  checkToken(p: Principal | undefined): void {
    if (this.enforced && p === undefined) throw new GfsError('UNAUTHENTICATED', 'this needs a token (Authorization: Bearer <token>)');
  }

  checkClusterAdmin(p: Principal | undefined): void {
    if (!this.enforced) return;
    this.checkToken(p);
    if (!isClusterAdmin(p!)) throw new GfsError('PERMISSION_DENIED', 'this needs admin on every namespace ("*")');
  }

  canSee(p: Principal | undefined, ns: string): boolean {
    return !this.enforced || canSee(p, ns, this.visibilityOf(ns));
  }

  /** One request against the caller's rate; SLOW_DOWN past it. */
  rate(p: Principal | undefined, address: string): void {
    const key = p ? `t:${p.id}` : `a:${address}`;
    let b = this.buckets.get(key);
    if (b === undefined) {
      if (this.buckets.size >= limits.gatewayTokenBucketsMax) this.buckets.delete(this.buckets.keys().next().value!);
      b = new TokenBucket(this.opts.ratePerSec ?? limits.gatewayTokenRatePerSec, this.opts.burst ?? limits.gatewayTokenBurst, () => this.opts.clock.monoMs());
    } else {
      this.buckets.delete(key); // re-inserted below: the map's order is least recently used first
    }
    this.buckets.set(key, b);
    if (b.available() < 1) throw new GfsError('SLOW_DOWN', `too many requests for ${p ? `token ${p.id}` : 'anonymous callers'}; slow down`);
    b.take(1);
  }

  /** One audit line (only with --audit-log). */
  record(line: { token: string; action: string; method: string; path: string; status: number; ms: number; api: 'rest' | 's3' }): void {
    if (!this.audit) return;
    this.audit.write(JSON.stringify({ time: new Date(this.opts.clock.nowMs()).toISOString(), ...line }) + '\n');
  }
}
