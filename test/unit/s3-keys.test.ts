/**
 * The S3 key → gfs path mapping (docs/S3-KEYS.md): valid paths inside the bucket for any
 * key, one path per key, the inverse exact, and S3's key order kept as path order.
 */
import t from 'tap';
import { keyToPath, pathToKey, PIECE_CODES } from '../../src/gateway/s3/keys';
import { normalizeFilePath } from '../../src/common/paths';
import { comparePaths } from '../../src/master/namespace';
import { parseCopySource } from '../../src/gateway/s3/objects';

const odd = ['a', 'a/b', 'a//b', 'a/./b', 'a/../b', 'dir/', '/', '//', '.', '..', '../x', '%2e%2e', '%2f', 'a\\b', '\\..\\x', 'nul\0', '\0', '~', '~0', '!', 'a!', '\x7f', '\u0085',
  'ü', '日本', '😀', 'x'.repeat(PIECE_CODES), 'x'.repeat(PIECE_CODES + 1), 'x'.repeat(PIECE_CODES - 1) + '/', '😀'.repeat(256), '/'.repeat(1024)];

function byUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** Random keys from an alphabet that stresses the code: escapes, marks, multi-byte, long runs. */
function randomKeys(n: number, seed: number): string[] {
  const alphabet = ['a', 'b', '/', '.', '%', '!', '~', '0', '\0', '\x7f', '\u0090', 'é', '\u{1F600}', ' ', 'z', '\\'];
  let s = seed;
  const rand = (m: number) => { s = (s * 1103515245 + 12345) & 0x7fffffff; return s % m; };
  const keys: string[] = [];
  for (let i = 0; i < n; i++) {
    const len = 1 + (rand(4) === 0 ? rand(200) : rand(8));
    let k = '';
    for (let j = 0; j < len; j++) k += alphabet[rand(alphabet.length)]!;
    keys.push(k);
  }
  return keys;
}

t.test('s3 keys: every key maps to a valid path in its bucket and back', async (t) => {
  for (const key of [...odd, ...randomKeys(500, 7)]) {
    const path = keyToPath('bkt', key);
    t.equal(normalizeFilePath(path), path, 'a valid, normal gfs path');
    t.ok(path.startsWith('/bkt/'), 'inside the bucket');
    t.equal(pathToKey('bkt', path), key, 'the inverse gives the key back');
  }
});

t.test('s3 keys: distinct keys, distinct paths; a file is never a directory of another key', async (t) => {
  const keys = [...new Set([...odd, ...randomKeys(2000, 11)])];
  const paths = new Set(keys.map((k) => keyToPath('b', k)));
  t.equal(paths.size, keys.length);
  for (const p of paths) {
    for (let i = p.indexOf('/', 3); i > 0; i = p.indexOf('/', i + 1)) {
      t.notOk(paths.has(p.slice(0, i)), `no key maps to the directory ${p.slice(0, i)}`);
    }
  }
});

t.test('s3 keys: S3 order (UTF-8 bytes) is path order', async (t) => {
  const keys = [...new Set([...odd, ...randomKeys(3000, 5)])].sort(byUtf8);
  const paths = keys.map((k) => keyToPath('b', k));
  const sorted = [...paths].sort(comparePaths);
  t.same(paths, sorted);
});

t.test('s3 keys: refused keys and copy sources that try to leave their bucket', async (t) => {
  t.throws(() => keyToPath('b', ''), { code: 'InvalidArgument' });
  t.throws(() => keyToPath('b', 'x'.repeat(1025)), { code: 'KeyTooLongError' });
  t.throws(() => keyToPath('b', 'bad\ufffd'), { code: 'InvalidArgument' });
  t.equal(pathToKey('b', '/b/plain.txt'), undefined, 'a name S3 did not make is no key');
  t.same(parseCopySource('src/a%2F..%2F..%2Fb'), { bucket: 'src', key: 'a/../../b' });
  t.same(parseCopySource('/src/../x'), { bucket: 'src', key: '../x' });
  t.throws(() => parseCopySource('..%2Fother/x'), { code: 'InvalidBucketName' });
  t.throws(() => parseCopySource('../x'), { code: 'InvalidBucketName' });
  t.throws(() => parseCopySource('b%5C../x'), { code: 'InvalidBucketName' });
  t.throws(() => parseCopySource('b%00/x'), { code: 'InvalidBucketName' });
  t.throws(() => parseCopySource('onlybucket'), { code: 'InvalidArgument' });
});
