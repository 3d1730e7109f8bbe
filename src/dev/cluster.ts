/**
 * Starts a whole cluster on one machine as separate child processes (1 master, N
 * chunkservers, the gateway), so any one of them can be killed alone. Used by
 * `gfs dev`, the integration tests and the benchmarks.
 *
 * Each child prints exactly one JSON line on stdout when it is ready (its bound
 * addresses); its pino logs go to `<data>/logs/<name>.log`, the cluster's own (a child
 * died, was restarted) to `<data>/logs/dev.log`.
 *
 * Before it starts anything it takes the lock of `<data>` and checks that no running
 * process holds the lock of a child's data dir (a second `gfs dev`, or a server started
 * by hand on one of its dirs), then removes a stale `endpoints.json`: a script that
 * waits for that file never reads a dead cluster's ports. endpoints.json is written
 * atomically once every server is ready, and again after a restart (new pid).
 *
 * With `auth` (gfs dev's default) the first master leader creates the bootstrap admin
 * token on an empty metadata and writes it to `<data>/credentials.json` (mode 0600,
 * `gfs master --bootstrap-credentials`); the gateway uses it as its own token. Restarts
 * keep the metadata, so the same token. Without `auth` the cluster is open (no token).
 *
 * With `restart`, a child that dies is restarted with bounded exponential backoff on
 * the same addresses and data dir (so a chunkserver keeps its node id).
 *
 * Invariants: stop() ends every process this module started, also after a test failed
 * (process 'exit' hook as a last resort); a child stopped on purpose (kill*, stop) is
 * never restarted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import net from 'node:net';
import pino, { type Logger } from 'pino';
import { GfsError } from '../common/errors';
import { sleep, systemClock, type Clock, type Timer } from '../common/clock';
import { assertDataDirFree, lockDataDir, type DataDirLock } from '../common/data-dir-lock';
import { writeFileAtomically } from '../wal';
import { restartDelayMs } from './restart-backoff';
import { limits } from '../common/limits';
import { ensureCredentials, loadCredentials, type GatewayCredentials } from '../gateway/credentials';
import { GfsClient } from '../client';

export interface DevClusterOptions {
  dataDir: string;
  /** 0 = random free ports for everything (tests). */
  basePort?: number;
  chunkservers?: number;
  deadAfterMs?: number;
  heartbeatIntervalMs?: number;
  logLevel?: string;
  /** Extra environment for every child (e.g. GFS_FAILPOINTS). */
  env?: Record<string, string>;
  /** Chunkserver capacity override, for full-disk tests. */
  capacityBytes?: number;
  host?: string;
  // Chunk lifecycle (passed to the master or the chunkservers when set).
  safeModeMinMs?: number;
  trashPeriodMs?: number;
  orphanGraceMs?: number;
  pendingTimeoutMs?: number;
  repairBytesPerSec?: number;
  balanceThresholdRatio?: number;
  scrubIntervalMs?: number;
  scrubBytesPerSec?: number;
  replicateBytesPerSec?: number;
  /** The gateway's --s3-upload-expiry (never-completed multipart uploads). */
  s3UploadExpiryMs?: number;
  /** Masters in the group (default 1: standalone). More than one needs `etcd`. */
  masters?: number;
  /** etcd endpoints for the master election. */
  etcd?: string;
  electionTtlMs?: number;
  /** Election prefix and NATS subject token; a random one keeps test clusters sharing an etcd apart. */
  cluster?: string;
  /** NATS server(s): every process publishes cluster events there (docs/EVENTS.md). */
  nats?: string;
  /** Extra flags for the master / every chunkserver, verbatim. */
  masterArgs?: string[];
  chunkserverArgs?: string[];
  gatewayArgs?: string[];
  /**
   * Restart a child that dies, with backoff (`gfs dev` does unless --no-restart). Off by
   * default here: tests kill children and expect them to stay dead.
   */
  restart?: boolean;
  /** One human line per child death or restart (`gfs dev` prints them on the terminal). */
  report?: (line: string) => void;
  clock?: Clock;
  /**
   * Tests: the address master `from` dials to reach master `to` (indexes from 0; default
   * `addr`, the master itself), e.g. a proxy that can cut that one link. Clients still
   * dial the masters directly.
   */
  peerAddr?: (from: number, to: number, addr: string) => string;
  /**
   * Tokens on (gfs dev: yes unless --no-auth; tests: only when they ask): the master
   * creates the bootstrap admin in credentials.json and the gateway uses it.
   */
  auth?: boolean;
}

