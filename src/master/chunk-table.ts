/**
 * The chunk table: chunk handle → the file that references it.
 *
 * Invariants:
 * - A handle belongs to at most one file, and appears once in that file's chunk list.
 * - Every chunk ref of every known file (pending, in the tree, or in trash) is here,
 *   and nothing else is: GC treats a handle that is absent as an orphan, so a missing
 *   entry would get live data deleted.
 */
import assert from 'node:assert/strict';
import type { ChunkRef, FileNode } from './meta-types';

export interface ChunkEntry {
  file: FileNode;
  ref: ChunkRef;
}

export class ChunkTable {
  private readonly byHandle = new Map<number, ChunkEntry>();

  get size(): number {
    return this.byHandle.size;
  }

  get(handle: number): ChunkEntry | undefined {
    return this.byHandle.get(handle);
  }

  add(file: FileNode, ref: ChunkRef): void {
    assert.ok(!this.byHandle.has(ref.handle), `chunk ${ref.handle} already belongs to a file`);
    this.byHandle.set(ref.handle, { file, ref });
  }

  remove(handle: number): void {
    assert.ok(this.byHandle.delete(handle), `chunk ${handle} is not in the chunk table`);
  }

  /** In no particular order (allocation order, or file order after a restore). */
  values(): IterableIterator<ChunkEntry> {
    return this.byHandle.values();
  }
}
