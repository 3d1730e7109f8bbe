import t from 'tap';
import { ManualClock, sleep } from '../../src/common/clock';

t.test('clock: manual timers fire in deadline order and cancelled ones never fire', async (t) => {
  const c = new ManualClock();
  const fired: string[] = [];
  c.after(30, () => fired.push('a30'));
  const b = c.after(10, () => fired.push('b10'));
  c.after(10, () => fired.push('c10'));
  const e = c.every(25, () => fired.push(`e@${c.monoMs()}`));
  b.cancel();
  c.advance(60);
  t.same(fired, ['c10', 'e@25', 'a30', 'e@50']);
  e.cancel();
  c.advance(100);
  t.equal(fired.length, 4, 'a cancelled interval stays quiet');
  t.equal(c.pending(), 0);
  t.equal(c.monoMs(), 160);
});

t.test('clock: sleep resolves when the manual clock passes its deadline', async (t) => {
  const c = new ManualClock();
  let done = false;
  const p = sleep(c, 50).then(() => { done = true; });
  c.advance(49);
  await Promise.resolve();
  t.notOk(done);
  c.advance(1);
  await p;
  t.ok(done);
});