export interface ProcInfo {
  name: string;
  pid: number;
  addr: string;
  adminAddr: string;
  nodeId?: string;
  /** The gateway's S3 address, from its ready line. */
  s3Addr?: string;
  dataDir: string;
  child: ChildProcess;
  args: string[];
  exited: Promise<number | null>;
  /** clock.monoMs() when it became ready. */
  readyAtMs: number;
}

export interface Endpoints {
  masters: string[];
  rest: string;
  /** The dashboard (rest + /ui): it asks for the token in credentials.json, or takes ?token=. */
  ui: string;
  s3: string;
  admin: { master: string[]; gateway: string };
  pids: { masters: number[]; gateway: number };
  chunkservers: { id: string; addr: string; pid: number; admin: string }[];
  /** With --nats: where events go, under gfs.<cluster>.events.<kind>. */
  nats?: string;
  cluster?: string;
}

const GFS_BIN = path.resolve(__dirname, '..', '..', 'cli', 'gfs.js');
const live = new Set<ChildProcess>();
process.on('exit', () => { for (const c of live) c.kill('SIGKILL'); });

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function portAt(base: number, offset: number): number {
  return base === 0 ? 0 : base + offset;
}

export class DevCluster {
  masterProcs: ProcInfo[] = [];
  chunkservers: ProcInfo[] = [];
  gateway!: ProcInfo;
  /** With auth: the bootstrap admin token and its S3 keys (credentialsFile). */
  credentials: GatewayCredentials | undefined;
  private stopped = false;
  private readonly clock: Clock;
  private dirLock: DataDirLock | undefined;
  private log: Logger = pino({ level: 'silent' });
  private logFile: ReturnType<typeof pino.destination> | undefined;
  /** Children stopped on purpose: their exit is not a death. */
  private readonly deliberate = new WeakSet<ProcInfo>();
  /** Child name → the wait before its current run (the backoff state). */
  private readonly backoffMs = new Map<string, number>();
  private readonly restartTimers = new Set<Timer>();
  private readonly restarting = new Set<Promise<void>>();
  /** Set once endpoints.json was first written; restarts rewrite it. Chains the writes. */
  private endpointsWrite: Promise<string> | undefined;

  constructor(readonly opts: DevClusterOptions) {
    this.clock = opts.clock ?? systemClock;
    this.defaultClusterName = (opts.masters ?? 1) === 1 ? 'default' : `dev-${process.pid}-${Date.now()}`;
  }

  /** --nats (and the cluster token the subjects use) for a child, when the cluster has NATS. */
  private natsFlags(withCluster = true): string[] {
    if (!this.opts.nats) return [];
    return ['--nats', this.opts.nats, ...(withCluster ? ['--cluster', this.clusterName] : [])];
  }

  get host(): string { return this.opts.host ?? '127.0.0.1'; }
  /** The cluster token: election prefix of a group, subject token of its events. */
  get clusterName(): string { return this.opts.cluster ?? this.defaultClusterName; }
  private readonly defaultClusterName: string;
  get dataDir(): string { return this.opts.dataDir; }
  /** The first master (the only one when standalone). */
  get master(): ProcInfo { return this.masterProcs[0]!; }
  get masters(): string[] { return this.masterProcs.map((m) => m.addr); }
  get rest(): string { return this.gateway.addr; }

  get credentialsFile(): string { return path.join(this.opts.dataDir, 'credentials.json'); }

