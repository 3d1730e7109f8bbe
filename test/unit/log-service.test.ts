/**
 * The master's log driver against a scripted data plane: sealing takes the smallest
 * durable length and keeps only the replicas that took the cut, concurrent seals share
 * one, no answer leaves the chunk open; heartbeats renew leases only for the open
 * chunk; a lapsed lease gets its chunk sealed on the tick; AppendTarget allocates,
 * grants, and answers retried records from the writer windows; Watch events follow
 * the applied ops.
 */
import t from 'tap';
import { HeartbeatRequest, type MetaOp } from '../../gen/gfs';
import { ManualClock } from '../../src/common/clock';
import { GfsError } from '../../src/common/errors';
import { silentLogger } from '../../src/common/log';
import type { AppendPlane } from '../../src/master/logs/log-host';
import { LogService } from '../../src/master/logs/log-service';
import { MetaState, type FileNode } from '../../src/master/meta-state';
import { NodeRegistry } from '../../src/master/registry';

type Call = { kind: string; addr: string; version?: number; length?: number };

/** What CHUNK_STAT answers besides the durable length (a node still the primary, by default). */
type StatAs = { primary: boolean; committed?: number };

/** Replica addr → its durable length (undefined: it does not answer). */
function scriptedPlane(durable: Map<string, number | undefined>, calls: Call[], statAs: StatAs = { primary: true },
  writers = [{ writer: 'w', seqs: [4, 5], offsets: [0, 3] }]): AppendPlane {
  const answer = <T>(addr: string, v: () => T): Promise<T> =>
    durable.get(addr) === undefined ? Promise.reject(new GfsError('UNAVAILABLE', `${addr} is down`)) : Promise.resolve(v());
  return {
    grantLease: async (addr, req) => { calls.push({ kind: 'lease', addr, version: req.version }); return answer(addr, () => undefined); },
    querySealReplica: async (addr, _h, version) => { calls.push({ kind: 'seal', addr, version }); return answer(addr, () => durable.get(addr)!); },
    truncateReplica: async (addr, _h, version, length) => {
      calls.push({ kind: 'truncate', addr, version, length });
      // What a sidecar cut to `length` still holds.
      const kept = writers.map((w) => ({ writer: w.writer, seqs: w.seqs.filter((_, i) => w.offsets[i]! < length), offsets: w.offsets.filter((o) => o < length) }));
      return answer(addr, () => ({ length, writers: kept.filter((w) => w.seqs.length > 0) }));
    },
    chunkStat: async (addr) => answer(addr, () => ({
      node: addr, version: 1, durable: durable.get(addr)!, committed: statAs.committed ?? durable.get(addr)!,
      primary: statAs.primary, ended: !statAs.primary, leaseValid: statAs.primary,
    })),
  };
}

function setup(durable: Map<string, number | undefined>, calls: Call[] = [], statAs?: StatAs) {
  const clock = new ManualClock();
  let state = new MetaState();
  const registry = new NodeRegistry(10_000);
  for (const id of ['a', 'b', 'c']) registry.heartbeat(HeartbeatRequest.fromPartial({ nodeId: id, addr: `${id}:1`, fullReport: true }), 0, clock.nowMs());
  const applied: MetaOp[] = [];
  let index = 0;
  let logs: LogService;
  const commit = async (_kind: string, op: MetaOp) => {
    const r = state.apply(op);
    applied.push(op);
    logs.applied(op, r, ++index);
    return r;
  };
  let nextInode = 1;
  let nextHandle = 1;
  logs = new LogService({
    state: () => state, registry, commit, isLeader: () => true, plane: scriptedPlane(durable, calls, statAs), clock, log: silentLogger, leaseMs: 1000,
    lifecycle: () => ({ unreachableReported: () => undefined }) as never,
    placer: {
      waitForPlaceable: async () => undefined,
      place: (n: number, exclude: Set<string>) => ['a', 'b', 'c'].filter((id) => !exclude.has(id)).slice(0, n).map((id) => registry.nodes.get(id)!),
    } as never,
    reserveInode: () => Math.max(nextInode++, state.nextInode), reserveHandle: () => Math.max(nextHandle++, state.nextHandle), replicationDefault: 2,
  });
  return { clock, registry, logs, applied, state: () => state, setState: (s: MetaState) => { state = s; } };
}

const target = (logs: LogService, req: Record<string, unknown>) =>
  logs.targets.appendTarget({ path: '/n/log', create: false, replication: 0, endedHandle: 0, failedNode: '', requestId: '', ...req });

