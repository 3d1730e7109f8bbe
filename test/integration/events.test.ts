/**
 * Cluster events over a real nats-server (docs/EVENTS.md): a `gfs dev --nats` cluster
 * publishes what happens in order with growing positions; a NATS outage changes nothing
 * for metadata, the publisher reconnects, and `gfsctl events --since` fills the gap.
 */
import { spawn } from 'node:child_process';
import t, { type Test } from 'tap';
import { systemClock } from '../../src/common/clock';
import { silentLogger } from '../../src/common/log';
import { NatsPublisher, comparePositions, type ClusterEvent } from '../../src/events';
import fs from 'node:fs';
import { GFSCTL, chunkFile, cluster, eventually, gfsctl, promtoolCheck } from './helpers';
import { startEtcd } from './etcd';
import { collectEvents, startNats } from './nats';

/** Each event strictly after the one before it. */
function assertGrowing(t: Test, events: ClusterEvent[], what: string): void {
  for (let i = 1; i < events.length; i++) {
    if (comparePositions(events[i]!, events[i - 1]!) <= 0) t.fail(`${what}: ${events[i]!.id} comes after ${events[i - 1]!.id}`);
  }
  t.pass(`${what}: ${events.length} events in growing positions`);
}

function parseLines(stdout: Buffer): ClusterEvent[] {
  return stdout.toString().trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as ClusterEvent);
}

t.test('events: file created, sealed, deleted, a replica corrupt and healed, a chunkserver down arrive on NATS in order, as gfsctl events shows them', async (t) => {
  const nats = await startNats(t);
  const sub = await collectEvents(t, nats.url);
  const { cluster: c, client } = await cluster(t, { nats: nats.url, heartbeatIntervalMs: 200, deadAfterMs: 1500, safeModeMinMs: 300 });
  await sub.waitFor((e) => e.kind === 'leader.changed', 10_000, 'leader.changed');
  const follow = followEvents(c.masters);
  t.teardown(() => follow.stop());
  await client.put(Buffer.from('hello events'), '/ev/a.txt');
  await client.delete('/ev/a.txt');

  // A corrupt replica of a 2-replica file: reported on read, then cloned to the third node.
  const data = Buffer.alloc(256 * 1024, 7);
  await client.put(data, '/ev/c.bin', { replication: 2 });
  const ch = (await client.stat('/ev/c.bin')).chunks[0]!;
  const first = ch.replicas[ch.handle % ch.replicas.length]!;
  const holder = c.chunkservers.find((p) => p.nodeId === first.nodeId)!;
  const fd = fs.openSync(chunkFile(holder.dataDir, ch.handle), 'r+');
  fs.writeSync(fd, Buffer.from([0x55]), 0, 1, 1000);
  fs.closeSync(fd);
  t.same(await client.readAll('/ev/c.bin'), data, 'the reader got the right bytes elsewhere');
  const corrupt = await sub.waitFor((e) => e.kind === 'chunk.corrupt' && e.data.handle === ch.handle, 15_000, 'chunk.corrupt');
  t.equal(corrupt.data.node, first.nodeId);
  const healed = await sub.waitFor((e) => e.kind === 'chunk.healed' && e.data.handle === ch.handle, 30_000, 'chunk.healed');
  t.notOk(ch.replicas.some((r) => r.nodeId === healed.data.target), 'cloned to the node that had no replica');
  const killed = c.chunkservers[0]!;
  await c.killChunkserver(0);
  await sub.waitFor((e) => e.kind === 'node.down' && e.data.node === killed.nodeId, 20_000, 'node.down');
  await c.restartChunkserver(0);
  await sub.waitFor((e) => e.kind === 'node.up' && e.data.node === killed.nodeId && e.data.revived === true, 20_000, 'node.up (revived)');
  await sub.waitFor((e) => e.kind === 'process.started' && e.source === `chunkserver/${killed.nodeId}`, 20_000, 'process.started of the restarted chunkserver');

  const master = sub.masterEvents();
  assertGrowing(t, master, 'NATS arrival order');
  const at = (kind: string, pred: (e: ClusterEvent) => boolean = () => true) => master.findIndex((e) => e.kind === kind && pred(e));
  const onA = (e: ClusterEvent) => e.data.path === '/ev/a.txt';
  const order = [
    at('file.created', onA), at('file.sealed', onA), at('file.deleted', onA),
    at('chunk.corrupt', (e) => e.data.handle === ch.handle), at('chunk.healed', (e) => e.data.handle === ch.handle),
    at('node.down', (e) => e.data.node === killed.nodeId),
  ];
  t.ok(order.every((i) => i >= 0), `every event arrived: ${order}`);
  t.same([...order].sort((a, b) => a - b), order, 'created < sealed < deleted < corrupt < healed < node down');
  const sealed = master[order[1]!]!;
  t.equal(sealed.data.size, 'hello events'.length);
  t.ok(sealed.rev > master[order[0]!]!.rev, 'the seal has a later WAL index than the create');

  // The leader's history holds the same events, byte for byte, in the same order.
  const r = await gfsctl(c.masters, ['--json', 'events']);
  t.equal(r.code, 0, r.stderr);
  const history = parseLines(r.stdout);
  assertGrowing(t, history, 'gfsctl events');
  const byId = new Map(history.map((e) => [e.id, e]));
  for (const e of master) t.same(byId.get(e.id), e, `history has ${e.id} ${e.kind}`);
  const human = await gfsctl(c.masters, ['events', '--since', String(sealed.rev)]);
  t.equal(human.code, 0, human.stderr);
  t.match(human.stdout.toString(), /file\.deleted\s+path="\/ev\/a\.txt"/);
  t.notMatch(human.stdout.toString(), /file\.sealed\s+path="\/ev\/a\.txt"/, '--since REV leaves out everything at or before REV');

  // gfsctl events -f saw the same events as they happened.
  const followed = await follow.until((e) => e.kind === 'node.down' && e.data.node === killed.nodeId);
  for (const e of master.slice(0, order.at(-1)! + 1)) t.same(followed.find((f) => f.id === e.id), e, `events -f printed ${e.id} ${e.kind}`);

  const metrics = await (await fetch(`http://${c.master.adminAddr}/metrics`)).text();
  const published = Number(/^gfs_events_published_total\S* (\d+)/m.exec(metrics)?.[1]);
  t.ok(published >= master.length, `gfs_events_published_total ${published} counts every event`);
  t.match(metrics, /^gfs_events_dropped_total\S* 0$/m);
  for (const admin of [c.master.adminAddr, c.chunkservers[1]!.adminAddr, c.gateway.adminAddr]) {
    const text = await (await fetch(`http://${admin.replace(/^http:\/\//, '')}/metrics`)).text();
    t.match(text, /^gfs_events_published_total\{[^}]*\} [1-9]/m, `${admin} publishes (at least its process.started)`);
    const lint = await promtoolCheck(text);
    t.same(lint, { code: 0, output: '' }, `${admin}: promtool check metrics is clean`);
  }
});

