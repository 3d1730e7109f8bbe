import t from 'tap';
import { throwsCode } from './throws-code';
import type { MetaOp } from '../../gen/gfs';
import { limits } from '../../src/common/limits';
import { MetaState, chunkOffsets, type FileNode } from '../../src/master/meta-state';

/** Drives a MetaState the way the master does: ids from nextInode/nextHandle, times from a fake clock. */
class Driver {
  nowMs = 1_000;
  constructor(readonly s = new MetaState()) {}

  tick(): number {
    return ++this.nowMs;
  }
  apply(op: Omit<MetaOp, 'requestId'> & { requestId?: string }) {
    return this.s.apply({ requestId: '', ...op });
  }
  create(path: string, opts: { overwrite?: boolean; replication?: number } = {}): number {
    const inode = this.s.nextInode;
    this.apply({
      createFile: {
        inode, path, overwrite: opts.overwrite ?? false, replication: opts.replication ?? 3,
        contentType: 'text/plain', metadata: { b: '2', a: '1' }, mtimeMs: this.tick(),
      },
    });
    return inode;
  }
  allocate(inode: number): number {
    const handle = this.s.nextHandle;
    this.apply({ allocateChunk: { inode, handle, version: 1 } });
    return handle;
  }
  commit(inode: number, handle: number, length: number) {
    return this.apply({ commitChunk: { inode, handle, length, version: 0 } });
  }
  write(inode: number, lengths: number[]): number[] {
    return lengths.map((length) => {
      const handle = this.allocate(inode);
      this.commit(inode, handle, length);
      return handle;
    });
  }
  complete(inode: number, size?: number, checksum = 'cafe') {
    const file = this.s.fileByInode(inode)!;
    const sum = file.chunks.reduce((n, c) => n + c.length, 0);
    return this.apply({ completeFile: { inode, size: size ?? sum, checksum, mtimeMs: this.tick() } });
  }
  put(path: string, lengths: number[] = [10], opts: { overwrite?: boolean } = {}): number {
    const inode = this.create(path, opts);
    this.write(inode, lengths);
    this.complete(inode);
    return inode;
  }
  abort(inode: number) {
    return this.apply({ abortFile: { inode } });
  }
  mkdir(path: string) {
    return this.apply({ mkdir: { path, mtimeMs: this.tick() } });
  }
  rename(source: string, target: string, overwrite = false) {
    return this.apply({ rename: { source, target, overwrite, mtimeMs: this.tick() } });
  }
  del(path: string, recursive = false) {
    return this.apply({ delete: { path, recursive, mtimeMs: this.tick() } });
  }
  paths(path = '/', recursive = true): string[] {
    return this.s.list(path, { recursive, limit: 0, startAfter: '' }).entries.map((e) => (e.kind === 'dir' ? e.path + '/' : e.path));
  }
}

t.test('namespace: a put is invisible until it completes', async (t) => {
  const d = new Driver();
  const inode = d.create('/logs/app/1.log');
  throwsCode(t, () => d.s.stat('/logs/app/1.log'), 'NO_SUCH_FILE', 'stat of a pending put');
  throwsCode(t, () => d.s.list('/logs', { recursive: true, limit: 0, startAfter: '' }), 'NO_SUCH_FILE', 'its namespace is not made yet');
  t.same(d.s.pendingFiles().map((f) => f.inode), [inode]);
  t.equal(d.s.inodeLocation(inode), 'pending');

  const [h1, h2] = d.write(inode, [limits.chunkBytesMax, 5]);
  throwsCode(t, () => d.s.stat('/logs/app/1.log'), 'NO_SUCH_FILE', 'still invisible with committed chunks');
  t.same(d.s.chunkOwner(h1!)?.inode, inode, 'the chunk table knows a pending put');

  const result = d.complete(inode, limits.chunkBytesMax + 5, 'abc123');
  t.equal(result.inode, inode);
  const file = d.s.stat('/logs/app/1.log') as FileNode;
  t.equal(file.kind, 'file');
  t.equal(file.inode, inode);
  t.equal(file.size, limits.chunkBytesMax + 5);
  t.equal(file.state, 'sealed');
  t.equal(file.visible, true);
  t.equal(file.checksum, 'abc123');
  t.equal(file.replication, 3);
  t.same(Object.keys(file.metadata), ['a', 'b'], 'metadata keys are kept sorted');
  t.same(file.chunks.map((c) => [c.handle, c.length, c.committed]), [[h1, limits.chunkBytesMax, true], [h2, 5, true]]);
  t.same(chunkOffsets(file), [0, limits.chunkBytesMax]);
  t.same(d.paths(), ['/logs/', '/logs/app/', '/logs/app/1.log']);
  t.same(d.s.pendingFiles(), []);
  t.same(d.s.counts(), { files: 1, dirs: 2, chunks: 2, trash: 0, pending: 0 });
  d.s.assertInvariants();
});

