import t, { type Test } from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import { cluster, gfsctl, sha256 } from './helpers';

/** Each failure: exit non-zero, exactly one line on stderr naming the problem. */
function oneLine(t: Test, r: { code: number | null; stderr: string }, pattern: RegExp): void {
  t.not(r.code, 0, 'non-zero exit');
  const lines = r.stderr.trim().split('\n');
  t.equal(lines.length, 1, `one line on stderr: ${JSON.stringify(r.stderr)}`);
  t.match(lines[0], pattern);
}

t.test('bad input: each mistake gets one clear line, a non-zero exit, and changes nothing', async (t) => {
  const { cluster: c, dir } = await cluster(t);
  const m = c.masters;
  const local = path.join(dir, 'small.txt');
  fs.writeFileSync(local, 'original\n');
  t.equal((await gfsctl(m, ['put', local, '/logs/a.txt'])).code, 0);

  oneLine(t, await gfsctl(m, ['put', path.join(dir, 'missing.txt'), '/logs/b.txt']), /local file .*missing\.txt does not exist/);
  oneLine(t, await gfsctl(m, ['get', '/logs/nope.txt', path.join(dir, 'x')]), /NO_SUCH_FILE/);
  t.notOk(fs.existsSync(path.join(dir, 'x')), 'failed get leaves no local file');
  oneLine(t, await gfsctl(m, ['put', local, 'relative/path']), /INVALID_PATH/);
  oneLine(t, await gfsctl(m, ['put', local, '/logs/../etc']), /INVALID_PATH/);
  oneLine(t, await gfsctl(m, ['put', local, `/logs/${'x'.repeat(300)}`]), /INVALID_PATH.*255/);
  oneLine(t, await gfsctl(m, ['put', local, '/logs']), /INVALID_PATH|IS_A_DIRECTORY/);

  fs.writeFileSync(local, 'replacement\n');
  oneLine(t, await gfsctl(m, ['put', local, '/logs/a.txt']), /ALREADY_EXISTS/);
  t.equal((await gfsctl(m, ['cat', '/logs/a.txt'])).stdout.toString(), 'original\n', 'existing file unchanged without --force');
  t.equal((await gfsctl(m, ['put', '--force', local, '/logs/a.txt'])).code, 0);
  t.equal((await gfsctl(m, ['cat', '/logs/a.txt'])).stdout.toString(), 'replacement\n', '--force replaces');

  oneLine(t, await gfsctl(m, ['mv', '/logs/nope', '/logs/other']), /NO_SUCH_FILE/);
  oneLine(t, await gfsctl(m, ['rm', '/nothing/here']), /NO_SUCH_FILE/);

  const ls = await gfsctl(m, ['ls', '-R', '/']);
  t.same(ls.stdout.toString().trim().split('\n').sort(), ['/logs/', '/logs/a.txt'], 'namespace holds exactly what succeeded');
});

t.test('bad input: an unreachable master is one clear line and a non-zero exit', async (t) => {
  // A port nothing listens on.
  const port = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => resolve(p)); });
  });
  const r = await gfsctl([`127.0.0.1:${port}`], ['--retries', '1', 'ls', '/']);
  oneLine(t, r, /UNAVAILABLE.*127\.0\.0\.1/);
  const put = await gfsctl([`127.0.0.1:${port}`], ['--retries', '1', 'put', '-', '/logs/x'], 'data');
  oneLine(t, put, /UNAVAILABLE/);
});

t.test('bad input: a truncated stdin put is stored exactly as received, never partially visible', async (t) => {
  const { cluster: c } = await cluster(t);
  const data = Buffer.from('abc'.repeat(10000));
  const r = await gfsctl(c.masters, ['put', '-', '/logs/stdin.bin'], data);
  t.equal(r.code, 0);
  t.equal(sha256((await gfsctl(c.masters, ['cat', '/logs/stdin.bin'])).stdout), sha256(data));
});