t.test('events: after a leader is killed, the new leader publishes leader.changed and its history has the old term\'s metadata events under the same ids', async (t) => {
  const etcd = await startEtcd(t);
  const nats = await startNats(t);
  const sub = await collectEvents(t, nats.url, 'evha');
  const { cluster: c, client } = await cluster(t, { masters: 3, etcd: etcd.url, electionTtlMs: 2000, heartbeatIntervalMs: 200, nats: nats.url, cluster: 'evha' });
  const first = await eventually(async () => { const i = await c.leaderIndex(); return i >= 0 ? i + 1 : 0; }, 15_000, 'a leader') - 1;
  await client.put(Buffer.from('before'), '/ha/a');
  const sealedA = await sub.waitFor((e) => e.kind === 'file.sealed' && e.data.path === '/ha/a', 15_000, '/ha/a sealed');
  t.equal(sealedA.source, `master/m${first + 1}`);
  await c.killMaster('SIGKILL', first);
  await client.put(Buffer.from('after'), '/ha/b');
  const changed = await sub.waitFor((e) => e.kind === 'leader.changed' && e.source !== `master/m${first + 1}`, 20_000, 'leader.changed from the new leader');
  const sealedB = await sub.waitFor((e) => e.kind === 'file.sealed' && e.data.path === '/ha/b', 20_000, '/ha/b sealed');
  t.equal(sealedB.source, changed.source, 'the new leader publishes');
  t.ok(comparePositions(changed, sealedA) > 0 && comparePositions(sealedB, sealedA) > 0, 'positions go on growing across the failover');

  const r = await gfsctl(c.masters, ['--json', 'events', '--since', '0']);
  t.equal(r.code, 0, r.stderr);
  const history = parseLines(r.stdout);
  assertGrowing(t, history, 'the new leader\'s history');
  const same = history.find((e) => e.id === sealedA.id);
  t.same(same && { kind: same.kind, rev: same.rev, epoch: same.epoch, data: same.data }, { kind: sealedA.kind, rev: sealedA.rev, epoch: sealedA.epoch, data: sealedA.data },
    'the old leader\'s file.sealed is in the new leader\'s history under its id');
  t.ok(history.some((e) => e.id === sealedB.id && e.kind === 'file.sealed'), 'and so is the new one');
  t.ok(history.some((e) => e.id === changed.id && e.kind === 'leader.changed'), 'leader.changed marks where the new leader\'s observations begin');
});

