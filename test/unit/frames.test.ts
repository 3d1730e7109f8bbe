import t from 'tap';
import { FrameParser, FrameType, encodeFrame } from '../../src/dataplane/frames';
import { BufferPool } from '../../src/common/buffer-pool';
import { limits } from '../../src/common/limits';

function feed(parser: FrameParser, bytes: Buffer, cut: (i: number) => number) {
  const frames = [];
  let at = 0;
  for (let i = 0; at < bytes.length; i++) {
    const n = Math.max(1, Math.min(cut(i), bytes.length - at));
    frames.push(...parser.push(bytes.subarray(at, at + n)));
    at += n;
  }
  return frames;
}

t.test('frames: frames cut at any byte boundary parse to the same frames', async (t) => {
  const big = Buffer.alloc(700 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
  const stream = Buffer.concat([
    encodeFrame(FrameType.WRITE_OPEN, { handle: 7, chain: ['a:1'] }),
    encodeFrame(FrameType.DATA, { sums: 0 }, big),
    encodeFrame(FrameType.SYNC, { seq: 1, length: big.length }),
  ]);
  for (const cut of [() => 1, () => 3, () => 4096, () => 65536, (i: number) => (i * 7919) % 100000 + 1]) {
    const frames = feed(new FrameParser(new BufferPool(limits.frameBytesMax, 4)), stream, cut);
    t.equal(frames.length, 3);
    t.same(frames.map((f) => f.type), [FrameType.WRITE_OPEN, FrameType.DATA, FrameType.SYNC]);
    t.same(frames[0]!.header, { handle: 7, chain: ['a:1'] });
    t.ok(frames[1]!.payload.equals(big), 'payload bytes intact');
    t.same(frames[2]!.header, { seq: 1, length: big.length });
  }
});

t.test('frames: a pooled buffer is reused only after every holder released it', async (t) => {
  const pool = new BufferPool(limits.frameBytesMax, 4);
  const parser = new FrameParser(pool);
  const frame = encodeFrame(FrameType.DATA, { sums: 0 }, Buffer.alloc(200 * 1024, 1));
  const [f1] = parser.push(frame);
  f1!.retain(); // e.g. a forward still in flight
  f1!.release(); // the parser's reference
  t.equal(pool.pooled, 0, 'still held by the forward');
  const [f2] = parser.push(encodeFrame(FrameType.DATA, { sums: 0 }, Buffer.alloc(200 * 1024, 2)));
  t.not(f2!.raw.buffer, f1!.raw.buffer, 'a held buffer is not handed out again');
  t.equal(f1!.payload[0], 1, 'the held frame keeps its bytes');
  f1!.release();
  t.equal(pool.pooled, 1, 'back in the pool after the last release');
  t.throws(() => f1!.release(), /released more often/, 'a double release is a programming error');
});

t.test('frames: an oversized or malformed frame is refused before it is buffered', async (t) => {
  const huge = Buffer.alloc(9);
  huge.writeUInt32LE(limits.frameBytesMax, 0);
  t.throws(() => new FrameParser().push(huge), { code: 'PROTOCOL' });
  const bad = Buffer.from(encodeFrame(FrameType.SYNC, { seq: 1 }));
  bad.write('!', 9);
  t.throws(() => new FrameParser().push(bad), { code: 'PROTOCOL' });
});
