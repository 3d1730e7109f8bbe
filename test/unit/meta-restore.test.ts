import t from 'tap';
import { throwsCode } from './throws-code';
import type { MetaOp } from '../../gen/gfs';
import { MetaState } from '../../src/master/meta-state';

// Restoring trashed files (gfsctl restore): an OpRestore names the file by inode, so it
// and a purge of the same file are ordered by the log and the second one fails cleanly.

/** A state plus the log of every op applied to it, for replays. */
function logged(): { s: MetaState; log: MetaOp[]; apply: (o: Partial<MetaOp>) => ReturnType<MetaState['apply']>; put: (path: string, lengths: number[]) => number } {
  const s = new MetaState();
  const log: MetaOp[] = [];
  let now = 100;
  const apply = (o: Partial<MetaOp>) => {
    const full = { requestId: '', ...o } as MetaOp;
    const r = s.apply(full);
    log.push(full);
    return r;
  };
  const put = (path: string, lengths: number[]) => {
    const inode = s.nextInode;
    apply({ createFile: { inode, path, overwrite: false, replication: 2, contentType: '', metadata: {}, mtimeMs: ++now } });
    for (const length of lengths) {
      const handle = s.nextHandle;
      apply({ allocateChunk: { inode, handle, version: 1 } });
      apply({ commitChunk: { inode, handle, length, version: 0 } });
    }
    apply({ completeFile: { inode, size: lengths.reduce((a, b) => a + b, 0), checksum: `c${inode}`, mtimeMs: ++now } });
    return inode;
  };
  return { s, log, apply, put };
}

function replay(log: MetaOp[]): MetaState {
  const r = new MetaState();
  for (const o of log) r.apply(o);
  return r;
}

t.test('restore puts a trashed file back with its chunks, and no purge can take it afterwards', async (t) => {
  const { s, apply, put } = logged();
  const inode = put('/d/f', [10, 5]);
  const handles = s.fileByInode(inode)!.chunks.map((c) => c.handle);
  apply({ delete: { path: '/d/f', recursive: false, mtimeMs: 200 } });
  t.same(s.trash().map((e) => [e.inode, e.path, e.deletedAtMs]), [[inode, '/d/f', 200]]);
  const r = apply({ restore: { inode, target: '', mtimeMs: 300 } });
  t.equal(r.op, 'restore');
  const f = s.stat('/d/f');
  t.ok(f.kind === 'file' && f.inode === inode && f.size === 15 && f.visible, 'back at its path, same inode and size');
  t.same(s.fileByInode(inode)!.chunks.map((c) => c.handle), handles, 'same chunks');
  for (const h of handles) t.equal(s.chunkOwner(h)?.inode, inode, `chunk ${h} is still owned by the file`);
  t.equal(s.inodeLocation(inode), 'tree');
  t.same(s.trash(), [], 'the trash is empty');
  s.assertInvariants();
  const before = Buffer.from(s.snapshot());
  throwsCode(t, () => s.apply({ requestId: '', purge: { inodes: [inode] } }), 'NO_SUCH_FILE', 'a purge after the restore fails');
  t.ok(before.equals(Buffer.from(s.snapshot())), 'and changes nothing');
});

t.test('restore after a purge fails with NO_SUCH_FILE and changes nothing', async (t) => {
  const { s, apply, put } = logged();
  const inode = put('/ns/f', [3]);
  apply({ delete: { path: '/ns/f', recursive: false, mtimeMs: 200 } });
  apply({ purge: { inodes: [inode] } });
  const before = Buffer.from(s.snapshot());
  throwsCode(t, () => s.apply({ requestId: '', restore: { inode, target: '', mtimeMs: 300 } }), 'NO_SUCH_FILE', 'restore of a purged file');
  throwsCode(t, () => s.findTrashed('/ns/f'), 'NO_SUCH_FILE', 'nothing of that path is in the trash');
  t.ok(before.equals(Buffer.from(s.snapshot())), 'state unchanged');
});

