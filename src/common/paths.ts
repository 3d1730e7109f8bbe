/**
 * Path rules (DESIGN §3): `/<namespace>/<rest>`, UTF-8 components of 1-255 bytes,
 * no `.` or `..`, at most 4096 bytes in all. A trailing slash is ignored.
 *
 * Names are text a person reads (`ls`, logs, S3 listings), so a name must look like
 * what it is. Refused with INVALID_PATH, at every entry point (client library,
 * gfsctl, every master RPC, the gateway):
 * - control characters: C0 (U+0000-U+001F, so NUL, tab and newline), DEL (U+007F)
 *   and C1 (U+0080-U+009F). A newline in a name breaks every line-oriented listing.
 * - U+FFFD, the replacement character. Invalid UTF-8 never reaches us as bytes: the
 *   protobuf decoder and Node's argv both turn each bad byte into U+FFFD, so
 *   `\xff\xfe` and `\xfe\xff` would both become "\uFFFD\uFFFD" and collide. Refusing
 *   U+FFFD in names outright is the one rule that catches invalid UTF-8 everywhere.
 * - lone UTF-16 surrogates in a JS string: they have no UTF-8 form and would be sent
 *   as U+FFFD.
 * Names are not Unicode-normalised: they are stored and compared byte-exact, so
 * "é" as U+00E9 (NFC) and as "e" + U+0301 (NFD) are two different names, as in S3,
 * POSIX file systems and HDFS. Format characters (zero-width joiners, bidi marks)
 * are allowed: scripts need them.
 *
 * normalizePath/normalizeFilePath apply all of it. The metadata state machine uses
 * the structural rules only (normalizeLoggedPath): an op that is already in the log
 * was accepted by a leader and must replay the same way whatever the rules are now,
 * or a data dir written before a rule existed would not load the same.
 */
import { GfsError } from './errors';
import { limits } from './limits';

/** C0, DEL and C1 controls, U+FFFD, and lone surrogates (the `u` flag sees them as code points). */
const unreadableChar = /[\u0000-\u001f\u007f-\u009f\ufffd]|\p{Cs}/u;

export function normalizePath(path: string): string {
  const p = normalizeLoggedPath(path);
  checkReadable(path);
  return p;
}

/** A file path must name something inside a namespace: `/ns/name` at least. */
export function normalizeFilePath(path: string): string {
  const p = normalizeLoggedFilePath(path);
  checkReadable(path);
  return p;
}

/** The structural rules only, for paths inside logged ops and snapshots (see above). */
export function normalizeLoggedPath(path: string): string {
  if (typeof path !== 'string' || path.length === 0) throw new GfsError('INVALID_PATH', 'path is empty');
  if (!path.startsWith('/')) throw new GfsError('INVALID_PATH', `path must be absolute: ${quotePath(path)}`);
  if (path.includes('\0')) throw new GfsError('INVALID_PATH', 'path contains a NUL byte');
  if (Buffer.byteLength(path) > limits.pathBytesMax) {
    throw new GfsError('INVALID_PATH', `path is longer than ${limits.pathBytesMax} bytes`);
  }
  const parts = splitPath(path);
  return '/' + parts.join('/');
}

export function normalizeLoggedFilePath(path: string): string {
  const p = normalizeLoggedPath(path);
  if (splitPath(p).length < 2) throw new GfsError('INVALID_PATH', `${quotePath(path)} is not a file path (expected /<namespace>/<name>)`);
  return p;
}

/** Throws INVALID_PATH naming the first character a name may not hold (see the rules above). */
export function checkReadable(path: string): void {
  const m = unreadableChar.exec(path);
  if (m === null) return;
  const code = m[0].codePointAt(0)!;
  const what = code === 0xfffd
    ? 'U+FFFD (invalid UTF-8 shows as this)'
    : code >= 0xd800 && code <= 0xdfff
      ? `a lone surrogate U+${hex(code)} (not valid UTF-8)`
      : `the control character U+${hex(code)}`;
  throw new GfsError('INVALID_PATH', `path contains ${what}: ${quotePath(path)}`);
}

/** A path for an error message: quoted, on one line, every unreadable character escaped. */
export function quotePath(path: string): string {
  const escaped = String(path).replace(new RegExp(unreadableChar.source, 'gu'), (c) => `\\u{${hex(c.codePointAt(0)!)}}`);
  return `"${escaped}"`;
}

function hex(code: number): string {
  return code.toString(16).toUpperCase().padStart(4, '0');
}

/** Components of a path; throws INVALID_PATH on a bad component. */
export function splitPath(path: string): string[] {
  const raw = path.split('/');
  const parts: string[] = [];
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c === '') {
      if (i === 0 || i === raw.length - 1) continue;
      throw new GfsError('INVALID_PATH', `empty path component in ${quotePath(path)}`);
    }
    if (c === '.' || c === '..') throw new GfsError('INVALID_PATH', `"${c}" is not allowed in a path: ${quotePath(path)}`);
    if (Buffer.byteLength(c) > limits.pathComponentBytesMax) {
      throw new GfsError('INVALID_PATH', `path component longer than ${limits.pathComponentBytesMax} bytes`);
    }
    parts.push(c);
  }
  return parts;
}

export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}
