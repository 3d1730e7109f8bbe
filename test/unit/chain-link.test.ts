/**
 * The chain hop (src/dataplane/chain-link.ts) against a scripted peer on a loopback
 * socket: acks answer syncs in order and never beyond what was sent, a failed hop fails
 * every write still waiting and names the node that failed, a relayed SYNC goes on the
 * wire byte for byte, and the peer hanging up after CLOSE is no failure.
 */
import t from 'tap';
import net from 'node:net';
import { ChainLink, DataConnPool, FrameParser, FrameType, encodeFrame, type Frame } from '../../src/dataplane';
import { GfsError } from '../../src/common/errors';

/** A fake next replica: records every frame it receives; the test answers by hand. */
class Peer {
  readonly frames: Frame[] = [];
  socket: net.Socket | undefined;
  /** Every byte received, to compare with what was meant to go on the wire. */
  readonly received: Buffer[] = [];
  private waiters: (() => void)[] = [];

  private constructor(private readonly server: net.Server, readonly addr: string) {}

  static async start(t: { teardown(fn: () => unknown): void }): Promise<Peer> {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const peer = new Peer(server, `127.0.0.1:${(server.address() as net.AddressInfo).port}`);
    server.on('connection', (socket) => {
      peer.socket = socket;
      const parser = new FrameParser();
      socket.on('error', () => undefined);
      socket.on('data', (bytes: Buffer) => {
        peer.received.push(Buffer.from(bytes));
        peer.frames.push(...parser.push(bytes));
        for (const w of peer.waiters.splice(0)) w();
      });
    });
    t.teardown(() => new Promise<void>((resolve) => {
      peer.socket?.destroy();
      server.close(() => resolve());
    }));
    return peer;
  }

