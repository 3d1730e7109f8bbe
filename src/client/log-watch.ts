/**
 * A Watch stream on the master for one path (docs/LOG-STREAMS.md, "Follow"): the
 * newest FileInfo it announced and a count of events, so a follower can wait for "the
 * log changed since I last looked" without polling. The stream is reopened (on the
 * leader, after a failover) with backoff when it fails; while it is down, waiters are
 * woken by their own timeout and ask the master with a Stat instead.
 *
 * Invariants:
 * - `events` only grows; `latest` is the file of the newest event received.
 * - After close() no stream is open and none will be opened.
 */
import type * as grpc from '@grpc/grpc-js';
import type { FileInfo, WatchEvent } from '../../gen/gfs';
import { fromGrpcError } from '../common/errors';
import { limits } from '../common/limits';
import { backoffMs } from '../common/backoff';
import type { Clock, Timer } from '../common/clock';
import type { Logger } from '../common/log';
import type { MasterConn } from './master-conn';

export class LogWatch {
  latest: FileInfo | undefined;
  events = 0;
  private stream: grpc.ClientReadableStream<WatchEvent> | undefined;
  private reopenTimer: Timer | undefined;
  private failures = 0;
  private closed = false;
  private readonly waiters = new Set<() => void>();

  constructor(private readonly conn: MasterConn, private readonly path: string, private readonly clock: Clock,
    private readonly log: Logger, private readonly random: () => number = Math.random) {
    this.open();
  }

  private open(): void {
    if (this.closed) return;
    const { stream, addr } = this.conn.openWatch({ path: this.path });
    this.stream = stream;
    stream.on('data', (ev: WatchEvent) => {
      this.failures = 0;
      if (ev.file) this.latest = ev.file;
      this.events++;
      this.wakeAll();
    });
    const reopen = (e?: unknown) => {
      if (this.stream !== stream || this.closed) return;
      this.stream = undefined;
      if (e !== undefined) {
        const err = fromGrpcError(e, addr);
        this.conn.moveOn(addr, err);
        this.log.debug({ path: this.path, master: addr, code: err.code }, 'watch stream failed; reopening');
      }
      this.failures++;
      // Wake waiters: the stream's silence no longer means nothing changed.
      this.wakeAll();
      const delay = backoffMs(this.failures, { minMs: limits.clientBackoffBaseMs, maxMs: limits.followRecheckMs, jitterRatio: 0.5 }, this.random);
      this.reopenTimer = this.clock.after(delay, () => this.open()).unref();
    };
    stream.on('error', reopen);
    stream.on('end', () => reopen());
  }

  /** Resolves when an event newer than `since` arrived, the stream broke, or `timeoutMs` passed. */
  changed(since: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.events > since || this.closed || signal?.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        timer.cancel();
        this.waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = this.clock.after(timeoutMs, done);
      this.waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  private wakeAll(): void {
    for (const w of [...this.waiters]) w();
  }

  close(): void {
    this.closed = true;
    this.reopenTimer?.cancel();
    const s = this.stream;
    this.stream = undefined;
    s?.cancel();
    this.wakeAll();
  }
}
