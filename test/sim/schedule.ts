/**
 * One seeded random schedule: a world with randomly drawn network, disk and election
 * parameters, a burst of random faults (crashes and restarts with lost or torn writes,
 * partitions, masters cut off from the election service, resignations, loss bursts,
 * slow disks), then everything heals and the group must make progress (liveness) and
 * converge with every acknowledged operation (finalCheck). The seed alone determines
 * the run: replaying it gives the same events in the same order.
 */
import { Rng } from './prng';
import { defaultWorldConfig, SimFailure, World, type WorldConfig, type WorldStats } from './world';

export interface ScheduleOptions {
  createReplica?: WorldConfig['createReplica'];
  trace?: (line: string) => void;
}

export interface ScheduleResult {
  seed: number;
  nodeCount: number;
  ok: boolean;
  /** What broke, with the simulated time; undefined when ok. */
  failure?: string;
  faults: string[];
  stats: WorldStats;
  simMs: number;
}

/** Virtual time after the faults stop within which a new operation must be acknowledged. */
export const LIVENESS_BUDGET_MS = 5_000;
/** Then within which every master must have applied everything the leader committed. */
export const CONVERGENCE_BUDGET_MS = 3_000;

/** Even seeds run 3 masters, odd seeds 5: both sizes in every range of seeds. */
export function nodeCountForSeed(seed: number): number {
  return seed % 2 === 0 ? 3 : 5;
}

export function replayCommand(seed: number): string {
  return `GFS_SIM_SEED=${seed} GFS_SIM_COUNT=1 npx tap dist/test/sim/replication.test.js`;
}

function randomConfig(rng: Rng, nodeCount: number, opts: ScheduleOptions): WorldConfig {
  const leaseTtlMs = rng.pick([60, 100, 200, 300]);
  const heartbeatIntervalMs = rng.pick([10, 20]);
  return {
    ...defaultWorldConfig,
    nodeCount,
    net: {
      lossRate: rng.pick([0, 0, 0.01, 0.05, 0.1]),
      duplicateRate: rng.pick([0, 0.01, 0.05]),
      delayMinMs: 1,
      delayMaxMs: rng.pick([2, 5, 10]),
      slowRate: rng.pick([0, 0.02, 0.1]),
      slowDelayMaxMs: rng.pick([30, 100, 300]),
    },
    disk: { syncMinMs: 0, syncMaxMs: rng.pick([1, 3, 8]), tearRate: 0.5 },
    election: {
      ...defaultWorldConfig.election,
      leaseTtlMs,
      renewIntervalMs: leaseTtlMs / 4,
      staleBias: rng.pick([0, 0.3, 0.7]),
    },
    replica: {
      heartbeatIntervalMs,
      // Clock drift is at most ±0.5 %: 2.5 ms over the longest TTL; the rest is slack.
      leaseSafetyMarginMs: 30,
      entriesPerMessageMax: rng.pick([1, 4, 16, 64]),
    },
    tickIntervalMs: heartbeatIntervalMs,
    checkpointEveryEntries: rng.pick([5, 15, 50, 1_000_000]),
    clients: rng.between(1, 3),
    clientTimeoutMs: rng.between(80, 200),
    createReplica: opts.createReplica,
    trace: opts.trace,
  };
}

type FaultKind = 'crash' | 'crashWhileWriting' | 'partition' | 'isolateLeader' | 'electionCut' | 'resign' | 'lossBurst' | 'slowDisk';
const FAULT_KINDS: readonly FaultKind[] = [
  'crash', 'crashWhileWriting', 'partition', 'isolateLeader', 'electionCut', 'resign', 'resign', 'lossBurst', 'slowDisk',
];

