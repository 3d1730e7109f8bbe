/**
 * ListObjects (V1 and V2) as a range scan of the master's sorted recursive List of the
 * bucket: keys map to paths in the same order (keys.ts), so "keys after K with prefix P"
 * is "paths after keyToPath(K)", and a CommonPrefix is skipped by jumping past
 * prefixSkipBound(cp).
 *
 * Invariants: keys come out in S3 order, each at most once; a CommonPrefix is emitted
 * once, also across pages (a page that ends on a prefix resumes past all its keys);
 * at most maxKeys keys and prefixes together per page; IsTruncated is true only when
 * something eligible follows.
 */
import type { FileInfo, GfsClient } from '../../client';
import { limits } from '../../common/limits';
import { keyToPath, pathToKey, prefixSkipBound } from './keys';
import { S3Error } from './s3-error';

export interface ListQuery {
  prefix: string;
  delimiter: string;
  /** Resume point: keys ≤ key are skipped; with isPrefix, every key starting with it too. */
  after: { key: string; isPrefix: boolean } | undefined;
  maxKeys: number;
}

export interface ListedObject { key: string; info: FileInfo }

export interface ListPage {
  contents: ListedObject[];
  prefixes: string[];
  truncated: boolean;
  /** Where the next page starts (the last key or prefix of this one) when truncated. */
  next: { key: string; isPrefix: boolean } | undefined;
}


function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

export async function listObjects(client: GfsClient, bucket: string, q: ListQuery): Promise<ListPage> {
  const page: ListPage = { contents: [], prefixes: [], truncated: false, next: undefined };
  if (q.maxKeys === 0) return page;
  let count = 0;
  let lastPrefix: string | undefined = q.after?.isPrefix ? q.after.key : undefined;
  let cursor = '';
  if (q.after) cursor = q.after.isPrefix ? prefixSkipBound(bucket, q.after.key) : keyToPath(bucket, q.after.key);
  // Keys with the prefix start at the prefix's own path; that key itself is found by stat.
  if (q.prefix !== '' && (q.after === undefined || compareKeys(q.after.key, q.prefix) < 0)) {
    cursor = keyToPath(bucket, q.prefix);
    try {
      const info = await client.stat(cursor);
      if (!info.isDir) { page.contents.push({ key: q.prefix, info }); count++; page.next = { key: q.prefix, isPrefix: false }; }
    } catch (e) {
      if ((e as { code?: string }).code !== 'NO_SUCH_FILE') throw e;
    }
  }
  for (;;) {
    const res = await client.list(`/${bucket}`, { recursive: true, limit: limits.s3ListScanEntries, startAfter: cursor });
    for (const e of res.entries) {
      cursor = e.path;
      if (e.isDir) continue;
      const key = pathToKey(bucket, e.path);
      if (key === undefined) continue; // a file put there by other means than S3
      if (q.after && (compareKeys(key, q.after.key) <= 0 || (q.after.isPrefix && key.startsWith(q.after.key)))) continue;
      if (!key.startsWith(q.prefix)) {
        if (compareKeys(key, q.prefix) > 0) return page; // past every key with the prefix
        continue;
      }
      const at = q.delimiter === '' ? -1 : key.indexOf(q.delimiter, q.prefix.length);
      if (at >= 0) {
        const cp = key.slice(0, at + q.delimiter.length);
        if (cp === lastPrefix) continue;
        if (count === q.maxKeys) { page.truncated = true; return page; }
        page.prefixes.push(cp);
        lastPrefix = cp;
        page.next = { key: cp, isPrefix: true };
      } else {
        if (count === q.maxKeys) { page.truncated = true; return page; }
        page.contents.push({ key, info: e });
        page.next = { key, isPrefix: false };
      }
      count++;
    }
    if (!res.truncated) return page;
    // Resume past the rest of a prefix still being rolled up, not through its keys.
    if (lastPrefix !== undefined) {
      const bound = prefixSkipBound(bucket, lastPrefix);
      if (cursor.startsWith(keyToPath(bucket, lastPrefix)) && Buffer.compare(Buffer.from(bound), Buffer.from(cursor)) > 0) cursor = bound;
    }
  }
}

/** The opaque V2 continuation token: where the next page resumes. */
export function encodeToken(next: { key: string; isPrefix: boolean }): string {
  return Buffer.from(JSON.stringify({ k: next.key, p: next.isPrefix }), 'utf8').toString('base64url');
}

export function decodeToken(token: string): { key: string; isPrefix: boolean } {
  try {
    const v = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { k?: unknown; p?: unknown };
    if (typeof v.k === 'string' && typeof v.p === 'boolean' && v.k.length > 0) return { key: v.k, isPrefix: v.p };
  } catch { /* below */ }
  throw new S3Error('InvalidArgument', 400, 'The continuation token provided is incorrect');
}