t.test('namespace: an empty put completes as an empty file', async (t) => {
  const d = new Driver();
  const inode = d.put('/ns/empty', []);
  t.equal((d.s.stat('/ns/empty') as FileNode).size, 0);
  t.same(d.s.fileByInode(inode)?.chunks, []);
});

t.test('namespace: complete needs every chunk committed and the right size', async (t) => {
  const d = new Driver();
  const inode = d.create('/ns/f');
  d.write(inode, [7]);
  const open = d.allocate(inode);
  throwsCode(t, () => d.complete(inode, 7), 'FILE_NOT_WRITABLE', 'an uncommitted chunk');
  d.commit(inode, open, 3);
  throwsCode(t, () => d.complete(inode, 11), 'INVALID_ARGUMENT', 'size is not the sum of the chunks');
  t.equal(d.s.inodeLocation(inode), 'pending', 'a failed complete leaves the put pending');
  d.complete(inode, 10);
  t.equal((d.s.stat('/ns/f') as FileNode).size, 10);
});

t.test('namespace: a committed chunk may be committed again only with the same length', async (t) => {
  const d = new Driver();
  const inode = d.create('/ns/f');
  const [h] = d.write(inode, [7]);
  d.commit(inode, h!, 7);
  throwsCode(t, () => d.commit(inode, h!, 8), 'INVALID_ARGUMENT');
  throwsCode(t, () => d.commit(inode, h!, limits.chunkBytesMax + 1), 'INVALID_ARGUMENT', 'longer than a chunk');
  throwsCode(t, () => d.commit(inode, 999, 1), 'NO_SUCH_CHUNK');
  const other = d.create('/ns/g');
  throwsCode(t, () => d.commit(other, h!, 7), 'INVALID_ARGUMENT', 'a chunk of another file');
  throwsCode(t, () => d.apply({ abandonChunk: { inode: other, handle: h! } }), 'INVALID_ARGUMENT', 'abandon of another file\'s chunk');
});

t.test('namespace: an abandoned chunk leaves the file and the chunk table', async (t) => {
  const d = new Driver();
  const inode = d.create('/ns/f');
  const [h1] = d.write(inode, [4]);
  const h2 = d.allocate(inode);
  d.apply({ abandonChunk: { inode, handle: h2 } });
  t.equal(d.s.chunkOwner(h2), undefined, 'its replicas are orphans now');
  const [h3] = d.write(inode, [6]);
  d.complete(inode, 10);
  t.same(d.s.fileByInode(inode)!.chunks.map((c) => c.handle), [h1, h3]);
  t.ok(h3! > h2, 'a handle is never reused');
  t.equal(d.s.counts().chunks, 2);
});

