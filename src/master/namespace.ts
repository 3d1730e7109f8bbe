/**
 * The namespace tree: directories with per-directory child maps, files as leaves.
 * Only linked (visible) files are in the tree; pending puts and trash live beside it
 * in MetaState, keyed by inode.
 *
 * Invariants:
 * - Every node's `path` is its parent's path + '/' + its name in the parent's map
 *   (the root is '/'); a rename rewrites the paths of the whole moved subtree.
 * - Names are valid path components (src/common/paths.ts); a name never holds '/'.
 * - `dirCount` (root excluded) and `fileCount` equal what a full walk would count.
 * Asserted where a change could break them (kept on in production): a name is taken
 * only when free and released only by its holder, the counts never go negative, and
 * a moved node is found at its new path and not at its old one.
 *
 * Cost: lookups are O(depth) map gets. Listing sorts a directory's names on demand
 * and caches the order until that directory next changes, so paging through a large
 * directory is O(log n + page) per page while it is not being written.
 *
 * Order: listings are sorted by full path in UTF-8 byte order (as S3 lists keys),
 * which is not the same as a depth-first walk by name: '/ns/a-b' sorts between
 * '/ns/a' and '/ns/a/x'. Each directory therefore sorts two keys per subdirectory:
 * its name (the entry itself) and its name + '/' (where its subtree goes).
 */
import assert from 'node:assert/strict';
import { GfsError } from '../common/errors';
import type { DirNode, FileNode, StreamState } from './meta-types';

export class Dir {
  readonly kind = 'dir' as const;
  readonly children = new Map<string, Dir | FileNode>();
  /** Child keys in listing order (see the top comment); undefined once a child changes. */
  sortedKeys: string[] | undefined = undefined;
  /** Set for a stream directory (docs/LOG-STREAMS.md); changed only by MetaState. */
  stream: StreamState | undefined = undefined;

  constructor(
    public path: string,
    public mtimeMs: number,
  ) {}

  view(): DirNode {
    const view: DirNode = { kind: 'dir', path: this.path, mtimeMs: this.mtimeMs };
    if (this.stream !== undefined) view.stream = { ...this.stream, policy: { ...this.stream.policy } };
    return view;
  }
}

export type TreeNode = Dir | FileNode;

/** What a path names, for checks before a change. */
export type Probe =
  | { kind: 'none' }
  | { kind: 'dir'; dir: Dir; parent: Dir | undefined }
  | { kind: 'file'; file: FileNode; parent: Dir };

/**
 * Compares by Unicode code point, which is UTF-8 byte order. Plain `<` on JS strings
 * compares UTF-16 units and puts U+E000..U+FFFF after astral characters.
 */
export function comparePaths(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x !== y) {
      if (x >= 0xd800 && y >= 0xd800) {
        x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
        y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
      }
      return x - y;
    }
  }
  return a.length - b.length;
}

/** Components of an already normalized path ('/' has none). */
export function components(path: string): string[] {
  return path === '/' ? [] : path.slice(1).split('/');
}

export function childPath(parent: string, name: string): string {
  return parent === '/' ? '/' + name : parent + '/' + name;
}

function childPrefix(dir: string): string {
  return dir === '/' ? '/' : dir + '/';
}

export class Namespace {
  readonly root = new Dir('/', 0);
  dirCount = 0;
  fileCount = 0;
  /** Path → directory while a snapshot is restored (records come parent first); undefined otherwise. */
  private restoreIndex: Map<string, Dir> | undefined;

  lookup(path: string): TreeNode | undefined {
    let node: TreeNode = this.root;
    for (const name of components(path)) {
      if (node.kind !== 'dir') return undefined;
      const next: TreeNode | undefined = node.children.get(name);
      if (next === undefined) return undefined;
      node = next;
    }
    return node;
  }

  /** The node at `path` with its parent directory (undefined for the root). */
  find(path: string): { node: TreeNode; parent: Dir | undefined } | undefined {
    let node: TreeNode = this.root;
    let parent: Dir | undefined;
    for (const name of components(path)) {
      if (node.kind !== 'dir') return undefined;
      const next: TreeNode | undefined = node.children.get(name);
      if (next === undefined) return undefined;
      parent = node;
      node = next;
    }
    return { node, parent };
  }

