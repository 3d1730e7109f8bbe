/**
 * Group commit: the single writer of a log. Work runs one step at a time in call
 * order; a step is either one flush of every record queued back to back, or one
 * control operation (truncate, checkpoint pruning, close) that needs the files to
 * itself.
 *
 * While a flush is in progress new records queue; when it finishes, everything
 * queued goes into the next flush. Batching comes from that, never from a timer.
 * Between steps the writer yields one turn of the event loop so that callers woken
 * by the previous flush can queue their next records and join the next flush.
 *
 * Invariants:
 * - steps never overlap, and run in the order they were queued;
 * - a records promise resolves only after `flush` resolved for a batch holding them;
 * - after any step fails, the queue is failed: that step, everything queued and
 *   everything queued later is rejected with the same error (the disk state is unknown
 *   until the log is reopened and recovered).
 */
type Settle = { resolve: () => void; reject: (e: unknown) => void };
type Item<R> =
  | ({ kind: 'records'; records: readonly R[] } & Settle)
  | ({ kind: 'control'; run: () => Promise<void> } & Settle);

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class GroupCommitQueue<R> {
  private readonly items: Item<R>[] = [];
  private running = false;
  private failure: { error: unknown } | undefined;

  /** `flush` makes a batch durable; it gets records in queue order. */
  constructor(private readonly flush: (records: R[]) => Promise<void>) {}

  /** The error that failed the queue, if one did. */
  get failed(): { error: unknown } | undefined {
    return this.failure;
  }

  enqueueRecords(records: readonly R[]): Promise<void> {
    return new Promise((resolve, reject) => this.push({ kind: 'records', records, resolve, reject }));
  }

  enqueueControl(run: () => Promise<void>): Promise<void> {
    return new Promise((resolve, reject) => this.push({ kind: 'control', run, resolve, reject }));
  }

  private push(item: Item<R>): void {
    if (this.failure) {
      item.reject(this.failure.error);
      return;
    }
    this.items.push(item);
    if (!this.running) {
      this.running = true;
      // Start on the next turn, not now: records queued in the same turn share the first flush.
      setImmediate(() => void this.work());
    }
  }

  private async work(): Promise<void> {
    for (;;) {
      const head = this.items[0];
      if (head === undefined) {
        this.running = false;
        return;
      }
      let count = 1;
      if (head.kind === 'records') while (this.items[count]?.kind === 'records') count++;
      const step = this.items.splice(0, count);
      try {
        if (head.kind === 'control') {
          await head.run();
        } else {
          const batch: R[] = [];
          for (const item of step) {
            if (item.kind === 'records') for (const r of item.records) batch.push(r);
          }
          await this.flush(batch);
        }
      } catch (error) {
        this.fail(error, [...step, ...this.items.splice(0, this.items.length)]);
        return;
      }
      for (const item of step) item.resolve();
      await yieldToEventLoop();
    }
  }

  private fail(error: unknown, unsettled: Item<R>[]): void {
    this.failure = { error };
    this.running = false;
    for (const item of unsettled) item.reject(error);
  }
}
