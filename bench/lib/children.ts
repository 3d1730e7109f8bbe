/**
 * Benchmark roles run as forked Node processes (like real chunkservers, each with its
 * own event loop and CPU account). The parent talks to them over the IPC channel:
 * a child says `ready`, later sends its `result`, and exits. Every child is
 * registered so cleanup.ts can kill it if the run stops early.
 */
import { fork, type ChildProcess } from 'node:child_process';

export interface ChildMessage {
  type: string;
  [field: string]: unknown;
}

interface Waiter {
  type: string;
  resolve: (message: ChildMessage) => void;
  reject: (error: Error) => void;
}

const liveChildren = new Set<BenchChild>();

export class BenchChild {
  private readonly inbox: ChildMessage[] = [];
  private readonly waiters: Waiter[] = [];
  private exitError: Error | undefined;

  private constructor(readonly role: string, readonly process: ChildProcess) {
    process.on('message', (message) => this.deliver(message as ChildMessage));
    process.on('exit', (code, signal) => this.onExit(code, signal));
    process.on('error', (error) => this.onExit(null, null, error));
  }

  /** Forks `modulePath` (a compiled bench file) with the role name as its first argument. */
  static fork(modulePath: string, role: string, args: string[] = []): BenchChild {
    // execArgv [] so a parent started with --inspect or a loader does not pass it on.
    const child = fork(modulePath, [role, ...args], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const benchChild = new BenchChild(role, child);
    liveChildren.add(benchChild);
    return benchChild;
  }

  get pid(): number {
    return this.process.pid ?? -1;
  }

  /** The next message of this type, whether it already arrived or is still to come. */
  next(type: string): Promise<ChildMessage> {
    const index = this.inbox.findIndex((message) => message.type === type);
    if (index >= 0) return Promise.resolve(this.inbox.splice(index, 1)[0]!);
    if (this.exitError) return Promise.reject(this.exitError);
    return new Promise((resolve, reject) => this.waiters.push({ type, resolve, reject }));
  }

  send(message: ChildMessage): void {
    this.process.send(message);
  }

  kill(): void {
    if (this.process.exitCode === null && this.process.signalCode === null) this.process.kill('SIGKILL');
    liveChildren.delete(this);
  }

  private deliver(message: ChildMessage): void {
    if (message.type === 'error') {
      this.fail(new Error(`bench child ${this.role}: ${String(message.message)}`));
      return;
    }
    const index = this.waiters.findIndex((waiter) => waiter.type === message.type);
    if (index < 0) {
      this.inbox.push(message);
      return;
    }
    this.waiters.splice(index, 1)[0]!.resolve(message);
  }

  private onExit(code: number | null, signal: string | null, error?: Error): void {
    liveChildren.delete(this);
    this.fail(error ?? new Error(`bench child ${this.role} exited (code ${code}, signal ${signal}) before answering`));
  }

  private fail(error: Error): void {
    this.exitError ??= error;
    for (const waiter of this.waiters.splice(0)) waiter.reject(this.exitError);
  }
}

export function killAllChildren(): void {
  for (const child of [...liveChildren]) child.kill();
}

// ---- child side ----

/** In a forked role: report to the parent. */
export function sendToParent(message: ChildMessage): Promise<void> {
  return new Promise((resolve, reject) => {
    process.send!(message, undefined, undefined, (error) => (error ? reject(error) : resolve()));
  });
}

/**
 * Runs a child role: dies with the parent (the IPC channel closes when the parent
 * exits, even on SIGKILL, so no orphan keeps a port or a file open), reports a
 * failure as an `error` message, and exits once the role is done.
 */
export function runChildRole(role: () => Promise<void>): void {
  if (!process.send) throw new Error('a bench role must be started by the bench runner (child_process.fork)');
  process.on('disconnect', () => process.exit(1));
  role().then(
    () => process.exit(0),
    (error: unknown) => {
      const message = error instanceof Error ? error.stack ?? error.message : String(error);
      sendToParent({ type: 'error', message }).finally(() => process.exit(1));
    },
  );
}