t.test('log service: AppendTarget creates the log, allocates, grants the lease, then answers', async (t) => {
  const calls: Call[] = [];
  const { logs, state } = setup(new Map([['a:1', 0], ['b:1', 0]]), calls);
  const r = await target(logs, { create: true });
  t.match(r, { path: '/n/log', leaseMs: 1000, chunk: { offset: 0, version: 1, replicas: [{ nodeId: 'a', addr: 'a:1' }, { nodeId: 'b' }] } });
  t.same(calls, [{ kind: 'lease', addr: 'a:1', version: 1 }], 'the primary got the lease with the chain');
  t.match(state().stat('/n/log'), { log: { open: true }, chunks: [{ committed: false }] });
  const again = await target(logs, {});
  t.equal(again.chunk!.handle, r.chunk!.handle, 'the same open chunk while its lease holds');
  t.equal(calls.length, 1, 'no second grant');
});

t.test('log service: a seal cuts to the smallest durable length, keeps the replicas that took it, and shares one seal', async (t) => {
  const calls: Call[] = [];
  const durable = new Map<string, number | undefined>([['a:1', 0], ['b:1', 0]]);
  const { logs, state, registry } = setup(durable, calls);
  const r = await target(logs, { create: true });
  const handle = r.chunk!.handle;
  registry.recordWrite(handle, 1, 0, ['c']); // a third copy some report shows
  durable.set('a:1', 9).set('b:1', 7).set('c:1', undefined);
  const inode = r.inode;
  const [s1, s2] = await Promise.all([logs.sealer.seal(inode, handle, 'test'), logs.sealer.seal(inode, handle, 'test')]);
  t.equal(s1, s2, 'concurrent seals share one');
  t.match(s1, { sealed: true, length: 7, nodes: ['a', 'b'] });
  t.same(calls.filter((c) => c.kind === 'seal').map((c) => [c.addr, c.version]).sort(), [['a:1', 2], ['b:1', 2], ['c:1', 2]], 'query-seal at v+1 on every replica');
  t.same(calls.filter((c) => c.kind === 'truncate').map((c) => [c.addr, c.length]).sort(), [['a:1', 7], ['b:1', 7]], 'the cut goes to the answerers');
  const f = state().stat('/n/log') as FileNode;
  t.match(f, { size: 7, chunks: [{ handle, version: 2, length: 7, committed: true }] });
  t.same([...f.log!.writers], [['w', { seqs: [4, 5], offsets: [0, 3] }]]);
  t.match(await logs.sealer.seal(inode, handle, 'again'), { sealed: false }, 'a sealed chunk is not sealed twice');
  const retried = await target(logs, { recordId: { writer: 'w', seq: 5 } });
  t.equal(retried.storedOffset, 3, 'a retried record in the windows is answered with its offset');
  t.equal(retried.chunk, undefined);
});

t.test('log service: no replica answers: the chunk stays open and the seal fails UNAVAILABLE', async (t) => {
  const durable = new Map<string, number | undefined>([['a:1', 0], ['b:1', 0]]);
  const { logs, state } = setup(durable);
  const r = await target(logs, { create: true });
  durable.set('a:1', undefined).set('b:1', undefined);
  await t.rejects(logs.sealer.seal(r.inode, r.chunk!.handle, 'test'), { code: 'UNAVAILABLE' });
  t.equal(state().openChunk(state().stat('/n/log') as FileNode)?.handle, r.chunk!.handle, 'still open');
});

t.test('log service: heartbeats renew only the open chunk at its version; a lapsed lease is sealed on the tick', async (t) => {
  const durable = new Map<string, number | undefined>([['a:1', 0], ['b:1', 0]]);
  const { logs, clock, state } = setup(durable);
  const r = await target(logs, { create: true });
  const handle = r.chunk!.handle;
  t.same(logs.renew('b', [{ handle, version: 1, durationMs: 0 }]), [], 'a secondary renews nothing');
  t.same(logs.renew('a', [{ handle, version: 0, durationMs: 0 }, { handle: 99, version: 1, durationMs: 0 }]), [], 'wrong version or no such chunk');
  clock.advance(900);
  t.same(logs.renew('a', [{ handle, version: 1, durationMs: 0 }]), [{ handle, version: 1, durationMs: 1000 }], 'the primary renews');
  clock.advance(900);
  logs.tick();
  t.equal(logs.sealer.running, 0, 'renewed: nothing to seal');
  durable.set('a:1', 4).set('b:1', 4);
  clock.advance(200);
  logs.tick();
  t.equal(logs.sealer.running, 1, 'lapsed: the tick seals');
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  t.match(state().stat('/n/log'), { size: 4, chunks: [{ committed: true, version: 2 }] });
  t.same(logs.renew('a', [{ handle, version: 1, durationMs: 0 }]), [], 'a sealed chunk\'s lease is not renewed');
  const next = await target(logs, {});
  t.equal(next.chunk!.offset, 4, 'the next chunk starts at the sealed length');
});

