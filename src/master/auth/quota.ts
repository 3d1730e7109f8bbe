/**
 * Namespace quotas (bytes and files), checked by the leader before it logs an op that
 * takes space, so a refused write leaves nothing behind (DESIGN §11, README "Quotas").
 *
 * A namespace's usage is its files in the tree and its puts being written: bytes are
 * the sum of their sizes (a put being written counts its committed chunks), files their
 * number. Trash does not count (it is purged after the trash period).
 *
 * - createFile: refused when the namespace already has quotaFiles files (an overwrite
 *   of an existing file adds none), or already uses quotaBytes bytes.
 * - allocateChunk, and appendTarget (a log's next chunk): refused when the namespace
 *   already uses quotaBytes bytes; appendTarget creating a log counts as a new file.
 * - completeFile: refused when the other files plus this one's final size would pass
 *   quotaBytes; the writer then aborts the put, so it is never visible.
 * So visible usage never passes the quota; bytes a refused put wrote are garbage that GC
 * reclaims like any aborted put's.
 *
 * Usage is counted by walking the namespace: O(files in it), and only for namespaces
 * that have a quota.
 */
import { GfsError } from '../../common/errors';
import type { MetaState } from '../meta-state';
import { namespaceOfPath } from './paths';

export interface Usage {
  bytes: number;
  files: number;
}

/** Bytes and files of a namespace (leaving out one inode, when given). */
export function namespaceUsage(state: MetaState, ns: string, exceptInode = 0): Usage {
  const usage: Usage = { bytes: 0, files: 0 };
  let listing;
  try {
    listing = state.list(`/${ns}`, { recursive: true, limit: 0, startAfter: '', filesOnly: true });
  } catch (e) {
    if (e instanceof GfsError && (e.code === 'NO_SUCH_FILE' || e.code === 'INVALID_PATH' || e.code === 'INVALID_ARGUMENT')) return usage;
    throw e;
  }
  for (const e of listing.entries) {
    if (e.kind !== 'file' || e.inode === exceptInode) continue;
    usage.files++;
    usage.bytes += e.size;
  }
  const prefix = `/${ns}/`;
  for (const f of state.pendingFiles()) {
    if (!f.path.startsWith(prefix) || f.inode === exceptInode) continue;
    usage.files++;
    for (const c of f.chunks) usage.bytes += c.length;
  }
  return usage;
}

export function checkQuota(state: MetaState, method: string, req: Record<string, unknown>): void {
  if (method !== 'createFile' && method !== 'allocateChunk' && method !== 'completeFile' && method !== 'appendTarget') return;
  const byPath = method === 'createFile' || method === 'appendTarget';
  const path = byPath ? String(req['path'] ?? '') : state.fileByInode(Number(req['inode']))?.path;
  if (path === undefined) return;
  const ns = namespaceOfPath(path);
  if (ns === undefined) return;
  const q = state.auth.namespaces.get(ns);
  if (q === undefined || (q.quotaBytes === 0 && q.quotaFiles === 0)) return;
  if (method === 'completeFile') {
    const inode = Number(req['inode']);
    const file = state.fileByInode(inode);
    if (file === undefined || q.quotaBytes === 0) return;
    // An overwrite replaces the file at its path: that one's bytes leave the namespace.
    let replaced = 0;
    try {
      const there = state.stat(file.path);
      if (there.kind === 'file' && there.inode !== inode) replaced = there.size;
    } catch { /* nothing there */ }
    const after = namespaceUsage(state, ns, inode).bytes - replaced + Number(req['size'] ?? 0);
    if (after > q.quotaBytes) {
      throw new GfsError('QUOTA_EXCEEDED', `namespace "${ns}" would use ${after} bytes, over its quota of ${q.quotaBytes}`);
    }
    return;
  }
  const used = namespaceUsage(state, ns);
  if (q.quotaBytes > 0 && used.bytes >= q.quotaBytes) {
    throw new GfsError('QUOTA_EXCEEDED', `namespace "${ns}" uses ${used.bytes} bytes of its ${q.quotaBytes} byte quota`);
  }
  if ((method === 'createFile' || (method === 'appendTarget' && req['create'] === true)) && q.quotaFiles > 0) {
    let adds = 1;
    try {
      const there = state.stat(path);
      if (there.kind === 'dir' || method === 'appendTarget' || req['overwrite'] === true) adds = 0; // a stream or an existing log, or a replaced file
    } catch { /* a new name */ }
    if (used.files + adds > q.quotaFiles) {
      throw new GfsError('QUOTA_EXCEEDED', `namespace "${ns}" has ${used.files} files, its quota is ${q.quotaFiles}`);
    }
  }
}
