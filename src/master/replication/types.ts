/**
 * Types of the master group's log replication (replica.ts): log entries, the messages
 * masters exchange, the storage operations a replica asks its driver to make durable,
 * and the effects it emits. Everything here is plain data, so a driver can put it on
 * gRPC and the simulation can pass it around as is.
 */

/** A master's stable identity (the same one that appears in the group configuration). */
export type NodeId = string;

/**
 * One log entry. Deliberately the same shape as a WalRecord ({epoch, index, type,
 * payload}), so the driver hands entries to `Wal.appendReplicated` unchanged. Entries
 * are immutable once created: replicas and drivers share them and must not modify them
 * (the payload included).
 */
export interface Entry {
  /** Epoch of the leader that created the entry. */
  epoch: number;
  /** Position in the log, from 1. */
  index: number;
  /** What the payload is; ENTRY_TYPE_NOOP is reserved for replication. */
  type: number;
  payload: Uint8Array;
}

/**
 * The entry a new leader appends in its own epoch before it serves (Raft §8): committing
 * it commits everything before it. A state machine skips it. WAL type 0 is unused by the
 * master (WAL_TYPE_META_OP is 1).
 */
export const ENTRY_TYPE_NOOP = 0;

/**
 * A state-machine image covering every entry with index <= `index`; `epoch` is the epoch
 * of entry `index`. Deliberately the same shape as the WAL's Checkpoint.
 */
export interface Snapshot {
  index: number;
  epoch: number;
  image: Uint8Array;
}

// ---------------------------------------------------------------------------
// Messages. Every message carries `epoch`: for a request the sender's epoch, for a
// reply the epoch of the request it answers. Receivers fence on it.
// ---------------------------------------------------------------------------

/** New leader → all: promise to ignore every epoch lower than `epoch`. */
export interface Prepare {
  kind: 'prepare';
  epoch: number;
}

/** Reply to Prepare, sent once the promise is durable. Describes the durable log. */
export interface PrepareOk {
  kind: 'prepareOk';
  epoch: number;
  lastIndex: number;
  lastEpoch: number;
  commitIndex: number;
}

/** Recovering leader → the peer with the best log: send me your log from `fromIndex`. */
export interface Fetch {
  kind: 'fetch';
  epoch: number;
  fromIndex: number;
}

/**
 * Reply to Fetch. When `fromIndex` is already inside the peer's snapshot the reply
 * carries the snapshot and entries follow it; otherwise entries start at `fromIndex`.
 */
export interface FetchReply {
  kind: 'fetchReply';
  epoch: number;
  fromIndex: number;
  snapshot: Snapshot | null;
  entries: Entry[];
}

/** Leader → follower: Raft AppendEntries; entries may be empty (a heartbeat). */
export interface Append {
  kind: 'append';
  epoch: number;
  prevIndex: number;
  prevEpoch: number;
  entries: Entry[];
  commitIndex: number;
}

/** Follower → leader, once durable: my log equals yours up to `matchIndex`. */
export interface AppendOk {
  kind: 'appendOk';
  epoch: number;
  matchIndex: number;
}

/** Follower → leader: the consistency check at `prevIndex` failed; retry after `hintIndex`. */
export interface AppendReject {
  kind: 'appendReject';
  epoch: number;
  prevIndex: number;
  /** The leader should retry with prevIndex <= hintIndex (a lower bound of the mismatch). */
  hintIndex: number;
}

/** Leader → follower that needs entries the leader has compacted: the leader's snapshot. Answered by AppendOk. */
export interface InstallSnapshot {
  kind: 'installSnapshot';
  epoch: number;
  snapshot: Snapshot;
  commitIndex: number;
}

/** Any → sender of a message with an older epoch: your epoch is over; `epoch` is newer. */
export interface StaleEpoch {
  kind: 'staleEpoch';
  epoch: number;
}

export type Message = Prepare | PrepareOk | Fetch | FetchReply | Append | AppendOk | AppendReject | InstallSnapshot | StaleEpoch;

