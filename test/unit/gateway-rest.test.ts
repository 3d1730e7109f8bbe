import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseRange } from '../../src/gateway/rest/range';
import { SseFramer } from '../../src/gateway/rest/sse';
import { listPrefix, type ListFn } from '../../src/gateway/rest/list';
import { splitRecords } from '../../src/gateway/rest/logs';
import { Slots } from '../../src/gateway/rest/slots';
import { ensureCredentials, loadCredentials, tokenMatches } from '../../src/gateway/credentials';
import { GfsError } from '../../src/common/errors';
import type { FileInfo } from '../../src/client';

t.test('range: single ranges, suffixes, open ends, and what is unsatisfiable', async (t) => {
  t.same(parseRange(undefined, 100), { kind: 'whole' });
  t.same(parseRange('bytes=0-9', 100), { kind: 'partial', start: 0, end: 10 });
  t.same(parseRange('bytes=90-', 100), { kind: 'partial', start: 90, end: 100 });
  t.same(parseRange('bytes=50-1000', 100), { kind: 'partial', start: 50, end: 100 }, 'an end past the file is cut to it');
  t.same(parseRange('bytes=-10', 100), { kind: 'partial', start: 90, end: 100 }, 'suffix: the last 10 bytes');
  t.same(parseRange('bytes=-1000', 100), { kind: 'partial', start: 0, end: 100 }, 'a suffix longer than the file is all of it');
  t.same(parseRange('bytes=100-', 100), { kind: 'unsatisfiable' });
  t.same(parseRange('bytes=-0', 100), { kind: 'unsatisfiable' });
  t.same(parseRange('bytes=0-', 0), { kind: 'unsatisfiable' }, 'no byte of an empty file can be selected');
  t.same(parseRange('bytes=9-2', 100), { kind: 'whole' }, 'an invalid range is ignored');
  t.same(parseRange('bytes=0-1,5-6', 100), { kind: 'whole' }, 'several ranges: the whole body');
  t.same(parseRange('items=0-1', 100), { kind: 'whole' });
  t.same(parseRange('bytes=99999999999999999999-', 100), { kind: 'unsatisfiable' });
});

t.test('sse: one event per line, ids are the file offsets after each line, partial lines wait', async (t) => {
  const f = new SseFramer(100, 1024);
  t.equal(f.push(Buffer.from('hello\nwor'), 100), 'id: 106\ndata: hello\n\n');
  t.equal(f.push(Buffer.from('ld\r\n\n'), 109), 'id: 113\ndata: world\n\nid: 114\ndata: \n\n');
  t.equal(f.nextOffset, 114);
  t.throws(() => f.push(Buffer.from('x'), 120), 'a gap is a bug');
  const small = new SseFramer(0, 4);
  t.equal(small.push(Buffer.from('abcdef'), 0), 'id: 6\ndata: abcdef\n\n', 'a long partial line is flushed at the bound');
  t.equal(new SseFramer(0, 64).push(Buffer.from('a\rb\n'), 0), 'id: 4\ndata: a\ndata: b\n\n', 'a lone CR cannot break the framing');
  const end = new SseFramer(0, 64);
  t.equal(end.push(Buffer.from('x\ntail'), 0), 'id: 2\ndata: x\n\n');
  t.equal(end.flush(), 'id: 6\ndata: tail\n\n', 'a sealed log\'s last line without a newline is sent at the end');
  t.equal(end.flush(), '');
});

t.test('append batch: newline-delimited records keep their newline, a last line without one is a record', async (t) => {
  t.same(splitRecords(Buffer.from('a\nbb\nccc')).map(String), ['a\n', 'bb\n', 'ccc']);
  t.same(splitRecords(Buffer.from('a\n\n')).map(String), ['a\n', '\n']);
  t.same(splitRecords(Buffer.alloc(0)), []);
});

/** A master's listing over a sorted set of paths (dirs implied), in its full-path UTF-8 order. */
function fakeList(paths: string[]): { list: ListFn; calls: number } {
  const all = new Set<string>();
  for (const p of paths) {
    const parts = p.split('/').filter(Boolean);
    for (let i = 1; i <= parts.length; i++) all.add('/' + parts.slice(0, i).join('/') + (i < parts.length ? '/' : ''));
  }
  const sorted = [...all].map((p) => ({ path: p.replace(/\/$/, ''), isDir: p.endsWith('/') }))
    .sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
  const state = { calls: 0, list: (async () => ({ entries: [], truncated: false })) as ListFn };
  state.list = async (dir, o) => {
    state.calls++;
    if (!sorted.some((e) => e.path === dir && e.isDir)) throw new GfsError('NO_SUCH_FILE', dir);
    const under = sorted.filter((e) => e.path.startsWith(dir + '/') && (o.recursive || !e.path.slice(dir.length + 1).includes('/')));
    const after = under.filter((e) => o.startAfter === '' || Buffer.compare(Buffer.from(e.path), Buffer.from(o.startAfter)) > 0);
    const page = after.slice(0, o.limit);
    return { entries: page.map((e) => ({ path: e.path, isDir: e.isDir }) as FileInfo), truncated: after.length > o.limit };
  };
  return state;
}

