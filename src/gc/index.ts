/** Garbage collection (DESIGN §8): decisions (gc-plan, space) and the driver (collector). */
export { Collector, type CollectorOptions, type CollectorHost } from './collector';
export { OrphanTracker, orphanCandidates, orphanDeletes, trashExpiry, abandonedWrites } from './gc-plan';
export { accountSpace, spaceClass, type SpaceClass, type SpaceReport } from './space';
