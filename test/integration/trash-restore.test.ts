/**
 * gfsctl trash ls and restore on a real cluster: a deleted file is listed in the trash
 * with its size and purge time, comes back byte for byte with its chunks (fsck clean),
 * and a restore onto a live file is refused unless --to names another path.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { cluster, gfsctl, MiB, patterned, sha256, sha256File } from './helpers';

t.test('gfsctl: rm, trash ls, restore, get, fsck', async (t) => {
  const { cluster: c, dir } = await cluster(t, { heartbeatIntervalMs: 200 });
  const m = c.masters;
  const local = path.join(dir, 'data.bin');
  const data = patterned(3 * MiB + 17, 11);
  fs.writeFileSync(local, data);

  const put = await gfsctl(m, ['put', local, '/tr/a.bin']);
  t.equal(put.code, 0, `put: ${put.stderr}`);
  t.equal((await gfsctl(m, ['rm', '/tr/a.bin'])).code, 0, 'rm');
  t.equal((await gfsctl(m, ['get', '/tr/a.bin', path.join(dir, 'gone.bin')])).code, 1, 'deleted: get fails');

  const ls = await gfsctl(m, ['trash', 'ls']);
  t.equal(ls.code, 0, `trash ls: ${ls.stderr}`);
  t.match(ls.stdout.toString(), /\/tr\/a\.bin/, 'trash ls shows the file');
  const json = await gfsctl(m, ['trash', 'ls', '--json']);
  const entries = JSON.parse(json.stdout.toString()) as { path: string; size: number; deletedAtMs: number; purgeAtMs: number }[];
  t.equal(entries.length, 1);
  t.equal(entries[0]!.path, '/tr/a.bin');
  t.equal(Number(entries[0]!.size), data.length, 'with its size');
  t.ok(Number(entries[0]!.purgeAtMs) > Number(entries[0]!.deletedAtMs), 'and a purge time after its deletion');

  const restored = await gfsctl(m, ['restore', '/tr/a.bin']);
  t.equal(restored.code, 0, `restore: ${restored.stderr}`);
  t.match(restored.stdout.toString(), /^restored \/tr\/a\.bin/);
  const back = path.join(dir, 'back.bin');
  t.equal((await gfsctl(m, ['get', '/tr/a.bin', back])).code, 0, 'get after restore');
  t.equal(sha256File(back), sha256(data), 'the same bytes');
  t.equal((await gfsctl(m, ['trash', 'ls', '--json'])).stdout.toString().trim(), '[]', 'the trash is empty');
  const fsck = await gfsctl(m, ['fsck', '/']);
  t.equal(fsck.code, 0, `fsck clean: ${fsck.stdout.toString()}`);

  const again = await gfsctl(m, ['restore', '/tr/a.bin']);
  t.equal(again.code, 1, 'nothing left to restore: exit 1');
  t.match(again.stderr, /^gfsctl: .*no trashed file "\/tr\/a\.bin"/);

  // Delete it again and put a new live file at the path: the restore must not clobber it.
  t.equal((await gfsctl(m, ['rm', '/tr/a.bin'])).code, 0);
  fs.writeFileSync(path.join(dir, 'new.bin'), 'new');
  t.equal((await gfsctl(m, ['put', path.join(dir, 'new.bin'), '/tr/a.bin'])).code, 0);
  const refused = await gfsctl(m, ['restore', '/tr/a.bin']);
  t.equal(refused.code, 1, 'a live file is there: exit 1');
  t.equal(refused.stderr.trim().split('\n').length, 1, 'one line');
  t.match(refused.stderr, /exists/);
  t.equal((await gfsctl(m, ['restore', '/tr/a.bin', '--to', '/tr/old/a.bin'])).code, 0, 'restore --to');
  const old = path.join(dir, 'old.bin');
  t.equal((await gfsctl(m, ['get', '/tr/old/a.bin', old])).code, 0);
  t.equal(sha256File(old), sha256(data), 'restored elsewhere, same bytes');
  const live = path.join(dir, 'live.bin');
  t.equal((await gfsctl(m, ['get', '/tr/a.bin', live])).code, 0);
  t.equal(fs.readFileSync(live, 'utf8'), 'new', 'the live file is untouched');
  t.equal((await gfsctl(m, ['restore', '/tr/x', '--inode', 'abc'])).code, 2, 'a bad --inode is a usage error');
});