t.test('list: pages by prefix with and without delimiter never repeat or miss an entry', async (t) => {
  const files = ['/ns/a/1', '/ns/a/2', '/ns/a/b/3', '/ns/a/b/4', '/ns/a-c', '/ns/ab', '/ns/z'];
  const { list } = fakeList(files);
  const all = async (prefix: string, delimiter: string | undefined, limit: number) => {
    const out: string[] = [];
    let cursor: string | undefined;
    for (let pages = 0; pages < 50; pages++) {
      const page = await listPrefix(list, { ns: 'ns', prefix, delimiter, limit, cursor });
      t.ok(page.files.length + page.prefixes.length <= limit);
      out.push(...page.files.map((f) => f.path.slice(4)), ...page.prefixes.map((p) => `${p}`));
      if (!page.truncated) return out;
      cursor = page.cursor;
    }
    throw new Error('no end');
  };
  for (const limit of [1, 2, 3, 100]) {
    t.same(await all('', undefined, limit), ['a-c', 'a/1', 'a/2', 'a/b/3', 'a/b/4', 'ab', 'z'], `flat, limit ${limit}`);
    t.same((await all('', '/', limit)).sort(), ['a-c', 'a/', 'ab', 'z'], `one level, limit ${limit}`);
    t.same((await all('a/', '/', limit)).sort(), ['a/1', 'a/2', 'a/b/'], `a/ one level, limit ${limit}`);
    t.same(await all('a', undefined, limit), ['a-c', 'a/1', 'a/2', 'a/b/3', 'a/b/4', 'ab'], `prefix "a" flat, limit ${limit}`);
    t.same(await all('a/b', undefined, limit), ['a/b/3', 'a/b/4'], `prefix "a/b", limit ${limit}`);
  }
  t.same(await all('q/', '/', 10), [], 'a prefix whose directory does not exist lists nothing');
  await t.rejects(listPrefix(list, { ns: 'nope', prefix: '', limit: 10 }), { code: 'NO_SUCH_FILE' });
  await t.rejects(listPrefix(list, { ns: 'ns', prefix: '', delimiter: ',', limit: 10 }), { code: 'INVALID_ARGUMENT' });
  await t.rejects(listPrefix(list, { ns: 'ns', prefix: 'a/', limit: 10, cursor: Buffer.from('/other/x').toString('base64url') }), { code: 'INVALID_ARGUMENT' });
});

t.test('credentials: created once with mode 0600, kept after, checked on load; tokens compare whole', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gfs-cred-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'credentials.json');
  const first = ensureCredentials(file);
  t.equal(first.created, true);
  t.equal(fs.statSync(file).mode & 0o777, 0o600);
  const again = ensureCredentials(file);
  t.equal(again.created, false);
  t.same(again.credentials, first.credentials, 'a restart keeps the same secrets');
  t.same(loadCredentials(file), first.credentials);
  t.not(ensureCredentials(path.join(dir, 'other.json')).credentials.token, first.credentials.token, 'random per cluster');
  fs.writeFileSync(path.join(dir, 'bad.json'), '{"token":"short"}');
  t.throws(() => loadCredentials(path.join(dir, 'bad.json')), { code: 'INVALID_ARGUMENT' });
  t.ok(tokenMatches(first.credentials.token, first.credentials.token));
  t.notOk(tokenMatches(first.credentials.token, first.credentials.token.slice(0, -1)));
  t.notOk(tokenMatches(first.credentials.token, ''));
});

t.test('slots: at most max holders, waiters served in order, load shed past the waiting bound', async (t) => {
  const slots = new Slots(2, 1, 'uploads');
  const a = await slots.acquire();
  const b = await slots.acquire();
  t.equal(slots.inUse, 2);
  let cGot = false;
  const c = slots.acquire().then((r) => { cGot = true; return r; });
  await t.rejects(slots.acquire(), { code: 'UNAVAILABLE' }, 'a second waiter is refused at once');
  await new Promise((r) => setImmediate(r));
  t.notOk(cGot, 'the waiter waits');
  a();
  const releaseC = await c;
  t.equal(slots.inUse, 2, 'the slot passed straight to the waiter');
  t.throws(() => a(), 'a double release is a bug');
  b();
  releaseC();
  t.equal(slots.inUse, 0);
});
