/**
 * Stream rolls and retention (src/master/streams/roll-plan.ts): examples that read like
 * the rules, then random streams checked against the properties (never the active
 * segment, oldest first, age and bytes bounds respected, nothing dropped needlessly).
 */
import t from 'tap';
import { planStreams, retentionDrops, retentionDue, rollReason, type StreamView } from '../../src/master/streams/roll-plan';
import { prng } from './prng';

const policy = (p: Partial<StreamView['policy']> = {}) => ({ rollBytes: 0, rollAgeMs: 0, retentionAgeMs: 0, retentionBytes: 0, ...p });
const seg = (i: number, bytes: number, sealedMs: number) => ({ inode: i, path: `/s/${String(i).padStart(4, '0')}`, bytes, sealedMs });

t.test('streams: the active segment rolls at its size or its age, also with no appends', async (t) => {
  const p = policy({ rollBytes: 100, rollAgeMs: 1000 });
  const active = { inode: 9, path: '/s/9999', bytes: 99, createdMs: 5000 };
  t.equal(rollReason(p, active, 5999), undefined, 'young and small');
  t.equal(rollReason(p, { ...active, bytes: 100 }, 5000), 'bytes');
  t.equal(rollReason(p, active, 6000), 'age', 'the tick rolls an idle segment');
  t.equal(rollReason(p, { ...active, bytes: 0 }, 6000), 'age', 'an empty one too');
  t.equal(rollReason(policy(), { ...active, bytes: 1e12 }, 1e12), undefined, '0 means never');
  t.equal(rollReason(p, undefined, 1e12), undefined, 'no active segment: nothing to roll');
});

t.test('streams: retention by age drops a segment once its newest byte is past the age', async (t) => {
  const view: StreamView = { path: '/s', policy: policy({ retentionAgeMs: 1000 }), sealed: [seg(1, 10, 100), seg(2, 10, 600), seg(3, 10, 1200)] };
  t.same(retentionDrops(view, 1099).map((d) => d.inode), []);
  t.same(retentionDrops(view, 1100).map((d) => [d.inode, d.reason]), [[1, 'age']]);
  t.same(retentionDrops(view, 2199).map((d) => d.inode), [1, 2]);
  t.same(retentionDrops(view, 1e9).map((d) => d.inode), [1, 2, 3], 'an idle stream loses everything sealed');
});

t.test('streams: retention by bytes drops oldest first until the stream fits, never the active segment', async (t) => {
  const view: StreamView = {
    path: '/s', policy: policy({ retentionBytes: 25 }),
    active: { inode: 4, path: '/s/0004', bytes: 30, createdMs: 0 },
    sealed: [seg(1, 10, 1), seg(2, 10, 2), seg(3, 10, 3)],
  };
  t.same(retentionDrops(view, 10).map((d) => [d.inode, d.reason]), [[1, 'bytes'], [2, 'bytes'], [3, 'bytes']],
    'the active segment alone is over the limit: every sealed one goes, it stays');
  view.active!.bytes = 5;
  t.same(retentionDrops(view, 10).map((d) => d.inode), [1], '35 → 25, not over 25: segment 2 stays');
  t.same(retentionDue([view], 10), { bytes: 10, segments: 1 });
});

t.test('streams: a wall clock that stepped back never breaks oldest-first', async (t) => {
  const view: StreamView = { path: '/s', policy: policy({ retentionAgeMs: 100 }), sealed: [seg(1, 1, 500), seg(2, 1, 300)] };
  t.same(retentionDrops(view, 550).map((d) => d.inode), [], 'segment 2 counts as no older than segment 1');
  t.same(retentionDrops(view, 600).map((d) => d.inode), [1, 2]);
});

t.test('streams: random streams keep every retention property', async (t) => {
  const seed = 0x5eed;
  const random = prng(seed);
  const int = (n: number) => Math.floor(random() * n);
  const failures: string[] = [];
  const check = (ok: boolean, what: string) => { if (!ok) failures.push(what); };
  for (let round = 0; round < 2000; round++) {
    const sealed: StreamView['sealed'] = [];
    let time = int(1000);
    for (let i = 0, n = int(8); i < n; i++) {
      time += int(500);
      sealed.push(seg(i + 1, int(100), time));
    }
    const active = random() < 0.7 ? { inode: 100, path: '/s/9999', bytes: int(200), createdMs: time + int(100) } : undefined;
    const p = policy({
      rollBytes: int(3) * 50, rollAgeMs: int(3) * 300,
      retentionAgeMs: random() < 0.5 ? 0 : 1 + int(3000), retentionBytes: random() < 0.5 ? 0 : int(400),
    });
    const view: StreamView = { path: '/s', policy: p, sealed, ...(active ? { active } : {}) };
    const now = time + int(4000);
    const plan = planStreams([view], now);
    const dropped = plan.drop.map((d) => d.inode);
    const msg = `seed ${seed} round ${round}`;
    check(!dropped.includes(100), `never the active segment (${msg})`);
    check(dropped.every((inode, i) => inode === sealed[i]!.inode), `a prefix, oldest first (${msg})`);
    const kept = sealed.slice(dropped.length);
    const total = (active?.bytes ?? 0) + kept.reduce((a, s) => a + s.bytes, 0);
    if (p.retentionBytes > 0 && kept.length > 0) check(total <= p.retentionBytes, `bytes bound (${msg})`);
    if (p.retentionAgeMs > 0) {
      const newest = Math.max(0, ...sealed.slice(0, dropped.length + 1).map((s) => s.sealedMs));
      if (kept.length > 0) check(now - newest < p.retentionAgeMs, `age bound (${msg})`);
    }
    // Nothing dropped needlessly: the last dropped segment was past its age, or the stream was over its bytes before it went.
    if (dropped.length > 0) {
      const last = sealed[dropped.length - 1]!;
      const before = total + last.bytes;
      const newest = Math.max(...sealed.slice(0, dropped.length).map((s) => s.sealedMs));
      const pastAge = p.retentionAgeMs > 0 && now - newest >= p.retentionAgeMs;
      const overBytes = p.retentionBytes > 0 && before > p.retentionBytes;
      check(pastAge || overBytes, `the last drop had a reason (${msg})`);
    }
    check(plan.roll.length === (rollReason(p, active, now) === undefined ? 0 : 1), `roll when due (${msg})`);
  }
  t.same(failures, [], 'every property held in 2000 random streams');
});
