/**
 * The REST gateway against a real cluster (gfs dev's processes), over real HTTP.
 */
import t from 'tap';
import http from 'node:http';
import net from 'node:net';
import fs from 'node:fs';
import crypto from 'node:crypto';
import { GfsClient } from '../../src/client';
import { cluster, eventually, MiB, patterned } from './helpers';

interface Answer { status: number; headers: http.IncomingHttpHeaders; body: Buffer }

/** One HTTP request; the body may be a buffer or a generator (streamed with backpressure). */
function request(base: string, method: string, path: string, opts: { token?: string; headers?: Record<string, string>; body?: Buffer | AsyncIterable<Buffer>; sink?: (b: Buffer) => void } = {}): Promise<Answer> {
  const url = new URL(path, base);
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    if (Buffer.isBuffer(opts.body)) headers['content-length'] = String(opts.body.length);
    const req = http.request(url, { method, headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => (opts.sink ? opts.sink(d) : parts.push(d)));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (opts.body === undefined) req.end();
    else if (Buffer.isBuffer(opts.body)) req.end(opts.body);
    else {
      const source = opts.body;
      void (async () => {
        for await (const piece of source) if (!req.write(piece)) await new Promise((r) => req.once('drain', r));
        req.end();
      })().catch(reject);
    }
  });
}

function json(a: Answer): any { return JSON.parse(a.body.toString()); }

/** Peak resident memory of a process so far (VmHWM), in bytes. */
function peakRss(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

async function* generated(bytes: number, seed: number, hash: crypto.Hash): AsyncGenerator<Buffer> {
  const piece = patterned(MiB, seed);
  for (let off = 0; off < bytes; off += MiB) {
    piece.writeUInt32LE(off / MiB, 0);
    const p = Buffer.from(piece.subarray(0, Math.min(MiB, bytes - off)));
    hash.update(p);
    yield p;
  }
}

/** An open follow: events (SSE) or raw bytes as they arrive, until close(). */
function openFollow(base: string, path: string, headers: Record<string, string>): Promise<{ status: number; headers: http.IncomingHttpHeaders; next(pred: (text: string) => boolean): Promise<string>; close(): void }> {
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(path, base), { headers }, (res) => {
      let text = '';
      let waiter: (() => void) | undefined;
      res.on('data', (d: Buffer) => { text += d.toString('latin1'); waiter?.(); });
      res.on('error', () => undefined);
      resolve({
        status: res.statusCode!, headers: res.headers,
        // Resolves with everything received so far once `pred` holds for it.
        next: async (pred) => {
          const deadline = Date.now() + 20_000;
          while (!pred(text)) {
            if (Date.now() > deadline) throw new Error(`follow did not deliver; got ${JSON.stringify(text)}`);
            await new Promise<void>((r) => { waiter = r; setTimeout(r, 200); });
          }
          return text;
        },
        close: () => req.destroy(),
      });
    });
    req.on('error', reject);
    req.end();
  });
}

function sseEvents(text: string): { id: string; data: string }[] {
  return text.split('\n\n').filter((e) => e.includes('data:')).map((e) => ({
    id: /^id: (\d+)$/m.exec(e)?.[1] ?? '',
    data: e.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n'),
  }));
}

