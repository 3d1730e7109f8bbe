/**
 * Network partitions between real masters (issue 9 item 6). Each master reaches each
 * other master through its own TCP proxy (one per direction of every pair), so a test
 * cuts exactly the links it names; etcd, the chunkserver and the clients dial the
 * masters directly and are never cut. Writes are small puts, so every master's file
 * count tells whether it holds every acknowledged write.
 */
import t from 'tap';
import { cluster, eventually } from './helpers';
import { startEtcd } from './etcd';
import { TcpProxy } from './tcp-proxy';
import { GfsClient } from '../../src/client';
import type { DevCluster } from '../../src/dev/cluster';

const ELECTION_TTL_MS = 2000;
const MASTERS = 3;

interface MasterView { masters: { role: string; epoch: number; commitIndex: number; appliedIndex: number }[]; files: number }

async function view(c: DevCluster, i: number): Promise<MasterView> {
  return (await (await fetch(`http://${c.masterProcs[i]!.adminAddr}/status`)).json()) as MasterView;
}

/** The one master every master agrees leads, once all hold the same committed log; or undefined. */
async function agreed(c: DevCluster, acked: number): Promise<{ leader: number; views: MasterView[] } | undefined> {
  const views = await Promise.all(c.masterProcs.map((_, i) => view(c, i)));
  const leaders = views.flatMap((v, i) => (v.masters[0]!.role === 'leader' ? [i] : []));
  const first = views[0]!.masters[0]!;
  const same = views.every((v) => v.files === views[0]!.files && v.masters[0]!.commitIndex === first.commitIndex
    && v.masters[0]!.appliedIndex === first.commitIndex);
  return leaders.length === 1 && same && views[0]!.files >= acked ? { leader: leaders[0]!, views } : undefined;
}

