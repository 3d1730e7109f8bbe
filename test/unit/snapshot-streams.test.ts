/**
 * The v2 stream records of the metadata snapshot (`s` stream directories, `g` segments;
 * src/master/SNAPSHOT-FORMAT.md) against their golden image v2/streams.meta: it decodes
 * to what generate-streams.ts built, the state and the decoded image encode to the same
 * bytes, and damaged stream records are refused as CORRUPT.
 */
import { readFileSync } from 'node:fs';
import t, { type Test } from 'tap';
import { GfsError } from '../../src/common/errors';
import { MetaState } from '../../src/master/meta-state';
import { decodeSnapshot, encodeSnapshot } from '../../src/master/snapshot-codec';
import { GOLDEN_STREAMS, goldenStreamState } from '../fixtures/format/meta/generate-streams';

const golden = () => readFileSync(GOLDEN_STREAMS);

function refused(t: Test, text: string, what: string, message: RegExp): void {
  try {
    MetaState.restore(Buffer.from(text, 'utf8'));
    t.fail(`${what}: restored`);
  } catch (e) {
    if (!(e instanceof GfsError)) throw e;
    t.equal(e.code, 'CORRUPT', what);
    t.match(e.message, message, what);
  }
}

t.test('meta snapshot: the v2 streams golden holds stream directories and segments', async (t) => {
  const image = decodeSnapshot(golden());
  t.same(image.streams, [
    ['/logs/app', { policy: { rollBytes: 1024, rollAgeMs: 600_000, retentionAgeMs: 86_400_000, retentionBytes: 0, replication: 2 }, activeInode: 3, nextBaseOffset: 150, lastCreatedMs: 4000 }],
    ['/logs/idle', { policy: { rollBytes: 1024, rollAgeMs: 600_000, retentionAgeMs: 86_400_000, retentionBytes: 1 << 30, replication: 3 }, activeInode: 4, nextBaseOffset: 0, lastCreatedMs: 6000 }],
  ], 'policies (one updated), the active segment, where the next starts');
  t.same(image.segments, [[2, { baseOffset: 100, createdMs: 3000 }], [3, { baseOffset: 150, createdMs: 4000 }], [4, { baseOffset: 0, createdMs: 6000 }]],
    'segments in the tree and in trash; the one dropped by retention is gone');
  const s = MetaState.restore(golden());
  t.match(s.stat('/logs/app'), { kind: 'dir', stream: { activeInode: 3 } });
  t.match(s.fileByInode(3), { state: 'writing', log: { open: true }, segment: { baseOffset: 150 } });
  t.equal(s.stat('/logs/plain').kind === 'dir' && (s.stat('/logs/plain') as { stream?: unknown }).stream, undefined, 'a plain directory is no stream');
  t.equal(s.streamEnd(s.streamDir('/logs/idle')!), 0, 'the deleted empty segment ended at 0');
});

t.test('meta snapshot: the v2 streams golden is what the state writes today, byte for byte', async (t) => {
  t.ok(Buffer.from(goldenStreamState().snapshot()).equals(golden()), 'the state built from the golden ops');
  t.ok(Buffer.from(encodeSnapshot(decodeSnapshot(golden()))).equals(golden()), 'the decoded image');
  t.ok(Buffer.from(MetaState.restore(golden()).snapshot()).equals(golden()), 'the restored state');
});

t.test('meta snapshot: damaged stream records are refused', async (t) => {
  const text = golden().toString('utf8');
  refused(t, text.replace('"version":2', '"version":1').replace(/,\[(true|false),\[[^\]]*\]*\]\]$/gm, ']').replace(/,null\]$/gm, ']'), 'a stream record in a v1 image', /stream record|fields/);
  refused(t, text.replace('["s","/logs/app",1024,600000,86400000,0,2,3,150,4000]', '["s","/logs/app",1024,600000,86400000,0,2,3,150]'), 'a short stream record', /fields/);
  refused(t, text.replace('["s","/logs/idle"', '["s","/logs/aaa"'), 'streams out of order', /out of order/);
  refused(t, text.replace('["s","/logs/idle"', '["s","/logs/plain/file"'), 'a stream that is a file', /not a directory/);
  refused(t, text.replace('["g",3,150,4000]', '["g",1,150,4000]'), 'segments out of order', /out of order/);
  refused(t, text.replace('["g",3,150,4000]', '["g",3,150,-1]'), 'a negative time', /./);
});
