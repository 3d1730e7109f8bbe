/**
 * Garbage collection on real processes: trash purge, orphan grace, abandoned writes,
 * safe mode, and the explanations (gc --dry-run, df). Every scenario keeps a file that
 * must never lose a byte: GC never deletes a chunk that metadata references.
 */
import t from 'tap';
import fs from 'node:fs';
import { cluster, gfsctl, sha256, MiB, chunkFile, eventually, patterned } from './helpers';
import type { DevCluster } from '../../src/dev/cluster';
import { MasterConn, type GfsClient } from '../../src/client';

const fast = { heartbeatIntervalMs: 200, safeModeMinMs: 1000 };


interface GcItemJson { kind: string; handle: number; nodeId: string; path: string; inode: number; bytes: number; due: boolean; reason: string }
interface GcJson { items: GcItemJson[]; safeMode: boolean; blockedReason: string; dueBytes: number; waitingBytes: number }

async function gcDryRun(c: DevCluster): Promise<GcJson> {
  const r = await gfsctl(c.masters, ['--json', 'gc', '--dry-run']);
  if (r.code !== 0) throw new Error(`gc --dry-run failed: ${r.stderr}`);
  return JSON.parse(r.stdout.toString()) as GcJson;
}

/** Every replica file of the file's chunks, on whichever chunkserver holds it. */
async function replicaFiles(c: DevCluster, client: GfsClient, path: string): Promise<string[]> {
  const info = await client.stat(path);
  const out: string[] = [];
  for (const ch of info.chunks) {
    for (const r of ch.replicas) out.push(chunkFile(c.chunkservers.find((p) => p.nodeId === r.nodeId)!.dataDir, ch.handle));
  }
  return out;
}

/** Chunk files that exist on any chunkserver's disk for these handles. */
function filesOf(c: DevCluster, handles: number[]): string[] {
  return c.chunkservers.flatMap((p) => handles.map((h) => chunkFile(p.dataDir, h))).filter((f) => fs.existsSync(f));
}

/** A put whose source fails after `bytes`: the client aborts the file and its chunks become orphans. */
function abortedPut(client: GfsClient, path: string, bytes: number): Promise<unknown> {
  const data = patterned(bytes, 99);
  return client.put((async function* () {
    for (let off = 0; off < data.length; off += MiB) yield data.subarray(off, off + MiB);
    throw new Error('source failed on purpose');
  })(), path, { chunkBytes: MiB });
}

function masterConn(t: { teardown(fn: () => unknown): void }, c: DevCluster): MasterConn {
  const conn = new MasterConn({ masters: c.masters });
  t.teardown(() => conn.close());
  return conn;
}

