/**
 * GC decisions (src/gc): trash expiry, abandoned writes, orphan grace, space accounting,
 * the purge op. The safety property (no schedule deletes a referenced chunk) is in
 * test/sim/gc-safety.test.ts.
 */
import t from 'tap';
import { MetaOp } from '../../gen/gfs';
import { MetaState } from '../../src/master/meta-state';
import { abandonedWrites, orphanCandidates, orphanDeletes, OrphanTracker, trashExpiry } from '../../src/gc/gc-plan';
import { accountSpace, spaceClass } from '../../src/master/lifecycle/space';


t.test('gc: trash expires after the trash period, oldest first', async (t) => {
  const trash = [{ inode: 1, path: '/a', deletedAtMs: 1000 }, { inode: 2, path: '/b', deletedAtMs: 5000 }];
  const r = trashExpiry(trash, 11_000, 10_000);
  t.same(r.due.map((f) => f.inode), [1]);
  t.same(r.waiting.map((w) => [w.item.inode, w.dueInMs]), [[2, 4000]]);
});

t.test('gc: a pending write is abandoned only after its writer was silent for the whole timeout', async (t) => {
  const r = abandonedWrites([{ inode: 1, path: '/a', idleMs: 999 }, { inode: 2, path: '/b', idleMs: 1000 }], 1000);
  t.same(r.due.map((p) => p.inode), [2]);
  t.same(r.waiting.map((w) => w.dueInMs), [1]);
});

t.test('gc: an orphan is deleted only after its grace, never when referenced or from the future', async (t) => {
  const referenced = new Set([2]);
  const isRef = (h: number) => referenced.has(h);
  const cands = orphanCandidates([1, 2, 3, 50], isRef, 10);
  t.same([...cands].sort((a, b) => a - b), [1, 3], 'referenced and future handles are not candidates');
  const tracker = new OrphanTracker();
  tracker.update(cands, 0);
  t.same(orphanDeletes(tracker, 999, 1000, isRef, 10), [], 'grace not over');
  tracker.update(new Set([1]), 500);
  t.same(orphanDeletes(tracker, 1000, 1000, isRef, 10), [1], 'handle 3 left the candidates (its replicas went away)');
  tracker.update(new Set([1, 3]), 1000);
  t.same(orphanDeletes(tracker, 1500, 1000, isRef, 10), [1], '3 starts a fresh grace when it reappears');
  referenced.add(1); // cannot happen (handles are never reused), but the last check must still hold
  t.same(orphanDeletes(tracker, 5000, 1000, isRef, 10), [3], 'checked against metadata once more at the end');
  t.same(orphanDeletes(tracker, 5000, 1000, () => false, 1), [], 'nor a handle at or past nextHandle');
});

t.test('gc: purge removes trashed files for good and releases their chunks', async (t) => {
  const s = new MetaState();
  s.apply(MetaOp.fromPartial({ createFile: { inode: 1, path: '/ns/a', replication: 3, mtimeMs: 1 } }));
  s.apply(MetaOp.fromPartial({ allocateChunk: { inode: 1, handle: 1, version: 1 } }));
  s.apply(MetaOp.fromPartial({ commitChunk: { inode: 1, handle: 1, length: 10 } }));
  s.apply(MetaOp.fromPartial({ completeFile: { inode: 1, size: 10, mtimeMs: 2 } }));
  t.throws(() => s.apply(MetaOp.fromPartial({ purge: { inodes: [1] } })), { code: 'NO_SUCH_FILE' }, 'a visible file cannot be purged');
  s.apply(MetaOp.fromPartial({ delete: { path: '/ns/a', mtimeMs: 3 } }));
  t.equal(s.chunkOwner(1)?.inode, 1, 'trash still references its chunks');
  t.same([...s.lifecycleChunks()].map((c) => c.location), ['trash']);
  t.throws(() => s.apply(MetaOp.fromPartial({ purge: { inodes: [1, 1] } })), /purged twice/);
  t.throws(() => s.apply(MetaOp.fromPartial({ purge: { inodes: [] } })), /no files/);
  const r = s.apply(MetaOp.fromPartial({ purge: { inodes: [1] } }));
  t.same(r.released, [1]);
  t.equal(s.chunkOwner(1), undefined, 'the chunk is unreferenced now');
  t.equal(s.fileByInode(1), undefined);
  t.same(s.trash(), []);
  s.assertInvariants();
  const restored = MetaState.restore(s.snapshot());
  t.same(restored.counts(), s.counts(), 'snapshot after a purge restores');
  t.equal(restored.nextHandle, 2, 'the handle is never handed out again');
  t.throws(() => s.apply(MetaOp.fromPartial({ purge: { inodes: [1] } })), /not in the trash/, 'a second purge is refused');
});

t.test('gc: df classes add up to what each node uses', async (t) => {
  t.equal(spaceClass(undefined, undefined, false), 'orphan');
  t.equal(spaceClass({ location: 'trash', committed: true }, 'healthy', false), 'trash');
  t.equal(spaceClass({ location: 'pending', committed: true }, 'healthy', false), 'writing');
  t.equal(spaceClass({ location: 'tree', committed: true }, 'stale', false), 'stale');
  t.equal(spaceClass({ location: 'tree', committed: true }, 'corrupt', false), 'corrupt');
  t.equal(spaceClass({ location: 'tree', committed: true }, 'healthy', true), 'overReplicated');
  t.equal(spaceClass({ location: 'tree', committed: true }, 'healthy', false), 'live');
  const report = accountSpace(
    [{ id: 'a', addr: 'x', state: 'alive', capacityBytes: 1000, usedBytes: 100, freeBytes: 900, counted: true },
      { id: 'b', addr: 'y', state: 'dead', capacityBytes: 1000, usedBytes: 50, freeBytes: 950, counted: false }],
    (id) => (id === 'a' ? [{ handle: 1, length: 40 }, { handle: 2, length: 30 }] : [{ handle: 1, length: 40 }]),
    (h) => (h === 1 ? 'live' : 'orphan'),
  );
  t.same(report.split, { live: 40, trash: 0, orphan: 30, stale: 0, corrupt: 0, overReplicated: 0, writing: 0, other: 30 });
  t.equal(report.usedBytes, 100, 'dead nodes are listed but not counted');
  t.equal(report.nodes[1]!.split.other, 10);
});