  /**
   * What is at `path` (normalized). Missing parents are fine (they can be created);
   * a file where a parent directory should be is NOT_A_DIRECTORY.
   */
  probe(path: string): Probe {
    const names = components(path);
    let dir = this.root;
    let parent: Dir | undefined;
    for (let i = 0; i < names.length; i++) {
      const next = dir.children.get(names[i]!);
      if (next === undefined) return { kind: 'none' };
      if (next.kind === 'file') {
        if (i === names.length - 1) return { kind: 'file', file: next, parent: dir };
        throw new GfsError('NOT_A_DIRECTORY', `"${next.path}" is a file, not a directory (in "${path}")`);
      }
      parent = dir;
      dir = next;
    }
    return { kind: 'dir', dir, parent };
  }

  /** Creates the missing directories of `path` (like mkdir -p) and returns it. The caller checked `probe`. */
  ensureDir(path: string, mtimeMs: number): Dir {
    let dir = this.root;
    for (const name of components(path)) {
      const next = dir.children.get(name);
      if (next === undefined) {
        const made = new Dir(childPath(dir.path, name), mtimeMs);
        this.attach(dir, name, made, mtimeMs);
        this.dirCount++;
        dir = made;
      } else {
        assert.ok(next.kind === 'dir', `ensureDir("${path}") met the file "${next.path}"`);
        dir = next;
      }
    }
    return dir;
  }

  /** Links a file at its `path`, creating parents. Nothing may be there (the caller checked). */
  linkFile(file: FileNode, mtimeMs: number): void {
    const i = file.path.lastIndexOf('/');
    const parent = this.ensureDir(i === 0 ? '/' : file.path.slice(0, i), mtimeMs);
    this.attach(parent, file.path.slice(i + 1), file, mtimeMs);
    this.fileCount++;
  }

  /** Unlinks a file from its parent. */
  unlinkFile(parent: Dir, file: FileNode, mtimeMs: number): void {
    this.detach(parent, nameOf(file.path), file, mtimeMs);
    this.fileCount--;
    assert.ok(this.fileCount >= 0, 'more files unlinked than linked');
  }

  /** Removes a directory and everything below it; returns the files that were in it. */
  removeDir(parent: Dir, dir: Dir, mtimeMs: number): FileNode[] {
    const files: FileNode[] = [];
    let dirs = 0;
    const stack: Dir[] = [dir];
    while (stack.length > 0) {
      const d = stack.pop()!;
      dirs++;
      for (const child of d.children.values()) {
        if (child.kind === 'dir') stack.push(child);
        else files.push(child);
      }
    }
    this.detach(parent, nameOf(dir.path), dir, mtimeMs);
    this.dirCount -= dirs;
    this.fileCount -= files.length;
    assert.ok(this.dirCount >= 0 && this.fileCount >= 0, 'more nodes removed than the tree held');
    return files;
  }

  /**
   * Moves a file or directory to `target` (free, with creatable parents, not inside
   * the node itself: the caller checked) and rewrites the paths below it.
   */
  move(parent: Dir, node: TreeNode, target: string, mtimeMs: number): void {
    const i = target.lastIndexOf('/');
    this.detach(parent, nameOf(node.path), node, mtimeMs);
    const targetParent = this.ensureDir(i === 0 ? '/' : target.slice(0, i), mtimeMs);
    const source = node.path;
    node.path = target;
    if (node.kind === 'dir') {
      const stack: Dir[] = [node];
      while (stack.length > 0) {
        const d = stack.pop()!;
        for (const child of d.children.values()) {
          assert.ok(child.path.startsWith(source + '/'));
          child.path = target + child.path.slice(source.length);
          if (child.kind === 'dir') stack.push(child);
        }
      }
    }
    this.attach(targetParent, target.slice(i + 1), node, mtimeMs);
    assert.ok(this.lookup(target) === node && this.lookup(source) !== node, `move of "${source}" to "${target}" left it elsewhere`);
  }

