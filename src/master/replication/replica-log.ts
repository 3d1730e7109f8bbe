/**
 * A replica's view of its log: the newest snapshot plus the entries after it, in memory.
 * It mirrors what the replica has asked storage to write (durable or not); the WAL on
 * disk may hold more history (it keeps segments back to the older checkpoint), which
 * the replica never needs.
 *
 * Invariants (asserted): indices are contiguous from snapshotIndex + 1; epochs never
 * decrease along the log; nothing at or below snapshotIndex is ever changed.
 */
import assert from 'node:assert/strict';
import type { Entry, Snapshot } from './types';

export class ReplicaLog {
  private base: Snapshot | null;
  /** entries[i] has index baseIndex + 1 + i. */
  private entries: Entry[];

  constructor(snapshot: Snapshot | null, entries: readonly Entry[]) {
    this.base = snapshot;
    this.entries = [];
    this.append(entries);
  }

  /** The newest snapshot, or null when the log starts at index 1. */
  get snapshot(): Snapshot | null {
    return this.base;
  }

  get snapshotIndex(): number {
    return this.base?.index ?? 0;
  }

  get lastIndex(): number {
    return this.snapshotIndex + this.entries.length;
  }

  get lastEpoch(): number {
    return this.entries.at(-1)?.epoch ?? this.base?.epoch ?? 0;
  }

  /** Epoch of entry `index`, known from snapshotIndex to lastIndex (index 0 has epoch 0). */
  epochAt(index: number): number | undefined {
    if (index === this.snapshotIndex) return this.base?.epoch ?? 0;
    if (index < this.snapshotIndex || index > this.lastIndex) return undefined;
    return this.entries[index - this.snapshotIndex - 1]!.epoch;
  }

  /** True when the log holds entry (index, epoch), counting the snapshot's own. */
  has(index: number, epoch: number): boolean {
    return this.epochAt(index) === epoch;
  }

  entryAt(index: number): Entry {
    const entry = this.entries[index - this.snapshotIndex - 1];
    assert(entry !== undefined && entry.index === index, `entry ${index} is not in the log (${this.snapshotIndex + 1}..${this.lastIndex})`);
    return entry;
  }

  /** Entries from `from` to `to` inclusive, clamped to the log; `from` must be past the snapshot. */
  slice(from: number, to: number): Entry[] {
    assert(from > this.snapshotIndex, `entries from ${from} are compacted (snapshot at ${this.snapshotIndex})`);
    const start = from - this.snapshotIndex - 1;
    const end = Math.min(to, this.lastIndex) - this.snapshotIndex;
    return start >= end ? [] : this.entries.slice(start, end);
  }

  /** First index of the run of entries that share the epoch of `index`, not below snapshotIndex + 1. */
  firstIndexOfEpochRun(index: number): number {
    const epoch = this.epochAt(index);
    assert(epoch !== undefined && index > this.snapshotIndex);
    let first = index;
    while (first - 1 > this.snapshotIndex && this.epochAt(first - 1) === epoch) first--;
    return first;
  }

  append(entries: readonly Entry[]): void {
    let expected = this.lastIndex + 1;
    let epoch = this.lastEpoch;
    for (const e of entries) {
      assert.equal(e.index, expected, 'log indices are contiguous');
      assert(e.epoch >= epoch, `log epochs never decrease (entry ${e.index} has epoch ${e.epoch} after ${epoch})`);
      expected++;
      epoch = e.epoch;
    }
    for (const e of entries) this.entries.push(e);
  }

  truncateAfter(index: number): void {
    assert(index >= this.snapshotIndex && index <= this.lastIndex, `cannot truncate after ${index}`);
    this.entries.length = index - this.snapshotIndex;
  }

  /**
   * Makes `snapshot` the base. If the log holds its (index, epoch), the entries after it
   * stay (a checkpoint of our own, or a leader image that matches); otherwise the whole
   * log is replaced, as a Raft InstallSnapshot does. Returns whether the log was replaced.
   */
  installSnapshot(snapshot: Snapshot): boolean {
    assert(snapshot.index >= this.snapshotIndex, 'snapshots only move forward');
    if (this.has(snapshot.index, snapshot.epoch)) {
      this.entries = this.entries.slice(snapshot.index - this.snapshotIndex);
      this.base = snapshot;
      return false;
    }
    this.entries = [];
    this.base = snapshot;
    return true;
  }
}
