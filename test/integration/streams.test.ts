/**
 * Log streams against real processes (docs/LOG-STREAMS.md, "Streams, segments and
 * retention"): a stream rolls its active segment by size (after appends) and by age (on
 * the master's timer, nobody appending), the next segment starts at the stream offset
 * where the last ended, retention drops whole sealed segments oldest first by bytes and
 * by age on a stream nobody writes any more, gc --dry-run shows what retention will drop
 * and when, ls lists segments by time. Appends go through AppendTarget and the data
 * plane's AppendLink, as the client library does.
 */
import * as grpc from '@grpc/grpc-js';
import t from 'tap';
import {
  MasterClient, FileState, type AppendTargetRequest, type AppendTargetResponse, type FileInfo, type ListResponse, type WatchEvent,
} from '../../gen/gfs';
import { GfsError } from '../../src/common/errors';
import { callUnary, grpcChannelOptions } from '../../src/common/grpc';
import { AppendLink } from '../../src/dataplane';
import { parseSegmentName } from '../../src/common/segment-name';
import { cluster, gfsctl, until } from './helpers';


t.test('streams: roll by size and by age, offsets continue, retention by bytes and by age on idle streams, gc --dry-run, ls by time', async (t) => {
  const { cluster: c, client } = await cluster(t, { chunkservers: 2, masterArgs: ['--stream-tick', '200ms'], safeModeMinMs: 500 });
  const master = new MasterClient(c.masters[0]!, grpc.credentials.createInsecure(), grpcChannelOptions);
  t.teardown(() => master.close());
  const links = new Map<string, AppendLink>();
  t.teardown(() => { for (const l of links.values()) l.close(); });

  /** One record appended to a stream: the segment it went to and its offset there. */
  async function append(stream: string, data: Buffer): Promise<{ segment: string; offset: number }> {
    let ended = 0;
    for (let attempt = 0; attempt < 20; attempt++) {
      const req: AppendTargetRequest = { path: stream, create: false, replication: 0, endedHandle: ended, failedNode: '', requestId: '' };
      let target: AppendTargetResponse;
      try {
        target = await callUnary<AppendTargetRequest, AppendTargetResponse>(master, master.appendTarget, req);
      } catch (e) {
        // A master coming back after a restart: ask again shortly.
        if (!(e instanceof GfsError) || !['UNAVAILABLE', 'NOT_LEADER', 'TIMEOUT'].includes(e.code)) throw e;
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      const chunk = target.chunk!;
      const addr = chunk.replicas[0]!.addr;
      if (!links.has(addr)) links.set(addr, new AppendLink(addr));
      try {
        const res = await links.get(addr)!.append(chunk.handle, chunk.version, [{ data }]);
        return { segment: target.path, offset: chunk.offset + res.offsets[0]! };
      } catch (e) {
        // The segment rolled (its chunk sealed) between the target and the append: ask again.
        if (!(e instanceof GfsError)) throw e;
        ended = chunk.handle;
      }
    }
    throw new Error(`append to ${stream} kept failing`);
  }
  const list = (p: string) => callUnary<{ path: string; recursive: boolean; limit: number; startAfter: string }, ListResponse>(
    master, master.list, { path: p, recursive: false, limit: 0, startAfter: '' });
  const ctl = async (...args: string[]) => {
    const r = await gfsctl(c.masters, args);
    t.equal(r.code, 0, `gfsctl ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.toString();
  };
  const sealedIn = async (stream: string, n: number) => until(`${n} sealed segments in ${stream}`, async () => {
    const entries = (await list(stream)).entries;
    return entries.filter((e) => e.state === FileState.FILE_STATE_SEALED).length >= n ? entries : undefined;
  });

  await ctl('stream', 'create', '/s/size', '--roll', '1KiB', '--retention', '1d/2500', '--replication', '2');
  await ctl('stream', 'create', '/s/age', '--roll', '1500ms', '--replication', '2');
  t.match(await ctl('stream', 'show', '/s/size'), /roll 1KiB, retention 2500\/1d, replication 2/);
  const events: WatchEvent[] = [];
  const watch = master.watch({ path: '/s/size' });
  watch.on('data', (ev: WatchEvent) => events.push(ev));
  watch.on('error', () => undefined);
  t.teardown(() => watch.cancel());
  await until('the initial watch event', async () => events[0]);
  t.match(events[0], { reason: 'initial', segments: [] }, 'a new stream: no segment, no active one');
  t.equal(events[0]!.file, undefined);

  // Roll by size: two 600-byte records pass 1 KiB; the tick rolls, the next append starts segment 2 at stream offset 1200.
  const rec = (i: number) => Buffer.from(`${String(i).padStart(3, '0')}${'r'.repeat(596)}\n`);
  const a1 = await append('/s/size', rec(1));
  const a2 = await append('/s/size', rec(2));
  t.equal(a1.segment, a2.segment, 'one active segment');
  t.same([a1.offset, a2.offset], [0, 600]);
  t.same(parseSegmentName(a1.segment.split('/').pop()!)?.baseOffset, 0);
  await sealedIn('/s/size', 1);
  const a3 = await append('/s/size', rec(3));
  t.not(a3.segment, a1.segment, 'the next append went to a new segment');
  t.equal(parseSegmentName(a3.segment.split('/').pop()!)?.baseOffset, 1200, 'its base offset is where the sealed one ended');
  t.equal(a3.offset, 0);
  t.same(await client.readAll(a1.segment), Buffer.concat([rec(1), rec(2)]), 'the sealed segment holds exactly its records');

  // Roll by age with nobody appending; the stream then has no active segment until the next append.
  const b1 = await append('/s/age', rec(9));
  const ageEntries = await sealedIn('/s/age', 1);
  t.same(ageEntries.map((e) => e.path), [b1.segment], 'rolled by the timer, and no new segment without an append');
  t.equal(ageEntries[0]!.size, rec(9).length);

  // Retention by bytes (2500): segment 2 fills (1200) and rolls, segment 3 starts: 3000 bytes, so segment 1 goes.
  await append('/s/size', rec(4));
  await sealedIn('/s/size', 2);
  const a5 = await append('/s/size', rec(5));
  t.equal(parseSegmentName(a5.segment.split('/').pop()!)?.baseOffset, 2400);
  const left = await until('segment 1 dropped by retention', async () => {
    const entries = (await list('/s/size')).entries;
    return entries.some((e) => e.path === a1.segment) ? undefined : entries;
  });
  t.same(left.map((e) => e.path), [a3.segment, a5.segment], 'oldest dropped; the sealed and the active one stay, in time order');
  t.same(await client.readAll(a3.segment), Buffer.concat([rec(3), rec(4)]));

  // The watch saw every roll and the drop: its last event names the active segment and the segments left.
  const last = await until('a watch event after the drop', async () => {
    const ev = events.at(-1)!;
    return ev.segments.length === 2 && ev.segments[0]!.path === a3.segment ? ev : undefined;
  });
  t.equal(last.file?.path, a5.segment);
  t.same(last.segments.map((f) => f.path), [a3.segment, a5.segment]);
  t.ok(events.filter((e) => e.reason === 'rolled').length >= 4, 'rolled: two segments created, one sealed by a roll, one dropped (at least)');

  // ls lists segments by time (names sort by time), and gc --dry-run tells when retention will drop the sealed one.
  const lsLines = (await ctl('ls', '/s/size')).trim().split('\n');
  t.same(lsLines, [a3.segment, a5.segment]);
  const gc = JSON.parse(await ctl('--json', 'gc', '--dry-run')) as { items: { kind: string; path: string; due: boolean; dueInMs: number }[] };
  const planned = gc.items.filter((i) => i.kind === 'retention');
  t.same(planned.map((i) => [i.path, i.due]), [[a3.segment, false]], 'the sealed segment, due later');
  t.ok(planned[0]!.dueInMs > 23 * 3600_000 && planned[0]!.dueInMs <= 24 * 3600_000, 'in about a day');
  const df = JSON.parse(await ctl('--json', 'df')) as { retentionDueSegments: number };
  t.equal(df.retentionDueSegments, 0, 'nothing is due now');

  // Retention by age on a stream nobody writes any more: its sealed segment goes, nothing is left.
  await ctl('stream', 'set', '/s/age', '--retention', '1s');
  await until('the idle stream emptied by retention', async () => ((await list('/s/age')).entries.length === 0 ? true : undefined));
  const stat = await callUnary<{ path: string }, FileInfo>(master, master.stat, { path: '/s/age' });
  t.match(stat.stream, { rollAgeMs: 1500, retentionAgeMs: 1000 }, 'the stream itself stays, with its policy');

  // The master counts what it did.
  const metrics = await (await fetch(`http://${c.master.adminAddr}/metrics`)).text();
  const total = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)$`, 'm').exec(metrics)?.[1] ?? NaN);
  t.equal(total('gfs_master_stream_segments_created_total'), 4, 'segments created: three in /s/size, one in /s/age');
  t.equal(total('gfs_master_stream_rolls_total'), 3, 'rolls: two by size, one by age');
  t.equal(total('gfs_master_stream_retention_dropped_segments_total'), 2, 'drops: one by bytes, one by age');

  // kill -9 of the master: it replays the streams from its WAL (same policy, same segments, the
  // same active segment) and the next append goes on at the stream's offset.
  await c.killMaster('SIGKILL');
  await c.restartMaster();
  await until('the restarted master lists the stream', async () => {
    const entries = await list('/s/size').then((r) => r.entries, () => undefined);
    return entries?.map((e) => e.path).join() === [a3.segment, a5.segment].join() ? true : undefined;
  });
  t.match((await callUnary<{ path: string }, FileInfo>(master, master.stat, { path: '/s/size' })).stream,
    { rollBytes: 1024, retentionBytes: 2500, retentionAgeMs: 86_400_000, replication: 2 });
  const a6 = await append('/s/size', rec(6));
  t.same([a6.segment, a6.offset], [a5.segment, 600], 'the active segment goes on where it was');

  // Everything left is healthy, once the restarted master has every chunkserver's report.
  const fsck = await until('fsck of the streams healthy', async () => {
    const r = await gfsctl(c.masters, ['fsck', '/s']);
    return r.code === 0 ? r.stdout.toString() : undefined;
  });
  t.match(fsck, /status: HEALTHY/);
});
