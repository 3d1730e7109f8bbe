/**
 * Helpers for hand-written scenarios: a quiet world (no clients, no automatic elections,
 * no loss) that a test drives step by step.
 */
import assert from 'node:assert/strict';
import type { NodeId } from '../../src/master/replication';
import { defaultWorldConfig, World, type WorldConfig } from './world';

export function scenarioWorld(nodeCount: number, overrides: Partial<WorldConfig> = {}): World {
  const trace = process.env['GFS_SIM_TRACE'] ? (line: string) => console.log(line) : undefined;
  const world = new World({
    ...defaultWorldConfig,
    nodeCount,
    clients: 0,
    election: { ...defaultWorldConfig.election, auto: false },
    net: { ...defaultWorldConfig.net, delayMinMs: 1, delayMaxMs: 2 },
    checkpointEveryEntries: 1_000_000,
    trace,
    ...overrides,
  }, 42);
  world.start();
  return world;
}

/** Elects `id` through the election service and waits until it serves; returns its epoch. */
export function serveAt(world: World, id: NodeId): number {
  const epoch = world.elect(id);
  const serving = world.runUntilTrue(() => world.node(id).replica?.serving === true && world.node(id).replica?.leaderEpoch === epoch, 2_000);
  assert(serving, `${id} did not start serving epoch ${epoch}: ${world.describeNodes()}`);
  return epoch;
}

let opSeq = 0;

/** Proposes a fresh operation at `id`; returns its id and where it went. */
export function propose(world: World, id: NodeId, name = `op${opSeq++}`): { opId: string; index: number; epoch: number } {
  const result = world.proposeAt(id, { opId: name, key: 'k', value: name });
  assert(result?.accepted, `${id} refused ${name}`);
  return { opId: name, index: result.index, epoch: result.epoch };
}

export function isAcked(world: World, opId: string): boolean {
  return world.acked.some((a) => a.op.opId === opId);
}

/** Proposes at `id` and waits for the acknowledgement. */
export function commit(world: World, id: NodeId, name?: string): { opId: string; index: number; epoch: number } {
  const p = propose(world, id, name);
  assert(world.runUntilTrue(() => isAcked(world, p.opId), 1_000), `${p.opId} was not acknowledged: ${world.describeNodes()}`);
  return p;
}
