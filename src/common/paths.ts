/**
 * Path rules (DESIGN §3): `/<namespace>/<rest>`, UTF-8 components of 1-255 bytes,
 * no `.` or `..`, no NUL, at most 4096 bytes in all. A trailing slash is ignored.
 */
import { GfsError } from './errors';
import { limits } from './limits';

export function normalizePath(path: string): string {
  if (typeof path !== 'string' || path.length === 0) throw new GfsError('INVALID_PATH', 'path is empty');
  if (!path.startsWith('/')) throw new GfsError('INVALID_PATH', `path must be absolute: "${path}"`);
  if (path.includes('\0')) throw new GfsError('INVALID_PATH', 'path contains a NUL byte');
  if (Buffer.byteLength(path) > limits.pathBytesMax) {
    throw new GfsError('INVALID_PATH', `path is longer than ${limits.pathBytesMax} bytes`);
  }
  const parts = splitPath(path);
  return '/' + parts.join('/');
}

/** Components of a path; throws INVALID_PATH on a bad component. */
export function splitPath(path: string): string[] {
  const raw = path.split('/');
  const parts: string[] = [];
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c === '') {
      if (i === 0 || i === raw.length - 1) continue;
      throw new GfsError('INVALID_PATH', `empty path component in "${path}"`);
    }
    if (c === '.' || c === '..') throw new GfsError('INVALID_PATH', `"${c}" is not allowed in a path: "${path}"`);
    if (Buffer.byteLength(c) > limits.pathComponentBytesMax) {
      throw new GfsError('INVALID_PATH', `path component longer than ${limits.pathComponentBytesMax} bytes`);
    }
    parts.push(c);
  }
  return parts;
}

/** A file path must name something inside a namespace: `/ns/name` at least. */
export function normalizeFilePath(path: string): string {
  const p = normalizePath(path);
  if (splitPath(p).length < 2) throw new GfsError('INVALID_PATH', `"${path}" is not a file path (expected /<namespace>/<name>)`);
  return p;
}

export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}
