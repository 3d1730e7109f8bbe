/**
 * Seeded random op sequences against MetaState. Replays a failure exactly with
 *   GFS_SEED=<seed> npx tap dist/test/unit/meta-state-random.test.js
 */
import t from 'tap';
import { prng } from './prng';
import type { MetaOp } from '../../gen/gfs';
import { GfsError } from '../../src/common/errors';
import { limits } from '../../src/common/limits';
import { MetaState, type FileNode } from '../../src/master/meta-state';


class Gen {
  constructor(private readonly rand: () => number) {}
  int(n: number): number {
    return Math.floor(this.rand() * n);
  }
  chance(p: number): boolean {
    return this.rand() < p;
  }
  pick<T>(items: readonly T[]): T | undefined {
    return items.length === 0 ? undefined : items[this.int(items.length)];
  }
}

const NAMESPACES = ['ns', 'logs'];
// '-' and '.' sort before '/', and U+FFFD sorts before U+1F600 only in UTF-8 order.
const NAMES = ['a', 'a-b', 'b', '\uFFFD', '\u{1F600}'];

function randomPath(g: Gen, minDepth: number, maxDepth: number): string {
  const depth = minDepth + g.int(maxDepth - minDepth + 1);
  const parts = [g.pick(NAMESPACES)!];
  for (let i = 1; i < depth; i++) parts.push(g.pick(NAMES)!);
  return '/' + parts.join('/');
}

function existingPaths(s: MetaState): string[] {
  return s.list('/', { recursive: true, limit: 0, startAfter: '' }).entries.map((e) => e.path);
}

/** One op, mostly plausible, sometimes wrong on purpose. Depends only on the PRNG and the state. */
function randomOp(g: Gen, s: MetaState, nowMs: number): MetaOp {
  const requestId = g.chance(0.2) ? `r${g.int(40)}` : '';
  const pending = s.pendingFiles();
  const writing = g.pick(pending);
  const anyInode = () => (writing !== undefined && g.chance(0.85) ? writing.inode : 1 + g.int(s.nextInode + 1));
  const roll = g.int(100);
  if (roll < 18) {
    const inode = g.chance(0.05) ? Math.max(1, s.nextInode - 1 - g.int(3)) : s.nextInode + (g.chance(0.1) ? g.int(3) : 0);
    return {
      requestId,
      createFile: {
        inode, path: g.chance(0.03) ? '/ns/bad/../x' : randomPath(g, 2, 4), overwrite: g.chance(0.5),
        replication: g.int(4), contentType: g.pick(['', 'text/plain'])!, metadata: g.chance(0.3) ? { z: '1', a: String(g.int(9)) } : {}, mtimeMs: nowMs,
      },
    };
  }
  if (roll < 33) {
    const handle = g.chance(0.05) ? Math.max(1, s.nextHandle - 1) : s.nextHandle + (g.chance(0.1) ? g.int(3) : 0);
    return { requestId, allocateChunk: { inode: anyInode(), handle, version: 1 + g.int(3) } };
  }
  if (roll < 50) {
    const chunks = writing?.chunks ?? [];
    const ref = g.chance(0.9) ? g.pick(chunks.filter((c) => !c.committed)) ?? g.pick(chunks) : undefined;
    const length = g.chance(0.03) ? limits.chunkBytesMax + 1 : ref?.committed && g.chance(0.5) ? ref.length : g.int(100);
    return { requestId: '', commitChunk: { inode: anyInode(), handle: ref?.handle ?? 1 + g.int(s.nextHandle + 1), length, version: 0 } };
  }
  if (roll < 55) {
    const ref = g.pick(writing?.chunks ?? []);
    return { requestId: '', abandonChunk: { inode: anyInode(), handle: ref?.handle ?? 1 + g.int(s.nextHandle + 1) } };
  }
  if (roll < 70) {
    const inode = anyInode();
    const file = s.fileByInode(inode);
    const sum = (file?.chunks ?? []).reduce((n, c) => n + c.length, 0);
    return { requestId, completeFile: { inode, size: g.chance(0.05) ? sum + 1 : sum, checksum: `c${g.int(1000)}`, mtimeMs: nowMs } };
  }
  if (roll < 75) return { requestId: '', abortFile: { inode: anyInode() } };
  if (roll < 82) return { requestId, mkdir: { path: g.chance(0.03) ? '/ns//x' : randomPath(g, 1, 4), mtimeMs: nowMs } };
  const existing = existingPaths(s);
  const known = () => (g.chance(0.8) ? g.pick(existing) ?? '/ns' : randomPath(g, 1, 4));
  if (roll < 92) {
    const source = g.chance(0.02) ? '/' : known();
    return { requestId, rename: { source, target: g.chance(0.5) ? known() : randomPath(g, 1, 4), overwrite: g.chance(0.5), mtimeMs: nowMs } };
  }
  if (roll < 96) {
    // ConcatFiles: 1-3 parts, mostly files in the tree (sometimes a pending, repeated or unknown inode).
    const files = existing.map((p) => s.stat(p)).filter((n): n is FileNode => n.kind === 'file');
    const parts = Array.from({ length: 1 + g.int(3) }, () => (g.chance(0.85) ? g.pick(files)?.inode : undefined) ?? anyInode());
    const inode = g.chance(0.05) ? Math.max(1, s.nextInode - 1) : s.nextInode;
    return {
      requestId,
      concatFiles: {
        inode, path: g.chance(0.5) ? known() : randomPath(g, 2, 4), parts, overwrite: g.chance(0.5), contentType: '', metadata: {},
        replaces: g.chance(0.2) ? { inode: g.pick(files)?.inode ?? 1 } : undefined, replication: g.int(4), mtimeMs: nowMs,
      },
    };
  }
  return { requestId, delete: { path: g.chance(0.02) ? '/' : known(), recursive: g.chance(0.5), mtimeMs: nowMs } };
}