t.test('namespace: abort drops a pending put and its chunks', async (t) => {
  const d = new Driver();
  const inode = d.create('/ns/f');
  const [h] = d.write(inode, [4]);
  d.abort(inode);
  t.equal(d.s.fileByInode(inode), undefined);
  t.equal(d.s.chunkOwner(h!), undefined);
  t.same(d.s.counts(), { files: 0, dirs: 0, chunks: 0, trash: 0, pending: 0 });
  throwsCode(t, () => d.abort(inode), 'NO_SUCH_FILE', 'abort twice');
  const sealed = d.put('/ns/g');
  throwsCode(t, () => d.abort(sealed), 'FILE_NOT_WRITABLE', 'abort of a complete file');
});

t.test('namespace: a sealed file is not writable', async (t) => {
  const d = new Driver();
  const inode = d.put('/ns/f');
  throwsCode(t, () => d.s.checkWritable(inode), 'FILE_NOT_WRITABLE');
  throwsCode(t, () => d.allocate(inode), 'FILE_NOT_WRITABLE');
  throwsCode(t, () => d.complete(inode), 'FILE_NOT_WRITABLE');
  throwsCode(t, () => d.s.checkWritable(12345), 'NO_SUCH_FILE');
  const pending = d.create('/ns/g');
  t.equal(d.s.checkWritable(pending).inode, pending);
});

t.test('namespace: creating over an existing file needs overwrite', async (t) => {
  const d = new Driver();
  d.put('/ns/f');
  throwsCode(t, () => d.s.checkCreate('/ns/f', false), 'ALREADY_EXISTS');
  throwsCode(t, () => d.create('/ns/f'), 'ALREADY_EXISTS');
  d.s.checkCreate('/ns/f', true);
  d.s.checkCreate('/ns/new/deep/file', false);
});

t.test('namespace: overwrite moves the old file to trash once the new one completes', async (t) => {
  const d = new Driver();
  const old = d.put('/ns/f', [3]);
  const oldHandle = d.s.fileByInode(old)!.chunks[0]!.handle;
  const next = d.create('/ns/f', { overwrite: true });
  d.write(next, [5]);
  t.equal((d.s.stat('/ns/f') as FileNode).inode, old, 'the old file is served until the new one completes');
  const result = d.complete(next);
  t.same(result.trashed, [old]);
  t.equal((d.s.stat('/ns/f') as FileNode).inode, next);
  t.same(d.s.trash(), [{ inode: old, path: '/ns/f', deletedAtMs: d.nowMs }]);
  t.equal(d.s.inodeLocation(old), 'trash');
  t.equal(d.s.fileByInode(old)?.visible, false);
  t.equal(d.s.chunkOwner(oldHandle)?.inode, old, 'trash keeps its chunks referenced');
  t.same(d.s.counts(), { files: 1, dirs: 1, chunks: 2, trash: 1, pending: 0 });
  d.s.assertInvariants();
});

t.test('namespace: two pending puts of one path: the second to complete is ALREADY_EXISTS', async (t) => {
  const d = new Driver();
  const first = d.create('/ns/f');
  const second = d.create('/ns/f');
  d.write(first, [1]);
  d.write(second, [2]);
  d.complete(second);
  throwsCode(t, () => d.complete(first), 'ALREADY_EXISTS');
  t.equal((d.s.stat('/ns/f') as FileNode).inode, second);
  t.equal(d.s.inodeLocation(first), 'pending', 'the loser stays pending until aborted');
  d.abort(first);
  t.same(d.s.counts(), { files: 1, dirs: 1, chunks: 1, trash: 0, pending: 0 });
});

t.test('namespace: two pending puts with overwrite: the last to complete wins', async (t) => {
  const d = new Driver();
  const first = d.create('/ns/f', { overwrite: true });
  const second = d.create('/ns/f', { overwrite: true });
  d.complete(second);
  d.complete(first);
  t.equal((d.s.stat('/ns/f') as FileNode).inode, first);
  t.same(d.s.trash().map((e) => e.inode), [second]);
});

