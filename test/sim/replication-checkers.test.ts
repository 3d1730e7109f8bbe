/**
 * The simulation must be able to fail: each deliberately broken replica
 * (broken-replicas.ts) must be caught by a checker within a bounded number of seeds.
 */
import t from 'tap';
import { brokenReplicas } from './broken-replicas';
import { runSeeds } from './run-seeds';

/** Each broken replica has been caught within 25 seeds; this leaves a wide margin. */
const SEEDS_MAX = 500;

for (const [name, { flaw, create: createReplica }] of Object.entries(brokenReplicas)) {
  t.test(`replication: the checkers catch a replica that ${flaw} within ${SEEDS_MAX} seeds`, async (t) => {
    const s = runSeeds(1, SEEDS_MAX, { createReplica }, true);
    const caught = s.failures[0];
    t.ok(caught, `caught within ${SEEDS_MAX} seeds`);
    if (caught) {
      t.comment(`caught at seed ${caught.seed} (${caught.nodeCount} masters): ${caught.failure!.split('\n')[0]}`);
      t.comment(`replay: GFS_SIM_BROKEN=${name} GFS_SIM_TRACE=1 node dist/test/sim/run-seeds.js ${caught.seed}`);
    }
  });
}