// ---------------------------------------------------------------------------
// Storage. The replica never waits: it emits a `persist` effect with a token, keeps going
// with its in-memory view, and defers anything that must not happen before durability
// (acks, promises answered, the leader counting itself) until the driver calls
// storageDone(token).
//
// Contract for the driver:
// - storageDone(t) means every operation with token <= t is durable, so it is called in
//   token order (a driver with two files, as below, awaits both before reporting).
// - Operations take effect in token order as far as reads of the log are concerned.
// - A crash may lose any operation not yet reported done, and may tear the last WAL
//   write; recovery must cut a torn tail (Wal.open does), so the durable state at restart
//   is: every reported operation, plus a prefix of the unreported WAL operations, plus
//   possibly the unreported promise.
//
// Mapping onto the existing WAL (src/wal) and one extra file:
//
//   { kind: 'promise', epoch }       → write `<dataDir>/promised-epoch` with
//                                      writeFileAtomically (temp file, fsync, rename,
//                                      fsync dir). Not a WAL record: it has no index.
//   { kind: 'append', entries }      → wal.appendReplicated(entries): entries carry their
//                                      own index and epoch and continue the log exactly.
//                                      The leader uses this too (not wal.append), because
//                                      the replica assigns indices.
//   { kind: 'truncate', afterIndex } → wal.truncateAfter(afterIndex). The replica never
//                                      truncates at or below its commit index, hence never
//                                      below the WAL's checkpoint floor.
//   { kind: 'checkpoint', snapshot } → wal.writeCheckpoint(snapshot). The WAL decides
//                                      whether it replaces the log (snapshot's (index,
//                                      epoch) not in the log: an installed leader image)
//                                      or prunes it; the replica mirrors the same rule.
//
// Start-up (the driver builds DurableState):
//   promisedEpoch = contents of promised-epoch (0 when absent)
//   checkpoint    = await wal.loadCheckpoint()
//   entries       = every record of wal.readFrom((checkpoint?.index ?? 0) + 1)
// and restores its state machine from checkpoint.image (MetaState.restore) before the
// replica applies anything. Entries past the checkpoint are NOT applied at start-up: the
// replica applies them when it learns they are committed.
// ---------------------------------------------------------------------------

export type StorageOp =
  | { kind: 'promise'; epoch: number }
  | { kind: 'append'; entries: Entry[] }
  | { kind: 'truncate'; afterIndex: number }
  | { kind: 'checkpoint'; snapshot: Snapshot };

/** What a replica finds on its disk at start. */
export interface DurableState {
  promisedEpoch: number;
  checkpoint: Snapshot | null;
  /** Contiguous entries following the checkpoint (or from index 1). */
  entries: Entry[];
}

// ---------------------------------------------------------------------------
// Effects and results.
// ---------------------------------------------------------------------------

/**
 * Why a proposal was refused or abandoned. The driver maps them onto GfsError codes:
 * NOT_LEADER → NOT_LEADER (with the leader hint), RECOVERING → UNAVAILABLE,
 * LEASE_EXPIRED → NOT_LEADER, LEADERSHIP_LOST → UNAVAILABLE. Only LEADERSHIP_LOST can
 * come after acceptance, and its outcome is unknown: the entry may still be committed
 * by a later leader, so the client retries with the same request id.
 */
export type RejectReason = 'NOT_LEADER' | 'RECOVERING' | 'LEASE_EXPIRED' | 'LEADERSHIP_LOST';

export type ProposeResult =
  | { accepted: true; proposalId: number; index: number; epoch: number }
  | { accepted: false; reason: RejectReason; leaderHint: NodeId | null };

export type Effect =
  /** Send `msg` to `to`; delivery may fail, be late, duplicated or reordered. */
  | { kind: 'send'; to: NodeId; msg: Message }
  /** Make `op` durable, then call storageDone(token). */
  | { kind: 'persist'; token: number; op: StorageOp }
  /** Apply the committed entry (called once per index, in order; skip ENTRY_TYPE_NOOP). */
  | { kind: 'apply'; entry: Entry }
  /** Replace the state machine by this image; the next apply is snapshot.index + 1. */
  | { kind: 'restore'; snapshot: Snapshot }
  /** The proposal is committed and applied: answer the client. */
  | { kind: 'ack'; proposalId: number; index: number }
  /** An accepted proposal was abandoned (LEADERSHIP_LOST): outcome unknown. */
  | { kind: 'reject'; proposalId: number; reason: RejectReason };

export type EffectSink = (effect: Effect) => void;
