/**
 * The replicator's pacing, on a fake clock: copies in run at the node's replicate rate
 * while it is idle and at the lower busy rate while it serves clients.
 */
import t from 'tap';
import { Replicator, type ReplicateJob } from '../../src/chunkserver/replicator';
import { silentLogger } from '../../src/common/log';

const MiB = 1024 * 1024;

function run(busy: () => boolean, jobs: ReplicateJob[]): Promise<{ elapsedMs: number; imported: number[] }> {
  let now = 0;
  const imported: number[] = [];
  return new Promise((resolve, reject) => {
    const r = new Replicator({
      store: {
        get: () => undefined,
        importChunk: async (handle, version, source, expected) => {
          let got = 0;
          for await (const piece of source) got += piece.length;
          if (got !== expected) throw new Error(`short copy ${got}`);
          return { handle, version, length: got, tier: 'hot', mtimeMs: 0 };
        },
      },
      rateBytesPerSec: 128 * MiB,
      busyRateBytesPerSec: 16 * MiB,
      busy,
      concurrencyMax: 2,
      fetch: async function* (_addr, _handle, _version, _offset, length) {
        for (let off = 0; off < length; off += MiB) yield Buffer.alloc(Math.min(MiB, length - off));
      },
      nowMs: () => now,
      sleep: async (ms) => { now += ms; },
      log: silentLogger,
      onImported: (handle) => {
        imported.push(handle);
        if (imported.length === jobs.length) resolve({ elapsedMs: now, imported });
      },
      onFailed: (_handle, e) => reject(e),
    });
    for (const j of jobs) r.enqueue(j);
  });
}

const jobs = (n: number): ReplicateJob[] => Array.from({ length: n }, (_, i) => ({ handle: i + 1, version: 1, sourceAddr: 'x:1', length: 64 * MiB }));

t.test('replicator: an idle node copies at its replicate rate, shared by its copies', async (t) => {
  const { elapsedMs, imported } = await run(() => false, jobs(4));
  t.same(imported.sort(), [1, 2, 3, 4]);
  // 256 MiB at 128 MiB/s, minus the one-piece burst.
  t.ok(elapsedMs >= 1990 && elapsedMs <= 2000, `256 MiB took ${elapsedMs} ms at 128 MiB/s`);
});

t.test('replicator: a node serving clients copies at the busy rate, and speeds up when they stop', async (t) => {
  const busyAll = await run(() => true, jobs(1));
  t.ok(busyAll.elapsedMs >= 3900 && busyAll.elapsedMs <= 4000, `64 MiB took ${busyAll.elapsedMs} ms at 16 MiB/s`);
  let calls = 0;
  const busyFirstHalf = await run(() => calls++ < 32, jobs(1));
  t.ok(busyFirstHalf.elapsedMs > 2000 && busyFirstHalf.elapsedMs < 2500,
    `busy for the first 32 MiB only: ${busyFirstHalf.elapsedMs} ms (2 s busy + 0.25 s idle)`);
});

t.test('replicator: the copy of a chunk down to its last replica is never slowed, however busy the node', async (t) => {
  const urgent = await run(() => true, [{ handle: 1, version: 1, sourceAddr: 'x:1', length: 64 * MiB, urgent: true }]);
  t.ok(urgent.elapsedMs >= 490 && urgent.elapsedMs <= 500, `64 MiB took ${urgent.elapsedMs} ms: the idle rate, not the busy one`);
});