function errorCode(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    if (e instanceof GfsError) return e.code;
    throw e;
  }
}

const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

/** Runs one seed; returns a description of the first broken property, or undefined. */
function runSeed(seed: number, opCount: number): { problem?: string; applied: number; failed: number } {
  const g = new Gen(prng(seed));
  const s = new MetaState({ requestIdsMax: 16 });
  const ops: MetaOp[] = [];
  let failed = 0;
  let midImage: Uint8Array | undefined;
  const mid = Math.floor(opCount / 2);
  for (let i = 0; i < opCount; i++) {
    if (i === mid) midImage = s.snapshot();
    const o = randomOp(g, s, 1_000 + i);
    ops.push(o);
    const where = `op #${i} ${JSON.stringify(o)}`;
    const before = s.snapshot();
    const validateCode = errorCode(() => s.validate(o));
    if (!same(before, s.snapshot())) return { problem: `${where}: validate changed the state`, applied: i, failed };
    const applyCode = errorCode(() => s.apply(o));
    if (validateCode !== applyCode) return { problem: `${where}: validate said ${validateCode}, apply said ${applyCode}`, applied: i, failed };
    if (applyCode !== undefined) {
      failed++;
      if (!same(before, s.snapshot())) return { problem: `${where}: ${applyCode} but the state changed`, applied: i, failed };
    }
    try {
      s.assertInvariants();
    } catch (e) {
      return { problem: `${where}: invariant broken: ${(e as Error).message}`, applied: i, failed };
    }
    if (i % 50 === 0) {
      const image = s.snapshot();
      const restored = MetaState.restore(image);
      if (!same(restored.snapshot(), image)) return { problem: `${where}: restore(snapshot) is not the same state`, applied: i, failed };
      if (JSON.stringify(existingPaths(restored)) !== JSON.stringify(existingPaths(s))) {
        return { problem: `${where}: a restored state lists differently`, applied: i, failed };
      }
      const problem = checkListing(s, g);
      if (problem !== undefined) return { problem: `${where}: ${problem}`, applied: i, failed };
    }
  }
  const final = s.snapshot();

  const replay = new MetaState({ requestIdsMax: 16 });
  for (const o of ops) errorCode(() => replay.apply(o));
  if (!same(replay.snapshot(), final)) return { problem: 'replaying the ops from empty gave a different snapshot', applied: opCount, failed };

  const resumed = MetaState.restore(midImage!);
  for (const o of ops.slice(mid)) errorCode(() => resumed.apply(o));
  if (!same(resumed.snapshot(), final)) return { problem: 'restoring the mid-way snapshot and replaying the rest gave a different snapshot', applied: opCount, failed };
  return { applied: opCount, failed };
}

/** Full listings are in UTF-8 path order, and paging with random limits gives the same entries. */
function checkListing(s: MetaState, g: Gen): string | undefined {
  const all = existingPaths(s);
  const { files, dirs } = s.counts();
  if (all.length !== files + dirs) return `listing / shows ${all.length} entries, counts say ${files} files and ${dirs} dirs`;
  const sorted = [...all].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  if (JSON.stringify(all) !== JSON.stringify(sorted)) return `listing is not in UTF-8 order: ${JSON.stringify(all)}`;
  const limit = 1 + g.int(4);
  const paged: string[] = [];
  let startAfter = '';
  for (;;) {
    const page = s.list('/', { recursive: true, limit, startAfter });
    paged.push(...page.entries.map((e) => e.path));
    if (!page.truncated) break;
    startAfter = page.entries.at(-1)!.path;
  }
  if (JSON.stringify(paged) !== JSON.stringify(all)) return `paging by ${limit} gave ${JSON.stringify(paged)}, not ${JSON.stringify(all)}`;
  return undefined;
}

const seeds = process.env['GFS_SEED'] !== undefined ? [Number(process.env['GFS_SEED'])] : Array.from({ length: 10 }, (_, i) => 1 + i * 7919);

t.test('meta-state: random op sequences keep the invariants and replay to identical snapshots', async (t) => {
  for (const seed of seeds) {
    const { problem, applied, failed } = runSeed(seed, 1_500);
    if (problem !== undefined) {
      t.fail(`seed ${seed}: ${problem} (replay with GFS_SEED=${seed})`);
    } else {
      t.pass(`seed ${seed}: ${applied} ops, ${failed} refused`);
    }
  }
});
