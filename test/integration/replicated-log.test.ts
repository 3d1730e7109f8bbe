import t from 'tap';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Wal } from '../../src/wal';
import { silentLogger, createLogger } from '../../src/common/log';
import { systemClock } from '../../src/common/clock';
import { ReplicatedLog, loadDurableState } from '../../src/master/replication/replicated-log';
import { ReplicationService, replicationService } from '../../src/master/replication/transport';
import type { Message } from '../../src/master/replication/types';
import { tempDir, eventually } from './helpers';
import { bindServer } from '../../src/common/grpc';

/** One master's replication with a tiny key-value state machine, on real gRPC and a real WAL. */
class Member {
  kv = new Map<string, string>();
  applied = 0;
  rlog!: ReplicatedLog;
  wal!: Wal;
  private server!: grpc.Server;
  private inbox: (from: string, msg: Message) => void = () => undefined;

  constructor(readonly id: string, readonly dir: string) {}

  async listen(port = 0): Promise<string> {
    this.server = new grpc.Server();
    this.server.addService(ReplicationService, replicationService((from, msg) => this.inbox(from, msg)));
    const bound = await bindServer(this.server, `127.0.0.1:${port}`);
    return `127.0.0.1:${bound}`;
  }

  async open(members: Map<string, string>): Promise<void> {
    this.wal = await Wal.open({ dir: path.join(this.dir, 'wal') });
    const durable = await loadDurableState(this.dir, this.wal);
    this.kv = new Map(durable.checkpoint ? JSON.parse(Buffer.from(durable.checkpoint.image).toString()) : []);
    this.rlog = new ReplicatedLog({
      id: this.id, members, dataDir: this.dir, wal: this.wal, log: process.env.DEBUG_RLOG ? createLogger(this.id, 'debug') : silentLogger, clock: systemClock, heartbeatIntervalMs: 50,
      apply: (entry) => {
        this.applied = entry.index;
        if (entry.type === 0) return undefined;
        const [k, v] = Buffer.from(entry.payload).toString().split('=');
        this.kv.set(k!, v!);
        return entry.index;
      },
      restore: (snap) => { this.kv = new Map(JSON.parse(Buffer.from(snap.image).toString())); },
    }, durable);
    this.inbox = (from, msg) => this.rlog.receive(from, msg);
    this.rlog.start();
  }

  async stop(): Promise<void> {
    this.inbox = () => undefined;
    this.rlog?.close();
    this.server?.forceShutdown();
    await this.wal?.close();
  }
}

t.test('replicated log: a leader commits on a majority over gRPC, a new leader keeps every acknowledged entry, a restarted member catches up', async (t) => {
  const dir = tempDir(t);
  const members = ['m1', 'm2', 'm3'].map((id) => new Member(id, path.join(dir, id)));
  t.teardown(() => Promise.all(members.map((m) => m.stop())));
  const addrs = new Map<string, string>();
  for (const m of members) addrs.set(m.id, await m.listen());
  for (const m of members) await m.open(addrs);
  const [m1, m2, m3] = members as [Member, Member, Member];
  // Generous deadlines: each is a few round trips and fsyncs when idle, but a loaded CI
  // machine once took over 5 s for m1's recovery; the condition, not the time, is the test.
  const waitMs = 30_000;

  t.ok(m1.rlog.becomeLeader(10, Number.MAX_SAFE_INTEGER));
  await eventually(() => m1.rlog.replica.serving, waitMs, 'm1 to finish recovery');
  const acked: string[] = [];
  await Promise.all(Array.from({ length: 50 }, async (_, i) => {
    await m1.rlog.propose(1, Buffer.from(`k${i}=v${i}`));
    acked.push(`k${i}`);
  }));
  t.equal(acked.length, 50);
  await eventually(() => m2.kv.size === 50 && m3.kv.size === 50, waitMs, 'followers to apply');

  // The leader dies; m2 takes over with a newer epoch and keeps serving with m3.
  await m1.stop();
  t.ok(m2.rlog.becomeLeader(20, Number.MAX_SAFE_INTEGER));
  await eventually(() => m2.rlog.replica.serving, waitMs, 'm2 to recover');
  for (const k of acked) t.equal(m2.kv.get(k), `v${k.slice(1)}`, `${k} survived the failover`);
  await m2.rlog.propose(1, Buffer.from('after=failover'));
  t.equal(m2.kv.get('after'), 'failover');
  await t.rejects(m3.rlog.propose(1, Buffer.from('x=y')), { code: 'NOT_LEADER' }, 'a follower refuses proposals');

  // m1 comes back on its old address and catches up from the new leader.
  const again = new Member('m1', path.join(dir, 'm1'));
  members[0] = again;
  await again.listen(Number(addrs.get('m1')!.split(':')[1]));
  await again.open(addrs);
  await eventually(() => again.kv.get('after') === 'failover' && again.kv.size === 51, waitMs, 'm1 to catch up');
  t.pass('the old leader rejoined as a follower and caught up');
});
