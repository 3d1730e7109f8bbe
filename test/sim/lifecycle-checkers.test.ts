/**
 * The lifecycle simulation's checkers catch a lifecycle that breaks a rule: each broken
 * variant (lifecycle-broken.ts) must fail some schedule within a bounded number of seeds,
 * and with the checker that guards the rule it breaks.
 */
import t from 'tap';
import { brokenLifecycles } from './lifecycle-broken';
import { lifecycleReplayCommand, runLifecycleSchedule } from './lifecycle-sim';

const SEEDS_MAX = 300;

for (const [name, broken] of Object.entries(brokenLifecycles)) {
  t.test(`lifecycle: the simulation catches a lifecycle that ${broken.flaw}`, async (t) => {
    const checkersFired = new Set<string>();
    let caught: { seed: number; failure: string } | undefined;
    for (let seed = 1; seed <= SEEDS_MAX && !caught; seed++) {
      const r = await runLifecycleSchedule(seed, { createLifecycle: broken.create });
      if (r.ok) continue;
      checkersFired.add(r.checker!);
      if (r.checker === broken.checker) caught = { seed, failure: r.failure! };
    }
    t.ok(caught, `the ${broken.checker} checker fired within ${SEEDS_MAX} seeds (checkers seen: ${[...checkersFired].join(', ') || 'none'})`);
    if (caught) t.comment(`seed ${caught.seed}: ${caught.failure}\n  replay: ${lifecycleReplayCommand(caught.seed, name)}`);
  });
}