t.test('namespace: a directory at the path is IS_A_DIRECTORY, a file as a parent is NOT_A_DIRECTORY', async (t) => {
  const d = new Driver();
  d.mkdir('/ns/dir');
  throwsCode(t, () => d.s.checkCreate('/ns/dir', true), 'IS_A_DIRECTORY');
  d.put('/ns/file');
  throwsCode(t, () => d.s.checkCreate('/ns/file/x', false), 'NOT_A_DIRECTORY');
  throwsCode(t, () => d.create('/ns/file/x/y'), 'NOT_A_DIRECTORY');

  // the same checks again at complete: the tree changed while the put was pending
  const a = d.create('/ns/later');
  const b = d.create('/ns/later2/x');
  d.mkdir('/ns/later');
  d.put('/ns/later2');
  throwsCode(t, () => d.complete(a), 'IS_A_DIRECTORY');
  throwsCode(t, () => d.complete(b), 'NOT_A_DIRECTORY');
  throwsCode(t, () => d.mkdir('/ns/file'), 'ALREADY_EXISTS', 'mkdir where a file is');
  throwsCode(t, () => d.mkdir('/ns/file/sub'), 'NOT_A_DIRECTORY', 'mkdir below a file');
});

t.test('namespace: invalid paths are rejected', async (t) => {
  const d = new Driver();
  d.put('/ns/ok');
  const bad = ['', 'relative/x', '/ns/./x', '/ns/../x', '/ns//x', '/ns/a\0b', '/ns/' + 'x'.repeat(256), '/ns/' + 'é'.repeat(128)];
  for (const path of bad) {
    throwsCode(t, () => d.s.checkCreate(path, false), 'INVALID_PATH', `checkCreate ${JSON.stringify(path)}`);
    throwsCode(t, () => d.create(path), 'INVALID_PATH', `create ${JSON.stringify(path)}`);
    throwsCode(t, () => d.mkdir(path), 'INVALID_PATH', `mkdir ${JSON.stringify(path)}`);
    throwsCode(t, () => d.rename('/ns/ok', path), 'INVALID_PATH', `rename to ${JSON.stringify(path)}`);
    throwsCode(t, () => d.del(path), 'INVALID_PATH', `delete ${JSON.stringify(path)}`);
    throwsCode(t, () => d.s.stat(path), 'INVALID_PATH', `stat ${JSON.stringify(path)}`);
  }
  throwsCode(t, () => d.create('/toplevel'), 'INVALID_PATH', 'a file needs a namespace');
  throwsCode(t, () => d.rename('/ns/ok', '/toplevel'), 'INVALID_PATH', 'a file cannot become a namespace');
  d.create('/ns/' + 'x'.repeat(255));
  d.create('/ns/' + 'é'.repeat(127));
  d.create('/ns/trailing/');
  t.same(d.s.pendingFiles().map((f) => f.path).at(-1), '/ns/trailing', 'a trailing slash is ignored');
});

t.test('namespace: rename moves a file and creates the target parents', async (t) => {
  const d = new Driver();
  const inode = d.put('/ns/a/f');
  d.rename('/ns/a/f', '/other/b/c/g');
  throwsCode(t, () => d.s.stat('/ns/a/f'), 'NO_SUCH_FILE');
  const f = d.s.stat('/other/b/c/g') as FileNode;
  t.equal(f.inode, inode);
  t.equal(f.path, '/other/b/c/g');
  t.same(d.paths(), ['/ns/', '/ns/a/', '/other/', '/other/b/', '/other/b/c/', '/other/b/c/g'], 'the old parent stays');
  d.rename('/other/b/c/g', '/other/b/c/g');
  t.equal((d.s.stat('/other/b/c/g') as FileNode).inode, inode, 'rename to itself is a no-op');
  throwsCode(t, () => d.rename('/ns/missing', '/ns/x'), 'NO_SUCH_FILE');
  throwsCode(t, () => d.rename('/', '/x'), 'INVALID_ARGUMENT');
  d.s.assertInvariants();
});

