/** The write-ahead log of the master: the only surface other components import. */
export { Wal, CHECKPOINTS_KEPT, COMPACTED, isCompactedError, type WalOptions, type WalStats } from './wal';
export type { WalRecord } from './record';
export type { Checkpoint } from './checkpoint';
export { writeFileAtomically } from './durable-fs';
