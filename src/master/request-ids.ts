/**
 * The table of recently applied client request ids (DESIGN §4): a retried
 * create/allocate/complete/delete... that was already applied is answered from here
 * instead of being applied twice.
 *
 * Invariants:
 * - The table is part of the replicated metadata state: it changes only inside
 *   MetaState.apply, so every master holds the same table after the same log prefix.
 * - It holds at most `capacity` ids; the oldest *inserted* id is evicted first. A
 *   lookup never refreshes an id: recency of reads is not in the log, and eviction
 *   must not depend on it or masters would diverge.
 * - An id is remembered once; a later op with the same id is a replay, never an insert.
 */
import assert from 'node:assert/strict';
import type { OpKind } from './meta-types';


/** What a replay needs to answer exactly as the first application did. Small on purpose. */
export interface RememberedResult {
  op: OpKind;
  inode?: number;
  handle?: number;
  version?: number;
}

export class RequestIdTable {
  private readonly byId = new Map<string, RememberedResult>();
  /**
   * Ids in insertion order from `head` on. Kept beside the map because evicting
   * through `map.keys().next()` walks the holes that deletes leave at the front of
   * V8's hash table, which made every insert O(capacity) once the table was full.
   */
  private order: string[] = [];
  private head = 0;

  constructor(readonly capacity: number) {
    assert.ok(Number.isSafeInteger(capacity) && capacity > 0, 'request id table capacity must be positive');
  }

  get size(): number {
    return this.byId.size;
  }

  get(id: string): RememberedResult | undefined {
    return this.byId.get(id);
  }

  remember(id: string, result: RememberedResult): void {
    assert.ok(id.length > 0, 'an empty request id is never remembered');
    assert.ok(!this.byId.has(id), 'a request id is remembered once');
    this.byId.set(id, result);
    this.order.push(id);
    while (this.byId.size > this.capacity) {
      const oldest = this.order[this.head]!;
      this.order[this.head++] = '';
      assert.ok(this.byId.delete(oldest));
    }
    if (this.head >= this.capacity && this.head * 2 >= this.order.length) {
      this.order = this.order.slice(this.head);
      this.head = 0;
    }
    assert.equal(this.order.length - this.head, this.byId.size);
  }

  /** Oldest first: the order a restore must re-insert them in. */
  *entries(): IterableIterator<[string, RememberedResult]> {
    for (let i = this.head; i < this.order.length; i++) {
      const id = this.order[i]!;
      yield [id, this.byId.get(id)!];
    }
  }
}