t.test('namespace: rename moves a directory with its whole subtree', async (t) => {
  const d = new Driver();
  const deep = d.put('/ns/a/b/c/deep');
  const top = d.put('/ns/a/top');
  d.put('/ns/ab');
  d.mkdir('/ns/a/empty');
  d.rename('/ns/a', '/ns/z/moved');
  t.same(d.paths('/ns'), ['/ns/ab', '/ns/z/', '/ns/z/moved/', '/ns/z/moved/b/', '/ns/z/moved/b/c/', '/ns/z/moved/b/c/deep', '/ns/z/moved/empty/', '/ns/z/moved/top']);
  t.equal(d.s.fileByInode(deep)?.path, '/ns/z/moved/b/c/deep');
  t.equal(d.s.fileByInode(top)?.path, '/ns/z/moved/top');
  throwsCode(t, () => d.s.stat('/ns/a/top'), 'NO_SUCH_FILE');
  d.s.assertInvariants();
});

t.test('namespace: a directory cannot move into itself', async (t) => {
  const d = new Driver();
  d.put('/ns/a/f');
  throwsCode(t, () => d.rename('/ns/a', '/ns/a/b'), 'INVALID_ARGUMENT');
  throwsCode(t, () => d.rename('/ns', '/ns/a/b/c'), 'INVALID_ARGUMENT');
  throwsCode(t, () => d.s.checkRename('/ns/a', '/ns/a/b', false), 'INVALID_ARGUMENT');
  d.rename('/ns/a', '/ns/a-b');
  t.same(d.paths('/ns'), ['/ns/a-b/', '/ns/a-b/f'], 'a name that only starts like the source is fine');
});

t.test('namespace: rename onto an existing file needs overwrite and trashes it; onto a directory is ALREADY_EXISTS', async (t) => {
  const d = new Driver();
  const source = d.put('/ns/src');
  const target = d.put('/ns/dst');
  d.mkdir('/ns/dir');
  throwsCode(t, () => d.rename('/ns/src', '/ns/dst'), 'ALREADY_EXISTS');
  throwsCode(t, () => d.rename('/ns/src', '/ns/dir'), 'ALREADY_EXISTS');
  throwsCode(t, () => d.rename('/ns/dir', '/ns/dst', true), 'ALREADY_EXISTS', 'a directory does not replace a file');
  throwsCode(t, () => d.rename('/ns/src', '/ns/dst/x'), 'NOT_A_DIRECTORY');
  const result = d.rename('/ns/src', '/ns/dst', true);
  t.same(result.trashed, [target]);
  t.equal((d.s.stat('/ns/dst') as FileNode).inode, source);
  t.same(d.s.trash().map((e) => [e.inode, e.path]), [[target, '/ns/dst']]);
  d.s.assertInvariants();
});

t.test('namespace: a namespace root can be renamed', async (t) => {
  const d = new Driver();
  d.put('/ns/a/f');
  d.rename('/ns', '/ns2');
  t.same(d.paths(), ['/ns2/', '/ns2/a/', '/ns2/a/f']);
  d.rename('/ns2/a', '/top');
  t.same(d.paths(), ['/ns2/', '/top/', '/top/f'], 'a directory can become a namespace');
});

t.test('namespace: delete moves a file to trash and keeps its chunks referenced', async (t) => {
  const d = new Driver();
  const inode = d.put('/ns/f', [9]);
  const handle = d.s.fileByInode(inode)!.chunks[0]!.handle;
  const result = d.del('/ns/f');
  t.same(result.trashed, [inode]);
  throwsCode(t, () => d.s.stat('/ns/f'), 'NO_SUCH_FILE');
  t.same(d.s.trash(), [{ inode, path: '/ns/f', deletedAtMs: d.nowMs }]);
  t.equal(d.s.chunkOwner(handle)?.inode, inode);
  t.same([...d.s.allChunks()], [{ handle, version: 1, length: 9, inode, replication: 3 }]);
  throwsCode(t, () => d.del('/ns/f'), 'NO_SUCH_FILE', 'delete twice');
  throwsCode(t, () => d.del('/'), 'INVALID_ARGUMENT');
});

