/**
 * Status and repair that tell the truth, on real processes (issue 9, items 7-9):
 * a chunk that cannot be repaired leaves the queue with its reason while status keeps
 * answering; a killed chunkserver is suspect (and avoided) at once, long before it is
 * declared dead; df counts the one disk gfs dev's chunkservers share once.
 */
import t from 'tap';
import pino from 'pino';
import { cluster, gfsctl, MiB, patterned, eventually } from './helpers';
import { GfsClient } from '../../src/client';
import { limits } from '../../src/common/limits';
import type { DfResponse, NodeInfo, StatusResponse } from '../../gen/gfs';

async function json<T>(masters: string[], args: string[]): Promise<T> {
  const r = await gfsctl(masters, ['--json', ...args]);
  if (r.code !== 0) throw new Error(`gfsctl ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout.toString()) as T;
}

t.test('status: a chunk that cannot reach its goal is out of the queue with its reason; status keeps answering', async (t) => {
  const { cluster: c, client } = await cluster(t, { chunkservers: 3, heartbeatIntervalMs: 200, deadAfterMs: 2000, safeModeMinMs: 500 });
  await client.put(patterned(3 * MiB, 7), '/goal/three.bin', { chunkBytes: MiB });
  await c.killChunkserver(2);
  const status = (await eventually(async () => {
    const s = await json<StatusResponse>(c.masters, ['status']);
    return s.nodesDead === 1 && (s.repair?.unrepairableChunks ?? 0) === 3 ? s : undefined;
  }, 20_000, 'the three chunks reported unrepairable'))!;
  t.same(status.repair!.unrepairableReasons, ['3 chunks: goal 3, only 2 nodes']);
  t.equal(status.repair!.queuedChunks, 0, 'not queued: nothing can be done');
  t.equal(status.underReplicated, 3, 'still under-replicated');
  // It stays answering, with no absurd ETA, for a while (the bug broke it for good).
  for (let i = 0; i < 8; i++) {
    const s = await json<StatusResponse>(c.masters, ['status']);
    t.ok(s.repair!.etaMs <= limits.repairEtaMaxMs, `no absurd ETA (${s.repair!.etaMs})`);
    t.notOk(s.repair!.etaKnown && s.repair!.etaMs > 0, 'no ETA without a rate');
    await new Promise((r) => setTimeout(r, 500));
  }
  const text = await gfsctl(c.masters, ['status']);
  t.equal(text.code, 0);
  t.match(text.stdout.toString(), /cannot repair now: 3 chunks: goal 3, only 2 nodes/);
  // fsck exits non-zero (the file is under its goal), so read its JSON directly.
  const fsck = JSON.parse((await gfsctl(c.masters, ['--json', 'fsck', '/goal'])).stdout.toString()) as { files: { chunks: { reason: string }[] }[] };
  t.same(fsck.files[0]!.chunks.map((ch) => ch.reason), Array(3).fill('goal 3, only 2 nodes'), 'fsck gives the reason');
  t.match((await gfsctl(c.masters, ['fsck', '/goal'])).stdout.toString(), /cannot repair now: goal 3, only 2 nodes/);
  // A node joining makes them repairable again: the chunkserver comes back and nothing is stuck.
  await c.restartChunkserver(2);
  await eventually(async () => (await json<StatusResponse>(c.masters, ['status'])).repair!.unrepairableChunks === 0, 20_000, 're-evaluated when the node returns');
});

t.test('nodes: a killed chunkserver is suspect at once and gets no new chunk, though dead only after --dead-after', async (t) => {
  const deadAfterMs = 30_000;
  const { cluster: c, client } = await cluster(t, { chunkservers: 4, heartbeatIntervalMs: 200, deadAfterMs, safeModeMinMs: 500 });
  await client.put(patterned(2 * MiB, 1), '/s/warm.bin', { chunkBytes: MiB });
  const killedAt = Date.now();
  await c.killChunkserver(3);
  const dead = c.chunkservers[3]!.nodeId!;
  // The first writer to meet the dead node reports it (it asks for a chunk elsewhere).
  await client.put(patterned(8 * MiB, 2), '/s/first.bin', { chunkBytes: MiB });
  const nodes = await json<NodeInfo[]>(c.masters, ['nodes']);
  t.equal(nodes.find((n) => n.id === dead)?.state, 'suspect', 'gfsctl nodes shows it suspect');
  t.match((await gfsctl(c.masters, ['nodes'])).stdout.toString(), /suspect/);
  // A fresh writer is never sent to it: no replica write fails.
  const lines: string[] = [];
  const log = pino({ level: 'warn' }, { write: (s: string) => { lines.push(s); } });
  const fresh = new GfsClient({ masters: c.masters, log });
  t.teardown(() => fresh.close());
  await fresh.put(patterned(8 * MiB, 3), '/s/second.bin', { chunkBytes: MiB });
  t.same(lines.filter((l) => l.includes('replica failed')), [], 'no chunk of the second put was placed on the killed node');
  const stat = await fresh.stat('/s/second.bin');
  t.ok(stat.chunks.every((ch) => ch.replicas.length === 3 && !ch.replicas.some((r) => r.nodeId === dead)), 'three replicas, none on it');
  const still = await json<NodeInfo[]>(c.masters, ['nodes']);
  t.ok(Date.now() - killedAt < deadAfterMs, 'all within dead-after');
  t.equal(still.find((n) => n.id === dead)?.state, 'suspect', 'not yet declared dead');
});

t.test('df: chunkservers sharing one disk count it once, each line adds up, and the sharing is said', async (t) => {
  const { cluster: c, client } = await cluster(t, { chunkservers: 3, heartbeatIntervalMs: 200, safeModeMinMs: 500 });
  await client.put(patterned(2 * MiB, 4), '/s/df.bin', { chunkBytes: MiB });
  const df = (await eventually(async () => {
    const r = await json<DfResponse>(c.masters, ['df']);
    return r.nodes.length === 3 && r.nodes.every((n) => n.fsId !== '') && r.liveBytes >= 6 * MiB ? r : undefined;
  }, 15_000, 'every node reported its file system and the replicas'))!;
  t.equal(new Set(df.nodes.map((n) => n.fsId)).size, 1, 'gfs dev\'s chunkservers share one file system here');
  t.equal(df.filesystems, 1);
  t.equal(df.capacityBytes, df.nodes[0]!.capacityBytes, 'the disk counted once, not three times');
  t.equal(df.usedBytes + df.freeBytes, df.capacityBytes, 'total: used + free = capacity');
  for (const n of df.nodes) {
    t.equal(n.usedBytes + n.freeBytes, n.capacityBytes, `${n.nodeId}: used + free = capacity`);
    t.ok(n.gfsUsedBytes >= 2 * MiB, `${n.nodeId}: its chunk files are counted as gfs use`);
    t.equal(n.sharesFsWith.length, 2);
  }
  t.ok(df.gfsUsedBytes >= 6 * MiB);
  t.equal(df.sharedNotes.length, 1);
  const text = (await gfsctl(c.masters, ['df'])).stdout.toString();
  t.match(text, /note: .* share one file system \(counted once in the totals\)/);
  const status = await json<StatusResponse>(c.masters, ['status']);
  t.equal(status.capacityBytes, df.capacityBytes, 'status counts the disk once too');
});