t.test('log service: ended_handle seals the open chunk first; SealLog closes the log', async (t) => {
  const durable = new Map<string, number | undefined>([['a:1', 0], ['b:1', 0]]);
  const { logs, state } = setup(durable);
  const r = await target(logs, { create: true });
  durable.set('a:1', undefined).set('b:1', 6).set('c:1', 0);
  const next = await target(logs, { endedHandle: r.chunk!.handle, failedNode: 'a' });
  t.not(next.chunk!.handle, r.chunk!.handle);
  t.same(next.chunk!.replicas.map((x) => x.nodeId), ['b', 'c'], 'the new chunk avoids the failed node');
  t.equal(next.chunk!.offset, 6, 'sealed at what the survivor holds');
  durable.set('b:1', 2).set('c:1', 2);
  const closed = await logs.targets.sealLog('/n/log', '');
  t.match(closed, { state: 'sealed', size: 8, log: { open: false } });
  await t.rejects(target(logs, {}), { code: 'FILE_NOT_WRITABLE' });
  t.equal(state().openChunk(closed), undefined);
});

t.test('log service: watchers see chunk, sealed, renamed and deleted events', async (t) => {
  const durable = new Map<string, number | undefined>([['a:1', 0], ['b:1', 0]]);
  const { logs, state } = setup(durable);
  const r = await target(logs, { create: true });
  const seen: string[] = [];
  let ended = false;
  logs.hub.add(r.inode, { event: (reason, file) => seen.push(`${reason}:${file?.path ?? '-'}`), end: () => { ended = true; } });
  t.equal(logs.hub.size, 1);
  durable.set('a:1', 5).set('b:1', 5);
  await logs.sealer.seal(r.inode, r.chunk!.handle, 'test');
  const s = state();
  const apply = (op: MetaOp) => logs.applied(op, s.apply(op), 100);
  apply({ requestId: '', rename: { source: '/n/log', target: '/n/moved', overwrite: false, mtimeMs: 5 } });
  apply({ requestId: '', completeFile: { inode: r.inode, size: 5, checksum: '', mtimeMs: 6 } });
  apply({ requestId: '', delete: { path: '/n/moved', recursive: false, mtimeMs: 7 } });
  t.same(seen, ['chunk:/n/log', 'renamed:/n/moved', 'sealed:/n/moved', 'deleted:-']);
  t.notOk(ended);
});

t.test('log service: a new leader seals, one lease into its term, the open chunks no primary claimed', async (t) => {
  const durable = new Map<string, number | undefined>([['a:1', 0], ['b:1', 0]]);
  const { logs, clock, state } = setup(durable);
  const claimed = await target(logs, { create: true });
  const lost = await target(logs, { path: '/n/other', create: true });
  logs.leases.clear(); // what a new leader knows
  logs.tick();
  clock.advance(500);
  t.equal(logs.renew('a', [{ handle: claimed.chunk!.handle, version: 1, durationMs: 0 }]).length, 1, 'a live primary names its lease: adopted');
  clock.advance(500);
  logs.tick();
  t.equal(logs.sealer.running, 1, 'the unclaimed one is being sealed');
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  t.equal(state().openChunk(state().stat('/n/other') as FileNode), undefined, 'sealed');
  t.equal(state().openChunk(state().stat('/n/log') as FileNode)?.handle, claimed.chunk!.handle, 'the claimed one stays open');
  t.ok(lost.chunk!.handle > 0);
});

t.test('log service: a stat reports only what the primary committed; a node that is no longer the primary (a seal is taking the chunk) makes the stat seal first', async (t) => {
  const calls: Call[] = [];
  const statAs: StatAs = { primary: true, committed: 5 };
  const durable = new Map<string, number | undefined>([['a:1', 0], ['b:1', 0]]);
  const { logs, state } = setup(durable, calls, statAs);
  const r = await target(logs, { create: true });
  // The primary wrote a batch of 4 more bytes locally that the chain never acknowledged; b lacks it.
  durable.set('a:1', 9).set('b:1', 5);
  const asked = await logs.committed(state().stat('/n/log') as FileNode);
  t.equal(asked.openLength, 5, 'the primary: its committed length, not its durable one');
  t.equal(calls.filter((c) => c.kind === 'seal').length, 0, 'no seal');
  // A seal takes the chunk at a: its primary is stopped, the version not bumped yet; a
  // CHUNK_STAT now answers at the same version with the durable length (9). Reporting
  // it would hand a reader 4 bytes the seal cuts.
  statAs.primary = false;
  statAs.committed = undefined;
  const during = await logs.committed(state().stat('/n/log') as FileNode);
  t.equal(during.openLength, 0, 'no open length from a node that is not the primary');
  t.match(during.file, { size: 5, chunks: [{ handle: r.chunk!.handle, version: 2, length: 5, committed: true }] }, 'the stat sealed the chunk: the size is what the log keeps');
  t.same(calls.filter((c) => c.kind === 'truncate').map((c) => c.length), [5, 5], 'cut to the smallest durable length');
});
