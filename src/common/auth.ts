/**
 * Tokens, scopes and visibility (DESIGN §11): the pure rules the master and the gateways
 * share. No I/O, no clock (times are passed in), no randomness (the caller brings it).
 *
 * A token is `gfs_<id>_<secret>`: `id` is 16 hex digits (public: it names the token in
 * `token ls`, audit lines and revocations), `secret` 43 base64url characters (32 random
 * bytes). The master keeps only sha256(secret). Its S3 access key id is `GK` + the id in
 * upper case, so a key names its token without a lookup table.
 *
 * A grant is (namespace or `*`, scopes). `admin` on a namespace implies read, write and
 * delete there; `*` grants apply to every namespace.
 *
 * Invariants:
 * - A token can never create one with more than it has (mayDelegate): every scope the new
 *   token gets on a namespace, its creator holds there; a `*` grant needs a `*` grant; the
 *   creator needs admin on each namespace it grants; the new expiry is no later than the
 *   creator's.
 * - An expired or revoked token authorizes nothing (tokenLive).
 * - Anonymous callers get read on public namespaces and nothing else.
 */
import crypto from 'node:crypto';
import { GfsError } from './errors';
import { limits } from './limits';

export const SCOPES = ['read', 'write', 'delete', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export const VISIBILITIES = ['private', 'visible', 'public'] as const;
export type Visibility = (typeof VISIBILITIES)[number];

/** gRPC metadata carrying the cluster secret on chunkserver heartbeats (gfs --cluster-secret-file). */
export const CLUSTER_SECRET_HEADER = 'x-gfs-cluster-secret';

/** Whether `presented` is `expected`, in time that does not depend on where they differ. */
export function clusterSecretMatches(expected: string, presented: string): boolean {
  const a = crypto.createHash('sha256').update(expected).digest();
  const b = crypto.createHash('sha256').update(presented).digest();
  return crypto.timingSafeEqual(a, b);
}

/** Every namespace. */
export const ALL_NAMESPACES = '*';

export interface Grant {
  namespace: string;
  scopes: Scope[];
}

/** What a request is checked against: a live token's id, grants and expiry. */
export interface Principal {
  id: string;
  grants: Grant[];
  /** 0: never. */
  expiresAtMs: number;
}

export interface TokenRecord extends Principal {
  secretSha256: string;
  createdAtMs: number;
  /** 0: live. */
  revokedAtMs: number;
  accessKeyId: string;
  secretAccessKey: string;
  description: string;
  parentId: string;
}

export interface NamespaceSettings {
  name: string;
  visibility: Visibility;
  /** 0: no quota. */
  quotaBytes: number;
  quotaFiles: number;
}

const TOKEN_RE = /^gfs_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

export function parseScopes(text: string): Scope[] {
  const scopes = text.split(',').map((s) => s.trim()).filter(Boolean);
  if (scopes.length === 0) throw new GfsError('INVALID_ARGUMENT', 'no scope given (read, write, delete, admin)');
  for (const s of scopes) {
    if (!(SCOPES as readonly string[]).includes(s)) throw new GfsError('INVALID_ARGUMENT', `unknown scope "${s}" (read, write, delete, admin)`);
  }
  return sortScopes(scopes as Scope[]);
}

export function sortScopes(scopes: readonly Scope[]): Scope[] {
  return [...new Set(scopes)].sort((a, b) => SCOPES.indexOf(a) - SCOPES.indexOf(b));
}

export function parseVisibility(text: string): Visibility {
  if (!(VISIBILITIES as readonly string[]).includes(text)) {
    throw new GfsError('INVALID_ARGUMENT', `visibility must be private, visible or public, not "${text}"`);
  }
  return text as Visibility;
}

/** A namespace name: one path component, as a top-level directory (or `*` in a grant). */
export function checkNamespaceName(name: string, allowAll = false): string {
  if (allowAll && name === ALL_NAMESPACES) return name;
  if (typeof name !== 'string' || name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0') ||
    Buffer.byteLength(name) > 255 || name === ALL_NAMESPACES) {
    throw new GfsError('INVALID_ARGUMENT', `bad namespace name "${String(name)}"`);
  }
  return name;
}

/** Grants checked and in canonical form: namespaces sorted, one grant each, scopes sorted. */
export function normalizeGrants(grants: readonly { namespace: string; scopes: readonly string[] }[]): Grant[] {
  if (grants.length === 0) throw new GfsError('INVALID_ARGUMENT', 'a token needs at least one grant');
  if (grants.length > limits.tokenGrantsMax) throw new GfsError('INVALID_ARGUMENT', `at most ${limits.tokenGrantsMax} grants`);
  const byNs = new Map<string, Set<Scope>>();
  for (const g of grants) {
    const ns = checkNamespaceName(g.namespace, true);
    const set = byNs.get(ns) ?? new Set<Scope>();
    for (const s of parseScopes(g.scopes.join(','))) set.add(s);
    byNs.set(ns, set);
  }
  return [...byNs.keys()].sort().map((namespace) => ({ namespace, scopes: sortScopes([...byNs.get(namespace)!]) }));
}

export function tokenLive(t: { expiresAtMs: number; revokedAtMs?: number }, nowMs: number): boolean {
  return (t.revokedAtMs ?? 0) === 0 && (t.expiresAtMs === 0 || nowMs < t.expiresAtMs);
}

/** The scopes a principal holds on one namespace (its own grant and `*`, admin expanded). */
export function scopesOn(p: Principal, namespace: string): Set<Scope> {
  const held = new Set<Scope>();
  for (const g of p.grants) {
    if (g.namespace !== namespace && g.namespace !== ALL_NAMESPACES) continue;
    for (const s of g.scopes) held.add(s);
  }
  if (held.has('admin')) for (const s of SCOPES) held.add(s);
  return held;
}

export function hasScope(p: Principal, namespace: string, scope: Scope): boolean {
  return scopesOn(p, namespace).has(scope);
}

/** Admin on every namespace: cluster operations (status of nodes, balance, tokens of anyone). */
export function isClusterAdmin(p: Principal): boolean {
  return p.grants.some((g) => g.namespace === ALL_NAMESPACES && g.scopes.includes('admin'));
}

/**
 * May `creator` make a token with `grants` expiring at `expiresAtMs` (0: never)? Throws
 * PERMISSION_DENIED naming the first excess. Returns the expiry the new token gets: its
 * own, or the creator's when it asked for none.
 */
export function mayDelegate(creator: Principal, grants: readonly Grant[], expiresAtMs: number): number {
  for (const g of grants) {
    if (g.namespace === ALL_NAMESPACES) {
      const star = creator.grants.find((c) => c.namespace === ALL_NAMESPACES);
      const held = new Set<Scope>(star?.scopes ?? []);
      if (held.has('admin')) for (const s of SCOPES) held.add(s);
      if (!held.has('admin')) throw new GfsError('PERMISSION_DENIED', 'granting "*" needs admin on "*"');
      continue;
    }
    const held = scopesOn(creator, g.namespace);
    if (!held.has('admin')) throw new GfsError('PERMISSION_DENIED', `creating a token for "${g.namespace}" needs admin there`);
    for (const s of g.scopes) {
      if (!held.has(s)) throw new GfsError('PERMISSION_DENIED', `cannot grant ${s} on "${g.namespace}": the creator does not hold it`);
    }
  }
  if (creator.expiresAtMs === 0) return expiresAtMs;
  if (expiresAtMs === 0) return creator.expiresAtMs;
  if (expiresAtMs > creator.expiresAtMs) {
    throw new GfsError('PERMISSION_DENIED', 'a token cannot outlive the token that creates it');
  }
  return expiresAtMs;
}

/** May `p` manage (list, revoke) token `t`: it is itself, or p is admin on every namespace t has. */
export function mayManage(p: Principal, t: { id: string; grants: readonly Grant[] }): boolean {
  if (p.id === t.id || isClusterAdmin(p)) return true;
  return t.grants.every((g) => g.namespace !== ALL_NAMESPACES && hasScope(p, g.namespace, 'admin'));
}

/**
 * May `p` (undefined: anonymous) do `scope` in `namespace` of this visibility? Listing
 * the namespace itself (seeing that it exists) is `see`.
 */
export function allowed(p: Principal | undefined, namespace: string, visibility: Visibility, scope: Scope): boolean {
  if (p === undefined) return visibility === 'public' && scope === 'read';
  if (visibility === 'public' && scope === 'read') return true;
  return hasScope(p, namespace, scope);
}

/** Whether the namespace shows in a listing of namespaces for `p`. */
export function canSee(p: Principal | undefined, namespace: string, visibility: Visibility): boolean {
  if (visibility === 'public') return true;
  if (p === undefined) return false;
  if (visibility === 'visible') return true;
  return scopesOn(p, namespace).size > 0;
}

// ------------------------------------------------------------------ token strings

export function formatToken(id: string, secret: string): string {
  return `gfs_${id}_${secret}`;
}

/** The id and secret of a presented token, or undefined when it has not the form of one. */
export function parseToken(token: string): { id: string; secret: string } | undefined {
  const m = TOKEN_RE.exec(token);
  return m ? { id: m[1]!, secret: m[2]! } : undefined;
}

export function sha256Hex(text: string): string {
  return crypto.createHash('sha256').update(text).digest('hex');
}

/** Whether sha256(secret) is `expectedHex`, compared in constant time. */
export function secretMatches(expectedHex: string, secret: string): boolean {
  const a = Buffer.from(expectedHex, 'hex');
  const b = crypto.createHash('sha256').update(secret).digest();
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}

export function accessKeyIdOf(id: string): string {
  return 'GK' + id.toUpperCase();
}

export function tokenIdOfAccessKey(accessKeyId: string): string | undefined {
  return /^GK[0-9A-F]{16}$/.test(accessKeyId) ? accessKeyId.slice(2).toLowerCase() : undefined;
}

/** A new token's random parts; `random` is injected so tests are deterministic. */
export function newTokenSecrets(random: (bytes: number) => Buffer = crypto.randomBytes): {
  id: string; secret: string; token: string; accessKeyId: string; secretAccessKey: string;
} {
  const id = random(8).toString('hex');
  const secret = random(32).toString('base64url');
  const secretAccessKey = random(30).toString('base64').replace(/[+/=]/g, 'A');
  return { id, secret, token: formatToken(id, secret), accessKeyId: accessKeyIdOf(id), secretAccessKey };
}