export function runSchedule(seed: number, opts: ScheduleOptions = {}): ScheduleResult {
  const rng = new Rng(seed);
  const nodeCount = nodeCountForSeed(seed);
  const cfg = randomConfig(rng, nodeCount, opts);
  const world = new World(cfg, rng.int(2 ** 32));
  const faults: string[] = [];
  const result = (failure?: string): ScheduleResult => ({
    seed, nodeCount, ok: failure === undefined, failure, faults, stats: world.stats, simMs: world.nowMs,
  });
  try {
    world.start();
    const state: FaultState = { healed: false, lossBursts: 0, baseLossRate: cfg.net.lossRate };
    const faultPhaseMs = rng.between(400, 900);
    // Swarm testing: each schedule draws from its own subset of fault kinds, so some are
    // storms of one kind (say, leader changes every few milliseconds) rather than a mix.
    const kinds = FAULT_KINDS.filter(() => rng.chance(0.5));
    if (kinds.length === 0) kinds.push(rng.pick(FAULT_KINDS));
    const faultCount = rng.between(2, rng.pick([8, 14, 30]));
    for (let i = 0; i < faultCount; i++) {
      const atMs = rng.between(20, faultPhaseMs - 1);
      const kind = rng.pick(kinds);
      world.at(atMs, () => injectFault(world, kind, faults, state));
    }
    world.at(faultPhaseMs, () => healEverything(world, faults, state));
    world.runUntil(faultPhaseMs);
    world.stopClients();
    const probe = world.probeProgress(LIVENESS_BUDGET_MS);
    if (!probe) throw new SimFailure(`no progress within ${LIVENESS_BUDGET_MS} ms after the faults healed: ${world.describeNodes()}`);
    world.finalCheck(CONVERGENCE_BUDGET_MS);
    return result();
  } catch (e) {
    const message = e instanceof SimFailure ? e.message : (e as Error).stack ?? String(e);
    return result(`at ${world.nowMs.toFixed(1)} ms: ${message}`);
  }
}

const LOSS_BURST_RATE = 0.3;

interface FaultState {
  healed: boolean;
  lossBursts: number;
  baseLossRate: number;
}

function injectFault(world: World, kind: FaultKind, log: string[], state: FaultState): void {
  const rng = world.rng;
  const leader = world.leaderNode?.id;
  const someNode = (): string => (leader !== undefined && rng.chance(0.5) ? leader : rng.pick(world.ids));
  const note = (what: string): void => { log.push(`${world.nowMs.toFixed(0)}ms ${what}`); };
  switch (kind) {
    case 'crash': {
      const id = someNode();
      note(`crash ${id}`);
      world.crash(id);
      world.at(rng.between(10, 300), () => world.restart(id));
      return;
    }
    case 'crashWhileWriting': {
      // Hold the disk back so writes are in flight, then pull the plug: lost and torn writes.
      const node = world.node(someNode());
      note(`crash ${node.id} while writing`);
      node.diskSlowMs = rng.between(5, 50);
      world.at(rng.between(1, 20), () => {
        node.diskSlowMs = 0;
        world.crash(node.id);
        world.at(rng.between(10, 300), () => world.restart(node.id));
      });
      return;
    }
    case 'isolateLeader': {
      // The deposed-leader case: cut off from its peers and from the election service.
      if (leader === undefined) return;
      note(`isolate leader ${leader}`);
      world.partition([[leader]]);
      world.setElectionConnected(leader, false);
      world.at(rng.between(20, 400), () => {
        world.healPartition();
        world.setElectionConnected(leader, true);
      });
      return;
    }
    case 'partition': {
      const ids = [...world.ids];
      let minority: string[];
      if (rng.chance(0.5)) {
        minority = [someNode()];
      } else {
        // Shuffle, then cut: any split, the leader on either side.
        for (let i = ids.length - 1; i > 0; i--) {
          const j = rng.int(i + 1);
          [ids[i], ids[j]] = [ids[j]!, ids[i]!];
        }
        minority = ids.slice(0, rng.between(1, ids.length - 1));
      }
      note(`partition ${minority.join(',')} from the rest`);
      world.partition([minority]);
      world.at(rng.between(20, 400), () => world.healPartition());
      return;
    }
    case 'electionCut': {
      const id = someNode();
      note(`cut ${id} off the election service`);
      world.setElectionConnected(id, false);
      world.at(rng.between(50, 600), () => world.setElectionConnected(id, true));
      return;
    }
    case 'resign':
      note('leader resigns');
      world.resign();
      return;
    case 'lossBurst': {
      note('loss burst');
      state.lossBursts++;
      world.cfg.net.lossRate = LOSS_BURST_RATE;
      world.at(rng.between(30, 300), () => {
        if (--state.lossBursts === 0 && !state.healed) world.cfg.net.lossRate = state.baseLossRate;
      });
      return;
    }
    case 'slowDisk': {
      const node = world.node(someNode());
      note(`slow disk on ${node.id}`);
      node.diskSlowMs = rng.between(10, 100);
      world.at(rng.between(30, 300), () => { node.diskSlowMs = 0; });
      return;
    }
  }
}

function healEverything(world: World, log: string[], state: FaultState): void {
  state.healed = true;
  log.push(`${world.nowMs.toFixed(0)}ms heal everything`);
  for (const id of world.ids) {
    world.restart(id);
    world.setElectionConnected(id, true);
    world.node(id).diskSlowMs = 0;
  }
  world.healPartition();
  Object.assign(world.cfg.net, { lossRate: 0, duplicateRate: 0, slowRate: 0 });
}
