/**
 * The chunk lifecycle in the deterministic simulation: the real metadata state machine
 * (MetaState), the real registry and the real Lifecycle (healing, balancing, GC, safe
 * mode, the command outbox) on a ManualClock, with in-memory chunkservers that
 * heartbeat, obey DELETE and REPLICATE, and hold what they hold whatever the master
 * thinks. A seeded schedule writes, deletes, corrupts replicas, leaves replicas stale,
 * kills and revives chunkservers, and fails the master over (state restored from its
 * snapshot, every piece of soft state lost); then the faults stop and the cluster must
 * heal.
 *
 * Checkers (ground truth, not the master's view):
 * - safety: a replica of a chunk that metadata references is deleted only while another
 *   healthy replica exists (on any node, up or down), and a healthy one only while at
 *   least `goal` other healthy replicas exist;
 * - fill: no node is filled past the fill cap (plus two chunks of slack: a write is
 *   placed from the last heartbeat's free space, and clones in flight may land after it);
 * - liveness: once the faults stop, every committed chunk with a healthy replica on a
 *   live node has `goal` healthy replicas on live nodes within livenessStepsMax steps.
 *
 * Replay a seed: `node dist/test/sim/lifecycle-sim.js <seed> [count]` (GFS_SIM_BROKEN=<name>
 * runs a broken lifecycle from lifecycle-broken.ts, GFS_SIM_TRACE=1 prints the schedule).
 */
import { MetaOp, ChunkCommand_Kind, type DeepPartial, type HeartbeatRequest } from '../../gen/gfs';
import { ManualClock } from '../../src/common/clock';
import { GfsError } from '../../src/common/errors';
import { silentLogger } from '../../src/common/log';
import { MetaState } from '../../src/master/meta-state';
import { NodeRegistry } from '../../src/master/registry';
import { choosePlacement } from '../../src/master/placement';
import { Lifecycle, lifecycleOptions, type LifecycleHost, type LifecycleOptions } from '../../src/master/lifecycle/lifecycle';
import { Rng } from './prng';

const MiB = 1024 * 1024;
const STEP_MS = 500;
const DEAD_AFTER_MS = 3_000;
const FAULT_STEPS = 160;
/** After the faults stop: ~3 minutes of virtual time, past every command timeout. */
export const livenessStepsMax = 360;
const CHUNK_BYTES_MAX = 64 * MiB;
const SMALL_BYTES_MAX = 14 * 64 * MiB;
/**
 * A write is placed from the free space of the last heartbeat, and clones already on
 * their way may land after it: the cap holds for each decision, the node may end up to
 * about two chunks past it.
 */
const FILL_SLACK_BYTES = 2 * CHUNK_BYTES_MAX;
/** Writes stop once the cluster holds this fraction of what its big nodes may hold. */
const WRITE_STOP_FRACTION = 0.5;

export type LifecycleFactory = (host: LifecycleHost, opts: LifecycleOptions) => Lifecycle;

export interface LifecycleScheduleOptions {
  createLifecycle?: LifecycleFactory;
  trace?: (line: string) => void;
}

export interface LifecycleScheduleResult {
  seed: number;
  ok: boolean;
  /** Which checker fired and why. */
  failure?: string;
  checker?: 'safety' | 'fill' | 'liveness';
  stats: { deletes: number; clones: number; failovers: number; deaths: number; corruptions: number; stepsToHeal: number };
}

interface Replica { version: number; length: number; corrupt: boolean }

/** One in-memory chunkserver: what is on its disk is the truth. */
class SimNode {
  readonly replicas = new Map<number, Replica>();
  up = true;
  /** Lost for good (after the faults stop): never comes back. */
  gone = false;
  /** The master's last reply asked for a full report. */
  needFull = true;
  /** What the current master was last told, for delta reports. */
  told = new Map<number, string>();
  failed: number[] = [];
  /** REPLICATEs accepted: they complete (or fail) at `atStep`. */
  copying: { handle: number; version: number; sourceAddr: string; atStep: number }[] = [];

  constructor(readonly id: string, readonly zone: string, readonly capacityBytes: number) {}

  get addr(): string { return `${this.id}:7000`; }

  usedBytes(): number {
    let used = 0;
    for (const r of this.replicas.values()) used += r.length;
    return used;
  }
}

