/**
 * The dashboard's gateway side without a cluster: the overview cache (one master round
 * per refresh period whatever the number of callers, fsck less often, failures cached
 * and reported) and the event feed (one follow of the leader's history, dense cursors,
 * gaps said, duplicates after a backfill dropped, idle feeds stop).
 */
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { ManualClock } from '../../src/common/clock';
import { GfsError } from '../../src/common/errors';
import { OverviewCache, nodeState, type OverviewSource } from '../../src/gateway/rest/admin-overview';
import { EventFeed, type EventsSource } from '../../src/gateway/rest/admin-events';
import { routeName } from '../../src/gateway/rest/router';
import { UiAssets } from '../../src/gateway/ui/assets';
import { comparePositions, parsePosition, type ClusterEvent } from '../../src/events';
import type { FsckResponse, NodesResponse, StatusResponse } from '../../src/client';

const flush = () => new Promise<void>((r) => setImmediate(r));
const log = pino({ level: 'silent' });

function status(): StatusResponse {
  return {
    masters: [{ id: 'm1', addr: 'a:1', role: 'leader', epoch: 1, commitIndex: 5, appliedIndex: 5, lag: 0, pid: 1, adminAddr: '' }],
    nodesAlive: 1, nodesDead: 0, files: 1, chunks: 1, underReplicated: 0, missing: 0, capacityBytes: 100, usedBytes: 10,
    safeMode: false, safeModeReason: '',
  } as StatusResponse;
}

function nodes(): NodesResponse {
  return { nodes: [{ id: 'n1', addr: 'b:1', state: 'alive', drainingDetail: '', suspect: false, capacityBytes: 100, usedBytes: 10, freeBytes: 50 } as NodesResponse['nodes'][number]] };
}

function fsck(): FsckResponse {
  return { files: [], filesChecked: 1, chunksChecked: 1, underReplicated: 0, missing: 0, corrupt: 0, healthy: true, safeMode: false, truncated: false, overReplicated: 0 };
}

function countingSource(): OverviewSource & { calls: Record<string, number>; fail?: GfsError; fsckFail?: GfsError } {
  const s = {
    calls: { status: 0, nodes: 0, fsck: 0 },
    fail: undefined as GfsError | undefined,
    fsckFail: undefined as GfsError | undefined,
    async statusAll() { s.calls.status++; await flush(); if (s.fail) throw s.fail; return status(); },
    async nodes() { s.calls.nodes++; await flush(); return nodes(); },
    async fsck() { s.calls.fsck++; await flush(); if (s.fsckFail) throw s.fsckFail; return fsck(); },
  };
  return s;
}

t.test('overview: many callers in one period cost one master round; fsck runs less often', async (t) => {
  const clock = new ManualClock();
  const src = countingSource();
  const cache = new OverviewCache(src, clock, undefined, 2_000, 10_000);
  const answers = await Promise.all(Array.from({ length: 20 }, () => cache.get()));
  t.same(src.calls, { status: 1, nodes: 1, fsck: 1 }, '20 concurrent callers: one round');
  t.equal(answers[0]!.chunkservers[0]!.state, 'alive');
  t.equal(answers[0]!.cluster.leader, 'a:1');
  clock.advance(1_999);
  await cache.get();
  t.same(src.calls, { status: 1, nodes: 1, fsck: 1 }, 'still fresh just before the period ends');
  clock.advance(1);
  await Promise.all([cache.get(), cache.get()]);
  t.same(src.calls, { status: 2, nodes: 2, fsck: 1 }, 'a new round after the period; fsck not due yet');
  clock.advance(10_000);
  const o = await cache.get();
  t.same(src.calls, { status: 3, nodes: 3, fsck: 2 }, 'fsck again after its own period');
  t.equal(o.fsck?.healthy, true);
});

t.test('overview: a failed round is cached for the period; a failed fsck keeps the overview and says why', async (t) => {
  const clock = new ManualClock();
  const src = countingSource();
  const cache = new OverviewCache(src, clock, undefined, 2_000, 10_000);
  src.fail = new GfsError('UNAVAILABLE', 'no master answered');
  await t.rejects(cache.get(), { code: 'UNAVAILABLE' });
  await t.rejects(cache.get(), { code: 'UNAVAILABLE' });
  t.equal(src.calls.status, 1, 'the failure is not retried by every caller');
  src.fail = undefined;
  src.fsckFail = new GfsError('UNAVAILABLE', 'fsck timed out');
  clock.advance(10_000);
  const o = await cache.get();
  t.equal(o.cluster.nodesAlive, 1, 'the overview stands');
  t.equal(o.fsck?.error?.code, 'UNAVAILABLE', 'the fsck summary says it is not fresh');
});

