/**
 * One master's disk in the simulation: what is durable (survives a crash) and the
 * writes issued but not yet synced. It models the storage contract in
 * src/master/replication/types.ts as a driver over the real WAL would meet it:
 *
 * - Two independent files: the WAL (append, truncate, checkpoint, synced in order) and
 *   the promise file. A crash keeps every synced operation plus a prefix of each file's
 *   unsynced operations; the first lost WAL append may be torn: some of its records
 *   reach the disk and the next one is half written (its checksum fails). Recovery cuts
 *   the log at the first bad checksum, as Wal.open cuts a torn tail.
 * - The WAL's refusals (Wal.appendReplicated continues the log exactly with epochs that
 *   never decrease; truncateAfter never below the checkpoint; checkpoints only move
 *   forward; a checkpoint not in the log replaces it) are assertions here, so a replica
 *   asking for what the real WAL would refuse fails the simulation.
 */
import assert from 'node:assert/strict';
import type { DurableState, Entry, Snapshot, StorageOp } from '../../src/master/replication';
import type { Rng } from './prng';

interface DiskRecord {
  entry: Entry;
  checksum: number;
}

interface UnsyncedOp {
  token: number;
  op: StorageOp;
}

/** FNV-1a over the fields a WAL record's checksum covers. */
function checksumOf(entry: Entry): number {
  let h = 0x811c9dc5;
  const mix = (byte: number): void => {
    h ^= byte & 0xff;
    h = Math.imul(h, 0x01000193);
  };
  for (const n of [entry.epoch, entry.index, entry.type]) for (let s = 0; s < 32; s += 8) mix(n >>> s);
  for (const b of entry.payload) mix(b);
  return h >>> 0;
}

export interface CrashDamage {
  /** Unsynced WAL operations that reach the disk (a prefix). */
  walOpsKept: number;
  /** Unsynced promise writes that reach the disk (a prefix). */
  promiseOpsKept: number;
  /** Whether the first lost WAL append is torn rather than lost whole. */
  tear: boolean;
}

export class SimDisk {
  private promise = 0;
  private checkpoint: Snapshot | null = null;
  private records: DiskRecord[] = [];
  private unsynced: UnsyncedOp[] = [];

  /** Issues a write; it is durable only once sync() covers its token. */
  write(token: number, op: StorageOp): void {
    assert(this.unsynced.length === 0 || this.unsynced.at(-1)!.token < token, 'storage tokens grow');
    this.unsynced.push({ token, op });
  }

  /** Every write with a token <= `token` reaches the disk. */
  sync(token: number): void {
    while (this.unsynced.length > 0 && this.unsynced[0]!.token <= token) this.applyDurably(this.unsynced.shift()!.op);
  }

  /** Random damage for a crash now. */
  randomDamage(rng: Rng, tearRate: number): CrashDamage {
    const wal = this.unsynced.filter((u) => u.op.kind !== 'promise').length;
    const promises = this.unsynced.length - wal;
    return { walOpsKept: rng.int(wal + 1), promiseOpsKept: rng.int(promises + 1), tear: rng.chance(tearRate) };
  }

  /** Power loss: some unsynced writes land (see CrashDamage), the rest vanish. Returns whether a write was torn. */
  crash(damage: CrashDamage): boolean {
    let torn = false;
    let walSeen = 0;
    let promisesSeen = 0;
    for (const { op } of this.unsynced) {
      if (op.kind === 'promise') {
        if (promisesSeen++ < damage.promiseOpsKept) this.applyDurably(op);
        continue;
      }
      if (walSeen < damage.walOpsKept) this.applyDurably(op);
      else if (walSeen === damage.walOpsKept && damage.tear && op.kind === 'append') {
        this.tearAppend(op.entries);
        torn = true;
      }
      walSeen++;
    }
    this.unsynced = [];
    return torn;
  }

  /** What a restarting master reads back; cuts a torn tail first, as Wal.open does. */
  recover(): DurableState {
    assert.equal(this.unsynced.length, 0, 'recover after a crash');
    const firstBad = this.records.findIndex((r) => r.checksum !== checksumOf(r.entry));
    if (firstBad >= 0) this.records.length = firstBad;
    return { promisedEpoch: this.promise, checkpoint: this.checkpoint, entries: this.records.map((r) => r.entry) };
  }

  // ---- views for the checkers (durable state only)

  get durablePromise(): number {
    return this.promise;
  }

  get durableLastIndex(): number {
    return (this.checkpoint?.index ?? 0) + this.records.length;
  }

  get durableLastEpoch(): number {
    return this.records.at(-1)?.entry.epoch ?? this.checkpoint?.epoch ?? 0;
  }

  get durableCheckpoint(): Snapshot | null {
    return this.checkpoint;
  }

  // ---- internals

  private get checkpointIndex(): number {
    return this.checkpoint?.index ?? 0;
  }

  private epochAt(index: number): number | undefined {
    if (index === this.checkpointIndex) return this.checkpoint?.epoch ?? 0;
    return this.records[index - this.checkpointIndex - 1]?.entry.epoch;
  }

  private applyDurably(op: StorageOp): void {
    switch (op.kind) {
      case 'promise':
        assert(op.epoch >= this.promise, 'the promised epoch only grows');
        this.promise = op.epoch;
        return;
      case 'append': {
        let expected = this.durableLastIndex + 1;
        let epoch = this.durableLastEpoch;
        for (const entry of op.entries) {
          assert.equal(entry.index, expected, 'Wal.appendReplicated: records continue the log exactly');
          assert(entry.epoch >= epoch, 'Wal.appendReplicated: epochs never decrease');
          this.records.push({ entry, checksum: checksumOf(entry) });
          expected++;
          epoch = entry.epoch;
        }
        return;
      }
      case 'truncate':
        assert(op.afterIndex >= this.checkpointIndex, 'Wal.truncateAfter: not below the checkpoint');
        if (op.afterIndex < this.durableLastIndex) this.records.length = op.afterIndex - this.checkpointIndex;
        return;
      case 'checkpoint': {
        const cp = op.snapshot;
        assert(cp.index >= this.checkpointIndex, 'Wal.writeCheckpoint: checkpoints only move forward');
        const inLog = cp.index <= this.durableLastIndex && this.epochAt(cp.index) === cp.epoch;
        this.records = inLog ? this.records.slice(cp.index - this.checkpointIndex) : [];
        this.checkpoint = cp;
        return;
      }
    }
  }

  private tearAppend(entries: readonly Entry[]): void {
    const whole = entries.length > 1 ? entries.length - 1 : 0;
    this.applyDurably({ kind: 'append', entries: entries.slice(0, whole) });
    const torn = entries[whole]!;
    // Half a record: the bytes on disk no longer match the checksum written with them.
    const payload = new Uint8Array(torn.payload.length + 1);
    payload.set(torn.payload);
    this.records.push({ entry: { ...torn, payload }, checksum: checksumOf(torn) });
  }
}