/** A replica is healthy for a chunk when it is intact, current and complete. */
function healthy(r: Replica | undefined, chunk: { version: number; length: number }): boolean {
  return r !== undefined && !r.corrupt && r.version >= chunk.version && r.length >= chunk.length;
}

class LifecycleWorld {
  readonly clock = new ManualClock();
  state = new MetaState();
  registry = new NodeRegistry(DEAD_AFTER_MS);
  lifecycle: Lifecycle | undefined;
  leader = true;
  step = 0;
  failure: { checker: 'safety' | 'fill' | 'liveness'; message: string } | undefined;
  readonly nodes: SimNode[] = [];
  readonly stats = { deletes: 0, clones: 0, failovers: 0, deaths: 0, corruptions: 0, stepsToHeal: 0 };
  readonly opts: LifecycleOptions;
  private fileSeq = 0;

  constructor(readonly rng: Rng, private readonly create: LifecycleFactory, private readonly trace?: (line: string) => void) {
    const count = rng.between(4, 6);
    // One or two small nodes (the fill cap binds on them long before the big ones), and
    // always three big ones, so every goal has room.
    const small = rng.between(1, Math.min(2, count - 3));
    for (let i = 0; i < count; i++) {
      const capacity = i < small ? rng.between(8, 14) * 64 * MiB : rng.between(20, 40) * 64 * MiB;
      // (small ones are at most SMALL_BYTES_MAX)
      this.nodes.push(new SimNode(`n${i + 1}`, `z${(i % 3) + 1}`, capacity));
    }
    this.opts = lifecycleOptions({
      safeModeMinMs: 2_000, safeModeMaxMs: DEAD_AFTER_MS, trashPeriodMs: 5_000, orphanGraceMs: 4_000, pendingTimeoutMs: 15_000,
      repairBytesPerSec: 4096 * MiB, fillCapRatio: 0.6, balanceThresholdRatio: rng.chance(0.5) ? 0.1 : 0, balanceIntervalMs: 2_000,
    });
    this.lifecycle = this.newLifecycle();
  }

  log(line: string): void {
    this.trace?.(`[${this.step}] ${line}`);
  }

  fail(checker: 'safety' | 'fill' | 'liveness', message: string): void {
    if (!this.failure) this.failure = { checker, message: `${checker}: ${message} (step ${this.step})` };
  }

  private newLifecycle(): Lifecycle {
    return this.create({
      state: () => this.state,
      registry: this.registry,
      commit: async (_kind, op) => this.state.apply(op),
      durable: async () => undefined,
      isLeader: () => this.leader,
      clock: this.clock,
      random: () => this.rng.next(),
      log: silentLogger,
    }, this.opts);
  }

  /** A new master takes over: metadata from its snapshot, soft state (registry, outbox, grace clocks) gone. */
  failover(gapSteps: number): void {
    this.stats.failovers++;
    this.lifecycle?.stop();
    this.lifecycle = undefined;
    this.state = MetaState.restore(this.state.snapshot());
    this.registry = new NodeRegistry(DEAD_AFTER_MS);
    for (const n of this.nodes) {
      n.needFull = true;
      n.told = new Map();
      // Copies started for the old master are fenced by the new epoch: they fail, so the
      // new master's count of bytes coming into each node is complete.
      n.failed.push(...n.copying.map((c) => c.handle));
      n.copying = [];
    }
    this.pendingLeaderAt = this.step + gapSteps;
    this.log(`failover (no leader for ${gapSteps} steps)`);
  }

  private pendingLeaderAt = -1;

  private applyOp(op: DeepPartial<MetaOp>) {
    try {
      return this.state.apply(MetaOp.fromPartial(op));
    } catch (e) {
      if (e instanceof GfsError) return undefined;
      throw e;
    }
  }

  // ------------------------------------------------------------ clients

