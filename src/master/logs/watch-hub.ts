/**
 * Watch (docs/LOG-STREAMS.md, "Follow"): who watches which file, and which applied ops
 * change it. The master feeds every applied op here (on every master; only the
 * leader's watchers exist); each watcher of an inode the op touched gets one event.
 * Pure apart from the callbacks it is given.
 *
 * Invariants:
 * - A watcher is keyed by inode, so a rename keeps it (reason "renamed") and a new
 *   file at the old path does not; an inode that leaves the tree (delete, replaced,
 *   purged) ends its watchers with reason "deleted".
 * - At most `watchersMax` watchers; one over it is refused with UNAVAILABLE.
 * - Events go out in apply order, each with the applied index (revision) that caused it.
 */
import type { MetaOp } from '../../../gen/gfs';
import { GfsError } from '../../common/errors';
import type { ApplyResult, FileNode, MetaState } from '../meta-state';

export type WatchReason = 'initial' | 'chunk' | 'sealed' | 'deleted' | 'renamed';

export interface Watcher {
  /** Called with the file as it is now (undefined once deleted). */
  event: (reason: WatchReason, file: FileNode | undefined, revision: number) => void;
  /** The watch ends with an error (this master stopped leading). */
  end: (error: GfsError) => void;
}

export class WatchHub {
  private readonly byInode = new Map<number, Set<Watcher>>();
  private count = 0;

  constructor(private readonly state: () => MetaState, private readonly watchersMax: number) {}

  get size(): number {
    return this.count;
  }

  /** Starts watching an inode; returns the function that stops it. */
  add(inode: number, w: Watcher): () => void {
    if (this.count >= this.watchersMax) throw new GfsError('UNAVAILABLE', `too many watchers (${this.watchersMax}); retry later`);
    let set = this.byInode.get(inode);
    if (set === undefined) this.byInode.set(inode, (set = new Set()));
    set.add(w);
    this.count++;
    return () => {
      if (!set!.delete(w)) return;
      this.count--;
      if (set!.size === 0 && this.byInode.get(inode) === set) this.byInode.delete(inode);
    };
  }

  /** Every watcher: the master stops leading (they watch again on the new leader). */
  *all(): Iterable<Watcher> {
    for (const set of this.byInode.values()) yield* set;
  }

  /** An op was applied at `revision` with this result. */
  applied(op: MetaOp, result: ApplyResult | undefined, revision: number): void {
    if (this.count === 0 || result === undefined || result.replayed === true) return;
    for (const [inode, reason] of this.touched(op, result)) {
      const set = this.byInode.get(inode);
      if (set === undefined) continue;
      const file = reason === 'deleted' ? undefined : this.state().fileByInode(inode);
      for (const w of [...set]) w.event(reason, file, revision);
    }
  }

  private touched(op: MetaOp, result: ApplyResult): [number, WatchReason][] {
    const out: [number, WatchReason][] = [];
    if (op.allocateChunk || op.sealChunk || op.abandonChunk) out.push([result.inode!, 'chunk']);
    else if (op.completeFile && result.file?.log !== undefined) out.push([result.inode!, 'sealed']);
    else if (op.rename) {
      // Anything watched below the source moved; the state already has the new paths.
      const target = op.rename.target;
      for (const inode of this.byInode.keys()) {
        const f = this.state().fileByInode(inode);
        if (f?.visible === true && (f.path === target || f.path.startsWith(target.endsWith('/') ? target : target + '/'))) out.push([inode, 'renamed']);
      }
    }
    for (const inode of [...(result.trashed ?? [])]) out.push([inode, 'deleted']);
    if (op.purge) for (const inode of op.purge.inodes) out.push([inode, 'deleted']);
    return out;
  }
}
