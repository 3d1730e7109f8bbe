/**
 * Tokens and namespace settings in the master's metadata (DESIGN §11): changed only by
 * the WAL ops OpTokenCreate, OpTokenRevoke and OpNamespaceSet that MetaState hands here,
 * and written into the snapshot as `tok` and `nsx` records (SNAPSHOT-FORMAT.md).
 *
 * Like MetaState.apply, prepare() is pure and deterministic (times and secrets come in
 * the op) and checks everything before it changes anything.
 *
 * Invariants:
 * - A token id appears once; a revoked token stays (revokedAtMs > 0) so `token ls` can
 *   show it and its id is never reused; at most limits.tokensMax tokens.
 * - Only sha256(secret) is held, never the bearer secret.
 * - A bootstrap token is accepted only while no token exists (the first leader's).
 * - `enforced` (any token ever created) never goes back to false: from the first token
 *   on, every call needs a token (or a public namespace).
 * - Records are written sorted by id / name, so the snapshot is a pure function of the state.
 */
import type { OpNamespaceSet, OpTokenCreate, OpTokenRevoke } from '../../../gen/gfs';
import { GfsError } from '../../common/errors';
import { limits } from '../../common/limits';
import {
  accessKeyIdOf, checkNamespaceName, normalizeGrants, parseVisibility, sortScopes,
  type Grant, type NamespaceSettings, type Scope, type TokenRecord,
} from '../../common/auth';

export interface AuthPrepared {
  run: () => void;
}

export class AuthState {
  readonly tokens = new Map<string, TokenRecord>();
  readonly namespaces = new Map<string, NamespaceSettings>();

  /** Auth is enforced once any token exists (see the module comment). */
  get enforced(): boolean {
    return this.tokens.size > 0;
  }

  settingsOf(ns: string): NamespaceSettings {
    return this.namespaces.get(ns) ?? { name: ns, visibility: 'private', quotaBytes: 0, quotaFiles: 0 };
  }

  prepareTokenCreate(o: OpTokenCreate): AuthPrepared {
    if (!/^[0-9a-f]{16}$/.test(o.id ?? '')) throw new GfsError('INVALID_ARGUMENT', `bad token id "${o.id}"`);
    if (this.tokens.has(o.id)) throw new GfsError('ALREADY_EXISTS', `token ${o.id} exists`);
    if (!/^[0-9a-f]{64}$/.test(o.secretSha256 ?? '')) throw new GfsError('INVALID_ARGUMENT', 'bad token hash');
    if (o.bootstrap && this.tokens.size > 0) throw new GfsError('ALREADY_EXISTS', 'a token exists: no bootstrap token');
    if (this.tokens.size >= limits.tokensMax) throw new GfsError('NO_SPACE', `at most ${limits.tokensMax} tokens (revoked ones included)`);
    if (o.accessKeyId !== accessKeyIdOf(o.id)) throw new GfsError('INVALID_ARGUMENT', 'access key id does not match the token id');
    if (typeof o.secretAccessKey !== 'string' || o.secretAccessKey.length < 16) throw new GfsError('INVALID_ARGUMENT', 'bad S3 secret key');
    if (Buffer.byteLength(o.description ?? '') > limits.tokenDescriptionBytesMax) {
      throw new GfsError('INVALID_ARGUMENT', `description longer than ${limits.tokenDescriptionBytesMax} bytes`);
    }
    const grants = normalizeGrants(o.grants ?? []);
    const record: TokenRecord = {
      id: o.id, secretSha256: o.secretSha256, grants, createdAtMs: count(o.createdAtMs), expiresAtMs: count(o.expiresAtMs),
      revokedAtMs: 0, accessKeyId: o.accessKeyId, secretAccessKey: o.secretAccessKey, description: o.description ?? '',
      parentId: o.parentId ?? '',
    };
    return { run: () => { this.tokens.set(record.id, record); } };
  }

  prepareTokenRevoke(o: OpTokenRevoke): AuthPrepared {
    const t = this.tokens.get(o.id);
    if (t === undefined) throw new GfsError('NO_SUCH_FILE', `no token ${o.id}`);
    const at = Math.max(1, count(o.revokedAtMs));
    // Revoking twice is fine (a retry): the first time stays.
    return { run: () => { if (t.revokedAtMs === 0) t.revokedAtMs = at; } };
  }

  prepareNamespaceSet(o: OpNamespaceSet): AuthPrepared {
    const name = checkNamespaceName(o.name);
    const settings: NamespaceSettings = {
      name, visibility: parseVisibility(o.visibility), quotaBytes: count(o.quotaBytes), quotaFiles: count(o.quotaFiles),
    };
    if (!this.namespaces.has(name) && this.namespaces.size >= limits.namespacesMax) {
      throw new GfsError('NO_SPACE', `at most ${limits.namespacesMax} namespaces with settings`);
    }
    return { run: () => { this.namespaces.set(name, settings); } };
  }

  // ------------------------------------------------------------------ snapshot

  /** `["tok", ...]` records by id, then `["nsx", ...]` records by name. */
  *records(): Generator<unknown[]> {
    for (const id of [...this.tokens.keys()].sort()) {
      const t = this.tokens.get(id)!;
      yield ['tok', t.id, t.secretSha256, t.grants.map((g) => [g.namespace, g.scopes]), t.createdAtMs, t.expiresAtMs, t.revokedAtMs,
        t.accessKeyId, t.secretAccessKey, t.description, t.parentId];
    }
    for (const name of [...this.namespaces.keys()].sort()) {
      const n = this.namespaces.get(name)!;
      yield ['nsx', n.name, n.visibility, n.quotaBytes, n.quotaFiles];
    }
  }

  /** Takes one `tok` or `nsx` record back; false for any other tag. Damage throws CORRUPT. */
  restoreRecord(rec: unknown[]): boolean {
    try {
      if (rec[0] === 'tok') {
        const grants = rec[3];
        if (!Array.isArray(grants)) throw new Error('grants');
        const p = this.prepareTokenCreate({
          id: rec[1] as string, secretSha256: rec[2] as string,
          grants: grants.map((g: unknown) => {
            if (!Array.isArray(g) || !Array.isArray(g[1])) throw new Error('grant');
            return { namespace: g[0] as string, scopes: sortScopes(g[1] as Scope[]) };
          }),
          createdAtMs: rec[4] as number, expiresAtMs: rec[5] as number, accessKeyId: rec[7] as string,
          secretAccessKey: rec[8] as string, description: rec[9] as string, parentId: rec[10] as string, bootstrap: false,
        });
        p.run();
        const revokedAtMs = count(rec[6] as number);
        this.tokens.get(rec[1] as string)!.revokedAtMs = revokedAtMs;
        return true;
      }
      if (rec[0] === 'nsx') {
        this.prepareNamespaceSet({ name: rec[1] as string, visibility: rec[2] as string, quotaBytes: rec[3] as number, quotaFiles: rec[4] as number }).run();
        return true;
      }
    } catch (e) {
      throw new GfsError('CORRUPT', `metadata snapshot: bad ${String(rec[0])} record: ${(e as Error).message}`);
    }
    return false;
  }
}

/** The grants as the proto carries them. */
export function grantsProto(grants: readonly Grant[]): { namespace: string; scopes: string[] }[] {
  return grants.map((g) => ({ namespace: g.namespace, scopes: [...g.scopes] }));
}

function count(value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new GfsError('INVALID_ARGUMENT', `bad number ${String(value)}`);
  return value;
}