  /** A client writes a file: chunks placed like the master places them, replicas that miss the end stay stale. */
  writeFile(abandon: boolean): void {
    const lc = this.lifecycle;
    if (!lc || !this.leader || this.fullEnough()) return;
    const goal = this.rng.between(1, 3);
    const path = `/ns/f${this.fileSeq++ % 40}`;
    const created = this.applyOp({ createFile: { inode: this.state.nextInode, path, overwrite: true, replication: goal, mtimeMs: this.clock.nowMs() } });
    if (!created) return;
    const inode = created.inode!;
    lc.touch(inode);
    const chunks = 1;
    let size = 0;
    for (let i = 0; i < chunks; i++) {
      const candidates = this.registry.alive().filter((n) => !lc.isDraining(n.id));
      const placed = choosePlacement(candidates, goal, { random: () => this.rng.next(), fillCapRatio: lc.fillCapRatio() });
      if (placed.length === 0) break;
      const handle = this.state.nextHandle;
      if (!this.applyOp({ allocateChunk: { inode, handle, version: 1 } })) break;
      const length = this.rng.between(1, CHUNK_BYTES_MAX / MiB) * MiB;
      // Early chunk end at a new version after a replica failed: that replica stays at version 1.
      const bumped = placed.length > 1 && this.rng.chance(0.1);
      const stale = placed.length > 1 && this.rng.chance(0.15) ? placed[placed.length - 1]!.id : undefined;
      const wrote: string[] = [];
      this.log(`chunk ${handle} (${length} bytes) placed on ${placed.map((p) => p.id).join(',')}`);
      for (const p of placed) {
        const node = this.node(p.id);
        if (!node.up) continue;
        const isStale = p.id === stale;
        node.replicas.set(handle, { version: bumped && isStale ? 1 : bumped ? 2 : 1, length: isStale && !bumped ? this.rng.between(0, length - 1) : length, corrupt: false });
        if (!isStale) wrote.push(p.id);
      }
      if (abandon && i === chunks - 1) { this.log(`write ${path} abandoned`); return; }
      if (wrote.length === 0) { this.applyOp({ abandonChunk: { inode, handle } }); continue; }
      this.applyOp({ commitChunk: { inode, handle, length, version: bumped ? 2 : 0 } });
      this.registry.recordWrite(handle, bumped ? 2 : 1, length, wrote);
      size += length;
      this.checkFill();
    }
    this.applyOp({ completeFile: { inode, size, mtimeMs: this.clock.nowMs() } });
    this.log(`wrote ${path} (goal ${goal}, ${size} bytes)`);
  }

  /**
   * Clients stop writing well before the cluster is full, so healing always has room for
   * every goal (liveness is about the lifecycle, not about a full cluster).
   */
  private fullEnough(): boolean {
    const big = this.nodes.filter((n) => n.capacityBytes > SMALL_BYTES_MAX);
    const room = big.reduce((sum, n) => sum + n.capacityBytes, 0) * this.opts.fillCapRatio;
    return this.nodes.reduce((sum, n) => sum + n.usedBytes(), 0) > WRITE_STOP_FRACTION * room;
  }

  deleteFile(): void {
    const files = this.state.list('/', { recursive: true, limit: 0, startAfter: '', filesOnly: true }).entries;
    if (files.length === 0) return;
    const f = this.rng.pick(files);
    this.applyOp({ delete: { path: f.path, mtimeMs: this.clock.nowMs() } });
    this.log(`deleted ${f.path}`);
  }

  /** A read or the scrubber finds a replica corrupt and reports it at once. */
  corruptReplica(): void {
    const candidates = this.nodes.filter((n) => n.up && n.replicas.size > 0);
    if (candidates.length === 0) return;
    const node = this.rng.pick(candidates);
    const handles = [...node.replicas.keys()];
    const handle = this.rng.pick(handles);
    node.replicas.get(handle)!.corrupt = true;
    this.registry.markCorrupt(handle, node.id);
    this.stats.corruptions++;
    this.log(`replica ${handle} on ${node.id} corrupt`);
  }

  node(id: string): SimNode {
    return this.nodes.find((n) => n.id === id)!;
  }

  // ------------------------------------------------------------ chunkservers

  /** Clones in flight finish: copied from a live, intact source, if the disk has room. */
  progressCopies(): void {
    for (const n of this.nodes) {
      if (!n.up) continue;
      const due = n.copying.filter((c) => c.atStep <= this.step);
      n.copying = n.copying.filter((c) => c.atStep > this.step);
      for (const c of due) {
        const source = this.nodes.find((s) => s.addr === c.sourceAddr);
        const r = source?.up ? source.replicas.get(c.handle) : undefined;
        if (!r || r.corrupt || r.version < c.version || n.usedBytes() + r.length > n.capacityBytes || n.replicas.has(c.handle)) {
          n.failed.push(c.handle);
          continue;
        }
        n.replicas.set(c.handle, { version: r.version, length: r.length, corrupt: false });
        this.stats.clones++;
        this.log(`clone of ${c.handle} to ${n.id} done`);
        this.checkFill();
      }
    }
  }

