/**
 * The storage mapping written in src/master/replication/types.ts, carried out against
 * the real WAL: a replica's persist effects become Wal calls, and a restart rebuilds the
 * replica from what the WAL reads back. This is the storage half of the driver that will
 * wire replication into the master.
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Replica, type DurableState, type Effect, type Entry, type Message, type StorageOp } from '../../src/master/replication';
import { Wal } from '../../src/wal';

/** Performs persist effects on a Wal: calls in effect order, storageDone in token order. */
class WalStorage {
  promisedEpoch = 0;
  readonly sent: Message[] = [];
  private done: Promise<unknown> = Promise.resolve();
  replica!: Replica;

  constructor(readonly wal: Wal, private readonly t: tap.Test) {}

  effects = (e: Effect): void => {
    if (e.kind === 'send') {
      // An ack may only leave once its entries are synced.
      if (e.msg.kind === 'appendOk') this.t.ok(this.wal.durableIndex >= e.msg.matchIndex, `ack of ${e.msg.matchIndex} after it is durable`);
      this.sent.push(e.msg);
    }
    if (e.kind !== 'persist') return;
    const written = this.perform(e.op);
    const token = e.token;
    this.done = Promise.all([this.done, written]).then(() => this.replica.storageDone(token));
  };

  /** Issued synchronously, so the WAL sees the calls in effect order (its log changes in call order). */
  private perform(op: StorageOp): Promise<unknown> {
    switch (op.kind) {
      case 'promise':
        // The driver writes <dataDir>/promised-epoch atomically; kept in memory here.
        this.promisedEpoch = op.epoch;
        return Promise.resolve();
      case 'append':
        return this.wal.appendReplicated(op.entries);
      case 'truncate':
        return this.wal.truncateAfter(op.afterIndex);
      case 'checkpoint':
        return this.wal.writeCheckpoint(op.snapshot);
    }
  }

  async settle(): Promise<void> {
    for (let before: Promise<unknown> | undefined; before !== this.done;) {
      before = this.done;
      await before;
    }
  }
}

async function readDurable(wal: Wal, promisedEpoch: number): Promise<DurableState> {
  const checkpoint = await wal.loadCheckpoint();
  const entries: Entry[] = [];
  for await (const r of wal.readFrom((checkpoint?.index ?? 0) + 1)) entries.push(r);
  return { promisedEpoch, checkpoint, entries };
}

function start(id: string, members: string[], storage: WalStorage, durable: DurableState): Replica {
  storage.replica = new Replica({ id, members, clock: { monoMs: () => 0 }, durable, effects: storage.effects });
  return storage.replica;
}

function tempDir(t: tap.Test): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gfs-replication-wal-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const entry = (epoch: number, index: number): Entry => ({ epoch, index, type: 1, payload: Buffer.from(`e${epoch}.${index}`) });

t.test('replication: a leader\'s log and checkpoint in the WAL survive a restart', async (t) => {
  const dir = tempDir(t);
  let storage = new WalStorage(await Wal.open({ dir }), t);
  let replica = start('a', ['a'], storage, { promisedEpoch: 0, checkpoint: null, entries: [] });
  replica.becomeLeader(3, Number.MAX_SAFE_INTEGER);
  await storage.settle();
  t.ok(replica.serving);
  for (let i = 0; i < 10; i++) replica.propose(1, Buffer.from(`op${i}`));
  await storage.settle();
  t.equal(replica.commitIndex, 11, 'the no-op and ten entries');
  t.ok(replica.takeCheckpoint(Buffer.from('image at 11')));
  for (let i = 10; i < 13; i++) replica.propose(1, Buffer.from(`op${i}`));
  await storage.settle();
  await storage.wal.close();

  const wal = await Wal.open({ dir });
  const durable = await readDurable(wal, storage.promisedEpoch);
  t.equal(durable.checkpoint?.index, 11);
  t.same(durable.entries.map((e) => e.index), [12, 13, 14]);
  storage = new WalStorage(wal, t);
  replica = start('a', ['a'], storage, durable);
  t.equal(replica.lastIndex, 14);
  t.equal(replica.snapshotIndex, 11);
  t.equal(replica.promisedEpoch, 3);
  t.equal(replica.commitIndex, 11, 'after a restart only the checkpoint is known committed');
  await wal.close();
});

t.test('replication: a follower\'s truncation and installed snapshot map onto the WAL', async (t) => {
  const dir = tempDir(t);
  const storage = new WalStorage(await Wal.open({ dir }), t);
  const replica = start('f', ['l', 'f', 'x'], storage, { promisedEpoch: 0, checkpoint: null, entries: [] });
  const append = (epoch: number, prevIndex: number, prevEpoch: number, entries: Entry[]): void =>
    replica.receive('l', { kind: 'append', epoch, prevIndex, prevEpoch, entries, commitIndex: 0 });

  append(2, 0, 0, [1, 2, 3, 4, 5].map((i) => entry(2, i)));
  await storage.settle();
  append(3, 3, 2, [entry(3, 4), entry(3, 5)]); // entries 4 and 5 of epoch 2 conflict
  await storage.settle();
  t.equal(storage.wal.epochAt(4), 3, 'Wal.truncateAfter then appendReplicated replaced the conflicting entries');

  replica.receive('l', { kind: 'installSnapshot', epoch: 3, snapshot: { index: 20, epoch: 3, image: Buffer.from('leader image') }, commitIndex: 20 });
  append(3, 20, 3, [entry(3, 21)]);
  await storage.settle();
  t.same(storage.sent.filter((m) => m.kind === 'appendOk').map((m) => m.kind === 'appendOk' && m.matchIndex), [5, 5, 20, 21]);
  await storage.wal.close();

  const wal = await Wal.open({ dir });
  const durable = await readDurable(wal, storage.promisedEpoch);
  t.equal(durable.promisedEpoch, 3);
  t.same(durable.checkpoint && { index: durable.checkpoint.index, epoch: durable.checkpoint.epoch }, { index: 20, epoch: 3 },
    'the leader\'s image replaced the log (Wal.writeCheckpoint)');
  t.same(durable.entries.map((e) => [e.index, e.epoch]), [[21, 3]]);
  await wal.close();
});
