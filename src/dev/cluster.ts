/**
 * Starts a whole cluster on one machine as separate child processes (1 master, N
 * chunkservers, the gateway), so any one of them can be killed alone. Used by
 * `gfs dev`, the integration tests and the benchmarks.
 *
 * Each child prints exactly one JSON line on stdout when it is ready (its bound
 * addresses); its pino logs go to `<data>/logs/<name>.log`.
 *
 * Invariant: stop() ends every process this module started, also after a test failed
 * (process 'exit' hook as a last resort).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { GfsError } from '../common/errors';

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
}

export interface ProcInfo {
  name: string;
  pid: number;
  addr: string;
  adminAddr: string;
  nodeId?: string;
  dataDir: string;
  child: ChildProcess;
  args: string[];
  exited: Promise<number | null>;
}

export interface Endpoints {
  masters: string[];
  rest: string;
  s3: string;
  admin: { master: string[]; gateway: string };
  chunkservers: { id: string; addr: string; pid: number; admin: string }[];
}

const GFS_BIN = path.resolve(__dirname, '..', '..', 'cli', 'gfs.js');
const live = new Set<ChildProcess>();
process.on('exit', () => { for (const c of live) c.kill('SIGKILL'); });

function portAt(base: number, offset: number): number {
  return base === 0 ? 0 : base + offset;
}

export class DevCluster {
  master!: ProcInfo;
  chunkservers: ProcInfo[] = [];
  gateway!: ProcInfo;
  private stopped = false;


  constructor(readonly opts: DevClusterOptions) {}

  get host(): string { return this.opts.host ?? '127.0.0.1'; }
  get dataDir(): string { return this.opts.dataDir; }
  get masters(): string[] { return [this.master.addr]; }
  get rest(): string { return this.gateway.addr; }

  async start(): Promise<void> {
    const base = this.opts.basePort ?? 7000;
    fs.mkdirSync(path.join(this.opts.dataDir, 'logs'), { recursive: true });
    this.master = await this.spawnProc('master', [
      'master', '--id', 'm1', '--data', path.join(this.opts.dataDir, 'master'),
      '--listen', `${this.host}:${portAt(base, 0)}`, '--admin', `${this.host}:${portAt(base, 80)}`,
      ...this.timerFlags(),
    ]);
    const count = this.opts.chunkservers ?? 3;
    const started = await Promise.all(Array.from({ length: count }, (_, i) => this.spawnProc(`chunkserver-${i + 1}`, [
      'chunkserver', '--data', path.join(this.opts.dataDir, `chunkserver-${i + 1}`),
      '--listen', `${this.host}:${portAt(base, 101 + i)}`, '--admin', `${this.host}:${portAt(base, 201 + i)}`,
      '--masters', this.master.addr,
      ...(this.opts.heartbeatIntervalMs ? ['--heartbeat-interval', `${this.opts.heartbeatIntervalMs}ms`] : []),
      ...(this.opts.capacityBytes ? ['--capacity', String(this.opts.capacityBytes)] : []),
    ])));
    this.chunkservers = started;
    this.gateway = await this.spawnProc('gateway', [
      'gateway', '--masters', this.master.addr, '--rest', `${this.host}:${portAt(base, 1080)}`,
    ]);
    await this.waitForChunkservers(count);
  }

  private timerFlags(): string[] {
    return this.opts.deadAfterMs ? ['--dead-after', `${this.opts.deadAfterMs}ms`] : [];
  }

  /** Resolves when the master sees `count` live chunkservers. */
  async waitForChunkservers(count: number, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const res = await fetch(`http://${this.master.adminAddr}/status`);
        const status = (await res.json()) as { nodesAlive: number };
        if (status.nodesAlive >= count) return;
      } catch { /* master not answering yet */ }
      if (Date.now() > deadline) throw new GfsError('TIMEOUT', `fewer than ${count} chunkservers registered within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  endpoints(): Endpoints {
    return {
      masters: this.masters,
      rest: this.gateway.addr,
      s3: '',
      admin: { master: [this.master.adminAddr], gateway: this.gateway.addr },
      chunkservers: this.chunkservers.map((c) => ({ id: c.nodeId ?? '', addr: c.addr, pid: c.pid, admin: c.adminAddr })),
    };
  }

  writeEndpoints(): string {
    const file = path.join(this.opts.dataDir, 'endpoints.json');
    fs.writeFileSync(`${file}.tmp`, JSON.stringify(this.endpoints(), null, 2) + '\n');
    fs.renameSync(`${file}.tmp`, file);
    return file;
  }

  /** kill -9 (or another signal) of one chunkserver; resolves when it is gone. */
  async killChunkserver(i: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.chunkservers[i]!;
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

  async killMaster(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    this.master.child.kill(signal);
    await this.master.exited;
  }

  /** Starts the master again on the same address and data dir. */
  async restartMaster(): Promise<ProcInfo> {
    const args = [...this.master.args];
    args[args.indexOf('--listen') + 1] = this.master.addr;
    args[args.indexOf('--admin') + 1] = this.master.adminAddr;
    this.master = await this.spawnProc('master', args);
    return this.master;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const procs = [this.gateway, ...this.chunkservers, this.master].filter((p): p is ProcInfo => p !== undefined);
    await Promise.all(procs.map((p) => stopProc(p)));
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
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new GfsError('TIMEOUT', `${name} did not become ready; see ${logFile}`));
      }, 30_000);
      // Keep reading stdout for the child's whole life (a full pipe would block it); the
      // ready line is the first JSON object with `ready`, anything else goes to its log.
      let isReady = false;
      lines.on('line', (line) => {
        if (!isReady) {
          let ready: { ready?: boolean; addr: string; admin: string; nodeId?: string } | undefined;
          try { ready = JSON.parse(line); } catch { ready = undefined; }
          if (ready?.ready) {
            isReady = true;
            clearTimeout(timer);
            resolve({ name, pid: child.pid!, addr: ready.addr, adminAddr: ready.admin, nodeId: ready.nodeId, dataDir: args[args.indexOf('--data') + 1] ?? '', child, args, exited });
            return;
          }
        }
        fs.appendFile(logFile, `${line}\n`, () => undefined);
      });
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new GfsError('UNAVAILABLE', `${name} exited with code ${code} before it was ready; see ${logFile}`));
      });
    });
  }
}

async function stopProc(p: ProcInfo): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  const timer = setTimeout(() => p.child.kill('SIGKILL'), 5000);
  await p.exited;
  clearTimeout(timer);
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