  private masterDir(i: number): string {
    return path.join(this.opts.dataDir, (this.opts.masters ?? 1) === 1 ? 'master' : `master-${i + 1}`);
  }

  private chunkserverDir(i: number): string {
    return path.join(this.opts.dataDir, `chunkserver-${i + 1}`);
  }

  async start(): Promise<void> {
    const base = this.opts.basePort ?? 7000;
    const masterCount = this.opts.masters ?? 1;
    const count = this.opts.chunkservers ?? 3;
    this.dirLock = lockDataDir(this.opts.dataDir);
    for (let i = 0; i < masterCount; i++) assertDataDirFree(this.masterDir(i));
    for (let i = 0; i < count; i++) assertDataDirFree(this.chunkserverDir(i));
    fs.rmSync(this.endpointsFile, { force: true });
    fs.mkdirSync(path.join(this.opts.dataDir, 'logs'), { recursive: true });
    this.logFile = pino.destination({ dest: path.join(this.opts.dataDir, 'logs', 'dev.log'), sync: true });
    this.log = pino({ name: 'dev', base: { pid: process.pid, name: 'dev' } }, this.logFile);
    if (this.opts.auth) this.ensureClusterSecret();
    const bootstrap = this.opts.auth ? ['--bootstrap-credentials', this.credentialsFile, '--cluster-secret-file', this.clusterSecretFile] : [];
    // An open cluster: static S3 keys in credentials.json (the gateway's --s3-credentials), kept across restarts.
    if (!this.opts.auth) this.credentials = ensureCredentials(this.credentialsFile).credentials;
    if (masterCount === 1) {
      this.masterProcs = [await this.spawnProc('master', [
        'master', '--id', 'm1', '--data', this.masterDir(0),
        '--listen', `${this.host}:${portAt(base, 0)}`, '--admin', `${this.host}:${portAt(base, 80)}`,
        ...this.natsFlags(),
        ...bootstrap, ...this.timerFlags(),
      ])];
    } else {
      if (!this.opts.etcd) throw new GfsError('INVALID_ARGUMENT', 'a master group needs etcd');
      // Every member must know every address up front.
      const ports = await Promise.all(Array.from({ length: masterCount }, (_, i) => (base === 0 ? freePort(this.host) : Promise.resolve(base + i))));
      const peers = (from: number) => ports.map((p, to) => {
        const addr = `${this.host}:${p}`;
        return `m${to + 1}=${to === from || !this.opts.peerAddr ? addr : this.opts.peerAddr(from, to, addr)}`;
      }).join(',');
      const clusterName = this.clusterName;
      this.masterProcs = await Promise.all(ports.map((p, i) => this.spawnProc(`master-${i + 1}`, [
        'master', '--id', `m${i + 1}`, '--data', this.masterDir(i),
        '--listen', `${this.host}:${p}`, '--admin', `${this.host}:${portAt(base, 80 + i)}`,
        '--peers', peers(i), '--etcd', this.opts.etcd!, '--cluster', clusterName,
        ...(this.opts.electionTtlMs ? ['--election-ttl', `${this.opts.electionTtlMs}ms`] : []),
        ...this.natsFlags(false),
        ...bootstrap, ...this.timerFlags(),
      ])));
    }
    const started = await Promise.all(Array.from({ length: count }, (_, i) => this.spawnProc(`chunkserver-${i + 1}`, [
      'chunkserver', '--data', this.chunkserverDir(i),
      '--listen', `${this.host}:${portAt(base, 101 + i)}`, '--admin', `${this.host}:${portAt(base, 201 + i)}`,
      '--masters', this.masters.join(','),
      ...(this.opts.heartbeatIntervalMs ? ['--heartbeat-interval', `${this.opts.heartbeatIntervalMs}ms`] : []),
      ...(this.opts.capacityBytes ? ['--capacity', String(this.opts.capacityBytes)] : []),
      ...this.chunkserverFlags(),
    ])));
    this.chunkservers = started;
    if (this.opts.auth) this.credentials = await this.waitForCredentials();
    this.gateway = await this.spawnProc('gateway', [
      'gateway', '--masters', this.masters.join(','), '--rest', `${this.host}:${portAt(base, 1080)}`, ...this.natsFlags(),
      ...(this.opts.auth ? ['--credentials', this.credentialsFile, '--audit-log', path.join(this.opts.dataDir, 'logs', 'audit.log')] : []),
      '--s3', `${this.host}:${portAt(base, limits.devS3PortOffset)}`,
      ...(this.opts.auth ? [] : ['--s3-credentials', this.credentialsFile]),
      ...(this.opts.s3UploadExpiryMs ? ['--s3-upload-expiry', `${this.opts.s3UploadExpiryMs}ms`] : []),
      ...(this.opts.gatewayArgs ?? []),
    ]);
    await this.waitForChunkservers(count);
  }

