import t from 'tap';
import { limits } from '../../src/common/limits';

t.test('limits: a record append is at most a quarter of a chunk', async (t) => {
  t.ok(limits.recordBytesMax <= limits.chunkBytesMax / 4);
});

t.test('limits: the lease outlives a heartbeat interval several times over', async (t) => {
  t.ok(limits.leaseMs >= 5 * limits.heartbeatIntervalMs);
  t.ok(limits.deadAfterMs >= 3 * limits.heartbeatIntervalMs);
});

t.test('limits: a chunk is a whole number of checksum blocks and read pieces', async (t) => {
  t.equal(limits.chunkBytesMax % limits.blockBytes, 0);
  t.equal(limits.readPieceBytes % limits.blockBytes, 0);
  t.equal(limits.chunkBytesMax % limits.readPieceBytes, 0);
});

t.test('limits: a data frame holds a read piece plus its header', async (t) => {
  t.ok(limits.frameBytesMax >= limits.readPieceBytes + 1024);
  t.ok(limits.writeWindowBytes <= limits.chunkBytesMax);
});
