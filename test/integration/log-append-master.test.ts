/**
 * The master's side of record append against real processes: AppendTarget grants a
 * lease and answers with the open chunk, appends go to its primary, Stat reports the
 * committed length, and when the primary dies the client's report seals the chunk at
 * its durable length and the next target is a new chunk on live nodes; Watch sees
 * each step.
 */
import * as grpc from '@grpc/grpc-js';
import t from 'tap';
import {
  MasterClient, FileState, type AppendTargetRequest, type AppendTargetResponse, type FileInfo, type WatchEvent,
} from '../../gen/gfs';
import { callUnary, grpcChannelOptions } from '../../src/common/grpc';
import { AppendLink, readReplica } from '../../src/dataplane';
import { cluster, gfsctl, until } from './helpers';

function target(client: MasterClient, req: Partial<AppendTargetRequest>): Promise<AppendTargetResponse> {
  const full: AppendTargetRequest = { path: '', create: false, replication: 0, endedHandle: 0, failedNode: '', requestId: '', ...req };
  return callUnary(client, client.appendTarget, full);
}

async function readAll(addr: string, handle: number, version: number, length: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of readReplica(addr, handle, version, 0, length)) parts.push(b);
  return Buffer.concat(parts);
}


t.test('log append, master side: target, append, stat, the primary dies, the seal keeps every acknowledged byte, appends go on elsewhere', async (t) => {
  const { cluster: c } = await cluster(t, { chunkservers: 3, masterArgs: ['--lease-ms', '4000'], safeModeMinMs: 500 });
  const master = new MasterClient(c.masters[0]!, grpc.credentials.createInsecure(), grpcChannelOptions);
  t.teardown(() => master.close());
  const path = '/logs/app/events';

  const first = await target(master, { path, create: true, replication: 2 });
  const chunk = first.chunk!;
  t.ok(chunk.handle > 0 && chunk.offset === 0 && chunk.replicas.length === 2, 'a new open chunk on two nodes');
  t.equal(first.leaseMs, 4000, 'the lease the primary holds');

  const events: WatchEvent[] = [];
  const watch = master.watch({ path });
  watch.on('data', (ev: WatchEvent) => events.push(ev));
  watch.on('error', () => undefined);
  t.teardown(() => watch.cancel());
  await until('the initial watch event', () => events[0]);
  t.equal(events[0]!.reason, 'initial');
  t.equal(events[0]!.file?.log, true);

  const link = new AppendLink(chunk.replicas[0]!.addr);
  t.teardown(() => link.close());
  const records = Array.from({ length: 20 }, (_, i) => Buffer.from(`record ${i} ${'x'.repeat(i * 7)}\n`));
  let expected = 0;
  const offsets: number[] = [];
  for (let i = 0; i < records.length; i += 5) {
    const batch = records.slice(i, i + 5).map((data, k) => ({ data, id: { writer: 'w-test', seq: i + k } }));
    const res = await link.append(chunk.handle, chunk.version, batch);
    offsets.push(...res.offsets);
  }
  for (let i = 0; i < records.length; i++) {
    t.equal(offsets[i], expected, `record ${i} at the next offset`);
    expected += records[i]!.length;
  }
  const all = Buffer.concat(records);

  const open = await callUnary<{ path: string }, FileInfo>(master, master.stat, { path });
  t.equal(open.size, all.length, 'stat of the open log: its committed length');
  t.equal(open.state, FileState.FILE_STATE_WRITING);
  t.equal(open.log, true);

  // The primary dies; the client reports it.
  const primaryId = chunk.replicas[0]!.nodeId;
  const index = c.chunkservers.findIndex((p) => p.nodeId === primaryId);
  await c.killChunkserver(index);
  const killedAt = Date.now();
  const retried = await target(master, {
    path, endedHandle: chunk.handle, failedNode: primaryId, recordId: { writer: 'w-test', seq: 19 },
  });
  t.equal(retried.storedOffset, offsets[19], 'a retried record already stored is answered with its offset');
  const next = await target(master, { path });
  t.ok(Date.now() - killedAt < 5000, 'appends resume on a new chunk within 5 s of the primary\'s death');
  const chunk2 = next.chunk!;
  t.not(chunk2.handle, chunk.handle, 'a new open chunk');
  t.equal(chunk2.offset, all.length, 'it starts at the sealed length');
  t.notOk(chunk2.replicas.some((r) => r.nodeId === primaryId), 'not on the dead node');

  const link2 = new AppendLink(chunk2.replicas[0]!.addr);
  t.teardown(() => link2.close());
  const tail = Buffer.from('after the failover\n');
  const res2 = await link2.append(chunk2.handle, chunk2.version, [{ data: tail, id: { writer: 'w-test', seq: 20 } }]);
  t.same(res2.offsets, [0]);

  const after = await callUnary<{ path: string }, FileInfo>(master, master.stat, { path });
  t.equal(after.size, all.length + tail.length, 'stat: the sealed chunk plus the committed open one');
  const sealed = after.chunks[0]!;
  t.equal(sealed.length, all.length, 'sealed at its durable length: every acknowledged byte');
  t.equal(sealed.version, chunk.version + 1, 'the seal bumped the version');
  const survivor = sealed.replicas.find((r) => r.nodeId !== primaryId)!;
  t.ok(Buffer.from(await readAll(survivor.addr, sealed.handle, sealed.version, sealed.length)).equals(all), 'the survivor holds exactly the records');

  const closed = await callUnary<{ path: string; requestId: string }, FileInfo>(master, master.sealLog, { path, requestId: 'seal-1' });
  t.equal(closed.state, FileState.FILE_STATE_SEALED, 'SealLog closes the log');
  t.equal(closed.size, all.length + tail.length);
  const refused = await target(master, { path }).then(() => undefined, (e: { code: string }) => e.code);
  t.equal(refused, 'FILE_NOT_WRITABLE', 'a sealed log takes no more appends');

  await until('the sealed event', () => events.find((e) => e.reason === 'sealed'));
  const reasons = events.map((e) => e.reason);
  t.ok(reasons.filter((r) => r === 'chunk').length >= 2, `a chunk event for the seal and the new chunk (${reasons.join(',')})`);
  t.ok(events.every((e, i) => i === 0 || e.revision >= events[i - 1]!.revision), 'revisions only grow');

  // Healing copies the sealed chunk back to its goal; fsck is then clean.
  await until('fsck clean', async () => {
    const r = await gfsctl(c.masters, ['fsck', '/logs']);
    return r.code === 0 ? true : undefined;
  }, 60_000);
  t.pass('fsck clean after the seals');
});