t.test('lifecycle: gc: a removed file is purged after the trash period, then its replicas deleted after the orphan grace', async (t) => {
  const trashPeriodMs = 6000;
  const { cluster: c, client } = await cluster(t, { ...fast, trashPeriodMs, orphanGraceMs: 4000 });
  const conn = masterConn(t, c);
  const keep = patterned(3 * MiB, 1);
  await client.put(keep, '/logs/keep.bin', { chunkBytes: MiB });
  await client.put(patterned(2 * MiB, 2), '/logs/doomed.bin', { chunkBytes: MiB });
  const keepFiles = await replicaFiles(c, client, '/logs/keep.bin');
  const doomedFiles = await replicaFiles(c, client, '/logs/doomed.bin');
  const doomedHandles = (await client.stat('/logs/doomed.bin')).chunks.map((ch) => ch.handle);
  t.equal(doomedFiles.length, 6, '2 chunks x 3 replicas on disk');
  await eventually(async () => !(await client.status()).safeMode, 10_000, 'out of safe mode');

  const before = await conn.call('df', {});
  t.equal(before.liveBytes, 15 * MiB, 'df: 5 MiB of files x 3 replicas live');
  t.equal(before.trashBytes, 0);

  await client.delete('/logs/doomed.bin');
  const rmAt = Date.now();
  const report = await conn.call('gc', { dryRun: true });
  const df = await conn.call('df', {});
  const inTrash = Date.now() - rmAt < trashPeriodMs - 500;
  const trashItem = report.items.find((i) => i.kind === 'trash' && i.path === '/logs/doomed.bin');
  t.ok(trashItem, 'gc --dry-run lists the trashed file');
  t.equal(trashItem?.bytes, 6 * MiB, 'with the bytes it will free');
  t.match(trashItem?.reason, /restorable/, 'and says why it is not free yet');
  t.notOk(trashItem?.due, 'not due: the trash period runs');
  t.equal(df.trashBytes, 6 * MiB, 'df: the removed file\'s replicas count as trash');
  t.equal(df.liveBytes, 9 * MiB, 'df: the kept file stays live');
  if (inTrash) t.ok(doomedFiles.every((f) => fs.existsSync(f)), 'nothing deleted during the trash period');
  const gcText = (await gfsctl(c.masters, ['gc', '--dry-run'])).stdout.toString();
  const dfText = (await gfsctl(c.masters, ['df'])).stdout.toString();
  t.match(dfText, /TRASH/, 'gfsctl df prints the split');
  t.match(gcText, /reclaimable at the next pass/, 'gfsctl gc --dry-run prints a summary');

  // Once purged, the chunks are orphans: listed, and still on disk while the grace runs.
  const orphan = (await eventually(async () => (await conn.call('gc', { dryRun: true })).items.find((i) => i.kind === 'orphan' && doomedHandles.includes(i.handle)), 15_000, 'the purged chunks listed as orphans'))!;
  t.match(orphan.reason, /no file references it/);
  if (!orphan.due) t.ok(filesOf(c, doomedHandles).length > 0, 'orphans still on disk while their grace runs');
  t.ok(Date.now() - rmAt >= trashPeriodMs, 'purged only after the trash period');

  await eventually(() => filesOf(c, doomedHandles).length === 0, 20_000, 'every replica of the purged file deleted from disk');
  t.ok(keepFiles.every((f) => fs.existsSync(f)), 'every replica of the kept file is still on disk');
  t.equal(sha256(await client.readAll('/logs/keep.bin')), sha256(keep), 'the kept file reads back intact');
  t.equal((await gfsctl(c.masters, ['fsck'])).code, 0, 'fsck clean');
  const after = await conn.call('gc', { dryRun: true });
  t.notOk(after.items.some((i) => doomedHandles.includes(i.handle) || i.path === '/logs/doomed.bin'), 'nothing left to reclaim for it');
});

t.test('lifecycle: gc: an aborted put leaves orphans that are deleted only after the orphan grace', async (t) => {
  const { cluster: c, client } = await cluster(t, { ...fast, orphanGraceMs: 6000 });
  const conn = masterConn(t, c);
  const keep = patterned(2 * MiB, 3);
  await client.put(keep, '/logs/keep.bin', { chunkBytes: MiB });
  await eventually(async () => !(await client.status()).safeMode, 10_000, 'out of safe mode');
  await t.rejects(abortedPut(client, '/logs/broken.bin', 3 * MiB), /on purpose/);

  // The grace starts when the master first sees them unreferenced; dueInMs says how much is left.
  const orphans = (await eventually(async () => {
    const items = (await conn.call('gc', { dryRun: true })).items.filter((i) => i.kind === 'orphan' && i.reason.includes('deleted after the grace'));
    return items.length >= 6 ? items : undefined;
  }, 10_000, 'the aborted chunks listed as orphans in grace'))!;
  const seenAt = Date.now();
  const leftMs = Math.min(...orphans.map((i) => i.dueInMs));
  const handles = [...new Set(orphans.map((i) => i.handle))];
  t.ok(orphans.every((i) => !i.due), 'none due yet');
  t.ok(filesOf(c, handles).length >= 6, 'their replicas are on disk');
  await new Promise((r) => setTimeout(r, Math.min(2000, leftMs / 2)));
  if (Date.now() - seenAt < leftMs - 200) t.ok(filesOf(c, handles).length >= 6, 'still on disk half-way through the grace');
  await eventually(() => filesOf(c, handles).length === 0, 20_000, 'orphans deleted after the grace');
  t.ok(Date.now() - seenAt >= leftMs - 200, `not before the grace was over (${leftMs} ms were left)`);
  t.equal(sha256(await client.readAll('/logs/keep.bin')), sha256(keep), 'the referenced file is untouched');
  t.equal((await gfsctl(c.masters, ['fsck'])).code, 0);
});