t.test('partition: a leader cut off from its followers (not from etcd), a follower cut off, and a flapping cut lose and fork nothing', async (t) => {
  const etcd = await startEtcd(t);
  // links[from][to]: the proxy `from` dials to reach `to`.
  const links: TcpProxy[][] = [];
  for (let from = 0; from < MASTERS; from++) links.push(await Promise.all(Array.from({ length: MASTERS }, () => TcpProxy.start())));
  t.teardown(() => Promise.all(links.flat().map((p) => p.close())));
  const { cluster: c } = await cluster(t, {
    masters: MASTERS, chunkservers: 1, etcd: etcd.url, electionTtlMs: ELECTION_TTL_MS, heartbeatIntervalMs: 200,
    peerAddr: (from, to, addr) => { links[from]![to]!.target = addr; return links[from]![to]!.addr; },
  });
  const isolate = (i: number) => { for (let j = 0; j < MASTERS; j++) if (j !== i) { links[i]![j]!.cutLink(); links[j]![i]!.cutLink(); } };
  const healAll = () => { for (const p of links.flat()) p.heal(); };
  const leaderNow = async () => await eventually(async () => { const i = await c.leaderIndex(); return i >= 0 ? i + 1 : 0; }, 20_000, 'a leader') - 1;

  const writer = new GfsClient({ masters: c.masters, retries: 60, timeoutMs: 3000 });
  t.teardown(() => writer.close());
  const acked = new Set<string>();
  let n = 0;
  /** One put; acknowledged ones are remembered, failed ones promise nothing. */
  const write = async (tag: string, client = writer): Promise<boolean> => {
    const p = `/part/${tag}-${n++}`;
    try {
      await client.put(Buffer.from(p), p, { replication: 1 });
      acked.add(p);
      return true;
    } catch (e) {
      t.comment(`write ${p} failed: ${(e as Error).message}`);
      return false;
    }
  };
  const everyAckedWritePresent = async (what: string) => {
    const done = (await eventually(() => agreed(c, acked.size), 30_000, `${what}: every master to hold the same committed log`))!;
    const listed = new Set((await writer.list('/part', { recursive: true })).entries.map((e) => e.path));
    const lost = [...acked].filter((p) => !listed.has(p));
    t.same(lost, [], `${what}: every acknowledged write is there`);
    t.ok(done.views.every((v) => v.files === done.views[0]!.files), `${what}: all ${MASTERS} masters hold ${done.views[0]!.files} files at commit index ${done.views[0]!.masters[0]!.commitIndex}`);
    return done.leader;
  };

  const first = await leaderNow();
  for (let i = 0; i < 5; i++) t.ok(await write('before'), 'a write before any cut is acknowledged');

  // (a) The leader loses its followers but keeps etcd: its lease stays valid there.
  {
    const committedAtCut = (await view(c, first)).masters[0]!.commitIndex;
    const cutAt = Date.now();
    isolate(first);
    // A client that can only reach the isolated leader: its write must not be acknowledged
    // by that master (redirected to a new leader is fine; then it counts as acknowledged).
    const pinned = new GfsClient({ masters: [c.masters[first]!], retries: 2, timeoutMs: 2000 });
    const pinnedPath = '/part/pinned';
    const pinnedWrite = pinned.put(Buffer.from('pinned'), pinnedPath, { replication: 1 }).then(() => true, () => false);
    const second = await eventually(async () => { const i = await c.leaderIndex(); return i >= 0 && i !== first ? i + 1 : 0; }, 4 * ELECTION_TTL_MS, 'the connected majority to elect a leader') - 1;
    const tookMs = Date.now() - cutAt;
    t.ok(tookMs <= 3 * ELECTION_TTL_MS, `a new leader (master ${second + 1}) serves ${tookMs} ms after the cut (bound ${3 * ELECTION_TTL_MS} ms)`);
    t.not((await view(c, first)).masters[0]!.role, 'leader', 'the isolated master no longer calls itself leader');
    if (await pinnedWrite) acked.add(pinnedPath);
    await pinned.close();
    for (let i = 0; i < 5; i++) t.ok(await write('majority'), 'the connected majority acknowledges writes');
    t.equal((await view(c, first)).masters[0]!.commitIndex, committedAtCut, 'the isolated master committed nothing after the cut');
    healAll();
    const leader = await everyAckedWritePresent('(a) after the heal');
    t.not((await view(c, first)).masters[0]!.role, 'leader', 'the old leader rejoined as a follower');
    t.not(leader, first, 'leadership stayed with the majority');
  }

  // (b) A follower loses the others: writes go on, and it catches up after the heal.
  {
    const leader = await leaderNow();
    const follower = (leader + 1) % MASTERS;
    isolate(follower);
    // A client that asks the cut-off follower first is sent to the leader's own address,
    // not to the follower's (cut) link to it.
    const askFollowerFirst = new GfsClient({ masters: [follower, leader].map((i) => c.masters[i]!), retries: 20, timeoutMs: 3000 });
    t.teardown(() => askFollowerFirst.close());
    for (let i = 0; i < 5; i++) t.ok(await write('follower-cut', askFollowerFirst), 'writes go on with a follower cut off');
    t.equal(await c.leaderIndex(), leader, 'the leader kept leading');
    healAll();
    await everyAckedWritePresent('(b) after the heal');
  }

  // (c) The leader's links flap while a client writes.
  {
    let stop = false;
    const writes = (async () => { while (!stop) await write('flap'); })();
    for (const cutMs of [1000, 2500, 1500, 3000]) {
      const leader = await c.leaderIndex();
      if (leader >= 0) isolate(leader);
      await new Promise((r) => setTimeout(r, cutMs));
      healAll();
      await new Promise((r) => setTimeout(r, 1500));
    }
    stop = true;
    await writes;
    t.ok(acked.size > 20, `${acked.size} writes acknowledged in all`);
    await everyAckedWritePresent('(c) after the flapping');
  }
});
