/**
 * Log replication of the master group: the public surface. A driver (gRPC transport,
 * the WAL, etcd election) feeds a Replica its inputs and carries out its effects;
 * types.ts says how each storage operation maps onto the WAL.
 */
export { Replica, replicationDefaults, type LeaderPhase, type ReplicaClock, type ReplicaOptions, type Role } from './replica';
export {
  ENTRY_TYPE_NOOP,
  type Append, type AppendOk, type AppendReject, type DurableState, type Effect, type EffectSink, type Entry, type Fetch,
  type FetchReply, type InstallSnapshot, type Message, type NodeId, type Prepare, type PrepareOk, type ProposeResult,
  type RejectReason, type Snapshot, type StaleEpoch, type StorageOp,
} from './types';
