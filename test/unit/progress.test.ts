/**
 * gfsctl's progress reporter (cli/progress.ts): the percentage follows the bytes
 * reported, the last line drawn shows them all, an ETA appears only from a real rate,
 * and nothing at all is written when the output is not a terminal.
 */
import t from 'tap';
import { ManualClock } from '../../src/common/clock';
import { Progress, progressLine } from '../../cli/progress';

t.test('progress: the line follows the bytes done', async (t) => {
  t.match(progressLine('get /a', 0, 1024, 0), /\[ {24}\] 0% 0 ?B\/1[.0-9]* ?KiB ETA unknown/);
  t.match(progressLine('get /a', 512, 1024, 1000), /\[={12} {12}\] 50% .* ETA 1\.0s/);
  t.match(progressLine('get /a', 1024, 1024, 2000), /\[={24}\] 100% /);
  t.match(progressLine('get /a', 2048, 1024, 2000), /\] 100% .* ETA 0ms/, 'clamped: more bytes than expected is still 100%, never a negative ETA');
  t.notMatch(progressLine('put -', 4096, undefined, 1000), /%/, 'no total (stdin): bytes and rate only');
});

t.test('progress: on a TTY it redraws as bytes arrive and ends at 100%; elsewhere it writes nothing', async (t) => {
  const clock = new ManualClock();
  const written: string[] = [];
  const p = new Progress('get /a', 1000, { isTTY: true, write: (s) => written.push(s) }, clock);
  for (let i = 0; i < 10; i++) { clock.advance(150); p.add(100); }
  p.finish();
  const percents = written.map((w) => /(\d+)%/.exec(w)?.[1]).filter((x): x is string => x !== undefined).map(Number);
  t.ok(percents.length >= 10, `redrawn as it goes (${percents.length} lines)`);
  t.same(percents.slice(0, 3), [10, 20, 30], 'advancing, not stuck at 0%');
  t.equal(percents.at(-1), 100, 'the last line shows every byte');
  t.equal(written.at(-1), '\n');

  const quiet: string[] = [];
  const q = new Progress('get /a', 1000, { isTTY: false, write: (s) => quiet.push(s) }, clock);
  q.add(1000);
  q.finish();
  t.same(quiet, [], 'not a terminal: no output');
});
