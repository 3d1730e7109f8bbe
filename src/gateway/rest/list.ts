/**
 * Listing by key prefix over the namespace tree: `GET /v1/files/{ns}/{prefix}?list`
 * with `delimiter=/` (one level: files and sub-directories as common prefixes, like
 * S3) or without (every file below, flat), `limit`, and `cursor` for the next page.
 *
 * A prefix need not end at a name boundary ("logs/2024-" lists "logs/2024-01" and
 * "logs/2024-02/x"): it is split at its last '/' into the directory to walk and the
 * start of the names wanted. The master lists in full-path order, so the entries that
 * start with the prefix are contiguous: skip those before, stop at the first after.
 *
 * Invariants: entries are in full-path order and strictly after the cursor, so pages
 * never repeat an entry (the cursor is the last path answered or skipped, opaque to
 * clients); a page holds at most `limit` entries; one request skips at most
 * `limits.restListScanMax` entries before answering (truncated, with a cursor).
 */
import assert from 'node:assert';
import { GfsError } from '../../common/errors';
import { limits } from '../../common/limits';
import { checkReadable, normalizePath } from '../../common/paths';
import type { FileInfo } from '../../client';

export type ListFn = (dir: string, opts: { recursive: boolean; limit: number; startAfter: string }) => Promise<{ entries: FileInfo[]; truncated: boolean }>;

export interface ListRequest {
  ns: string;
  /** Relative to the namespace; '' for all of it. */
  prefix: string;
  delimiter?: string;
  limit: number;
  cursor?: string;
}

export interface ListPage {
  files: FileInfo[];
  /** Sub-directories (with delimiter), relative to the namespace, ending in '/'. */
  prefixes: string[];
  truncated: boolean;
  cursor?: string;
}

export function encodeCursor(path: string): string {
  return Buffer.from(path, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string, dir: string): string {
  const path = /^[A-Za-z0-9_-]+$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
  if (!path.startsWith(dir === '/' ? '/' : `${dir}`)) throw new GfsError('INVALID_ARGUMENT', 'cursor does not belong to this listing');
  return path;
}

/** The string just before every path that starts with `p` that is cheap to seek to: `p` minus its last character. */
function justBefore(p: string): string {
  const last = p.charCodeAt(p.length - 1);
  return p.slice(0, last >= 0xdc00 && last <= 0xdfff ? -2 : -1);
}

export async function listPrefix(list: ListFn, r: ListRequest): Promise<ListPage> {
  assert.ok(r.limit >= 1 && r.limit <= limits.restListLimitMax);
  if (r.delimiter !== undefined && r.delimiter !== '/') throw new GfsError('INVALID_ARGUMENT', 'delimiter must be "/" (or absent for a flat listing)');
  const want = `/${r.ns}/${r.prefix}`;
  const cut = want.lastIndexOf('/');
  const dir = normalizePath(want.slice(0, cut) || '/');
  checkReadable(want);
  const nsRoot = `/${r.ns}`;
  const recursive = r.delimiter === undefined;
  let startAfter = r.cursor ? decodeCursor(r.cursor, dir) : (want.endsWith('/') ? '' : justBefore(want));
  const page: ListPage = { files: [], prefixes: [], truncated: false };
  const count = () => page.files.length + page.prefixes.length;
  let scanned = 0;
  let lastAnswered = '';
  for (;;) {
    let resp: { entries: FileInfo[]; truncated: boolean };
    try {
      // One more than the page holds: finding it is how we know the listing goes on.
      resp = await list(dir, { recursive, limit: Math.min(limits.listEntriesMax, r.limit + 1 - count() + 16), startAfter });
    } catch (e) {
      // A prefix whose directory does not exist lists nothing; a namespace that does not exist is an error.
      if (e instanceof GfsError && e.code === 'NO_SUCH_FILE' && dir !== nsRoot) return page;
      if (e instanceof GfsError && e.code === 'NO_SUCH_FILE') throw new GfsError('NO_SUCH_FILE', `namespace "${r.ns}" does not exist`);
      throw e;
    }
    for (const e of resp.entries) {
      if (!e.path.startsWith(want)) {
        if (Buffer.compare(Buffer.from(e.path), Buffer.from(want)) > 0) return page; // past the prefix (UTF-8 order, the master's): nothing more can match
      } else if (!(recursive && e.isDir)) {
        if (count() === r.limit) {
          page.truncated = true;
          page.cursor = encodeCursor(lastAnswered);
          return page;
        }
        if (e.isDir) page.prefixes.push(e.path.slice(nsRoot.length + 1) + '/');
        else page.files.push(e);
        lastAnswered = e.path;
      }
      startAfter = e.path;
      if (++scanned >= limits.restListScanMax) {
        page.truncated = true;
        page.cursor = encodeCursor(startAfter);
        return page;
      }
    }
    if (!resp.truncated || resp.entries.length === 0) return page;
  }
}
