/**
 * S3 keys and bucket names onto gfs paths (docs/S3-KEYS.md). A key is an opaque string;
 * a gfs path is a tree of readable names. The one function from a key to a path is
 * keyToPath, and its inverse pathToKey; nothing else in the gateway builds object paths.
 *
 * Invariants (checked by test/unit/s3-keys.test.ts):
 * - keyToPath is injective and its result is a valid gfs file path under /<bucket>/,
 *   whatever the key holds (`..`, `/`, `\`, NUL, `//`): a key never names a path outside
 *   its bucket, and two keys never share a path.
 * - Order: keys sorted by UTF-8 bytes (S3's order) map to paths sorted by the master's
 *   comparePaths, so a listing by prefix or start-after is a range scan of List.
 * - Every key that maps to a path under a piece P (a directory) is longer than the keys
 *   in P itself, so no name is both a file and a directory.
 *
 * The code: each character of the key becomes one *code*:
 * - U+0000-U+002F (controls, space, punctuation up to `/`, so `.`, `/`, `%`, `!`):
 *   `%` and two upper-case hex digits. These sort below `0` (U+0030), as do their codes
 *   (`%` is U+0025), and among themselves in byte order.
 * - `~` (U+007E), DEL and the C1 controls (U+0080-U+009F): `~0`, `~1`, `~2XX`. They sort
 *   between `}` and U+00A0, as do their codes.
 * - anything else is itself (UTF-8 bytes ≥ 0x30).
 * The codes are prefix-free and ordered like the characters, so the coded string sorts
 * like the key. It is then cut into pieces of PIECE_CODES codes (at most 4 bytes each):
 * every full piece but the last is a directory named piece + `!` (`!` sorts below every
 * code start and never occurs inside a piece), the last piece is the file. U+FFFD and lone
 * surrogates are refused (invalid UTF-8 arrives as U+FFFD; gfs refuses them in names).
 */
import assert from 'node:assert';
import { limits } from '../../common/limits';
import { S3Error } from './s3-error';

/** 63 codes of at most 4 bytes, plus the `!`, fit a 255-byte name. */
export const PIECE_CODES = 63;
const DIR_MARK = '!';

/** S3's rule for bucket names (3-63 lower-case letters, digits, `-`, `.`; no `..`, not an IP). */
export function checkBucketName(name: string): void {
  const ok = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name) && !name.includes('..') && !/^\d+\.\d+\.\d+\.\d+$/.test(name)
    && !name.includes('.-') && !name.includes('-.');
  if (!ok) throw new S3Error('InvalidBucketName', 400, `"${name}" is not a valid bucket name`);
}

function hex2(n: number): string {
  return n.toString(16).toUpperCase().padStart(2, '0');
}

function codeOf(ch: string): string {
  const c = ch.codePointAt(0)!;
  if (c <= 0x2f) return '%' + hex2(c);
  if (c === 0x7e) return '~0';
  if (c === 0x7f) return '~1';
  if (c >= 0x80 && c <= 0x9f) return '~2' + hex2(c);
  if (c === 0xfffd || (c >= 0xd800 && c <= 0xdfff)) {
    throw new S3Error('InvalidArgument', 400, 'keys must be valid UTF-8 without U+FFFD');
  }
  return ch;
}

/** Checks a key's length (1..1024 UTF-8 bytes) and characters; returns its codes. */
function codesOf(key: string): string[] {
  if (key.length === 0) throw new S3Error('InvalidArgument', 400, 'an object key must not be empty');
  if (Buffer.byteLength(key) > limits.s3KeyBytesMax) throw new S3Error('KeyTooLongError', 400, `keys are at most ${limits.s3KeyBytesMax} bytes`);
  const codes: string[] = [];
  for (const ch of key) codes.push(codeOf(ch));
  return codes;
}

/** The gfs path of `key` in `bucket` (the bucket name already checked). */
export function keyToPath(bucket: string, key: string): string {
  const codes = codesOf(key);
  const names: string[] = [];
  for (let i = 0; i < codes.length; i += PIECE_CODES) {
    const piece = codes.slice(i, i + PIECE_CODES).join('');
    names.push(i + PIECE_CODES < codes.length ? piece + DIR_MARK : piece);
  }
  const path = `/${bucket}/${names.join('/')}`;
  assert.ok(Buffer.byteLength(path) <= limits.pathBytesMax, 'a key of at most 1024 bytes fits a path');
  return path;
}

/** The gfs path just above every path of a key that starts with `prefix` (a listing's skip bound). */
export function prefixSkipBound(bucket: string, prefix: string): string {
  return keyToPath(bucket, prefix) + '\u{10FFFF}';
}

/** The key stored at a gfs path under /<bucket>/, or undefined if the path is not one keyToPath makes. */
export function pathToKey(bucket: string, path: string): string | undefined {
  const head = `/${bucket}/`;
  if (!path.startsWith(head)) return undefined;
  const names = path.slice(head.length).split('/');
  let key = '';
  for (let i = 0; i < names.length; i++) {
    let name = names[i]!;
    const last = i === names.length - 1;
    if (!last) {
      if (!name.endsWith(DIR_MARK)) return undefined;
      name = name.slice(0, -1);
    }
    const decoded = decodeCodes(name);
    if (decoded === undefined || (!last && decoded.count !== PIECE_CODES) || (last && (decoded.count === 0 || decoded.count > PIECE_CODES))) return undefined;
    key += decoded.text;
  }
  return key;
}

function decodeCodes(name: string): { text: string; count: number } | undefined {
  let text = '';
  let count = 0;
  const chars = [...name];
  for (let i = 0; i < chars.length; count++) {
    const ch = chars[i]!;
    if (ch === '%') {
      const digits = chars.slice(i + 1, i + 3).join('');
      const v = /^[0-9A-F]{2}$/.test(digits) ? parseInt(digits, 16) : -1;
      if (!(v >= 0 && v <= 0x2f)) return undefined;
      text += String.fromCharCode(v);
      i += 3;
    } else if (ch === '~') {
      const t = chars[i + 1];
      if (t === '0') { text += '~'; i += 2; } else if (t === '1') { text += '\x7f'; i += 2; } else if (t === '2') {
        const digits = chars.slice(i + 2, i + 4).join('');
        const v = /^[0-9A-F]{2}$/.test(digits) ? parseInt(digits, 16) : -1;
        if (!(v >= 0x80 && v <= 0x9f)) return undefined;
        text += String.fromCharCode(v);
        i += 4;
      } else return undefined;
    } else {
      const c = ch.codePointAt(0)!;
      if (c <= 0x2f || c === 0x7f || (c >= 0x80 && c <= 0x9f)) return undefined;
      text += ch;
      i++;
    }
  }
  return { text, count };
}
