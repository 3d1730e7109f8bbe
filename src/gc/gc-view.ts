/**
 * What GC needs from the rest of the system, declared here so src/gc depends on nothing
 * of the master's (the master's MetaState, NodeRegistry and command outbox satisfy these
 * shapes; the master's lifecycle wires them in).
 *
 * Invariant: these are views: GC changes metadata only through `commit` and replicas only
 * by queueing DELETEs on the sink, which the master confirms again before sending.
 */

/** The metadata, as applied now. */
export interface GcMetadata {
  /** Deleted files still restorable, with their wall-clock deletion times. */
  trash(): readonly { inode: number; path: string; deletedAtMs: number }[];
  /** Files being written (not sealed, not aborted). */
  pendingFiles(): readonly { inode: number; path: string }[];
  fileByInode(inode: number): { chunks: readonly { handle: number }[] } | undefined;
  /** Defined when some file (tree, trash or pending) references the handle. */
  chunkOwner(handle: number): unknown;
  /** Every handle below this was allocated; none at or above it was. */
  readonly nextHandle: number;
}

/** One replica as the chunkservers last reported it. */
export interface GcReplica {
  nodeId: string;
  version: number;
  length: number;
  /** Its node is alive and has sent its full report. */
  usable: boolean;
}

/** Where replicas are (soft state from heartbeats). */
export interface GcReplicas {
  reportedHandles(): Iterable<number>;
  replicaViews(handle: number): readonly GcReplica[];
}

/** A DELETE for an unreferenced replica, handed to the master's command outbox. */
export interface GcDelete {
  nodeId: string;
  handle: number;
  version: number;
  reason: 'orphan';
  detail: string;
}

export interface GcCommandSink {
  /** Returns false when that delete is already queued. */
  queueDelete(d: GcDelete, nowMonoMs: number): boolean;
  /** Defined when a delete of this replica is queued and unconfirmed. */
  pendingDelete(handle: number, nodeId: string): unknown;
}

/** What a committed op answers that GC looks at. */
export interface GcCommitResult {
  /** Handles no file references any more (a purge). */
  released?: readonly number[];
}