t.test('namespace: deleting a non-empty directory needs recursive', async (t) => {
  const d = new Driver();
  const a = d.put('/ns/d/a');
  const b = d.put('/ns/d/sub/b');
  d.mkdir('/ns/d/sub/empty');
  d.put('/ns/keep');
  throwsCode(t, () => d.del('/ns/d'), 'DIRECTORY_NOT_EMPTY');
  throwsCode(t, () => d.s.checkDelete('/ns/d', false), 'DIRECTORY_NOT_EMPTY');
  d.s.checkDelete('/ns/d', true);
  d.del('/ns/d/sub/empty');
  const result = d.del('/ns/d', true);
  t.same(result.trashed, [a, b]);
  t.same(d.paths(), ['/ns/', '/ns/keep']);
  t.same(d.s.trash().map((e) => e.path), ['/ns/d/a', '/ns/d/sub/b']);
  t.same(d.s.counts(), { files: 1, dirs: 1, chunks: 3, trash: 2, pending: 0 });
  d.del('/ns', true);
  t.same(d.paths(), [], 'a namespace can be deleted');
  d.s.assertInvariants();
});

t.test('namespace: mkdir creates parents and an existing directory is fine', async (t) => {
  const d = new Driver();
  d.mkdir('/ns/a/b');
  d.mkdir('/ns/a/b');
  d.mkdir('/');
  t.same(d.paths(), ['/ns/', '/ns/a/', '/ns/a/b/']);
  t.same(d.s.stat('/ns/a'), { kind: 'dir', path: '/ns/a', mtimeMs: d.nowMs - 2 });
  d.s.checkMkdir('/ns/a/b');
  throwsCode(t, () => d.s.checkMkdir('/ns/a/b', false), 'ALREADY_EXISTS');
  throwsCode(t, () => d.s.checkMkdir('/ns/x/y', false), 'NO_SUCH_FILE');
  d.s.checkMkdir('/ns/a/c', false);
});

t.test('namespace: a directory mtime follows changes to its children', async (t) => {
  const d = new Driver();
  d.mkdir('/ns/d');
  const made = (d.s.stat('/ns/d')).mtimeMs;
  d.put('/ns/d/f');
  const after = d.s.stat('/ns/d').mtimeMs;
  t.ok(after > made);
  t.equal(d.s.stat('/ns').mtimeMs, made, 'the grandparent is unchanged');
});

