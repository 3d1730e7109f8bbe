/**
 * DirSyncer: concurrent syncs of one directory share fsyncs, every call is covered by
 * an fsync that started after it, and close() leaves later syncs working.
 */
import t from 'tap';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DirSyncer } from '../../src/common/fsync-dir';

t.test('DirSyncer groups concurrent syncs of a directory and keeps its handle', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dirsync-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const probe = await fs.open(dir, 'r');
  const proto = Object.getPrototypeOf(probe) as { sync: () => Promise<void> };
  await probe.close();
  const original = proto.sync;
  let syncs = 0;
  proto.sync = function (this: unknown) { syncs++; return original.call(this); };
  t.teardown(() => { proto.sync = original; });

  const syncer = new DirSyncer();
  await syncer.sync(dir);
  t.equal(syncs, 1);
  syncs = 0;
  // One running, the other 15 share the one queued behind it.
  await Promise.all(Array.from({ length: 16 }, () => syncer.sync(dir)));
  t.equal(syncs, 2, '16 concurrent requests: the running sync and one after it');
  t.equal(syncer.openDirs, 1);

  // A call made while a sync runs is not answered by that sync.
  syncs = 0;
  const first = syncer.sync(dir);
  let secondDone = false;
  const second = syncer.sync(dir).then(() => { secondDone = true; });
  await first;
  t.equal(syncs >= 1, true);
  await second;
  t.equal(secondDone, true);
  t.equal(syncs, 2, 'the later call waited for a sync of its own');

  await syncer.close();
  t.equal(syncer.openDirs, 0);
  await syncer.sync(dir); // after close: a plain open, fsync, close
  await t.rejects(new DirSyncer().sync(path.join(dir, 'missing')), { code: 'ENOENT' });
});
