import t from 'tap';
import { backoffMs } from '../../src/common/backoff';

const policy = { minMs: 250, maxMs: 5000, jitterRatio: 0.5 };

t.test('backoff: doubles per failure from the minimum and stops at the maximum', async (t) => {
  const noJitter = () => 0;
  t.same([1, 2, 3, 4, 5, 6, 7, 100, 1e9].map((n) => backoffMs(n, policy, noJitter)), [250, 500, 1000, 2000, 4000, 5000, 5000, 5000, 5000]);
});

t.test('backoff: jitter only shortens a delay, by at most its ratio', async (t) => {
  for (const r of [0, 0.25, 0.999]) {
    for (const n of [1, 3, 40]) {
      const nominal = backoffMs(n, policy, () => 0);
      const d = backoffMs(n, policy, () => r);
      t.ok(d <= nominal && d >= nominal * (1 - policy.jitterRatio), `failure ${n}, random ${r}: ${d} ms`);
    }
  }
});
