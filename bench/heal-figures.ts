/**
 * Chunk lifecycle figures: how fast a cluster gets every chunk back to its goal after
 * losing a chunkserver, what that healing costs foreground traffic, and how fast the
 * scrubber verifies stored chunks. Each run starts its own dev cluster in a temp dir.
 *
 * heal: 5 chunkservers, RF 3, --dead-after 3 s and every bandwidth limit at its default
 * (the defaults are what must leave foreground traffic its share). Files are written
 * until one chunkserver holds --size of chunks, then:
 *  1. that chunkserver is killed with SIGKILL, with no other traffic, and we time
 *     kill → declared dead (the master lists it dead) → full health (fsck: every chunk
 *     at its goal). The re-replication rate is the bytes it held over the time from
 *     declared dead to full health, when healing runs.
 *  2. on the healed, idle cluster a get and a put of --size/4 are timed; then the
 *     fullest survivor is killed and, as soon as it is declared dead, the same get and
 *     put run again while healing copies its chunks. The get goes first: it reads a
 *     file written before the kill, which healing would otherwise read (and so cache)
 *     first.
 * The page cache is dropped before each kill and each timed get, so clone sources and
 * reads come from the disk, like the raw copy and raw read baselines.
 *
 * scrub: one chunkserver with a tiny --scrub-interval and no effective --scrub-rate cap,
 * so the scrubber verifies as fast as it can; its byte counter on /metrics is sampled
 * through a pass that reads from the disk.
 */
import { statfsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { StatusResponse } from '../gen/gfs';
import { GfsClient, type AdminClient } from '../src/client';
import { limits } from '../src/common/limits';
import { startDevCluster, type DevCluster } from '../src/dev/cluster';
import { serverLogTails } from './gfs-figures';
import { fetchMetrics, sampleOf } from './lib/admin-endpoints';
import { DiscardSink } from './lib/discard-sink';
import { dropPageCache, type CacheState } from './lib/page-cache';
import { patternSource } from './lib/pattern-source';
import { descendantPids, totalCpuSec } from './lib/proc-stat';
import { progress } from './lib/progress';
import { makeTempDir, removeTempDir } from './lib/temp-dirs';
import { GiB, MiB, formatSize, mibPerSec } from './lib/units';

const healNamespace = '/heal';
const chunkBytes = limits.chunkBytesMax;
/** Four survivors after the first kill and three after the second: RF 3 still fits. */
const healChunkservers = 5;
/** Short, so most of "kill → full health" is healing rather than waiting to declare. */
const deadAfterMs = 3000;
/** The goal: full health within dead-after + 15 s for each GiB lost. */
const fullHealthBudgetPerLostGiBMs = 15_000;
/** Fill files of two chunks: the fullest node passes its target by at most two chunks. */
const fillFileChunks = 2;
const foregroundDivisor = 4;
const pollIntervalMs = 100;
/** A healing progress line this often: the master's own view of why it is slow or fast. */
const healProgressEveryMs = 2000;
/** Room left for everything else on the disk: never fill it past this share of free space. */
const diskShareMax = 0.8;
/** Verification as fast as the disk and CPU allow, not as fast as the default cap. */
const uncappedScrubBytesPerSec = 64 * GiB;
/** Pacing is stored bytes / interval: a tiny interval makes the cap the only limit. */
const scrubIntervalMs = 10;
/** A pass needs a few chunks for its rate to mean something. */
const scrubChunksMin = 4;
const scrubSampleEveryMs = 25;

export interface KillTiming {
  victimNodeId: string;
  lostBytes: number;
  lostChunks: number;
  /** kill -9 → the master lists the node dead. */
  declaredDeadMs: number;
  /** kill -9 → fsck healthy again. */
  fullHealthMs: number;
  /** Declared dead → full health: the time healing ran. */
  healMs: number;
  rereplicationMibPerSec: number;
  clonesCompleted: number;
  clonesFailed: number;
  /** CPU seconds per second the cluster's processes used while healing (out of cpuCount). */
  serversCpuCoresBusy: number;
  cpuCount: number;
  /** 1-minute load average at the kill: on a shared machine, others' work slows healing too. */
  loadAverageAtKill: number;
  /** Other chunkservers the master declared dead meanwhile (an overloaded machine). */
  otherNodesDead: string[];
}

export interface LoadedOp {
  mibPerSec: number;
  elapsedMs: number;
  /** Share of the op's time during which healing was still running (1 = all of it). */
  healingShare: number;
}

export interface ForegroundImpact {
  totalBytes: number;
  getCache: CacheState;
  unloadedPutMibPerSec: number;
  unloadedGetMibPerSec: number;
  loadedPut: LoadedOp;
  loadedGet: LoadedOp;
  /** The second kill, healed while the foreground ops ran. */
  loadedKill: KillTiming;
}

export interface HealResult {
  chunkservers: number;
  deadAfterMs: number;
  /** Victim bytes asked for (--size, or less when the disk is short). */
  victimTargetBytes: number;
  scaleNote?: string;
  kill: KillTiming;
  /** dead-after + 15 s per GiB lost. */
  fullHealthBudgetMs: number;
  foreground: ForegroundImpact;
}

export interface ScrubResult {
  totalBytes: number;
  /** Bytes timed: the part of a pass that ran after the page cache was dropped. */
  timedBytes: number;
  mibPerSec: number;
  cache: CacheState;
  defaultCapMibPerSec: number;
}

interface HealSession {
  cluster: DevCluster;
  client: GfsClient;
  writtenPaths: string[];
}

interface Victim {
  index: number;
  nodeId: string;
  bytes: number;
  chunks: number;
}

// ---- heal ----

export async function benchHeal(sizeBytes: number): Promise<HealResult> {
  const dataDir = makeTempDir('heal');
  const plan = planDiskUse(dataDir, sizeBytes);
  if (plan.scaleNote) progress(`heal: note: ${plan.scaleNote}`);
  let session: HealSession | undefined;
  try {
    progress(`heal: starting a dev cluster (1 master, ${healChunkservers} chunkservers, dead-after ${deadAfterMs / 1000} s)`);
    session = await startHealSession(dataDir);
    await fillUntilOneNodeHolds(session, plan.victimBytes);
    const kill = await measureKillToFullHealth(session, 'first kill, no foreground traffic');
    const foreground = await measureForegroundImpact(session, plan.foregroundBytes);
    const fullHealthBudgetMs = deadAfterMs + fullHealthBudgetPerLostGiBMs * (kill.lostBytes / GiB);
    return {
      chunkservers: healChunkservers, deadAfterMs, victimTargetBytes: plan.victimBytes, scaleNote: plan.scaleNote,
      kill, fullHealthBudgetMs, foreground,
    };
  } catch (error) {
    process.stderr.write(`${serverLogTails(dataDir)}\n`);
    throw error;
  } finally {
    await closeHealSession(session);
    removeTempDir(dataDir);
  }
}

/**
 * How much to write: the victim should hold --size, the foreground ops move a quarter
 * of it. Scaled down, with a note, when the disk could not hold every replica: the
 * fill on three replicas, both kills' clones, and two foreground files on three.
 */
function planDiskUse(dir: string, sizeBytes: number): { victimBytes: number; foregroundBytes: number; scaleNote?: string } {
  const needed = (victimBytes: number): number =>
    1.25 * (victimBytes * (healChunkservers + 2.5) + 6 * (victimBytes / foregroundDivisor));
  const stats = statfsSync(dir);
  const freeBytes = stats.bavail * stats.bsize;
  let victimBytes = sizeBytes;
  let scaleNote: string | undefined;
  if (needed(victimBytes) > freeBytes * diskShareMax) {
    const scaled = Math.floor((sizeBytes * (freeBytes * diskShareMax)) / needed(sizeBytes) / chunkBytes) * chunkBytes;
    if (scaled < chunkBytes) throw new Error(`not enough disk: ${formatSize(freeBytes)} free, a one-chunk heal needs ${formatSize(needed(chunkBytes))}`);
    victimBytes = scaled;
    scaleNote = `only ${formatSize(freeBytes)} free, so the victim holds ${formatSize(victimBytes)} instead of ${formatSize(sizeBytes)}`;
  }
  return { victimBytes, foregroundBytes: Math.max(1, Math.round(victimBytes / foregroundDivisor)), scaleNote };
}

async function startHealSession(dataDir: string): Promise<HealSession> {
  const cluster = await startDevCluster({ dataDir, basePort: 0, chunkservers: healChunkservers, deadAfterMs });
  const client = new GfsClient({ masters: cluster.masters });
  return { cluster, client, writtenPaths: [] };
}

async function closeHealSession(session: HealSession | undefined): Promise<void> {
  if (!session) return;
  try {
    await session.client.close();
  } finally {
    await session.cluster.stop();
  }
}

/** Writes files one at a time until the fullest chunkserver holds `victimBytes`. */
async function fillUntilOneNodeHolds(session: HealSession, victimBytes: number): Promise<void> {
  const fileBytes = Math.min(fillFileChunks * chunkBytes, victimBytes);
  const startedAtMs = performance.now();
  let writtenBytes = 0;
  for (let fileIndex = 0; ; fileIndex++) {
    const fullest = await fullestChunkserver(session);
    if (fullest.bytes >= victimBytes) {
      progress(`heal: wrote ${formatSize(writtenBytes)} in ${fileIndex} files at `
        + `${mibPerSec(writtenBytes, performance.now() - startedAtMs).toFixed(1)} MiB/s; the fullest chunkserver holds ${formatSize(fullest.bytes)}`);
      return;
    }
    // Far more files than the target can need means placement is not spreading data.
    if (writtenBytes > victimBytes * healChunkservers) throw new Error(`wrote ${formatSize(writtenBytes)} and no chunkserver holds ${formatSize(victimBytes)}`);
    await putFile(session, patternSource(fileBytes), `${healNamespace}/fill-${fileIndex}`);
    writtenBytes += fileBytes;
  }
}

async function putFile(session: HealSession, source: AsyncIterable<Buffer>, remotePath: string): Promise<void> {
  await session.client.put(source, remotePath);
  session.writtenPaths.push(remotePath);
}

/** The live chunkserver holding the most bytes of healthy replicas, as the master lists them. */
async function fullestChunkserver(session: HealSession): Promise<Victim> {
  const held = new Map<string, { bytes: number; chunks: number }>();
  for (const path of session.writtenPaths) {
    for (const chunk of (await session.client.stat(path)).chunks) {
      for (const replica of chunk.replicas) {
        const node = held.get(replica.nodeId) ?? { bytes: 0, chunks: 0 };
        node.bytes += chunk.length;
        node.chunks += chunk.length > 0 ? 1 : 0;
        held.set(replica.nodeId, node);
      }
    }
  }
  const candidates = session.cluster.chunkservers
    .map((proc, index) => ({ index, nodeId: proc.nodeId ?? '', ...(held.get(proc.nodeId ?? '') ?? { bytes: 0, chunks: 0 }) }))
    .filter((candidate) => isRunning(session.cluster, candidate.index));
  return candidates.reduce((best, candidate) => (candidate.bytes > best.bytes ? candidate : best));
}

function isRunning(cluster: DevCluster, index: number): boolean {
  const child = cluster.chunkservers[index]!.child;
  return child.exitCode === null && child.signalCode === null;
}

async function measureKillToFullHealth(session: HealSession, label: string): Promise<KillTiming> {
  const victim = await fullestChunkserver(session);
  const watch = await killAndWatch(session, victim, label);
  try {
    await watch.fullHealth;
    return await watch.timing();
  } finally {
    watch.stop();
  }
}

/** Drops the page cache (clone sources then come from disk), kills the victim, watches the master. */
async function killAndWatch(session: HealSession, victim: Victim, label: string): Promise<HealingWatch> {
  dropPageCache();
  const before: ClusterBefore = {
    status: await session.client.admin.status(),
    deadNodeIds: new Set((await session.client.admin.nodes()).nodes.filter((node) => node.state === 'dead').map((node) => node.id)),
    loadAverage: loadavg()[0]!,
  };
  progress(`heal: ${label}: kill -9 of ${victim.nodeId.slice(0, 8)}, which holds ${formatSize(victim.bytes)} in ${victim.chunks} chunks `
    + `(load average ${before.loadAverage.toFixed(1)} on ${cpus().length} cores)`);
  const killedAtMs = performance.now();
  await session.cluster.killChunkserver(victim.index, 'SIGKILL');
  return new HealingWatch(session.client.admin, victim, killedAtMs, before, label);
}

/** Just before a kill: the master's counters to subtract, nodes dead already, how busy the machine was. */
interface ClusterBefore {
  status: StatusResponse;
  deadNodeIds: Set<string>;
  loadAverage: number;
}

/**
 * Follows one kill through the master's eyes: polls `nodes` until the victim is listed
 * dead, then fsck until every chunk is at its goal, printing the master's repair
 * progress on the way. fsck, not the status counts: status shows the healer's last
 * round, which may predate the death, while fsck assesses the replicas as they are now.
 */
class HealingWatch {
  readonly declaredDead: Promise<number>;
  readonly fullHealth: Promise<number>;
  declaredDeadAtMs: number | undefined;
  fullHealthAtMs: number | undefined;
  private serversCpuSecAtDead = 0;
  private serversCpuSecAtHealth = 0;
  private readonly otherNodesDead = new Set<string>();
  private stopped = false;
  private lastProgressAtMs = 0;

  constructor(
    private readonly admin: AdminClient,
    private readonly victim: Victim,
    readonly killedAtMs: number,
    private readonly before: ClusterBefore,
    private readonly label: string,
  ) {
    this.declaredDead = this.pollUntil(() => this.victimListedDead(), deadAfterMs + 30_000, 'the victim declared dead')
      .then((atMs) => {
        this.serversCpuSecAtDead = serversCpuSec();
        return (this.declaredDeadAtMs = atMs);
      });
    // 4 MiB/s is the slowest clone the master tolerates before it gives up on one.
    const healWaitMs = 120_000 + (victim.bytes / limits.repairCloneRateMinBytesPerSec) * 1000;
    this.fullHealth = this.declaredDead
      .then(() => this.pollUntil(() => this.everyChunkAtGoal(), healWaitMs, 'full health'))
      .then((atMs) => {
        this.serversCpuSecAtHealth = serversCpuSec();
        return (this.fullHealthAtMs = atMs);
      });
    // Either may be awaited late or never (a step failing first): not an unhandled rejection.
    this.declaredDead.catch(() => undefined);
    this.fullHealth.catch(() => undefined);
  }

  stop(): void {
    this.stopped = true;
  }

  /** Share of [startMs, endMs] during which healing ran (declared dead, not yet healthy). */
  healingShare(startMs: number, endMs: number): number {
    const healStartMs = this.declaredDeadAtMs ?? endMs;
    const healEndMs = this.fullHealthAtMs ?? endMs;
    const overlapMs = Math.min(endMs, healEndMs) - Math.max(startMs, healStartMs);
    return Math.max(0, overlapMs) / Math.max(1, endMs - startMs);
  }

  /** Once fullHealth resolved. */
  async timing(): Promise<KillTiming> {
    const deadAtMs = this.declaredDeadAtMs!;
    const healthyAtMs = this.fullHealthAtMs!;
    const repairBefore = this.before.status.repair;
    // The healer counts a clone done at its next round, which may come after fsck saw the replica.
    await sleep(2 * limits.lifecycleTickMs);
    const repairAfter = (await this.admin.status()).repair;
    await this.victimListedDead(); // a node that died during healing, too
    const healMs = healthyAtMs - deadAtMs;
    const timing: KillTiming = {
      victimNodeId: this.victim.nodeId,
      lostBytes: this.victim.bytes,
      lostChunks: this.victim.chunks,
      declaredDeadMs: deadAtMs - this.killedAtMs,
      fullHealthMs: healthyAtMs - this.killedAtMs,
      healMs,
      rereplicationMibPerSec: mibPerSec(this.victim.bytes, healMs),
      clonesCompleted: (repairAfter?.completedTotal ?? 0) - (repairBefore?.completedTotal ?? 0),
      clonesFailed: (repairAfter?.failedTotal ?? 0) - (repairBefore?.failedTotal ?? 0),
      otherNodesDead: [...this.otherNodesDead],
      serversCpuCoresBusy: (this.serversCpuSecAtHealth - this.serversCpuSecAtDead) / (healMs / 1000),
      cpuCount: cpus().length,
      loadAverageAtKill: this.before.loadAverage,
    };
    progress(`heal: ${this.label}: declared dead after ${(timing.declaredDeadMs / 1000).toFixed(2)} s, full health after `
      + `${(timing.fullHealthMs / 1000).toFixed(2)} s (healing ${(healMs / 1000).toFixed(2)} s, ${timing.rereplicationMibPerSec.toFixed(1)} MiB/s, `
      + `${timing.clonesCompleted} clones, ${timing.clonesFailed} failed; the cluster's processes kept `
      + `${timing.serversCpuCoresBusy.toFixed(2)} of ${timing.cpuCount} cores busy)`);
    if (timing.otherNodesDead.length > 0) {
      progress(`heal: warning: the master also declared ${timing.otherNodesDead.join(', ')} dead: heartbeats starved on this machine?`);
    }
    return timing;
  }

  private async victimListedDead(): Promise<boolean> {
    const { nodes } = await this.admin.nodes();
    for (const node of nodes) {
      const newlyDead = node.state === 'dead' && !this.before.deadNodeIds.has(node.id);
      if (newlyDead && node.id !== this.victim.nodeId) this.otherNodesDead.add(node.id.slice(0, 8));
    }
    return nodes.some((node) => node.id === this.victim.nodeId && node.state === 'dead');
  }

  private async everyChunkAtGoal(): Promise<boolean> {
    const fsck = await this.admin.fsck('/');
    if (fsck.healthy && !fsck.safeMode) return true;
    if (performance.now() - this.lastProgressAtMs >= healProgressEveryMs) {
      this.lastProgressAtMs = performance.now();
      await this.printRepairProgress(fsck.underReplicated, fsck.missing);
    }
    return false;
  }

  private async printRepairProgress(underReplicated: number, missing: number): Promise<void> {
    const repair = (await this.admin.status()).repair;
    const sinceKillSec = (performance.now() - this.killedAtMs) / 1000;
    progress(`heal: ${this.label}: ${sinceKillSec.toFixed(1)} s after the kill: ${underReplicated} chunks below goal, `
      + `${missing} missing; master: ${repair?.queuedChunks ?? '?'} queued, ${repair?.inflightChunks ?? '?'} cloning, `
      + `${((repair?.bytesPerSec ?? 0) / MiB).toFixed(1)} MiB/s (10 s average), ETA ${((repair?.etaMs ?? 0) / 1000).toFixed(1)} s, `
      + `${repair?.completedTotal ?? '?'} clones done, ${repair?.failedTotal ?? '?'} failed`);
  }

  private async pollUntil(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<number> {
    const deadlineMs = performance.now() + timeoutMs;
    let lastError: unknown;
    while (!this.stopped) {
      try {
        if (await check()) return performance.now();
      } catch (error) {
        lastError = error; // a slow answer under load: ask again
      }
      if (performance.now() > deadlineMs) {
        const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
        throw new Error(`${this.label}: no ${what} after waiting ${Math.round(timeoutMs / 1000)} s${why}`);
      }
      await sleep(pollIntervalMs);
    }
    throw new Error(`${this.label}: stopped waiting for ${what}`);
  }
}

/**
 * Unloaded get and put on the idle cluster, then the same while healing the second
 * kill runs; the loaded figures say how much of each op overlapped healing.
 */
async function measureForegroundImpact(session: HealSession, totalBytes: number): Promise<ForegroundImpact> {
  await waitUntilIdle(session);
  const idlePath = `${healNamespace}/foreground-idle`;
  const unloadedPut = await timedPut(session, totalBytes, idlePath);
  const getCache = dropPageCache();
  const unloadedGet = await timedGet(session, idlePath, totalBytes);
  progress(`heal: idle cluster: put ${formatSize(totalBytes)} ${unloadedPut.mibPerSec.toFixed(1)} MiB/s, get ${unloadedGet.mibPerSec.toFixed(1)} MiB/s (${getCache} cache)`);

  const victim = await fullestChunkserver(session);
  const watch = await killAndWatch(session, victim, 'second kill, with foreground get + put');
  try {
    await watch.declaredDead;
    const loadedGet = await timedGet(session, idlePath, totalBytes);
    const loadedPut = await timedPut(session, totalBytes, `${healNamespace}/foreground-loaded`);
    const fullHealthAtMs = await watch.fullHealth;
    const loadedKill = await watch.timing();
    const loaded = (op: TimedOp): LoadedOp => ({
      mibPerSec: op.mibPerSec, elapsedMs: op.endedAtMs - op.startedAtMs, healingShare: watch.healingShare(op.startedAtMs, op.endedAtMs),
    });
    const result = { totalBytes, getCache, unloadedPutMibPerSec: unloadedPut.mibPerSec, unloadedGetMibPerSec: unloadedGet.mibPerSec, loadedPut: loaded(loadedPut), loadedGet: loaded(loadedGet), loadedKill };
    progress(`heal: during healing: get ${loadedGet.mibPerSec.toFixed(1)} MiB/s (healing ran ${percent(result.loadedGet.healingShare)} of it), `
      + `put ${loadedPut.mibPerSec.toFixed(1)} MiB/s (healing ran ${percent(result.loadedPut.healingShare)} of it)`);
    if (loadedPut.endedAtMs > fullHealthAtMs) {
      progress('heal: note: healing finished before the loaded put did; that put was partly unloaded (healingShare in --json)');
    }
    return result;
  } finally {
    watch.stop();
  }
}

/**
 * Before the unloaded figures: no clone running or queued, no rebalance move (after
 * the first heal the balancer may even out the survivors).
 */
async function waitUntilIdle(session: HealSession): Promise<void> {
  const deadlineMs = performance.now() + 120_000;
  for (;;) {
    const status = await session.client.admin.status();
    const repair = status.repair;
    const busy = (repair?.inflightChunks ?? 0) + (repair?.queuedChunks ?? 0) + (status.balance?.inflightMoves ?? 0);
    if (busy === 0) return;
    if (performance.now() > deadlineMs) throw new Error(`the cluster is still repairing or rebalancing after 120 s (${busy} chunks)`);
    await sleep(500);
  }
}

interface TimedOp {
  mibPerSec: number;
  startedAtMs: number;
  endedAtMs: number;
}

async function timedPut(session: HealSession, totalBytes: number, remotePath: string): Promise<TimedOp> {
  const startedAtMs = performance.now();
  await putFile(session, patternSource(totalBytes), remotePath);
  const endedAtMs = performance.now();
  return { mibPerSec: mibPerSec(totalBytes, endedAtMs - startedAtMs), startedAtMs, endedAtMs };
}

async function timedGet(session: HealSession, remotePath: string, totalBytes: number): Promise<TimedOp> {
  const sink = new DiscardSink();
  const startedAtMs = performance.now();
  await session.client.get(remotePath, sink);
  const endedAtMs = performance.now();
  if (sink.receivedBytes !== totalBytes) throw new Error(`get ${remotePath}: received ${sink.receivedBytes} of ${totalBytes} bytes`);
  return { mibPerSec: mibPerSec(totalBytes, endedAtMs - startedAtMs), startedAtMs, endedAtMs };
}

// ---- scrub ----

export async function benchScrub(sizeBytes: number): Promise<ScrubResult> {
  const totalBytes = Math.max(sizeBytes, scrubChunksMin * chunkBytes);
  const dataDir = makeTempDir('scrub');
  let cluster: DevCluster | undefined;
  let client: GfsClient | undefined;
  try {
    cluster = await startDevCluster({
      dataDir, basePort: 0, chunkservers: 1, scrubIntervalMs, scrubBytesPerSec: uncappedScrubBytesPerSec,
    });
    client = new GfsClient({ masters: cluster.masters });
    progress(`scrub: writing ${formatSize(totalBytes)} (RF 1) to one chunkserver with no scrub cap`);
    await client.put(patternSource(totalBytes), '/scrub/data', { replication: 1 });
    const timed = await timeColdPass(cluster.chunkservers[0]!.adminAddr);
    if (timed.bytes < 2 * chunkBytes) throw new Error(`only ${formatSize(timed.bytes)} of the pass was timed: too little to trust`);
    const rate = mibPerSec(timed.bytes, timed.elapsedMs);
    return { totalBytes, timedBytes: timed.bytes, mibPerSec: rate, cache: timed.cache, defaultCapMibPerSec: limits.scrubBytesPerSec / MiB };
  } catch (error) {
    process.stderr.write(`${serverLogTails(dataDir)}\n`);
    throw error;
  } finally {
    try {
      await client?.close();
    } finally {
      await cluster?.stop();
      removeTempDir(dataDir);
    }
  }
}

/**
 * Times the scrubber reading from disk: at the start of a pass (the pass counter just
 * moved) the page cache is dropped; from the first chunk verified after that to the
 * last chunk of the pass, the byte counter over the time is the rate. The counter moves
 * a chunk at a time, so both ends are chunk completions (within a sample interval).
 */
async function timeColdPass(adminAddr: string): Promise<{ bytes: number; elapsedMs: number; cache: CacheState }> {
  const deadlineMs = performance.now() + 300_000;
  const sample = async (): Promise<{ atMs: number; bytes: number; passes: number }> => {
    const metrics = await fetchMetrics(adminAddr);
    return {
      atMs: performance.now(),
      bytes: sampleOf(metrics, 'gfs_chunkserver_scrubbed_bytes_total'),
      passes: sampleOf(metrics, 'gfs_chunkserver_scrub_passes_total'),
    };
  };
  const waitFor = async (done: (s: Awaited<ReturnType<typeof sample>>) => boolean, what: string) => {
    for (;;) {
      const s = await sample();
      if (done(s)) return s;
      if (performance.now() > deadlineMs) throw new Error(`scrub: no ${what} within 300 s`);
      await sleep(scrubSampleEveryMs);
    }
  };
  // Flush now, so the drop at the pass boundary has little to write and is quick.
  dropPageCache();
  // A pass that began during the put skipped its open chunks: wait for one that began after.
  const afterPut = await sample();
  const passStart = await waitFor((s) => s.passes > afterPut.passes, 'pass end');
  const startPasses = passStart.passes;
  const cache = dropPageCache();
  const afterDrop = await sample();
  const first = await waitFor((s) => s.bytes > afterDrop.bytes || s.passes > startPasses, 'chunk verified');
  const last = await waitFor((s) => s.passes > startPasses, 'pass end');
  return { bytes: last.bytes - first.bytes, elapsedMs: last.atMs - first.atMs, cache };
}

/**
 * CPU seconds used so far by the processes below this one (the cluster's servers; a
 * killed chunkserver no longer counts). Read at both ends of healing: a difference
 * close to the core count means healing was bound by CPU, not by its limits.
 */
function serversCpuSec(): number {
  return totalCpuSec(descendantPids(process.pid));
}

function percent(ratio: number): string {
  return `${Math.round(ratio * 100)} %`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