t.test('log append, master side: a full chunk is ended by the client, sealed, and the next chunk starts where it ended', async (t) => {
  const { cluster: c } = await cluster(t, { chunkservers: 2, chunkserverArgs: ['--append-chunk-size', '64KiB'] });
  const master = new MasterClient(c.masters[0]!, grpc.credentials.createInsecure(), grpcChannelOptions);
  t.teardown(() => master.close());
  const path = '/logs/full';
  let tgt = (await target(master, { path, create: true, replication: 2 })).chunk!;
  const records = Array.from({ length: 16 }, (_, i) => Buffer.alloc(10 * 1024, 97 + i));
  const fileOffsets: number[] = [];
  let ends = 0;
  for (let i = 0; i < records.length;) {
    const link = new AppendLink(tgt.replicas[0]!.addr);
    try {
      const res = await link.append(tgt.handle, tgt.version, [{ data: records[i]!, id: { writer: 'w-full', seq: i } }]);
      fileOffsets.push(tgt.offset + res.offsets[0]!);
      i++;
    } catch (e) {
      t.equal((e as { code: string }).code, 'CHUNK_FULL', `record ${i} ends chunk ${tgt.handle}`);
      ends++;
      tgt = (await target(master, { path, endedHandle: tgt.handle })).chunk!;
    } finally {
      link.close();
    }
  }
  t.ok(ends >= 2, `the records filled ${ends} chunks`);
  t.same(fileOffsets, records.map((_, i) => i * 10 * 1024), 'records back to back across chunks: no padding, no gap');
  const info = await callUnary<{ path: string }, FileInfo>(master, master.stat, { path });
  t.equal(info.size, records.length * 10 * 1024, 'stat: every acknowledged byte');
  t.ok(info.chunks.slice(0, -1).every((ch) => ch.length > 0 && ch.length <= 64 * 1024), 'sealed chunks within the append chunk size');
  const back = Buffer.concat(await Promise.all(info.chunks.map((ch) => readAll(ch.replicas[0]!.addr, ch.handle, ch.version, ch.length))));
  t.ok(back.equals(Buffer.concat(records)), 'the log reads back as exactly its records');
});
