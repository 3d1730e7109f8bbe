/**
 * fsck: every chunk of every file under a path against its goal, from the same
 * assessment healing uses (lifecycle/heal-plan.ts), so fsck and the healer never disagree
 * about what "healthy" means. Pure: the master passes the files and a health lookup.
 *
 * Invariants: fsck changes nothing; a file is listed when one of its chunks is missing
 * (no healthy replica), under-replicated, or still has a corrupt replica; `healthy` is
 * true only when no chunk checked is any of these. Empty chunks have nothing to lose and always pass.
 */
import type { FsckChunk, FsckFile, FsckResponse } from '../../gen/gfs';
import { chunkProblem, type ChunkHealth, type HealChunk } from './lifecycle/heal-plan';

export interface FsckInputFile {
  path: string;
  inode: number;
  size: number;
  chunks: HealChunk[];
}

export function buildFsck(
  files: Iterable<FsckInputFile>,
  healthOf: (chunk: HealChunk) => ChunkHealth,
  repairing: (handle: number) => boolean,
  /** Why healing cannot fix the chunk now ('' = it can). */
  unrepairable: (handle: number) => string,
  opts: { filesMax: number; safeMode: boolean },
): FsckResponse {
  const res: FsckResponse = {
    files: [], filesChecked: 0, chunksChecked: 0, underReplicated: 0, missing: 0, corrupt: 0,
    healthy: true, safeMode: opts.safeMode, truncated: false, overReplicated: 0,
  };
  for (const f of files) {
    res.filesChecked++;
    const bad: FsckChunk[] = [];
    let offset = 0;
    f.chunks.forEach((c, index) => {
      res.chunksChecked++;
      const h = healthOf(c);
      const problem = chunkProblem(h);
      if (h.healthy.length > h.goal) res.overReplicated++;
      if (problem === 'missing') res.missing++;
      else if (problem === 'under-replicated') res.underReplicated++;
      if (problem !== '' && h.corrupt.length > 0) res.corrupt++;
      if (problem !== '') {
        bad.push({
          handle: c.handle, index, offset, length: c.length, goal: c.goal, healthy: h.healthy.length,
          healthyNodes: [...h.healthy, ...h.retiring], corruptNodes: h.corrupt, staleNodes: h.stale,
          deadNodes: h.unavailable, problem, repairing: repairing(c.handle),
          reason: unrepairable(c.handle),
        });
      }
      offset += c.length;
    });
    if (bad.length === 0) continue;
    res.healthy = false;
    if (res.files.length >= opts.filesMax) {
      res.truncated = true;
      continue;
    }
    const file: FsckFile = { path: f.path, inode: f.inode, size: f.size, chunks: bad };
    res.files.push(file);
  }
  return res;
}