t.test('gateway REST', async (t) => {
  const { cluster: c } = await cluster(t, { heartbeatIntervalMs: 200, auth: true });
  const base = c.rest;
  const token = c.credentials!.token;
  const call = (method: string, path: string, opts: Parameters<typeof request>[3] = {}) => request(base, method, path, { token, ...opts });

  t.equal(fs.statSync(c.credentialsFile).mode & 0o777, 0o600, 'credentials.json is private');

  await t.test('auth: none is 401, a wrong token 401 too (it is no token of the master\'s), probes stay open', async (t) => {
    const none = await request(base, 'GET', '/v1/status');
    t.equal(none.status, 401);
    t.equal(json(none).error.code, 'UNAUTHENTICATED');
    const wrong = await request(base, 'GET', '/v1/status', { token: token + 'x' });
    t.equal(wrong.status, 401);
    t.equal(json(wrong).error.code, 'UNAUTHENTICATED');
    t.equal((await request(base, 'GET', '/healthz')).status, 200);
    t.equal((await request(base, 'GET', '/readyz')).status, 200);
    const metrics = await request(base, 'GET', '/metrics');
    t.equal(metrics.status, 200);
    t.match(metrics.body.toString(), /gfs_gateway_requests_total\{route="status",status="401"[^}]*\} 2/);
    t.equal((await call('GET', '/v1/status')).status, 200);
  });

  await t.test('namespaces: create (idempotent), get, delete only when empty unless recursive', async (t) => {
    t.equal((await call('PUT', '/v1/namespaces/tmpns')).status, 201);
    t.equal((await call('PUT', '/v1/namespaces/tmpns')).status, 200, 'PUT again changes nothing');
    t.same(json(await call('GET', '/v1/namespaces/tmpns')).name, 'tmpns');
    t.ok(json(await call('GET', '/v1/namespaces')).namespaces.some((n: { name: string }) => n.name === 'tmpns'));
    t.equal((await call('PUT', '/v1/files/tmpns/f', { body: Buffer.from('x') })).status, 201);
    const busy = await call('DELETE', '/v1/namespaces/tmpns');
    t.equal(busy.status, 409);
    t.equal(json(busy).error.code, 'DIRECTORY_NOT_EMPTY');
    t.equal((await call('DELETE', '/v1/namespaces/tmpns?recursive')).status, 204);
    const gone = await call('GET', '/v1/namespaces/tmpns');
    t.equal(gone.status, 404);
    t.equal(json(gone).error.code, 'NO_SUCH_FILE');
    const noNs = await call('PUT', '/v1/files/tmpns/f', { body: Buffer.from('x') });
    t.equal(noNs.status, 404, 'no file in a namespace nobody made');
  });

  await call('PUT', '/v1/namespaces/ns');

  await t.test('files: PUT, GET with ranges (suffix, open, 416), HEAD, DELETE', async (t) => {
    const data = patterned(300_000, 7);
    const put = await call('PUT', '/v1/files/ns/dir/f.bin', { body: data, headers: { 'content-type': 'application/x-test', 'x-gfs-meta-owner': 'me' } });
    t.equal(put.status, 201);
    t.equal(json(put).size, data.length);
    const get = await call('GET', '/v1/files/ns/dir/f.bin');
    t.equal(get.status, 200);
    t.ok(get.body.equals(data), 'bytes equal');
    t.equal(get.headers['content-type'], 'application/x-test');
    t.equal(get.headers['x-gfs-meta-owner'], 'me');
    t.equal(get.headers['accept-ranges'], 'bytes');
    const cases: [string, number, number][] = [['bytes=0-99', 0, 100], ['bytes=299990-', 299_990, 300_000], ['bytes=-7', 299_993, 300_000], ['bytes=70000-200000', 70_000, 200_001], ['bytes=5-999999999', 5, 300_000]];
    for (const [range, start, end] of cases) {
      const r = await call('GET', '/v1/files/ns/dir/f.bin', { headers: { range } });
      t.equal(r.status, 206, range);
      t.equal(r.headers['content-range'], `bytes ${start}-${end - 1}/${data.length}`, range);
      t.ok(r.body.equals(data.subarray(start, end)), `${range}: bytes equal`);
    }
    for (const range of ['bytes=300000-', 'bytes=-0']) {
      const r = await call('GET', '/v1/files/ns/dir/f.bin', { headers: { range } });
      t.equal(r.status, 416, range);
      t.equal(r.headers['content-range'], `bytes */${data.length}`);
    }
    const head = await call('HEAD', '/v1/files/ns/dir/f.bin');
    t.equal(head.status, 200);
    t.equal(head.headers['content-length'], String(data.length));
    t.equal(head.body.length, 0);
    t.ok(head.headers.etag);
    const dirGet = await call('GET', '/v1/files/ns/dir');
    t.equal(json(dirGet).error.code, 'IS_A_DIRECTORY');
    t.equal((await call('DELETE', '/v1/files/ns/dir/f.bin')).status, 204);
    const after = await call('GET', '/v1/files/ns/dir/f.bin');
    t.equal(after.status, 404);
    t.same(json(after), { error: { code: 'NO_SUCH_FILE', message: json(after).error.message } });
    t.equal((await call('HEAD', '/v1/files/ns/dir/f.bin')).status, 404);
  });

  await t.test('errors: JSON with stable codes for bad paths, parameters, methods; oversized headers refused', async (t) => {
    const bad = await call('GET', '/v1/files/ns/%2E%2E/x');
    t.equal(bad.status, 400);
    t.equal(json(bad).error.code, 'INVALID_PATH');
    const badLimit = await call('GET', '/v1/files/ns/?list&limit=0');
    t.equal(json(badLimit).error.code, 'INVALID_ARGUMENT');
    const method = await call('POST', '/v1/files/ns/x');
    t.equal(method.status, 400);
    t.equal(json(method).error.code, 'INVALID_ARGUMENT');
    const route = await call('GET', '/nowhere');
    t.equal(json(route).error.code, 'NO_SUCH_FILE');
    const huge = await call('GET', '/v1/status', { headers: { 'x-big': 'a'.repeat(64 * 1024) } });
    t.equal(huge.status, 431);
    const addr = new URL(base);
    const garbage = net.connect(Number(addr.port), addr.hostname);
    garbage.end('NOT HTTP AT ALL\r\n\r\n');
    const reply = await new Promise<string>((r) => { let x = ''; garbage.on('data', (d) => { x += d; }); garbage.on('close', () => r(x)); });
    t.match(reply, /^HTTP\/1\.1 400/, 'garbage gets a 400 and a closed connection');
    t.equal((await call('GET', '/v1/status')).status, 200, 'the gateway still serves');
  });

  await t.test('list: delimiter, limit and cursor page through without duplicates', async (t) => {
    const names = ['l/a/1', 'l/a/2', 'l/a/b/3', 'l/a-c', 'l/z', 'l/a/b/4'];
    for (const n of names) t.equal((await call('PUT', `/v1/files/ns/${n}`, { body: Buffer.from(n) })).status, 201);
    const pages = async (query: string, limit: number) => {
      const seen: string[] = [];
      let cursor = '';
      for (let i = 0; i < 20; i++) {
        const r = json(await call('GET', `/v1/files/ns/${query}&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`));
        t.ok(r.files.length + r.prefixes.length <= limit);
        seen.push(...r.files.map((f: { path: string }) => f.path), ...r.prefixes);
        if (!r.truncated) return seen;
        cursor = r.cursor;
      }
      throw new Error('listing did not end');
    };
    t.same(await pages('l/?list', 2), ['l/a-c', 'l/a/1', 'l/a/2', 'l/a/b/3', 'l/a/b/4', 'l/z'], 'flat, in path order, no duplicates');
    t.same((await pages('l/?list&delimiter=/', 1)).sort(), ['l/a-c', 'l/a/', 'l/z'], 'one level: sub-directories as prefixes');
    t.same((await pages('l/a?list', 3)), ['l/a-c', 'l/a/1', 'l/a/2', 'l/a/b/3', 'l/a/b/4'], 'a prefix that is not a whole name');
    t.same(json(await call('GET', '/v1/files/ns/l/q/?list')).files, [], 'a prefix matching nothing');
    t.equal(json(await call('GET', '/v1/files/none/?list')).error.code, 'NO_SUCH_FILE');
  });

  await t.test('truncated uploads (short Content-Length, unfinished chunked) leave nothing visible and the old version intact', async (t) => {
    const old = Buffer.from('old version');
    t.equal((await call('PUT', '/v1/files/ns/keep', { body: old })).status, 201);
    const addr = new URL(base);
    const cut = async (path: string, chunked: boolean) => {
      const s = net.connect(Number(addr.port), addr.hostname);
      await new Promise((r) => s.once('connect', r));
      const head = `PUT ${path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${token}\r\n` + (chunked ? 'transfer-encoding: chunked\r\n\r\n' : 'content-length: 3000000\r\n\r\n');
      s.write(head);
      const piece = patterned(1_000_000, 3);
      s.write(chunked ? Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]) : piece);
      await new Promise((r) => setTimeout(r, 300));
      s.destroy();
    };
    await cut('/v1/files/ns/trunc-length', false);
    await cut('/v1/files/ns/trunc-chunked', true);
    await cut('/v1/files/ns/keep', false);
    // The gateway aborts the writes; nothing may ever appear.
    await new Promise((r) => setTimeout(r, 1000));
    t.equal((await call('HEAD', '/v1/files/ns/trunc-length')).status, 404);
    t.equal((await call('HEAD', '/v1/files/ns/trunc-chunked')).status, 404);
    t.ok((await call('GET', '/v1/files/ns/keep')).body.equals(old), 'the old version is untouched');
    const listed = json(await call('GET', '/v1/files/ns/?list')).files.map((f: { path: string }) => f.path);
    t.notOk(listed.some((p: string) => p.startsWith('trunc')), 'not listed either');
  });

  await t.test('logs: append (single, batch, record id, expected offset) and follow with SSE resume and raw bytes', async (t) => {
    const log = '/v1/files/ns/app.log';
    const missing = await call('POST', `${log}?append`, { body: Buffer.from('x\n') });
    t.equal(missing.status, 404, 'no log without ?create');
    t.equal(json(missing).error.code, 'NO_SUCH_FILE');
    const first = await call('POST', `${log}?append&create`, { body: Buffer.from('one\n') });
    t.equal(first.status, 200);
    t.same(json(first), { offset: 0 });
    const batch = await call('POST', `${log}?append`, { body: Buffer.from('two\nthree\nfour\n'), headers: { 'content-type': 'application/x-ndjson' } });
    t.same(json(batch), { offsets: [4, 8, 14] }, 'a batch lands in body order');
    const wrong = await call('POST', `${log}?append`, { body: Buffer.from('no\n'), headers: { 'x-gfs-expected-offset': '3' } });
    t.equal(wrong.status, 412);
    t.equal(json(wrong).error.code, 'PRECONDITION_FAILED');
    const right = await call('POST', `${log}?append`, { body: Buffer.from('five\n'), headers: { 'x-gfs-expected-offset': '19' } });
    t.same(json(right), { offset: 19 });
    const once1 = await call('POST', `${log}?append`, { body: Buffer.from('six\n'), headers: { 'x-gfs-record-id': 'w1:1' } });
    const once2 = await call('POST', `${log}?append`, { body: Buffer.from('six\n'), headers: { 'x-gfs-record-id': 'w1:1' } });
    t.same(json(once1), { offset: 24 });
    t.same(json(once2), { offset: 24 }, 'a retried record id is stored once');
    const expected = 'one\ntwo\nthree\nfour\nfive\nsix\n';
    const head = await call('HEAD', log);
    t.equal(head.headers['content-length'], String(expected.length), 'HEAD of an open log: its committed length');
    t.equal(head.headers['x-gfs-log'], '1');
    t.equal((await call('GET', log)).body.toString(), expected);
    t.equal((await call('GET', log, { headers: { range: 'bytes=-4' } })).body.toString(), 'six\n');

    const auth = { authorization: `Bearer ${token}` };
    const sse = await openFollow(base, `${log}?follow`, { ...auth, accept: 'text/event-stream' });
    t.equal(sse.status, 200);
    t.match(sse.headers['content-type'], /text\/event-stream/);
    await sse.next((x) => sseEvents(x).length >= 6);
    t.equal((await call('POST', `${log}?append`, { body: Buffer.from('seven\n') })).status, 200);
    const events = sseEvents(await sse.next((x) => sseEvents(x).length >= 7));
    sse.close();
    t.same(events.map((e) => e.data), ['one', 'two', 'three', 'four', 'five', 'six', 'seven'], 'every record, then a new one as it commits');
    t.same(events.map((e) => Number(e.id)), [4, 8, 14, 19, 24, 28, 34], 'ids are the offsets after each record');
    const resumed = await openFollow(base, `${log}?follow`, { ...auth, accept: 'text/event-stream', 'last-event-id': events[2]!.id });
    const after = sseEvents(await resumed.next((x) => sseEvents(x).length >= 4));
    resumed.close();
    t.same(after.map((e) => e.data), ['four', 'five', 'six', 'seven'], 'Last-Event-ID resumes right after that event: no gap, no duplicate');

    const raw = await openFollow(base, `${log}?follow&from=14`, auth);
    t.equal(raw.headers['content-type'], 'application/octet-stream');
    t.equal(await raw.next((x) => x.length >= 20), 'four\nfive\nsix\nseven\n', 'raw follow: the bytes from the offset');
    raw.close();
    t.equal(json(await call('GET', `${log}?follow&from=999`)).error.code, 'INVALID_ARGUMENT', 'from past the end');
  });

  await t.test('streams: records appended to a stream directory, followed over SSE in stream offsets', async (t) => {
    const admin = new GfsClient({ masters: c.masters, token });
    t.teardown(() => admin.close());
    await admin.admin.createStream('/ns/events', {});
    const sent = await call('POST', '/v1/files/ns/events?append', { body: Buffer.from('e1\ne2\n'), headers: { 'content-type': 'application/x-ndjson' } });
    t.same(json(sent), { offsets: [0, 3] });
    const sse = await openFollow(base, '/v1/files/ns/events?follow', { authorization: `Bearer ${token}`, accept: 'text/event-stream' });
    t.equal(sse.status, 200);
    await sse.next((x) => sseEvents(x).length >= 2);
    t.equal((await call('POST', '/v1/files/ns/events?append', { body: Buffer.from('e3\n') })).status, 200);
    const events = sseEvents(await sse.next((x) => sseEvents(x).length >= 3));
    sse.close();
    t.same(events.map((e) => [e.data, Number(e.id)]), [['e1', 3], ['e2', 6], ['e3', 9]]);
  });

  await t.test('a big file streams both ways with the gateway\'s memory flat', async (t) => {
    const pid = c.gateway.pid;
    const roundTrip = async (name: string, bytes: number) => {
      const sent = crypto.createHash('sha256');
      const put = await call('PUT', `/v1/files/ns/${name}`, { body: generated(bytes, bytes, sent), headers: { 'transfer-encoding': 'chunked' } });
      t.equal(put.status, 201, `${name}: stored`);
      const got = crypto.createHash('sha256');
      let n = 0;
      const get = await call('GET', `/v1/files/ns/${name}`, { sink: (b) => { n += b.length; got.update(b); } });
      t.equal(get.status, 200);
      t.equal(n, bytes, `${name}: every byte back`);
      t.equal(got.digest('hex'), sent.digest('hex'), `${name}: bytes equal`);
    };
    // Warm up twice: the first fills the write window's buffer pool, the second shows
    // the peak when a finished upload's pool is not yet collected while the next is used.
    await roundTrip('warm-1', 32 * MiB);
    await roundTrip('warm-2', 32 * MiB);
    const warm = peakRss(pid);
    await roundTrip('big', 160 * MiB);
    const grew = peakRss(pid) - warm;
    // A reader that hangs up mid-download frees its slot and wedges nothing.
    await new Promise<void>((resolve, reject) => {
      const req = http.get(new URL('/v1/files/ns/big', base), { headers: { authorization: `Bearer ${token}` } }, (res) => {
        let n = 0;
        res.on('data', (d: Buffer) => { n += d.length; if (n > 4 * MiB) { req.destroy(); resolve(); } });
        res.on('error', () => undefined);
      });
      req.on('error', () => undefined);
      setTimeout(() => reject(new Error('no bytes')), 20_000);
    });
    await eventually(async () => /gfs_gateway_requests_in_flight(\{[^}]*\})? 1\n/.test((await request(base, 'GET', '/metrics')).body.toString()), 10_000, 'the cut download to end');
    t.equal((await call('GET', '/v1/files/ns/big', { headers: { range: 'bytes=-5' } })).status, 206, 'still serving');
    t.ok(grew < 64 * MiB, `the gateway's peak RSS grew by ${(grew / MiB).toFixed(1)} MiB for 128 MiB more data (GC timing moves it by tens of MiB; buffering would add the file)`);
  });
});
