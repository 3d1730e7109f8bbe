/**
 * A counting semaphore for the gateway's heavy requests: each upload holds a write
 * window and each download a readahead, so the number running at once bounds the
 * process's memory. A request waiting for a slot reads nothing from its socket, so
 * the client is held back by TCP flow control, not buffered.
 *
 * Invariants: at most `max` holders at once; a release wakes the oldest waiter
 * (first come, first served); `waiting` never exceeds `waitersMax` (beyond it,
 * UNAVAILABLE at once: the gateway sheds load instead of queueing without end).
 */
import assert from 'node:assert';
import { GfsError } from '../../common/errors';

export class Slots {
  private held = 0;
  private readonly waiters: (() => void)[] = [];

  constructor(private readonly max: number, private readonly waitersMax: number, private readonly what: string) {
    assert.ok(max >= 1 && waitersMax >= 0);
  }

  get inUse(): number { return this.held; }
  get waiting(): number { return this.waiters.length; }

  /** Resolves with a release function once a slot is free. */
  async acquire(): Promise<() => void> {
    if (this.held >= this.max) {
      if (this.waiters.length >= this.waitersMax) throw new GfsError('UNAVAILABLE', `too many ${this.what} at once; retry later`);
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    } else {
      this.held++;
    }
    let released = false;
    return () => {
      assert.ok(!released, 'slot released twice');
      released = true;
      const next = this.waiters.shift();
      if (next) next(); // the slot passes straight to the next waiter
      else this.held--;
    };
  }
}