  heartbeats(): void {
    for (const n of this.nodes) {
      if (!n.up) continue;
      const req = this.report(n);
      const { needFullReport } = this.registry.heartbeat(req, this.clock.monoMs(), this.clock.nowMs());
      n.needFull = needFullReport;
      if (needFullReport || !this.lifecycle) continue;
      this.lifecycle.clonesFailed(n.id, req.replicateFailed);
      for (const cmd of this.lifecycle.commandsFor(n.id)) {
        if (cmd.kind === ChunkCommand_Kind.DELETE) this.executeDelete(n, cmd.handle);
        else {
          n.copying.push({ handle: cmd.handle, version: cmd.version, sourceAddr: cmd.sourceAddr, atStep: this.step + 1 + this.rng.int(3) });
          this.log(`${n.id} copies ${cmd.handle} (${cmd.length} bytes) from ${cmd.sourceAddr}; holds ${n.usedBytes()} of ${n.capacityBytes}`);
        }
      }
    }
  }

  private report(n: SimNode): HeartbeatRequest {
    const used = n.usedBytes();
    const full = n.needFull || this.rng.chance(0.1);
    const now = new Map([...n.replicas].map(([h, r]) => [h, `${r.version}/${r.length}`]));
    const changed = full ? [...now.keys()] : [...now.keys()].filter((h) => n.told.get(h) !== now.get(h));
    const removed = full ? [] : [...n.told.keys()].filter((h) => !now.has(h));
    n.told = now;
    const failed = n.failed;
    n.failed = [];
    return {
      nodeId: n.id, addr: n.addr, zone: n.zone, tier: 'hot', capacityBytes: n.capacityBytes, usedBytes: used, freeBytes: n.capacityBytes - used,
      openWrites: 0, leases: [], fullReport: full, removed, adminAddr: '', replicateFailed: failed, replicating: n.copying.length,
      chunks: changed.map((h) => ({ handle: h, version: n.replicas.get(h)!.version, length: n.replicas.get(h)!.length })),
      corrupt: [...n.replicas].filter(([, r]) => r.corrupt).map(([h]) => h),
    };
  }

  /** The safety checker runs at the instant a chunkserver obeys a DELETE. */
  private executeDelete(n: SimNode, handle: number): void {
    const owner = this.state.chunkOwner(handle);
    const replica = n.replicas.get(handle);
    if (owner && replica && owner.ref.committed) {
      const goal = this.state.fileByInode(owner.inode)?.replication ?? 1;
      const others = this.nodes.filter((o) => o !== n && healthy(o.replicas.get(handle), owner.ref)).length;
      if (others === 0) this.fail('safety', `DELETE of chunk ${handle} on ${n.id} removed its last healthy replica`);
      else if (healthy(replica, owner.ref) && others < goal) {
        this.fail('safety', `DELETE of a healthy replica of chunk ${handle} on ${n.id} left ${others} healthy, goal ${goal}`);
      }
    }
    n.replicas.delete(handle);
    this.stats.deletes++;
    this.log(`${n.id} deleted ${handle}${owner ? ' (referenced)' : ''}`);
  }

  checkFill(): void {
    for (const n of this.nodes) {
      const limit = n.capacityBytes * this.opts.fillCapRatio + FILL_SLACK_BYTES;
      if (n.usedBytes() > limit) this.fail('fill', `${n.id} holds ${n.usedBytes()} bytes, past the cap (${Math.round(limit)} with slack)`);
    }
  }

  // ------------------------------------------------------------ the master

  async masterTick(): Promise<void> {
    if (!this.lifecycle && this.step >= this.pendingLeaderAt) {
      this.lifecycle = this.newLifecycle();
      this.log('new leader');
    }
    for (const id of this.registry.tick(this.clock.monoMs())) this.lifecycle?.nodeDied(id);
    await this.lifecycle?.tick(this.clock.monoMs());
  }

  /** Chunks that must get back to their goal: committed, referenced, with a healthy replica on a live node. */
  underGoal(): string[] {
    const out: string[] = [];
    for (const c of this.state.lifecycleChunks()) {
      if (!c.committed) continue;
      const live = this.nodes.filter((n) => n.up && healthy(n.replicas.get(c.handle), c)).length;
      if (live > 0 && live < c.replication) out.push(`${c.handle} (${live}/${c.replication})`);
    }
    return out;
  }

