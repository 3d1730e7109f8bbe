/**
 * The client's Appender (src/client/log-appender.ts) against a fake master and fake
 * primaries that lose answers, store only part of a batch before failing, fill chunks
 * and seal them with a cut: every acknowledged record is in the log exactly once, at
 * the offset it was acknowledged with, and every append settles.
 */
import t from 'tap';
import { GfsError } from '../../src/common/errors';
import { Appender, type AppendLinkLike } from '../../src/client/log-appender';
import type { MasterConn } from '../../src/client/master-conn';
import { prng } from './prng';
import type { Clock, Timer } from '../../src/common/clock';

/** Real time, but every wait (the retry backoff) over at once: the test is about outcomes, not pacing. */
const quickClock: Clock = {
  nowMs: () => Date.now(),
  monoMs: () => performance.now(),
  after: (_ms, fn) => { const h = setImmediate(fn); const timer: Timer = { cancel: () => clearImmediate(h), unref: () => timer }; return timer; },
  every: () => { throw new Error('not used'); },
};

interface Stored { writer: string; seq: number; data: Buffer; chunkOffset: number }
interface FakeChunk { handle: number; version: number; offset: number; size: number; records: Stored[]; sealed: boolean; durable: number }

const CHUNK_BYTES = 4096;

/** One log: chunks in order; the last is open until sealed. */
class FakeLog {
  chunks: FakeChunk[] = [];
  private nextHandle = 1;
  appendTargets = 0;

  constructor(private readonly random: () => number) {}

  open(): FakeChunk {
    const last = this.chunks[this.chunks.length - 1];
    if (last && !last.sealed) return last;
    const offset = last ? last.offset + last.size : 0;
    const c: FakeChunk = { handle: this.nextHandle++, version: 1, offset, size: 0, records: [], sealed: false, durable: 0 };
    this.chunks.push(c);
    return c;
  }

  /** Seal: records past the smallest durable length (never below an acknowledged one) are cut. */
  seal(handle: number): void {
    const c = this.chunks.find((x) => x.handle === handle)!;
    if (c.sealed) return;
    c.sealed = true;
    c.version++;
    c.records = c.records.filter((r) => r.chunkOffset < c.durable);
    c.size = c.records.reduce((n, r) => n + r.data.length, 0);
  }

  conn(): MasterConn {
    return {
      call: async (method: string, req: { endedHandle: number; recordId?: { writer: string; seq: number } }) => {
        if (method !== 'appendTarget') throw new Error(method);
        this.appendTargets++;
        if (this.random() < 0.05) throw new GfsError('UNAVAILABLE', 'master hiccup');
        if (req.endedHandle) this.seal(req.endedHandle);
        if (req.recordId) {
          for (const c of this.chunks) {
            if (!c.sealed) continue;
            const r = c.records.find((x) => x.writer === req.recordId!.writer && x.seq === req.recordId!.seq);
            if (r) return { inode: 1, path: '/l', storedOffset: c.offset + r.chunkOffset, leaseMs: 0 };
          }
        }
        const c = this.open();
        return { inode: 1, path: '/l', chunk: { handle: c.handle, version: c.version, offset: c.offset, length: 0, goal: 3, replicas: [{ nodeId: 'n1', addr: 'p:1' }] }, leaseMs: 10_000 };
      },
    } as unknown as MasterConn;
  }

  link(): AppendLinkLike {
    let closed = false;
    const random = this.random;
    return {
      get closed() { return closed; },
      close: () => { closed = true; },
      append: async (handle, version, records, expectedOffset) => {
        await new Promise((r) => setImmediate(r));
        if (closed) throw new GfsError('UNAVAILABLE', 'closed');
        const c = this.chunks.find((x) => x.handle === handle)!;
        if (c.sealed || c.version !== version) throw new GfsError('STALE_VERSION', 'sealed');
        if (expectedOffset !== undefined && expectedOffset !== c.size) throw new GfsError('PRECONDITION_FAILED', 'offset');
        const offsets: number[] = [];
        const dup: boolean[] = [];
        // Like the primary: an APPEND that does not fit whole ends the chunk, nothing of it stored.
        const fresh = records.filter((r) => !c.records.some((x) => x.writer === r.id!.writer && x.seq === r.id!.seq));
        if (c.size + fresh.reduce((n, r) => n + r.data.length, 0) > CHUNK_BYTES) throw new GfsError('CHUNK_FULL', 'full');
        const failAt = random() < 0.1 ? Math.floor(random() * (records.length + 1)) : -1;
        for (let i = 0; i < records.length; i++) {
          if (i === failAt) {
            // Stored durably on some replicas but unacknowledged; a seal may keep it or not.
            if (random() < 0.5) c.durable = c.size;
            closed = true;
            throw new GfsError('UNAVAILABLE', 'lost the primary');
          }
          const rec = records[i]!;
          const prior = c.records.find((x) => x.writer === rec.id!.writer && x.seq === rec.id!.seq);
          if (prior) { offsets.push(prior.chunkOffset); dup.push(true); continue; }
          c.records.push({ writer: rec.id!.writer, seq: rec.id!.seq, data: rec.data, chunkOffset: c.size });
          offsets.push(c.size);
          dup.push(false);
          c.size += rec.data.length;
        }
        if (failAt === records.length) { c.durable = c.size; closed = true; throw new GfsError('TIMEOUT', 'answer lost'); }
        c.durable = c.size;
        return { offsets, dup };
      },
    };
  }