  /**
   * The bootstrap credentials once they are this cluster's: a file left by an older
   * metadata is not taken until the master has written the new one (its token works).
   */
  private async waitForCredentials(): Promise<GatewayCredentials> {
    const deadline = this.clock.monoMs() + limits.devCredentialsWaitMs;
    let last = '';
    for (;;) {
      if (fs.existsSync(this.credentialsFile)) {
        const c = loadCredentials(this.credentialsFile);
        const client = new GfsClient({ masters: this.masters, token: c.token, deadlineMs: 2_000 });
        try {
          await client.admin.listTokens();
          this.log.info({ file: this.credentialsFile }, 'bootstrap credentials ready');
          return c;
        } catch (e) {
          last = (e as Error).message;
        } finally {
          await client.close();
        }
      }
      if (this.clock.monoMs() > deadline) {
        throw new GfsError('TIMEOUT', `no working bootstrap credentials in ${this.credentialsFile} (${last || 'no file'}); a metadata with tokens needs its own credentials file`);
      }
      await sleep(this.clock, 100);
    }
  }

  private timerFlags(): string[] {
    const o = this.opts;
    const ms = (flag: string, v: number | undefined) => (v === undefined ? [] : [flag, `${v}ms`]);
    return [
      ...(o.deadAfterMs ? ['--dead-after', `${o.deadAfterMs}ms`] : []),
      ...ms('--safe-mode-wait', o.safeModeMinMs),
      ...ms('--trash-period', o.trashPeriodMs),
      ...ms('--orphan-grace', o.orphanGraceMs),
      ...ms('--pending-timeout', o.pendingTimeoutMs),
      ...(o.repairBytesPerSec === undefined ? [] : ['--repair-bandwidth', String(o.repairBytesPerSec)]),
      ...(o.balanceThresholdRatio === undefined ? [] : ['--balance-threshold', String(o.balanceThresholdRatio)]),
      ...(o.masterArgs ?? []),
    ];
  }

  /** With auth: the secret chunkserver heartbeats carry (`DATA/cluster-secret`, 0600), made once and kept. */
  get clusterSecretFile(): string { return path.join(this.opts.dataDir, 'cluster-secret'); }

  private ensureClusterSecret(): void {
    if (fs.existsSync(this.clusterSecretFile)) return;
    const tmp = `${this.clusterSecretFile}.tmp`;
    fs.writeFileSync(tmp, crypto.randomBytes(32).toString('base64url') + '\n', { mode: 0o600 });
    fs.chmodSync(tmp, 0o600);
    fs.renameSync(tmp, this.clusterSecretFile);
  }

  private chunkserverFlags(): string[] {
    const o = this.opts;
    return [
      ...(o.auth ? ['--cluster-secret-file', this.clusterSecretFile] : []),
      ...this.natsFlags(),
      ...(o.scrubIntervalMs === undefined ? [] : ['--scrub-interval', `${o.scrubIntervalMs}ms`]),
      ...(o.scrubBytesPerSec === undefined ? [] : ['--scrub-rate', String(o.scrubBytesPerSec)]),
      ...(o.replicateBytesPerSec === undefined ? [] : ['--replicate-rate', String(o.replicateBytesPerSec)]),
      ...(o.chunkserverArgs ?? []),
    ];
  }