  /** Restore: adds a directory under its already restored parent, keeping every mtime as stored. */
  restoreDir(path: string, mtimeMs: number): boolean {
    const index = (this.restoreIndex ??= new Map([['/', this.root]]));
    if (path === '/') {
      this.root.mtimeMs = mtimeMs;
      return true;
    }
    const parent = index.get(parentPath(path));
    const name = nameOf(path);
    if (parent === undefined || name === '' || parent.children.has(name)) return false;
    const dir = new Dir(path, mtimeMs);
    parent.children.set(name, dir);
    index.set(path, dir);
    this.dirCount++;
    return true;
  }

  /** Restore: links a file under its already restored parent, keeping every mtime as stored. */
  restoreFile(file: FileNode): boolean {
    const index = (this.restoreIndex ??= new Map([['/', this.root]]));
    const parent = index.get(parentPath(file.path));
    const name = nameOf(file.path);
    if (parent === undefined || name === '' || parent.children.has(name)) return false;
    parent.children.set(name, file);
    this.fileCount++;
    return true;
  }

  /** Restore is over: drop the path index it used. */
  endRestore(): void {
    this.restoreIndex = undefined;
  }

  /**
   * Entries below `dir` in listing order whose path sorts after `startAfter`
   * (a full path; '' for all). Lazy, so a page costs what it returns; the tree
   * must not change while the iterator is in use.
   */
  *entries(dir: Dir, recursive: boolean, startAfter: string): Generator<TreeNode> {
    const prefix = childPrefix(dir.path);
    if (startAfter === '' || comparePaths(startAfter, prefix) < 0) {
      yield* this.walk(dir, recursive, undefined);
    } else if (startAfter.startsWith(prefix)) {
      yield* this.walk(dir, recursive, startAfter.slice(prefix.length));
    }
    // otherwise startAfter sorts after everything under dir
  }

  /** `seek` is startAfter relative to `dir` (may contain '/'), or undefined for all. */
  private *walk(dir: Dir, recursive: boolean, seek: string | undefined): Generator<TreeNode> {
    const keys = this.sorted(dir);
    let i = 0;
    if (seek !== undefined) {
      i = upperBound(keys, seek);
      // The subtree key just before may be the one seek points into: "c/" ≤ "c/x".
      const before = keys[i - 1];
      if (recursive && before !== undefined && before.endsWith('/') && seek.startsWith(before)) {
        const sub = dir.children.get(before.slice(0, -1));
        assert.ok(sub?.kind === 'dir');
        yield* this.walk(sub, true, seek.slice(before.length));
      }
    }
    for (; i < keys.length; i++) {
      const key = keys[i]!;
      if (key.endsWith('/')) {
        if (!recursive) continue;
        const sub = dir.children.get(key.slice(0, -1));
        assert.ok(sub?.kind === 'dir');
        yield* this.walk(sub, true, undefined);
      } else {
        yield dir.children.get(key)!;
      }
    }
  }

  private sorted(dir: Dir): string[] {
    if (dir.sortedKeys === undefined) {
      const keys: string[] = [];
      for (const [name, child] of dir.children) {
        keys.push(name);
        if (child.kind === 'dir') keys.push(name + '/');
      }
      dir.sortedKeys = keys.sort(comparePaths);
    }
    return dir.sortedKeys;
  }

  private attach(parent: Dir, name: string, node: TreeNode, mtimeMs: number): void {
    assert.ok(!parent.children.has(name), `"${childPath(parent.path, name)}" is already taken`);
    assert.equal(node.path, childPath(parent.path, name));
    parent.children.set(name, node);
    parent.sortedKeys = undefined;
    parent.mtimeMs = mtimeMs;
  }

  private detach(parent: Dir, name: string, node: TreeNode, mtimeMs: number): void {
    assert.ok(parent.children.get(name) === node, `"${node.path}" is not a child of "${parent.path}"`);
    parent.children.delete(name);
    parent.sortedKeys = undefined;
    parent.mtimeMs = mtimeMs;
  }
}

function parentPath(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

function nameOf(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** First index whose key sorts after `key`. */
function upperBound(keys: string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (comparePaths(keys[mid]!, key) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
