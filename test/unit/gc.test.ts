/**
 * GC decisions (src/gc): trash expiry, abandoned writes, orphan grace, space accounting,
 * the purge op, and the property that matters most, driven through the real collector:
 * no schedule of writes, deletes, purges, aborts, late reports, safe-mode flips and
 * leader changes ever gets a DELETE issued for a chunk that metadata references.
 * Replay a failure with GFS_SEED=<seed>.
 */
import t from 'tap';
import { prng } from './prng';
import { MetaOp, type DeepPartial } from '../../gen/gfs';
import { silentLogger } from '../../src/common/log';
import type { Clock } from '../../src/common/clock';
import { MetaState } from '../../src/master/meta-state';
import { NodeRegistry } from '../../src/master/registry';
import { CommandOutbox } from '../../src/master/chunk-commands';
import { Collector } from '../../src/gc/collector';
import { abandonedWrites, orphanCandidates, orphanDeletes, OrphanTracker, trashExpiry } from '../../src/gc/gc-plan';
import { accountSpace, spaceClass } from '../../src/gc/space';
import { GfsError } from '../../src/common/errors';


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

// ------------------------------------------------------------------ property, through the real collector

interface World {
  state: MetaState;
  registry: NodeRegistry;
  outbox: CommandOutbox;
  collector: Collector;
  held: Map<string, Set<number>>;
  /** Reports the nodes have not sent yet (late chunkservers). */
  lateReports: { nodeId: string; handle: number; atStep: number }[];
  nowMs: number;
  active: boolean;
}

t.test('gc: property: no schedule of ops, reports, safe mode and leader changes deletes a referenced chunk', async (t) => {
  const baseSeed = Number(process.env.GFS_SEED ?? Date.now() % 1_000_000);
  const seeds = 40;
  let deletesIssued = 0;
  let purges = 0;
  let aborts = 0;
  for (let round = 0; round < seeds; round++) {
    const seed = baseSeed + round;
    const rand = prng(seed);
    const int = (n: number) => Math.floor(rand() * n);
    const clock: Clock = { nowMs: () => w.nowMs, monoMs: () => w.nowMs };
    const nodes = ['n1', 'n2', 'n3'];
    const makeCollector = (): Collector => new Collector({
      state: () => w.state, registry: w.registry, outbox: w.outbox,
      commit: async (_kind, op) => w.state.apply(op),
      durable: async () => undefined,
      isActive: () => w.active,
      clock, log: silentLogger,
    }, { trashPeriodMs: 40, orphanGraceMs: 100, pendingTimeoutMs: 150 });
    const w: World = {
      state: new MetaState(), registry: new NodeRegistry(1_000_000), outbox: new CommandOutbox(300),
      collector: undefined as unknown as Collector, held: new Map(nodes.map((n) => [n, new Set<number>()])),
      lateReports: [], nowMs: 0, active: true,
    };
    w.collector = makeCollector();
    const deleted = new Set<number>();
    const fail = (msg: string) => { t.fail(`seed ${seed}: ${msg}`); };
    const tryApply = (op: DeepPartial<MetaOp>) => {
      try { return w.state.apply(MetaOp.fromPartial(op)); } catch (e) { if (e instanceof GfsError) return undefined; throw e; }
    };

    for (let step = 0; step < 250; step++) {
      const roll = int(100);
      const pending = w.state.pendingFiles();
      const writing = pending[int(pending.length)];
      if (roll < 15) {
        tryApply({ createFile: { inode: w.state.nextInode, path: `/ns/f${int(12)}`, overwrite: int(3) === 0, replication: 3, mtimeMs: w.nowMs } });
      } else if (roll < 35 && writing) {
        const handle = w.state.nextHandle;
        if (tryApply({ allocateChunk: { inode: writing.inode, handle, version: 1 } })) {
          w.collector.touch(writing.inode);
          // Replicas appear on some nodes, some of them reported only later.
          for (const n of nodes) {
            if (int(3) === 0) continue;
            w.held.get(n)!.add(handle);
            if (int(3) === 0) w.lateReports.push({ nodeId: n, handle, atStep: step + 1 + int(30) });
          }
        }
      } else if (roll < 50 && writing) {
        const c = writing.chunks.find((x) => !x.committed);
        if (c) { tryApply({ commitChunk: { inode: writing.inode, handle: c.handle, length: 1 + int(1000) } }); w.collector.touch(writing.inode); }
        else tryApply({ completeFile: { inode: writing.inode, size: writing.chunks.reduce((s, x) => s + x.length, 0), mtimeMs: w.nowMs } });
      } else if (roll < 55 && writing) {
        const c = writing.chunks[writing.chunks.length - 1];
        if (c) tryApply({ abandonChunk: { inode: writing.inode, handle: c.handle } });
      } else if (roll < 58 && writing) {
        tryApply({ abortFile: { inode: writing.inode } });
      } else if (roll < 68) {
        const files = w.state.list('/', { recursive: true, limit: 0, startAfter: '', filesOnly: true }).entries;
        const f = files[int(files.length)];
        if (f) tryApply({ delete: { path: f.path, mtimeMs: w.nowMs } });
      } else if (roll < 72) {
        // Junk on a disk: an old handle no file has, or one from the future.
        const h = int(2) === 0 ? 1 + int(Math.max(1, w.state.nextHandle - 1)) : w.state.nextHandle + int(5);
        w.held.get(nodes[int(3)]!)!.add(h);
      } else if (roll < 75) {
        w.active = !w.active; // safe mode or leadership flips
      } else if (roll < 77) {
        w.collector = makeCollector(); // failover: a new leader with fresh soft state
        w.outbox.clear();
      }
      w.nowMs += int(25);

      // Heartbeats: full reports of what each node holds, minus what is still late.
      for (const n of nodes) {
        const late = new Set(w.lateReports.filter((r) => r.nodeId === n && r.atStep > step).map((r) => r.handle));
        w.registry.heartbeat({
          nodeId: n, addr: `${n}:1`, zone: 'z', tier: 'hot', capacityBytes: 1e12, usedBytes: 0, freeBytes: 1e12, openWrites: 0,
          fullReport: true, chunks: [...w.held.get(n)!].filter((h) => !late.has(h)).map((h) => ({ handle: h, version: 1, length: 1 })),
          removed: [], corrupt: [], adminAddr: '', replicateFailed: [], replicating: 0,
        }, w.nowMs, w.nowMs);
      }
      await w.collector.tick();
      // Delivery: the check the master makes, then the node obeys.
      for (const n of nodes) {
        const cmds = w.outbox.deliver(n, (cmd) => {
          if (cmd.kind !== 'delete') return true;
          if (w.state.chunkOwner(cmd.handle) !== undefined) fail(`DELETE of referenced chunk ${cmd.handle} reached delivery`);
          if (cmd.handle >= w.state.nextHandle) fail(`DELETE of future handle ${cmd.handle}`);
          return w.active;
        }, () => 'x:1');
        for (const cmd of cmds) {
          deletesIssued++;
          w.held.get(n)!.delete(cmd.handle);
          deleted.add(cmd.handle);
        }
      }
      for (const h of deleted) if (w.state.chunkOwner(h) !== undefined) fail(`chunk ${h} was deleted but is referenced`);
    }
    purges += w.collector.purgedTotal;
    aborts += w.collector.abortedTotal;
  }
  t.ok(deletesIssued > 0, `the schedules did delete orphans (${deletesIssued} deletes, ${purges} purges, ${aborts} aborts, seeds ${baseSeed}..${baseSeed + seeds - 1})`);
});