t.test('namespace: list is sorted by full path and pages with startAfter and limit', async (t) => {
  const d = new Driver();
  for (const p of ['/ns/a/x', '/ns/a-b', '/ns/a/y/z', '/ns/b', '/ns/a0', '/ns/a.txt']) d.put(p);
  d.mkdir('/ns/a/y/empty');
  const all = d.paths('/ns');
  t.same(all, ['/ns/a/', '/ns/a-b', '/ns/a.txt', '/ns/a/x', '/ns/a/y/', '/ns/a/y/empty/', '/ns/a/y/z', '/ns/a0', '/ns/b'],
    'a directory sorts before its contents, which sort by full path with its siblings');
  const byPath = all.map((p) => p.replace(/\/$/, ''));
  t.same(byPath, [...byPath].sort(), 'entries are in full-path order');
  t.same(d.paths('/ns', false), ['/ns/a/', '/ns/a-b', '/ns/a.txt', '/ns/a0', '/ns/b']);

  for (const recursive of [true, false]) {
    for (const limit of [1, 2, 3, 100]) {
      const pages: string[] = [];
      let startAfter = '';
      for (;;) {
        const page = d.s.list('/ns', { recursive, limit, startAfter });
        pages.push(...page.entries.map((e) => e.path));
        t.ok(page.entries.length <= limit);
        if (!page.truncated) break;
        startAfter = page.entries.at(-1)!.path;
      }
      const whole = d.s.list('/ns', { recursive, limit: 0, startAfter: '' }).entries.map((e) => e.path);
      t.same(pages, whole, `paging recursive=${recursive} limit=${limit}`);
    }
  }
  t.same(d.s.list('/ns', { recursive: true, limit: 0, startAfter: '/ns/a/y' }).entries.map((e) => e.path), ['/ns/a/y/empty', '/ns/a/y/z', '/ns/a0', '/ns/b'],
    'startAfter inside a subtree seeks into it');
  t.same(d.s.list('/ns', { recursive: true, limit: 0, startAfter: '/nt' }).entries, [], 'startAfter past the directory');
  t.same(d.s.list('/ns', { recursive: false, limit: 0, startAfter: '/a' }).entries.length, 5, 'startAfter before the directory');
  t.same(d.s.list('/ns', { recursive: true, limit: 0, startAfter: '', filesOnly: true }).entries.map((e) => e.path),
    ['/ns/a-b', '/ns/a.txt', '/ns/a/x', '/ns/a/y/z', '/ns/a0', '/ns/b']);
  t.same(d.s.list('/ns/a/x', { recursive: false, limit: 10, startAfter: '' }).entries.map((e) => e.path), ['/ns/a/x'], 'listing a file returns it');
  t.same(d.s.list('/ns/a/x', { recursive: false, limit: 10, startAfter: '/ns/a/x' }).entries, []);
  t.same(d.s.list('/', { recursive: false, limit: 0, startAfter: '' }).entries, [{ kind: 'dir', path: '/ns', mtimeMs: d.s.stat('/ns').mtimeMs }]);
  throwsCode(t, () => d.s.list('/nope', { recursive: false, limit: 0, startAfter: '' }), 'NO_SUCH_FILE');
});

t.test('namespace: listing order is UTF-8 byte order, not UTF-16 order', async (t) => {
  const d = new Driver();
  const names = ['\u{1F600}', '\uFFFD', 'z', '\u00E9'];
  for (const n of names) d.put('/ns/' + n);
  const expected = [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))).map((n) => '/ns/' + n);
  t.same(d.paths('/ns'), expected);
  t.notSame(expected, names.map((n) => '/ns/' + n).sort(), 'the plain JS order differs here');
});

t.test('namespace: inodes and handles are never reused', async (t) => {
  const d = new Driver();
  const inode = d.create('/ns/f');
  const handle = d.allocate(inode);
  t.equal(d.s.nextInode, inode + 1);
  t.equal(d.s.nextHandle, handle + 1);
  d.abort(inode);
  const op = { inode, path: '/ns/g', overwrite: false, replication: 3, contentType: '', metadata: {}, mtimeMs: 1 };
  throwsCode(t, () => d.apply({ createFile: op }), 'INVALID_ARGUMENT', 'an inode below nextInode');
  throwsCode(t, () => d.apply({ createFile: { ...op, inode: 0 } }), 'INVALID_ARGUMENT', 'inode 0');
  const next = d.create('/ns/g');
  throwsCode(t, () => d.apply({ allocateChunk: { inode: next, handle, version: 1 } }), 'INVALID_ARGUMENT', 'a handle below nextHandle');
  d.apply({ createFile: { ...op, inode: 100 } });
  d.apply({ allocateChunk: { inode: 100, handle: 500, version: 1 } });
  t.equal(d.s.nextInode, 101, 'apply advances past any id it sees');
  t.equal(d.s.nextHandle, 501);
  throwsCode(t, () => d.apply({ createFile: { ...op, inode: 101, replication: limits.replicationMax + 1 } }), 'INVALID_ARGUMENT', 'replication too high');
  d.apply({ createFile: { ...op, inode: 101, path: '/ns/h', replication: 0 } });
  t.equal(d.s.fileByInode(101)?.replication, limits.replicationDefault, 'replication 0 is the default');
});