t.test('lifecycle: gc: nothing is deleted while the master is in safe mode', async (t) => {
  const { cluster: c, client } = await cluster(t, { ...fast, orphanGraceMs: 600_000 });
  const keep = patterned(MiB, 4);
  await client.put(keep, '/logs/keep.bin');
  await t.rejects(abortedPut(client, '/logs/broken.bin', 2 * MiB), /on purpose/);
  const handles = [...new Set((await eventually(async () => {
    const items = (await gcDryRun(c)).items.filter((i) => i.kind === 'orphan');
    return items.length >= 3 ? items : undefined;
  }, 10_000, 'orphans listed'))!.map((i) => i.handle))];

  // Restart the master with a tiny grace and a long safe mode.
  await c.killMaster();
  c.master.args.push('--orphan-grace', '200ms', '--safe-mode-wait', '6s');
  await c.restartMaster();
  const conn = masterConn(t, c);
  const first = await conn.call('status', {});
  t.ok(first.safeMode, 'in safe mode after the restart');
  await eventually(async () => (await conn.call('status', {})).nodesAlive === 3, 10_000, 'chunkservers back with the master');
  const report = await conn.call('gc', { dryRun: true });
  t.match(report.blockedReason, /safe mode/, 'gc --dry-run says why it holds off');
  t.ok(report.items.filter((i) => i.kind === 'orphan').every((i) => !i.due), 'no orphan due in safe mode');
  t.match((await gfsctl(c.masters, ['status'])).stdout.toString(), /safe mode/, 'gfsctl status says so');
  let observations = 0;
  for (;;) {
    // Files first, then the mode: a file gone while the master still says "safe mode" is a violation.
    const present = filesOf(c, handles).length;
    const s = await conn.call('status', {});
    if (!s.safeMode) break;
    observations++;
    if (present < 3) { t.fail(`orphans deleted during safe mode (${present} of 3 left)`); break; }
    await new Promise((r) => setTimeout(r, 250));
  }
  t.ok(observations >= 3, `orphans untouched through ${observations} checks in safe mode`);
  await eventually(() => filesOf(c, handles).length === 0, 15_000, 'orphans deleted once safe mode ended');
  t.equal(sha256(await client.readAll('/logs/keep.bin')), sha256(keep), 'referenced file intact');
});

t.test('lifecycle: gc: a write whose writer went silent is aborted after the pending timeout', async (t) => {
  const { cluster: c, client } = await cluster(t, { ...fast, pendingTimeoutMs: 2000, orphanGraceMs: 500 });
  const conn = masterConn(t, c);
  // A writer that creates a file with its first chunk, and then never comes back.
  const created = await conn.call('createFile', {
    path: '/logs/silent.bin', overwrite: false, replication: 0, contentType: '', metadata: {}, requestId: 'silent-1', allocateChunk: true,
  });
  t.ok(created.firstChunk, 'a chunk was allocated');
  const report = await conn.call('gc', { dryRun: true });
  const item = report.items.find((i) => i.kind === 'abandoned-write' && i.inode === created.inode);
  t.ok(item, 'gc --dry-run lists the pending write');
  t.notOk(item?.due, 'not due while its writer may still come back');
  await eventually(async () => !(await conn.call('gc', { dryRun: true })).items.some((i) => i.kind === 'abandoned-write'), 10_000, 'the abandoned write aborted');
  const log = fs.readFileSync(`${c.dataDir}/logs/master.log`, 'utf8');
  t.match(log, /aborted abandoned write/);
  await t.rejects(conn.call('allocateChunk', { inode: created.inode, excludeNodes: [], requestId: 'silent-2' }), { code: 'NO_SUCH_FILE' }, 'the writer finds its file gone');
  await t.rejects(client.stat('/logs/silent.bin'), { code: 'NO_SUCH_FILE' }, 'nothing visible');
});