  /** Waits until `count` frames arrived. */
  async frameCount(count: number): Promise<void> {
    while (this.frames.length < count) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  send(type: number, header: object): void {
    this.socket!.write(encodeFrame(type, header));
  }
}

const OPEN = { handle: 9, version: 1, create: true, chain: ['127.0.0.1:1'] };

async function openLink(t: { teardown(fn: () => unknown): void }, failures: GfsError[] = []): Promise<{ peer: Peer; link: ChainLink }> {
  const peer = await Peer.start(t);
  const link = new ChainLink(peer.addr, { onFailure: (e) => failures.push(e) });
  t.teardown(() => link.destroy());
  const opened = link.open(OPEN);
  await peer.frameCount(1);
  peer.send(FrameType.OPEN_OK, { node: 'n2' });
  await opened;
  return { peer, link };
}

/** A DATA frame of `bytes` zero bytes (what the link sends is opaque to it). */
function dataFrame(bytes: number): Buffer {
  return encodeFrame(FrameType.DATA, { sums: 0 }, Buffer.alloc(bytes));
}

async function rejectsCode(t: tap.Test, p: Promise<unknown>, code: string, what: string): Promise<GfsError> {
  try {
    await p;
  } catch (e) {
    t.equal((e as GfsError).code, code, what);
    return e as GfsError;
  }
  t.fail(`${what}: resolved`);
  throw new Error('unreachable');
}

t.test('chain link: acks resolve their syncs in order and the acked length grows', async (t) => {
  const { peer, link } = await openLink(t);
  t.same(peer.frames[0]!.header, OPEN, 'WRITE_OPEN carries the header as given');
  await link.send(dataFrame(1000), 1000, () => undefined);
  const first = link.sync(600);
  const second = link.sync(1000);
  await peer.frameCount(4);
  t.same(peer.frames.slice(2).map((f) => f.header), [{ seq: 1, length: 600 }, { seq: 2, length: 1000 }], 'syncs numbered from 1');
  peer.send(FrameType.SYNC_ACK, { seq: 1, length: 700 });
  t.equal(await first, 700, 'the first ack answers the first sync, with the length the replicas hold');
  t.equal(link.ackedLength, 700);
  peer.send(FrameType.SYNC_ACK, { seq: 2, length: 1000 });
  t.equal(await second, 1000);
  t.equal(link.ackedLength, 1000);
  t.equal(link.failure, undefined, 'no failure');
});

t.test('chain link: an ack out of order fails the link and every sync still waiting', async (t) => {
  const failures: GfsError[] = [];
  const { peer, link } = await openLink(t, failures);
  await link.send(dataFrame(1000), 1000, () => undefined);
  const first = link.sync(500);
  const second = link.sync(1000);
  await peer.frameCount(4);
  peer.send(FrameType.SYNC_ACK, { seq: 2, length: 1000 });
  const e1 = await rejectsCode(t, first, 'PROTOCOL', 'the waiting first sync');
  await rejectsCode(t, second, 'PROTOCOL', 'the sync that was acked out of turn');
  t.equal(e1.detail.failedAddr, peer.addr, 'the failure names the next hop');
  t.equal(failures.length, 1, 'onFailure ran once');
  await rejectsCode(t, link.sync(1000), 'PROTOCOL', 'a sync on a failed link');
  let released = 0;
  t.equal(link.write(dataFrame(10), 10, () => released++), true, 'a failed link takes a frame...');
  t.equal(released, 1, '...and releases it at once');
  await rejectsCode(t, link.send(dataFrame(10), 10, () => released++), 'PROTOCOL', 'send on a failed link');
  t.equal(released, 2, 'send releases its frame too');
});

t.test('chain link: an ack for a sync never sent fails the link', async (t) => {
  const { peer, link } = await openLink(t);
  peer.send(FrameType.SYNC_ACK, { seq: 1, length: 0 });
  await new Promise<void>((resolve) => { const poll = () => (link.failure ? resolve() : setTimeout(poll, 5)); poll(); });
  t.equal(link.failure?.code, 'PROTOCOL');
  t.equal(link.ackedLength, 0, 'nothing acknowledged');
});

t.test('chain link: an ack for more bytes than were sent, or fewer than asked, fails the link', async (t) => {
  for (const [acked, why] of [[1001, 'more than sent'], [400, 'less than asked']] as const) {
    const { peer, link } = await openLink(t);
    await link.send(dataFrame(1000), 1000, () => undefined);
    const sync = link.sync(500);
    await peer.frameCount(3);
    peer.send(FrameType.SYNC_ACK, { seq: 1, length: acked });
    await rejectsCode(t, sync, 'PROTOCOL', `an ack for ${why}`);
    t.equal(link.ackedLength, 0, `an ack for ${why} does not count`);
  }
});

t.test('chain link: a chunk opened for append may be acked past what this link sent', async (t) => {
  const peer = await Peer.start(t);
  const link = new ChainLink(peer.addr);
  t.teardown(() => link.destroy());
  const opened = link.open({ ...OPEN, create: false });
  await peer.frameCount(1);
  peer.send(FrameType.OPEN_OK, { node: 'n2' });
  await opened;
  const sync = link.sync(5000);
  await peer.frameCount(2);
  peer.send(FrameType.SYNC_ACK, { seq: 1, length: 5000 });
  t.equal(await sync, 5000, 'the bytes were there before this write');
});

t.test('chain link: an ERROR from down the chain fails every pending write and keeps the failed node', async (t) => {
  const failures: GfsError[] = [];
  const peer = await Peer.start(t);
  const link = new ChainLink(peer.addr, { onFailure: (e) => failures.push(e) });
  t.teardown(() => link.destroy());
  const opened = link.open(OPEN);
  const sync = link.sync(0);
  await peer.frameCount(2);
  peer.send(FrameType.ERROR, { code: 'CHECKSUM_MISMATCH', message: 'bad sums', failedAddr: '10.0.0.3:7101' });
  const e = await rejectsCode(t, opened, 'CHECKSUM_MISMATCH', 'the open');
  await rejectsCode(t, sync, 'CHECKSUM_MISMATCH', 'the sync');
  t.equal(e.detail.failedAddr, '10.0.0.3:7101', 'the node named by the replica that saw it fail');
  t.equal(failures.length, 1);
});

t.test('chain link: the peer going away fails every pending write, naming the next hop', async (t) => {
  const { peer, link } = await openLink(t);
  await link.send(dataFrame(100), 100, () => undefined);
  const sync = link.sync(100);
  await peer.frameCount(3);
  peer.socket!.destroy();
  const e = await rejectsCode(t, sync, 'UNAVAILABLE', 'the sync');
  t.equal(e.detail.failedAddr, peer.addr);
});

t.test('chain link: a relayed SYNC goes on the wire as received, with the writer\'s seq', async (t) => {
  const { peer, link } = await openLink(t);
  await link.send(dataFrame(100), 100, () => undefined);
  const raw = encodeFrame(FrameType.SYNC, { seq: 41, length: 100 });
  const sync = link.sync(100, { seq: 41, raw });
  await peer.frameCount(3);
  t.ok(Buffer.concat(peer.received).subarray(-raw.length).equals(raw), 'the same bytes');
  peer.send(FrameType.SYNC_ACK, { seq: 41, length: 100 });
  t.equal(await sync, 100);
});

t.test('chain link: after close the peer hanging up is no failure', async (t) => {
  const failures: GfsError[] = [];
  const { peer, link } = await openLink(t, failures);
  link.close();
  await peer.frameCount(2);
  t.equal(peer.frames[1]!.type, FrameType.CLOSE, 'CLOSE sent');
  peer.socket!.destroy();
  await new Promise((r) => setTimeout(r, 50));
  t.equal(link.failure, undefined, 'not failed');
  t.equal(failures.length, 0, 'onFailure not called');
});

t.test('chain link: a clean CLOSE with a pool keeps the connection for the next session; anything else does not', async (t) => {
  const peer = await Peer.start(t);
  let accepted = 0;
  const server = (peer as unknown as { server: net.Server }).server;
  server.on('connection', () => { accepted++; });
  const pool = new DataConnPool();
  t.teardown(() => pool.close());

  const first = new ChainLink(peer.addr, { pool });
  const opened = first.open(OPEN);
  await peer.frameCount(1);
  peer.send(FrameType.OPEN_OK, { node: 'n' });
  await opened;
  const synced = first.sync(0);
  await peer.frameCount(2);
  peer.send(FrameType.SYNC_ACK, { seq: 1, length: 0 });
  await synced;
  first.close();
  await peer.frameCount(3);
  t.same([peer.frames[2]!.type, peer.frames[2]!.header], [FrameType.CLOSE, { keep: true }], 'CLOSE asks to keep the connection');
  t.equal(pool.size, 0, 'not pooled before the peer confirms the session is over');
  peer.send(FrameType.CLOSE_OK, {});
  while (pool.size === 0) await new Promise((r) => setTimeout(r, 5));

  const second = new ChainLink(peer.addr, { pool });
  t.equal(pool.size, 0, 'the idle connection was taken');
  const reopened = second.open(OPEN);
  await peer.frameCount(4);
  t.equal(peer.frames[3]!.type, FrameType.WRITE_OPEN, 'the next session starts on the same connection');
  t.equal(accepted, 1, 'one TCP connection for both sessions');
  peer.send(FrameType.OPEN_OK, { node: 'n' });
  await reopened;
  // A close with a sync still waiting is not clean: the connection is not kept.
  void second.sync(10).catch(() => undefined);
  second.close();
  await peer.frameCount(6);
  t.same(peer.frames[5]!.header, {}, 'a CLOSE without keep');
  t.equal(pool.size, 0);
});
