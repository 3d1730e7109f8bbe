/**
 * GC safety in the deterministic simulation, driven through the real collector, registry
 * and command outbox: no schedule of writes, early chunk ends at a new version, deletes,
 * purges, aborts, late chunkserver reports, safe-mode flips, failovers (a new leader with
 * fresh soft state) and wall-clock skew between leaders ever gets a DELETE delivered for
 * a chunk that metadata references, or for a handle not allocated yet.
 * Replay a failure with GFS_SEED=<seed>.
 */
import t from 'tap';
import { Rng } from './prng';
import { MetaOp, type DeepPartial } from '../../gen/gfs';
import { silentLogger } from '../../src/common/log';
import type { Clock } from '../../src/common/clock';
import { MetaState } from '../../src/master/meta-state';
import { NodeRegistry } from '../../src/master/registry';
import { CommandOutbox } from '../../src/master/lifecycle/chunk-commands';
import { Collector } from '../../src/gc/collector';
import { GfsError } from '../../src/common/errors';

interface World {
  state: MetaState;
  registry: NodeRegistry;
  outbox: CommandOutbox;
  collector: Collector;
  held: Map<string, Set<number>>;
  /** Reports the nodes have not sent yet (late chunkservers). */
  lateReports: { nodeId: string; handle: number; atStep: number }[];
  nowMs: number;
  /** This leader's wall clock is off by this much (ms): trash expiry uses the wall clock. */
  skewMs: number;
  active: boolean;
}

t.test('sim: gc safety: no schedule of ops, late reports, safe mode, failovers and clock skew deletes a referenced chunk', async (t) => {
  const baseSeed = Number(process.env.GFS_SEED ?? Date.now() % 1_000_000);
  const seeds = Number(process.env.GFS_SEEDS ?? 200);
  let deletesIssued = 0;
  let purges = 0;
  let aborts = 0;
  for (let round = 0; round < seeds; round++) {
    const seed = baseSeed + round;
    const rng = new Rng(seed);
    const int = (n: number) => rng.int(n);
    const timersUnused = () => { throw new Error('the collector sets no timers'); };
    const clock: Clock = { nowMs: () => w.nowMs + w.skewMs, monoMs: () => w.nowMs, after: timersUnused, every: timersUnused };
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
      lateReports: [], nowMs: 0, skewMs: 0, active: true,
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
        // Some chunks end early after a replica failed: committed at the next version.
        const version = c && int(4) === 0 ? c.version + 1 : 0;
        if (c) { tryApply({ commitChunk: { inode: writing.inode, handle: c.handle, length: 1 + int(1000), version } }); w.collector.touch(writing.inode); }
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
        w.collector = makeCollector(); // failover: a new leader with fresh soft state...
        w.outbox.clear();
        w.skewMs = int(2001) - 1000; // ...and its own wall clock, up to a second off (trash period 40 ms)
      }
      w.nowMs += int(25);

      // Heartbeats: full reports of what each node holds, minus what is still late.
      for (const n of nodes) {
        const late = new Set(w.lateReports.filter((r) => r.nodeId === n && r.atStep > step).map((r) => r.handle));
        w.registry.heartbeat({
          nodeId: n, addr: `${n}:1`, zone: 'z', tier: 'hot', capacityBytes: 1e12, usedBytes: 0, freeBytes: 1e12, openWrites: 0, leases: [],
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