t.test('node state: dead over draining over suspect over alive', async (t) => {
  const n = nodes().nodes[0]!;
  t.equal(nodeState(n), 'alive');
  t.equal(nodeState({ ...n, suspect: true }), 'suspect');
  t.equal(nodeState({ ...n, suspect: true, drainingDetail: '3 of 9 chunks left' }), 'draining');
  t.equal(nodeState({ ...n, state: 'dead', drainingDetail: 'x' }), 'dead');
});

/** The leader's history as the Events RPC answers it, on a manual clock. */
class FakeHistory implements EventsSource {
  entries: ClusterEvent[] = [];
  horizon = '0';
  calls: { since: string; waitMs: number }[] = [];
  private readonly waiting = new Set<() => void>();

  constructor(private readonly clock: ManualClock) {}

  push(rev: number, seq: number, kind: ClusterEvent['kind'] = 'file.created'): void {
    this.entries.push({ v: 1, id: `${rev}.${seq}`, rev, seq, epoch: 1, kind, cluster: 'c', source: 'master/m1', timeMs: 0, data: {} });
    for (const w of [...this.waiting]) w();
  }

  async events(opts: { since?: string; limit?: number; waitMs?: number }) {
    this.calls.push({ since: opts.since ?? '', waitMs: opts.waitMs ?? 0 });
    const since = opts.since ? parsePosition(opts.since) : parsePosition(this.horizon);
    const answer = () => {
      if (comparePositions(since, parsePosition(this.horizon)) < 0) return { events: [], gap: true, horizon: this.horizon, latest: '', more: false };
      const after = this.entries.filter((e) => comparePositions(e, since) > 0);
      const limit = opts.limit || 1000;
      const last = this.entries[this.entries.length - 1];
      return {
        events: after.slice(0, limit).map((e) => JSON.stringify(e)), gap: false, horizon: this.horizon,
        latest: last ? last.id : '', more: after.length > limit,
      };
    };
    if (answer().events.length === 0 && !answer().gap && (opts.waitMs ?? 0) > 0) {
      await new Promise<void>((resolve) => {
        const done = () => { this.waiting.delete(done); timer.cancel(); resolve(); };
        const timer = this.clock.after(opts.waitMs!, done);
        this.waiting.add(done);
      });
    }
    return answer();
  }
}

const kinds = (p: { events: ClusterEvent[] }) => p.events.map((e) => e.id);

t.test('event feed: a backfill, then live events woken into a waiting page, with dense cursors', async (t) => {
  const clock = new ManualClock();
  const hist = new FakeHistory(clock);
  hist.push(1, 0, 'leader.changed');
  hist.push(1, 1, 'node.up');
  const feed = new EventFeed({ source: hist, clock, log, masterWaitMs: 2_500, idleMs: 60_000 });
  t.teardown(() => feed.stop());
  const first = await feed.page(undefined, false);
  t.same(kinds(first), ['1.0', '1.1']);
  t.same(first.events.map((e) => e.cursor), [1, 2]);
  t.equal(first.cursor, 2);
  const waiting = feed.page(2, true);
  await flush();
  hist.push(4, 0, 'node.down');
  const next = await waiting;
  t.same(kinds(next), ['4.0'], 'the waiting page got the new event');
  t.equal(next.cursor, 3);
  t.same(kinds(await feed.page(3, false)), [], 'nothing after the newest');
  const quiet = feed.page(3, true, undefined, 20_000);
  await flush();
  clock.advance(20_000);
  t.same(kinds(await quiet), [], 'a quiet long poll ends empty at its deadline');
  t.ok(hist.calls.every((c) => c.waitMs <= 2_500), 'the feed never waits at the master longer than its call allows');
});

t.test('event feed: cursors it no longer keeps, or never gave, are a gap', async (t) => {
  const clock = new ManualClock();
  const hist = new FakeHistory(clock);
  for (let i = 1; i <= 5; i++) hist.push(i, 0);
  const feed = new EventFeed({ source: hist, clock, log, keptMax: 3 });
  t.teardown(() => feed.stop());
  const all = await feed.page(undefined, false);
  t.same(kinds(all), ['3.0', '4.0', '5.0'], 'only the last keptMax');
  t.equal(all.cursor, 5);
  t.same((await feed.page(2, false)).gap, false, 'cursor 2: the next kept is 3, nothing missed');
  const lost = await feed.page(1, false);
  t.equal(lost.gap, true, 'cursor 1: event 2 was dropped');
  t.same(kinds(lost), ['3.0', '4.0', '5.0']);
  t.equal((await feed.page(99, false)).gap, true, 'a cursor from another feed (a restarted gateway)');
});

