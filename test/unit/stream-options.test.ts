/** gfsctl stream's --roll / --retention values (cli/stream-options.ts): SIZE/AGE in either order, either half, or none. */
import t from 'tap';
import { parseSizeAge, sizeAgeText } from '../../cli/stream-options';

t.test('stream options: sizes and ages by their units, in either order', async (t) => {
  t.same(parseSizeAge('64MiB/10m', '--roll'), { bytes: 64 * 1024 * 1024, ageMs: 600_000 });
  t.same(parseSizeAge('7d/10GiB', '--retention'), { bytes: 10 * 1024 ** 3, ageMs: 7 * 86_400_000 });
  t.same(parseSizeAge('10m', '--roll'), { bytes: 0, ageMs: 600_000 }, '10m is ten minutes');
  t.same(parseSizeAge('10MB', '--roll'), { bytes: 10_000_000, ageMs: 0 });
  t.same(parseSizeAge('2500', '--retention'), { bytes: 2500, ageMs: 0 });
  t.same(parseSizeAge('none', '--roll'), { bytes: 0, ageMs: 0 });
  for (const bad of ['', '/', '1m/2m', '1KiB/2KiB', '1/2/3', 'abc', '5x']) {
    t.throws(() => parseSizeAge(bad, '--roll'), { code: 'INVALID_ARGUMENT' }, `"${bad}"`);
  }
  t.equal(sizeAgeText(64 * 1024 * 1024, 600_000), '64MiB/10m');
  t.equal(sizeAgeText(0, 7 * 86_400_000), '7d');
  t.equal(sizeAgeText(0, 0), 'none');
});
