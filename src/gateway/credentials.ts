/**
 * The gateway's bootstrap credentials (until the master issues tokens, DESIGN §11):
 * one bearer token for REST and one S3 access key pair, in a JSON file of mode 0600
 * that `gfs dev` creates on first start and keeps across restarts.
 *
 * Invariants: a file that exists is never rewritten (restarts keep the same secrets);
 * a new file appears whole (written beside its name and renamed) with mode 0600;
 * a presented token is compared in constant time.
 */
import fs from 'node:fs';
import crypto from 'node:crypto';
import { GfsError } from '../common/errors';

export interface GatewayCredentials {
  token: string;
  accessKeyId: string;
  secretAccessKey: string;
}

/** Reads and checks a credentials file (INVALID_ARGUMENT naming what is wrong). */
export function loadCredentials(file: string): GatewayCredentials {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new GfsError('INVALID_ARGUMENT', `cannot read credentials file ${file}: ${(e as Error).message}`, { cause: e });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new GfsError('INVALID_ARGUMENT', `credentials file ${file} is not JSON`, { cause: e });
  }
  const c = parsed as Partial<Record<keyof GatewayCredentials, unknown>>;
  for (const key of ['token', 'accessKeyId', 'secretAccessKey'] as const) {
    if (typeof c?.[key] !== 'string' || (c[key] as string).length < 16) {
      throw new GfsError('INVALID_ARGUMENT', `credentials file ${file}: "${key}" must be a string of at least 16 characters`);
    }
  }
  return { token: c.token as string, accessKeyId: c.accessKeyId as string, secretAccessKey: c.secretAccessKey as string };
}

/** Random credentials; `random` is injected so tests can make them deterministic. */
export function newCredentials(random: (bytes: number) => Buffer = crypto.randomBytes): GatewayCredentials {
  return {
    token: random(32).toString('base64url'),
    // S3 access key ids are upper-case alphanumerics by convention; SDKs accept them as they are.
    accessKeyId: 'GFS' + random(10).toString('hex').toUpperCase().slice(0, 17),
    secretAccessKey: random(30).toString('base64').replace(/[+/=]/g, 'A'),
  };
}

/**
 * Loads `file`, creating it with new credentials when it does not exist. Returns the
 * credentials and whether they were created now.
 */
export function ensureCredentials(file: string, random?: (bytes: number) => Buffer): { credentials: GatewayCredentials; created: boolean } {
  if (fs.existsSync(file)) return { credentials: loadCredentials(file), created: false };
  const credentials = newCredentials(random);
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(credentials, null, 2) + '\n', { mode: 0o600 });
  fs.chmodSync(tmp, 0o600); // the umask may have narrowed it further, never widened: make it exact
  fs.renameSync(tmp, file);
  return { credentials, created: true };
}

/** Whether `presented` equals `expected`, in time that does not depend on where they differ. */
export function tokenMatches(expected: string, presented: string): boolean {
  // Hash both to a fixed length first: timingSafeEqual needs equal lengths, and
  // comparing lengths directly would leak the token's length.
  const a = crypto.createHash('sha256').update(expected).digest();
  const b = crypto.createHash('sha256').update(presented).digest();
  return crypto.timingSafeEqual(a, b);
}