t.test('event feed: when the leader lost our place the feed backfills, and browsers before the loss are told once', async (t) => {
  const clock = new ManualClock();
  const hist = new FakeHistory(clock);
  hist.push(10, 0);
  hist.push(10, 1);
  const feed = new EventFeed({ source: hist, clock, log, masterWaitMs: 1_000 });
  t.teardown(() => feed.stop());
  t.same(kinds(await feed.page(undefined, false)), ['10.0', '10.1']);
  await flush();
  // A failover to a leader whose history starts after 11: event 11.0 is lost to the feed.
  hist.horizon = '11';
  hist.entries = [];
  hist.push(12, 0);
  hist.push(13, 0);
  for (let i = 0; i < 5; i++) { clock.advance(1_000); await flush(); }
  const page = await feed.page(2, false);
  t.equal(page.gap, true, 'a browser at cursor 2 missed 11.0: gap');
  t.same(kinds(page), ['10.0', '10.1', '12.0', '13.0'], 'every kept event once, in order');
  const again = await feed.page(page.cursor, false);
  t.same([again.gap, kinds(again)], [false, []], 'told once: from the new cursor nothing is missing');
});

t.test('event feed: no browser for idleMs, no calls to the master; a restart backfills without repeating', async (t) => {
  const clock = new ManualClock();
  const hist = new FakeHistory(clock);
  hist.push(1, 0);
  const feed = new EventFeed({ source: hist, clock, log, masterWaitMs: 1_000, idleMs: 5_000 });
  t.teardown(() => feed.stop());
  const first = await feed.page(undefined, false);
  t.same(kinds(first), ['1.0']);
  for (let i = 0; i < 8; i++) { clock.advance(1_000); await flush(); }
  const calls = hist.calls.length;
  for (let i = 0; i < 5; i++) { clock.advance(1_000); await flush(); }
  t.equal(hist.calls.length, calls, 'the feed stopped following');
  hist.push(3, 0);
  const p = await feed.page(first.cursor, false);
  t.same(kinds(p), ['1.0', '3.0'], 'a new ask starts it again; the backfill repeats nothing');
  t.equal(p.gap, true, 'what happened while idle may be beyond the backfill: the browser is told');
});

t.test('event feed: long polls beyond waitersMax are refused, not answered empty (which would be a busy loop)', async (t) => {
  const clock = new ManualClock();
  const hist = new FakeHistory(clock);
  const feed = new EventFeed({ source: hist, clock, log, waitersMax: 1 });
  t.teardown(() => feed.stop());
  const first = await feed.page(undefined, false);
  const waiting = feed.page(first.cursor, true);
  await flush();
  await t.rejects(feed.page(first.cursor, true), { code: 'UNAVAILABLE' });
  t.same(kinds(await feed.page(first.cursor, false)), [], 'a page that does not wait is still answered');
  hist.push(1, 0);
  t.same(kinds(await waiting), ['1.0']);
});

t.test('routes: the dashboard files are open and fixed, its data is under /v1/admin', async (t) => {
  const r = (method: string, p: string) => routeName(method, new URL(p, 'http://gw'));
  t.equal(r('GET', '/ui'), 'ui');
  t.equal(r('GET', '/ui/?token=x'), 'ui');
  t.equal(r('GET', '/ui/dashboard.js'), 'ui');
  t.equal(r('GET', '/ui/../credentials.json'), 'unknown', 'no other path reaches the files');
  t.equal(r('GET', '/ui/other.js'), 'unknown');
  t.equal(r('GET', '/v1/admin/overview'), 'admin.overview');
  t.equal(r('GET', '/v1/admin/events?since=3&wait=1'), 'admin.events');
  t.equal(r('POST', '/v1/admin/overview'), 'method');
});

t.test('ui assets: served with a CSP that allows only the gateway, and a clear error when the build did not copy them', async (t) => {
  const answer = (assets: UiAssets, path: string) => {
    const out: { status?: number; headers?: Record<string, unknown>; body?: Buffer } = {};
    const res = {
      writeHead: (status: number, headers: Record<string, unknown>) => { out.status = status; out.headers = headers; },
      end: (body?: Buffer) => { out.body = body; },
    };
    assets.serve({ method: 'GET' } as never, res as never, path);
    return out;
  };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gfs-ui-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'index.html'), '<!doctype html>');
  const page = answer(new UiAssets(dir), '/ui');
  t.equal(page.status, 200);
  t.equal(page.headers!['content-type'], 'text/html; charset=utf-8');
  t.match(String(page.headers!['content-security-policy']), /default-src 'none'; script-src 'self'/);
  t.equal(page.headers!['referrer-policy'], 'no-referrer');
  t.equal(page.body!.toString(), '<!doctype html>');
  t.throws(() => answer(new UiAssets(dir), '/ui/dashboard.js'), { code: 'INTERNAL', message: /npm run build/ });
  t.throws(() => answer(new UiAssets(dir), '/etc/passwd'), { code: 'NO_SUCH_FILE' });
});
