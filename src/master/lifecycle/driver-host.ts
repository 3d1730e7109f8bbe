/**
 * What the lifecycle hands each of its drivers (healer, balancer): the registry, the
 * shared command outbox, and the chunk table and replica health as lifecycle.ts sees
 * them, so every driver judges a replica the same way.
 *
 * Invariant: a driver queues commands only through `outbox` (which re-checks them at
 * delivery) and reads replicas only through `replicasOf`.
 */
import type { Clock } from '../../common/clock';
import type { Logger } from '../../common/log';
import type { NodeRegistry, ReplicaView } from '../registry';
import type { CommandOutbox } from './chunk-commands';
import type { HealChunk } from './heal-plan';

export interface DriverHost {
  registry: NodeRegistry;
  /** The chunk's replicas as lifecycle decisions see them. */
  replicasOf: (handle: number) => ReplicaView[];
  outbox: CommandOutbox;
  chunks: () => Iterable<HealChunk>;
  /** Whether a node is being drained (decommission, in the metadata). */
  draining: (nodeId: string) => boolean;
  /** The replica on this node is healthy for this chunk (confirms clones and moves). */
  healthyOn: (handle: number, nodeId: string) => boolean;
  clock: Clock;
  log: Logger;
}
