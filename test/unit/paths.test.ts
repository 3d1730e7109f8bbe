import tap from 'tap';

import { GfsError } from '../../src/common/errors';
import { normalizeFilePath, normalizePath, quotePath } from '../../src/common/paths';
import { MetaState } from '../../src/master/meta-state';

/** The INVALID_PATH error a call throws, or a test failure. */
function invalid(t: Pick<typeof tap, 'fail' | 'equal' | 'notMatch'>, fn: () => unknown, what: string): string {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof GfsError)) throw e;
    t.equal(e.code, 'INVALID_PATH', what);
    t.notMatch(e.message, /[\n\r]/, `${what}: the message is one line`);
    return e.message;
  }
  t.fail(`${what}: accepted`);
  return '';
}

tap.test('paths: control characters are refused in every position and form', async (t) => {
  const cases: [string, string][] = [
    ['/ns/a\nb', 'newline'],
    ['/ns/a\tb', 'tab'],
    ['/ns/a\rb', 'carriage return'],
    ['/ns/\u0001x', 'C0 U+0001'],
    ['/ns/x\u001b[31m', 'ESC (terminal escape)'],
    ['/ns/x\u001f', 'C0 U+001F'],
    ['/ns/a\u007fb', 'DEL'],
    ['/ns/a\u0085b', 'C1 NEL'],
    ['/ns/a\u009bb', 'C1 CSI'],
    ['/n\ns/file', 'control character in the namespace'],
    ['/ns/dir\n/file', 'control character in a directory'],
    ['/ns/a\0b', 'NUL'],
  ];
  for (const [p, what] of cases) {
    invalid(t, () => normalizePath(p), `normalizePath: ${what}`);
    invalid(t, () => normalizeFilePath(p), `normalizeFilePath: ${what}`);
  }
  t.match(invalid(t, () => normalizePath('/ns/a\nb'), 'newline'), /U\+000A.*"\/ns\/a\\u\{000A\}b"/, 'names the character and escapes it');
});

tap.test('paths: invalid UTF-8 (U+FFFD after decoding) and lone surrogates are refused', async (t) => {
  // What the protobuf decoder and Node's argv make of the bytes ff fe: two U+FFFD.
  const decoded = new TextDecoder().decode(Buffer.from([0x2f, 0x6e, 0x73, 0x2f, 0xff, 0xfe]));
  t.equal(decoded, '/ns/\ufffd\ufffd', 'invalid bytes decode to U+FFFD (the collision this rule prevents)');
  t.match(invalid(t, () => normalizeFilePath(decoded), 'decoded \\xff\\xfe'), /U\+FFFD/);
  invalid(t, () => normalizeFilePath('/ns/\ufffd'), 'a literal U+FFFD is refused too (documented)');
  invalid(t, () => normalizeFilePath('/ns/a\ud800'), 'lone high surrogate');
  invalid(t, () => normalizeFilePath('/ns/\udc00a'), 'lone low surrogate');
  t.equal(normalizeFilePath('/ns/smile\ud83d\ude00'), '/ns/smile\ud83d\ude00', 'a surrogate pair (U+1F600) is a fine name');
});

tap.test('paths: printable Unicode is accepted and stored byte-exact, not NFC-normalised', async (t) => {
  const nfc = '/ns/caf\u00e9';
  const nfd = '/ns/cafe\u0301';
  t.equal(normalizeFilePath(nfc), nfc);
  t.equal(normalizeFilePath(nfd), nfd, 'NFD stays NFD');
  t.not(normalizeFilePath(nfc), normalizeFilePath(nfd), 'NFC and NFD are two different names');
  for (const p of ['/ns/a b', '/ns/\u00a0nbsp', '/ns/\u05e9\u05dc\u05d5\u05dd', '/ns/zw\u200djoin', '/ns/\u65e5\u672c', '/ns/a~!@#$%^&*()']) {
    t.equal(normalizeFilePath(p), p, `accepted: ${JSON.stringify(p)}`);
  }
  const s = new MetaState();
  s.apply({ requestId: '', mkdir: { path: nfc, mtimeMs: 1 } });
  s.apply({ requestId: '', mkdir: { path: nfd, mtimeMs: 1 } });
  t.same(s.list('/ns', { recursive: false, limit: 0, startAfter: '' }).entries.map((e) => e.path).sort(), [nfd, nfc].sort(), 'both live side by side');
});

tap.test('paths: structural rules still hold beside the character rules', async (t) => {
  invalid(t, () => normalizePath(''), 'empty');
  invalid(t, () => normalizePath('ns/a'), 'relative');
  invalid(t, () => normalizePath('/ns//a'), 'empty component');
  invalid(t, () => normalizePath('/ns/../a'), '..');
  invalid(t, () => normalizeFilePath('/ns'), 'a namespace is not a file path');
  t.equal(normalizePath('/ns/a/'), '/ns/a', 'a trailing slash is ignored');
});

tap.test('paths: a logged op with a name from before the rule still replays (the state machine is not stricter than its log)', async (t) => {
  const s = new MetaState();
  s.apply({ requestId: '', mkdir: { path: '/ns/old\nname', mtimeMs: 1 } });
  t.equal(s.stat('/ns/old\nname').kind, 'dir', 'replayed as it was logged');
  const restored = MetaState.restore(s.snapshot());
  t.equal(restored.stat('/ns/old\nname').kind, 'dir', 'and survives a snapshot');
});

tap.test('paths: quotePath keeps error messages on one line', async (t) => {
  t.equal(quotePath('/ns/a\n\tb\u0085\ufffd'), '"/ns/a\\u{000A}\\u{0009}b\\u{0085}\\u{FFFD}"');
  t.equal(quotePath('/ns/ok'), '"/ns/ok"');
});