  /** Adds one more chunkserver (tests: room for healing). */
  async addChunkserver(): Promise<ProcInfo> {
    const i = this.chunkservers.length;
    const proc = await this.spawnProc(`chunkserver-${i + 1}`, [
      'chunkserver', '--data', this.chunkserverDir(i),
      '--listen', `${this.host}:0`, '--admin', `${this.host}:0`, '--masters', this.masters.join(','),
      ...(this.opts.heartbeatIntervalMs ? ['--heartbeat-interval', `${this.opts.heartbeatIntervalMs}ms`] : []),
      ...(this.opts.capacityBytes ? ['--capacity', String(this.opts.capacityBytes)] : []),
      ...this.chunkserverFlags(),
    ]);
    this.chunkservers.push(proc);
    return proc;
  }

  /** Resolves when the master sees `count` live chunkservers. */
  async waitForChunkservers(count: number, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        // Every master hears every heartbeat: any one that answers will do.
        for (const m of this.masterProcs) {
          if (m.child.exitCode !== null || m.child.signalCode !== null) continue;
          const res = await fetch(`http://${m.adminAddr}/status`);
          const status = (await res.json()) as { nodesAlive: number };
          if (status.nodesAlive >= count) return;
        }
      } catch { /* master not answering yet */ }
      if (Date.now() > deadline) throw new GfsError('TIMEOUT', `fewer than ${count} chunkservers registered within ${timeoutMs} ms`);
      await sleep(this.clock, limits.devPollIntervalMs);
    }
  }

  endpoints(): Endpoints {
    return {
      masters: this.masters,
      rest: this.gateway.addr,
      ui: `${this.gateway.addr}/ui`,
      s3: this.gateway.s3Addr ?? '',
      admin: { master: this.masterProcs.map((m) => m.adminAddr), gateway: this.gateway.addr },
      pids: { masters: this.masterProcs.map((m) => m.pid), gateway: this.gateway.pid },
      chunkservers: this.chunkservers.map((c) => ({ id: c.nodeId ?? '', addr: c.addr, pid: c.pid, admin: c.adminAddr })),
      ...(this.opts.nats ? { nats: this.opts.nats, cluster: this.clusterName } : {}),
    };
  }

  get endpointsFile(): string { return path.join(this.opts.dataDir, 'endpoints.json'); }

  /**
   * Writes endpoints.json atomically (temp file, fsync, rename, fsync of the dir), so a
   * reader sees the whole file or none; call it once every server is ready. Restarts
   * rewrite it from then on. Resolves with its path.
   */
  writeEndpoints(): Promise<string> {
    const file = this.endpointsFile;
    const write = async () => {
      await writeFileAtomically(file, `${file}.tmp`, [Buffer.from(JSON.stringify(this.endpoints(), null, 2) + '\n')]);
      return file;
    };
    this.endpointsWrite = (this.endpointsWrite ?? Promise.resolve(file)).then(write, write);
    return this.endpointsWrite;
  }

  /** kill -9 (or another signal) of one chunkserver; resolves when it is gone. */
  async killChunkserver(i: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.chunkservers[i]!;
    this.deliberate.add(p);
    p.child.kill(signal);
    await p.exited;
  }

  /** Starts chunkserver i again on the same address and data dir. */
  async restartChunkserver(i: number): Promise<ProcInfo> {
    const old = this.chunkservers[i]!;
    const args = [...old.args];
    args[args.indexOf('--listen') + 1] = old.addr;
    this.chunkservers[i] = await this.spawnProc(old.name, args);
    return this.chunkservers[i]!;
  }

  async killMaster(signal: NodeJS.Signals = 'SIGKILL', i = 0): Promise<void> {
    const m = this.masterProcs[i]!;
    this.deliberate.add(m);
    m.child.kill(signal);
    await m.exited;
  }

  /** Starts master i again on the same address and data dir. */
  async restartMaster(i = 0): Promise<ProcInfo> {
    const old = this.masterProcs[i]!;
    this.masterProcs[i] = await this.spawnProc(old.name, pinnedArgs(old));
    return this.masterProcs[i]!;
  }

  /** Index of the master that reports itself leader now, or -1. */
  async leaderIndex(): Promise<number> {
    for (let i = 0; i < this.masterProcs.length; i++) {
      const m = this.masterProcs[i]!;
      if (m.child.exitCode !== null || m.child.signalCode !== null) continue;
      try {
        const status = (await (await fetch(`http://${m.adminAddr}/status`)).json()) as { masters: { role: string }[] };
        if (status.masters[0]?.role === 'leader') return i;
      } catch { /* not answering */ }
    }
    return -1;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const timer of this.restartTimers) timer.cancel();
    // A restart under way stops its new child itself once it sees `stopped`.
    await Promise.all(this.restarting);
    const procs = this.current();
    for (const p of procs) this.deliberate.add(p);
    await Promise.all(procs.map((p) => stopProc(p, this.clock)));
    // endpoints.json describes running servers only: gone with them.
    if (this.endpointsWrite) {
      await this.endpointsWrite.catch(() => undefined);
      fs.rmSync(this.endpointsFile, { force: true });
    }
    this.dirLock?.release();
    this.logFile?.end();
  }

  /** Every child this cluster runs now (or ran last, for a dead one), in stop order. */
  private current(): ProcInfo[] {
    return [this.gateway, ...this.chunkservers, ...this.masterProcs].filter((p): p is ProcInfo => p !== undefined);
  }

  private onChildDied(proc: ProcInfo): void {
    if (this.stopped || this.deliberate.has(proc) || !this.current().includes(proc)) return;
    const how = proc.child.signalCode ? `killed by ${proc.child.signalCode}` : `exit code ${proc.child.exitCode}`;
    const what = `${proc.name} (pid ${proc.pid}) died (${how})`;
    if (!this.opts.restart) {
      this.log.error({ child: proc.name, childPid: proc.pid, how }, 'child died; not restarting (--no-restart)');
      this.opts.report?.(`gfs dev: ${what}; not restarting (--no-restart)`);
      return;
    }
    this.scheduleRestart(proc, this.clock.monoMs() - proc.readyAtMs, what);
  }

  private scheduleRestart(old: ProcInfo, uptimeMs: number, what: string): void {
    const delayMs = restartDelayMs(this.backoffMs.get(old.name), uptimeMs);
    this.backoffMs.set(old.name, delayMs);
    this.log.error({ child: old.name, childPid: old.pid, delayMs }, `${what}; restarting`);
    this.opts.report?.(`gfs dev: ${what}; restarting it in ${delayMs} ms`);
    const timer = this.clock.after(delayMs, () => {
      this.restartTimers.delete(timer);
      const restart: Promise<void> = this.respawn(old).finally(() => this.restarting.delete(restart));
      this.restarting.add(restart);
    });
    this.restartTimers.add(timer);
  }

  /** Starts a dead child again on the same addresses and data dir. */
  private async respawn(old: ProcInfo): Promise<void> {
    if (this.stopped) return;
    let proc: ProcInfo;
    try {
      proc = await this.spawnProc(old.name, pinnedArgs(old));
    } catch (e) {
      if (!this.stopped) this.scheduleRestart(old, 0, `${old.name} did not come back (${(e as Error).message})`);
      return;
    }
    if (this.stopped) {
      this.deliberate.add(proc);
      await stopProc(proc, this.clock);
      return;
    }
    if (this.gateway === old) this.gateway = proc;
    for (const list of [this.masterProcs, this.chunkservers]) {
      const i = list.indexOf(old);
      if (i >= 0) list[i] = proc;
    }
    this.log.info({ child: proc.name, childPid: proc.pid, nodeId: proc.nodeId }, 'child restarted');
    this.opts.report?.(`gfs dev: ${proc.name} restarted (pid ${proc.pid})`);
    if (this.endpointsWrite) await this.writeEndpoints().catch((e: Error) => this.log.error({ err: e }, 'could not rewrite endpoints.json'));
  }

  private spawnProc(name: string, args: string[]): Promise<ProcInfo> {
    const logFile = path.join(this.opts.dataDir, 'logs', `${name}.log`);
    const logFd = fs.openSync(logFile, 'a');
    // GFS_CHILD_NODE_ARGS passes Node flags to every server, e.g. "--cpu-prof" for profiling.
    const nodeArgs = (process.env.GFS_CHILD_NODE_ARGS ?? '').split(' ').filter(Boolean);
    const child = spawn(process.execPath, [...nodeArgs, GFS_BIN, ...args], {
      stdio: ['ignore', 'pipe', logFd],
      env: { ...process.env, GFS_LOG_LEVEL: this.opts.logLevel ?? process.env.GFS_LOG_LEVEL ?? 'info', ...this.opts.env },
    });
    fs.closeSync(logFd);
    live.add(child);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => { live.delete(child); resolve(code); }));
    return new Promise((resolve, reject) => {
      const lines = readline.createInterface({ input: child.stdout! });
      const timer = this.clock.after(limits.devChildReadyTimeoutMs, () => {
        child.kill('SIGKILL');
        reject(new GfsError('TIMEOUT', `${name} did not become ready; see ${logFile}`));
      });
      // Keep reading stdout for the child's whole life (a full pipe would block it); the
      // ready line is the first JSON object with `ready`, anything else goes to its log.
      let isReady = false;
      lines.on('line', (line) => {
        if (!isReady) {
          let ready: { ready?: boolean; addr: string; admin: string; nodeId?: string; s3?: string } | undefined;
          try { ready = JSON.parse(line); } catch { ready = undefined; }
          if (ready?.ready) {
            isReady = true;
            timer.cancel();
            const info: ProcInfo = {
              name, pid: child.pid!, addr: ready.addr, adminAddr: ready.admin, nodeId: ready.nodeId, s3Addr: ready.s3,
              dataDir: args[args.indexOf('--data') + 1] ?? '', child, args, exited, readyAtMs: this.clock.monoMs(),
            };
            // The command that brings this child back where it is now, for a restart by hand.
            this.log.info({ child: name, childPid: info.pid, command: ['gfs', ...pinnedArgs(info)].join(' ') }, 'child ready');
            void exited.then(() => this.onChildDied(info));
            resolve(info);
            return;
          }
        }
        fs.appendFile(logFile, `${line}\n`, () => undefined);
      });
      void exited.then((code) => {
        timer.cancel();
        reject(new GfsError('UNAVAILABLE', `${name} exited with code ${code} before it was ready; see ${logFile}`));
      });
    });
  }
}

/** A child's arguments with the addresses it had bound pinned, so it comes back where it was. */
function pinnedArgs(old: ProcInfo): string[] {
  const args = [...old.args];
  const pin = (flag: string, value: string) => {
    const i = args.indexOf(flag);
    if (i >= 0) args[i + 1] = value;
  };
  pin('--listen', old.addr);
  pin('--admin', old.adminAddr);
  pin('--rest', old.addr.replace(/^http:\/\//, ''));
  if (old.s3Addr) pin('--s3', old.s3Addr.replace(/^http:\/\//, ''));
  return args;
}

async function stopProc(p: ProcInfo, clock: Clock): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  const timer = clock.after(limits.devStopGraceMs, () => p.child.kill('SIGKILL'));
  await p.exited;
  timer.cancel();
}

export async function startDevCluster(opts: DevClusterOptions): Promise<DevCluster> {
  const cluster = new DevCluster(opts);
  try {
    await cluster.start();
  } catch (e) {
    await cluster.stop();
    throw e;
  }
  return cluster;
}
