import t from 'tap';
import { Writable } from 'node:stream';
import { cluster, MiB } from './helpers';

/** A source of `bytes` that never exists in memory at once. */
async function* generated(bytes: number): AsyncGenerator<Buffer> {
  const piece = Buffer.alloc(MiB);
  for (let off = 0; off < bytes; off += MiB) {
    piece.writeUInt32LE(off / MiB, 0);
    yield piece.subarray(0, Math.min(MiB, bytes - off));
  }
}

function sampleRss(): { stop(): number } {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 20);
  return { stop: () => { clearInterval(timer); return Math.max(peak, process.memoryUsage().rss); } };
}

t.test('memory: put and get of 384 MiB keep the client within a bounded window, not the file size', async (t) => {
  const { client } = await cluster(t);
  const fileBytes = 384 * MiB;
  // Warm up (code paths, pools) on a small file first.
  await client.put(generated(8 * MiB), '/mem/warm');
  const before = process.memoryUsage().rss;
  const putRss = sampleRss();
  await client.put(generated(fileBytes), '/mem/big');
  const putPeak = putRss.stop();
  let got = 0;
  const getRss = sampleRss();
  await client.get('/mem/big', new Writable({ write(chunk: Buffer, _e, cb) { got += chunk.length; setImmediate(cb); } }));
  const getPeak = getRss.stop();
  t.equal(got, fileBytes);
  const bound = 160 * MiB; // write window 32 MiB + frame pools + readahead 16 MiB + slack
  t.ok(putPeak - before < bound, `put grew RSS by ${((putPeak - before) / MiB).toFixed(0)} MiB for a ${fileBytes / MiB} MiB file`);
  t.ok(getPeak - before < bound, `get grew RSS by ${((getPeak - before) / MiB).toFixed(0)} MiB for a ${fileBytes / MiB} MiB file`);
});