t.test('restore onto a live path is refused; --to puts it elsewhere', async (t) => {
  const { s, apply, put } = logged();
  const old = put('/ns/f', [3]);
  apply({ delete: { path: '/ns/f', recursive: false, mtimeMs: 200 } });
  const live = put('/ns/f', [4]);
  apply({ mkdir: { path: '/ns/dir', mtimeMs: 210 } });
  throwsCode(t, () => s.validate({ requestId: '', restore: { inode: old, target: '', mtimeMs: 300 } }), 'ALREADY_EXISTS', 'a live file is there');
  throwsCode(t, () => s.apply({ requestId: '', restore: { inode: old, target: '/ns/dir', mtimeMs: 300 } }), 'ALREADY_EXISTS', 'a directory is there');
  throwsCode(t, () => s.apply({ requestId: '', restore: { inode: old, target: '/ns/f/x', mtimeMs: 300 } }), 'NOT_A_DIRECTORY', 'below a file');
  throwsCode(t, () => s.apply({ requestId: '', restore: { inode: live, target: '/ns/g', mtimeMs: 300 } }), 'NO_SUCH_FILE', 'a live file is not in the trash');
  apply({ restore: { inode: old, target: '/ns/old/f', mtimeMs: 300 } });
  const f = s.stat('/ns/old/f');
  t.ok(f.kind === 'file' && f.inode === old && f.size === 3, 'restored at the new path, parents created');
  const l = s.stat('/ns/f');
  t.ok(l.kind === 'file' && l.inode === live, 'the live file is untouched');
  s.assertInvariants();
});

t.test('several trashed versions of a path: the newest unless a time or inode picks one', async (t) => {
  const { s, apply, put } = logged();
  const first = put('/ns/v', [1]);
  apply({ delete: { path: '/ns/v', recursive: false, mtimeMs: 200 } });
  const second = put('/ns/v', [2]);
  apply({ delete: { path: '/ns/v', recursive: false, mtimeMs: 300 } });
  t.equal(s.findTrashed('/ns/v').inode, second, 'newest by deletion time');
  t.equal(s.findTrashed('/ns/v', { deletedAtMs: 200 }).inode, first, 'by deletion time');
  t.equal(s.findTrashed('/ns/v', { inode: first }).inode, first, 'by inode');
  throwsCode(t, () => s.findTrashed('/ns/v', { deletedAtMs: 250 }), 'NO_SUCH_FILE', 'no version deleted then');
});

t.test('a directory removed with rm -r comes back file by file, its directories recreated', async (t) => {
  const { s, apply, put } = logged();
  const a = put('/top/sub/a', [1]);
  const b = put('/top/b', [2]);
  apply({ delete: { path: '/top', recursive: true, mtimeMs: 200 } });
  t.same(s.trash().map((e) => e.path).sort(), ['/top/b', '/top/sub/a'], 'trash holds the files, not the directories');
  throwsCode(t, () => s.findTrashed('/top'), 'NO_SUCH_FILE', 'a directory is not in the trash');
  apply({ restore: { inode: a, target: '', mtimeMs: 300 } });
  apply({ restore: { inode: b, target: '', mtimeMs: 301 } });
  t.same(s.list('/top', { recursive: true, limit: 0, startAfter: '' }).entries.map((e) => e.path), ['/top/b', '/top/sub', '/top/sub/a']);
  s.assertInvariants();
});

t.test('replaying the log, or a snapshot plus the rest of it, gives the same state', async (t) => {
  const { s, log, apply, put } = logged();
  const x = put('/ns/x', [4]);
  const y = put('/ns/y', [5]);
  apply({ delete: { path: '/ns/x', recursive: false, mtimeMs: 200 } });
  apply({ delete: { path: '/ns/y', recursive: false, mtimeMs: 201 } });
  const image = s.snapshot();
  const cut = log.length;
  apply({ requestId: 'r1', restore: { inode: x, target: '/ns/z/x', mtimeMs: 300 } });
  apply({ purge: { inodes: [y] } });
  const retried = s.apply({ requestId: 'r1', restore: { inode: x, target: '/ns/z/x', mtimeMs: 301 } });
  t.ok(retried.replayed === true && retried.file?.path === '/ns/z/x', 'a retried restore is applied once and answers where the file is');
  const bytes = Buffer.from(s.snapshot());
  t.ok(Buffer.from(replay(log).snapshot()).equals(bytes), 'replay from empty');
  const fromImage = MetaState.restore(image);
  for (const o of log.slice(cut)) fromImage.apply(o);
  t.ok(Buffer.from(fromImage.snapshot()).equals(bytes), 'snapshot + tail');
  t.ok(Buffer.from(MetaState.restore(bytes).snapshot()).equals(bytes), 'a snapshot after the restore reads back the same');
  fromImage.assertInvariants();
});
