/**
 * Which epoch each index of the log carries, kept as the index where each epoch
 * starts. Epochs change once per leader, so this stays a handful of entries however
 * long the log is, and answers "epoch of record i" without touching the disk (the
 * WAL needs it after a truncation; replication needs it to match logs).
 *
 * Invariants: start indices strictly grow; epochs never decrease along the list.
 */
import assert from 'node:assert/strict';

export interface EpochStart {
  /** First index carrying `epoch`; it lasts until the next start. */
  index: number;
  epoch: number;
}

export class EpochHistory {
  private readonly starts: EpochStart[];
  private last: number;

  /**
   * `starts` describe indices from starts[0].index up to `lastIndex`. The first entry may
   * stand for a record that is no longer in the segments (a checkpoint's, or index 0 with
   * epoch 0 for the empty log).
   */
  constructor(starts: EpochStart[], lastIndex: number) {
    assert(starts.length > 0, 'epoch history needs a base entry');
    for (let i = 1; i < starts.length; i++) {
      assert(starts[i]!.index > starts[i - 1]!.index, 'epoch starts must grow');
      assert(starts[i]!.epoch > starts[i - 1]!.epoch, 'epochs never decrease');
    }
    assert(lastIndex >= starts.at(-1)!.index);
    this.starts = starts.map((s) => ({ ...s }));
    this.last = lastIndex;
  }

  get lastIndex(): number {
    return this.last;
  }

  get lastEpoch(): number {
    return this.starts.at(-1)!.epoch;
  }

  /** Lowest index whose epoch is known. */
  get lowIndex(): number {
    return this.starts[0]!.index;
  }

  /** Records the next index of the log. */
  noteRecord(index: number, epoch: number): void {
    assert.equal(index, this.last + 1, 'indices grow by one');
    assert(epoch >= this.lastEpoch, 'epochs never decrease');
    if (epoch !== this.lastEpoch) this.starts.push({ index, epoch });
    this.last = index;
  }

  /** Epoch of the record at `index`, or undefined outside [lowIndex, lastIndex]. */
  epochAt(index: number): number | undefined {
    if (index < this.lowIndex || index > this.last) return undefined;
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]!.index <= index) lo = mid;
      else hi = mid - 1;
    }
    return this.starts[lo]!.epoch;
  }

  /** Forgets every index above `index`. */
  truncateAfter(index: number): void {
    assert(index >= this.lowIndex && index <= this.last);
    while (this.starts.at(-1)!.index > index) this.starts.pop();
    this.last = index;
  }

  /** Forgets every index below `index`, keeping the epoch of `index` itself. */
  forgetBefore(index: number): void {
    if (index <= this.lowIndex) return;
    assert(index <= this.last);
    const epoch = this.epochAt(index)!;
    while (this.starts.length > 1 && this.starts[1]!.index <= index) this.starts.shift();
    this.starts[0] = { index, epoch };
  }

  /** Replaces the whole history by one record (a checkpoint that supersedes the log). */
  resetTo(index: number, epoch: number): void {
    this.starts.length = 0;
    this.starts.push({ index, epoch });
    this.last = index;
  }
}