/** `gfsctl --json events -f` running in the background; `until` waits for a line and returns all so far. */
function followEvents(masters: string[]): { until(pred: (e: ClusterEvent) => boolean): Promise<ClusterEvent[]>; stop(): void } {
  const child = spawn(process.execPath, [GFSCTL, '--json', 'events', '-f'], { env: { ...process.env, GFS_MASTERS: masters.join(',') }, stdio: ['ignore', 'pipe', 'pipe'] });
  const seen: ClusterEvent[] = [];
  let buffered = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    buffered += d.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const l of lines) if (l) seen.push(JSON.parse(l) as ClusterEvent);
  });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  return {
    until: async (pred) => {
      const deadline = Date.now() + 20_000;
      while (!seen.some(pred)) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`gfsctl events -f did not print it (exit ${child.exitCode}): ${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      return seen;
    },
    stop: () => { child.kill('SIGKILL'); },
  };
}


t.test('events: a NATS restart in the middle of a stream: metadata never fails, the publisher reconnects, --since fills the gap', async (t) => {
  const nats = await startNats(t);
  const sub = await collectEvents(t, nats.url);
  // A small history, so the test also sees what happens when --since is older than what is kept.
  const { cluster: c, client } = await cluster(t, { nats: nats.url, heartbeatIntervalMs: 200, masterArgs: ['--events-history', '64'] });
  const put = (i: number) => client.put(Buffer.from(`file ${i}`), `/s/f${i}`);
  const sealedOn = (i: number) => (e: ClusterEvent) => e.kind === 'file.sealed' && e.data.path === `/s/f${i}`;
  for (let i = 0; i < 3; i++) await put(i);
  const lastSeen = await sub.waitFor(sealedOn(2), 10_000, 'f2 sealed');

  await nats.stop();
  // NATS is down: every metadata operation still succeeds, at its usual pace.
  for (let i = 3; i < 6; i++) await put(i);
  await client.delete('/s/f3');
  await nats.start();
  // Later events arrive once the publisher is back (it reconnects by itself).
  let last = 5;
  const deadline = Date.now() + 30_000;
  while (!sub.events.some(sealedOn(last))) {
    if (Date.now() > deadline) t.fail('no event published after NATS came back reached the subscriber');
    await put(++last);
    await new Promise((r) => setTimeout(r, 300));
  }

  const r = await gfsctl(c.masters, ['--json', 'events', '--since', lastSeen.id]);
  t.equal(r.code, 0, r.stderr);
  const filled = parseLines(r.stdout);
  assertGrowing(t, filled, 'gfsctl events --since');
  t.ok(filled.every((e) => comparePositions(e, lastSeen) > 0), 'only events after --since');
  for (let k = 3; k <= last; k++) {
    t.ok(filled.some((e) => e.kind === 'file.created' && e.data.path === `/s/f${k}`), `f${k} created is in the history`);
    t.ok(filled.some(sealedOn(k)), `f${k} sealed is in the history`);
  }
  t.ok(filled.some((e) => e.kind === 'file.deleted' && e.data.path === '/s/f3'), 'the delete during the outage is in the history');
  // Together, NATS and the history are every event after lastSeen, once (by id).
  const ids = new Set([...sub.masterEvents(), ...filled].filter((e) => comparePositions(e, lastSeen) > 0).map((e) => e.id));
  t.equal(ids.size, filled.length, 'NATS brought nothing the history lacks');

  // Older than what the leader keeps: no partial list, a clear way out.
  for (let k = 0; k < 70; k++) await client.mkdir(`/s/d${k}`).then(() => client.delete(`/s/d${k}`));
  const old = await gfsctl(c.masters, ['events', '--since', lastSeen.id]);
  t.equal(old.code, 1);
  t.equal(old.stdout.length, 0, 'nothing printed');
  t.match(old.stderr, /events after \d+\.\d+ are no longer kept: the leader's history starts after \d+/);
  t.match(old.stderr, /Reconcile from the current state \(gfsctl status.*fsck\), then continue with --since \d+/);
  const bad = await gfsctl(c.masters, ['events', '--since', 'yesterday']);
  t.equal(bad.code, 2, 'a malformed REV is a usage error');
});

t.test('events: a NATS that is connected but stalls: publish never waits, the queue keeps the newest, the rest go out once it answers', async (t) => {
  const nats = await startNats(t);
  const received: number[] = [];
  const sub = await collectEvents(t, nats.url, 'slow');
  const p = new NatsPublisher({ url: nats.url, name: 'slow test', log: silentLogger, clock: systemClock, random: () => 0.5, queueMax: 10, inFlightMax: 5 });
  t.teardown(() => p.stop());
  p.start();
  const deadline = Date.now() + 10_000;
  while (!p.isConnected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.ok(p.isConnected, 'connected');
  nats.pause();
  const started = performance.now();
  for (let i = 0; i < 100; i++) p.publish('gfs.slow.events.gc.swept', JSON.stringify({ v: 1, id: `${i}.0`, rev: i, seq: 0, kind: 'gc.swept', source: 'master/t', data: { i } }));
  t.ok(performance.now() - started < 500, 'a stalled NATS costs publish nothing');
  t.equal(p.publishedTotal, 5, 'only inFlightMax events went to the client before a round trip');
  t.equal(p.queued, 10, 'the queue is full');
  t.equal(p.droppedTotal, 85, 'the rest were dropped, oldest first');
  nats.resume();
  await sub.waitFor((e) => e.rev === 99, 15_000, 'the newest event');
  for (const e of sub.events) received.push(e.rev);
  t.same(received, [0, 1, 2, 3, 4, 90, 91, 92, 93, 94, 95, 96, 97, 98, 99], 'the first in flight, then the newest ten, in order');
  t.equal(p.publishedTotal, 15);
});
