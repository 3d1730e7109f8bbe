/**
 * Where a new chunk goes (puts and log chunks alike): alive, not draining, not suspect
 * nodes chosen by placement.ts, waiting briefly after a start or failover for the
 * chunkservers to check in.
 *
 * Invariants: a new chunk's replicas are distinct, alive, not draining nodes, none past
 * the fill cap (placement decides; asserted here); replicas[0] is the primary / head.
 */
import assert from 'node:assert/strict';
import { GfsError } from '../common/errors';
import { limits } from '../common/limits';
import { sleep, type Clock } from '../common/clock';
import type { NodeEntry, NodeRegistry } from './registry';
import { choosePlacement } from './placement';
import type { Lifecycle } from './lifecycle/lifecycle';

export interface PlacerHost {
  registry: NodeRegistry;
  lifecycle: () => Lifecycle;
  clock: Clock;
  random: () => number;
}

export class ChunkPlacer {
  constructor(private readonly host: PlacerHost) {}

  /** Alive and not draining: may take a new chunk. */
  placeable(): NodeEntry[] {
    const lifecycle = this.host.lifecycle();
    return this.host.registry.placeable().filter((n) => !lifecycle.isDraining(n.id));
  }

  /**
   * Right after a start or failover the chunkservers are still checking in: an allocation
   * then waits for enough of them (a few heartbeats at most) rather than place a chunk
   * short of replicas. Bounded, so a cluster that really is small still gets its chunk.
   */
  async waitForPlaceable(replication: number): Promise<void> {
    const { clock } = this.host;
    const deadline = clock.monoMs() + limits.allocateWaitForNodesMs;
    while (this.host.lifecycle().safeMode.on && this.placeable().length < replication && clock.monoMs() < deadline) {
      await sleep(clock, limits.allocateWaitPollMs);
    }
  }

  place(replication: number, exclude: Set<string>): NodeEntry[] {
    // A draining node takes no new chunk.
    const alive = this.placeable();
    if (alive.length === 0) throw new GfsError('NO_CHUNKSERVERS', 'no chunkserver is alive (and not being decommissioned)');
    const fillCapRatio = this.host.lifecycle().fillCapRatio();
    const chosen = choosePlacement(alive, replication, { exclude, random: this.host.random, fillCapRatio });
    if (chosen.length === 0) {
      throw new GfsError('NO_SPACE', `no chunkserver can take a new chunk (${alive.length} alive, ${exclude.size} excluded, or all full)`);
    }
    const nodes = chosen.map((c) => this.host.registry.nodes.get(c.id)!);
    assert.equal(new Set(nodes.map((n) => n.id)).size, nodes.length, 'a chunk\'s replicas are on distinct nodes');
    return nodes;
  }
}