  bytes(): Buffer {
    return Buffer.concat(this.chunks.flatMap((c) => c.records.map((r) => r.data)));
  }
}

t.test('appender: 8 writers x 400 records over lossy primaries and chunk ends: each acknowledged record stored once, at its offset', async (t) => {
  const random = prng(42);
  const log = new FakeLog(random);
  const conn = log.conn();
  const acked: { writer: string; seq: number; offset: number; data: Buffer }[] = [];
  let failed = 0;
  await Promise.all(Array.from({ length: 8 }, async (_, w) => {
    const a = new Appender(conn, '/l', { random, retryDeadlineMs: 1e9, clock: quickClock }, () => log.link());
    await Promise.all(Array.from({ length: 400 }, async (_, i) => {
      const data = Buffer.from(`w${w}-r${i}-${'x'.repeat(i % 50)}\n`);
      try {
        const { offset } = await a.append(data);
        acked.push({ writer: a.writerId, seq: i + 1, offset, data });
      } catch {
        failed++;
      }
    }));
    await a.close();
  }));
  t.equal(failed, 0, 'every append succeeded in the end');
  t.equal(acked.length, 3200);
  const all = log.chunks.flatMap((c) => c.records);
  const ids = new Set(all.map((r) => `${r.writer}/${r.seq}`));
  t.equal(ids.size, all.length, 'no record stored twice');
  const bytes = log.bytes();
  let ok = 0;
  for (const a of acked) if (bytes.subarray(a.offset, a.offset + a.data.length).equals(a.data)) ok++;
  t.equal(ok, acked.length, 'every acknowledged record is at its acknowledged offset');
  t.ok(log.chunks.length > 5, `chunks changed ${log.chunks.length - 1} times`);
});

t.test('appender: expectedOffset on a record alone; a mismatch is PRECONDITION_FAILED and stores nothing', async (t) => {
  const log = new FakeLog(() => 0.99);
  const a = new Appender(log.conn(), '/l', {}, () => log.link());
  t.same(await a.append('abc', { expectedOffset: 0 }), { offset: 0, dup: false });
  await t.rejects(a.append('def', { expectedOffset: 0 }), { code: 'PRECONDITION_FAILED' });
  t.same(await a.append('ghi', { expectedOffset: 3 }), { offset: 3, dup: false });
  await a.close();
  t.equal(log.bytes().toString(), 'abcghi');
});

t.test('appender: a record over recordBytesMax or empty is refused before anything is sent', async (t) => {
  const log = new FakeLog(() => 0.99);
  const a = new Appender(log.conn(), '/l', {}, () => log.link());
  await t.rejects(a.append(Buffer.alloc(16 * 1024 * 1024 + 1)), { code: 'TOO_LARGE' });
  await t.rejects(a.append(''), { code: 'INVALID_ARGUMENT' });
  t.equal(log.appendTargets, 0);
});

t.test('appender: 3000 appends at once wait for slots: never more than appendDedupPerWriter unacknowledged, all stored in order', async (t) => {
  const log = new FakeLog(() => 0.99);
  const a = new Appender(log.conn(), '/l', { clock: quickClock }, () => log.link());
  let most = 0;
  const watch = setInterval(() => { most = Math.max(most, a.unacknowledged); }, 0);
  const acks = await Promise.all(Array.from({ length: 3000 }, (_, i) => a.append(`${i}\n`)));
  clearInterval(watch);
  await a.close();
  t.ok(most <= 1024, `at most ${most} unacknowledged`);
  t.equal(log.bytes().toString(), Array.from({ length: 3000 }, (_, i) => `${i}\n`).join(''), 'in sequence order');
  t.same(acks.map((x) => x.offset), acks.map((x) => x.offset).sort((p, q) => p - q), 'offsets grow with the sequence');
});
