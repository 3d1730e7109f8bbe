export { Collector, type CollectorOptions, type CollectorHost } from './collector';
export { OrphanTracker, orphanCandidates, orphanDeletes, trashExpiry, abandonedWrites } from './gc-plan';
export type { GcMetadata, GcReplicas, GcReplica, GcCommandSink, GcDelete, GcCommitResult } from './gc-view';