  async runStep(faults: boolean): Promise<void> {
    this.step++;
    this.clock.advance(STEP_MS);
    if (faults) this.fault();
    this.progressCopies();
    this.heartbeats();
    await this.masterTick();
  }

  private fault(): void {
    const roll = this.rng.int(100);
    if (roll < 25) this.writeFile(this.rng.chance(0.1));
    else if (roll < 24) this.deleteFile();
    else if (roll < 27) this.corruptReplica();
    else if (roll < 31) {
      const up = this.nodes.filter((n) => n.up);
      if (up.length > 2) { const n = this.rng.pick(up); n.up = false; this.stats.deaths++; this.log(`${n.id} down`); }
    } else if (roll < 36) {
      const down = this.nodes.filter((n) => !n.up);
      if (down.length > 0) { const n = this.rng.pick(down); n.up = true; n.needFull = true; this.log(`${n.id} back`); }
    } else if (roll < 37 && this.lifecycle) {
      this.failover(this.rng.int(4));
    } else if (roll < 38) {
      this.leader = !this.leader; // leadership lost and regained by the same master
      this.log(this.leader ? 'leads again' : 'stepped down');
    }
  }

  /** The faults stop: every node comes back but at most one, lost for good. */
  endFaults(): void {
    this.leader = true;
    for (const n of this.nodes) { if (!n.up) n.needFull = true; n.up = true; }
    const lost = this.rng.chance(0.3) ? this.rng.pick(this.nodes) : undefined;
    // Liveness needs room for three replicas: never lose a big node below three.
    if (lost && this.nodes.filter((n) => n !== lost && n.capacityBytes > SMALL_BYTES_MAX).length >= 3) {
      lost.up = false;
      lost.gone = true;
      this.log(`${lost.id} lost for good`);
    }
  }
}

export async function runLifecycleSchedule(seed: number, opts: LifecycleScheduleOptions = {}): Promise<LifecycleScheduleResult> {
  const w = new LifecycleWorld(new Rng(seed), opts.createLifecycle ?? ((h, o) => new Lifecycle(h, o)), opts.trace);
  const result = (): LifecycleScheduleResult => ({
    seed, ok: w.failure === undefined, failure: w.failure?.message, checker: w.failure?.checker, stats: w.stats,
  });
  try {
    for (let i = 0; i < FAULT_STEPS && !w.failure; i++) await w.runStep(true);
    w.endFaults();
    const started = w.step;
    for (;;) {
      if (w.failure) return result();
      const under = w.underGoal();
      if (under.length === 0 && w.lifecycle && !w.lifecycle.safeMode.on) break;
      if (w.step - started >= livenessStepsMax) {
        w.fail('liveness', `${under.length} chunks still below their goal ${livenessStepsMax} steps after the faults stopped: ${under.slice(0, 5).join(', ')}`);
        return result();
      }
      await w.runStep(false);
    }
    w.stats.stepsToHeal = w.step - started;
  } catch (e) {
    // An assertion inside the lifecycle is a checker too: it would stop a real master.
    w.fail('safety', `the lifecycle asserted: ${(e as Error).message}`);
  }
  return result();
}

export function lifecycleReplayCommand(seed: number, broken?: string): string {
  return `${broken ? `GFS_SIM_BROKEN=${broken} ` : ''}GFS_SIM_TRACE=1 node dist/test/sim/lifecycle-sim.js ${seed}`;
}

if (require.main === module) {
  void (async () => {
    const { brokenLifecycles } = await import('./lifecycle-broken');
    const seed = Number(process.argv[2] ?? 1);
    const count = Number(process.argv[3] ?? 1);
    const broken = process.env['GFS_SIM_BROKEN'];
    if (broken !== undefined && !(broken in brokenLifecycles)) throw new Error(`GFS_SIM_BROKEN must be one of ${Object.keys(brokenLifecycles).join(', ')}`);
    const trace = process.env['GFS_SIM_TRACE'] ? (line: string) => console.log(line) : undefined;
    let failed = 0;
    for (let s = seed; s < seed + count; s++) {
      const r = await runLifecycleSchedule(s, { trace, createLifecycle: broken ? brokenLifecycles[broken]!.create : undefined });
      if (!r.ok) { failed++; console.log(`seed ${s} FAILED ${r.failure}`); }
    }
    console.log(`${count} schedules, ${failed} failed`);
  })();
}
