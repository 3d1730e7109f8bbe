/**
 * Names that are not what they look like (issue 9 item 2): control characters and
 * invalid UTF-8 are refused with INVALID_PATH by gfsctl, by the client library and by
 * the master's gRPC service itself, and nothing is created.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { spawnSync } from 'node:child_process';
import { cluster, gfsctl, GFSCTL } from './helpers';
import { fromGrpcError } from '../../src/common/errors';

/** A Master RPC with a hand-encoded request: field 1 (`path`) holds exactly `pathBytes`. */
function rawPathCall(addr: string, method: string, pathBytes: Buffer): Promise<grpc.ServiceError | null> {
  // protobuf: tag (field 1, wire type 2 = length-delimited), varint length (< 128 here), bytes.
  const request = Buffer.concat([Buffer.from([0x0a, pathBytes.length]), pathBytes]);
  const client = new grpc.Client(addr, grpc.credentials.createInsecure());
  return new Promise((resolve) => {
    client.makeUnaryRequest(`/gfs.Master/${method}`, (b: Buffer) => b, (b: Buffer) => b, request, (err) => {
      client.close();
      resolve(err);
    });
  });
}

t.test('names: a newline, tab or control character, or invalid UTF-8, is refused at every entry point and creates nothing', async (t) => {
  const { cluster: c, client, dir } = await cluster(t, { chunkservers: 1 });
  const m = c.masters;
  const local = path.join(dir, 'small.txt');
  fs.writeFileSync(local, 'data\n');
  await client.put(Buffer.from('data\n'), '/names/ok.txt', { replication: 1 });
  await client.mkdir('/names/dir');
  const listing = async () => (await gfsctl(m, ['ls', '-R', '/'])).stdout.toString();
  const before = await listing();

  // gfsctl: put, mkdir and mv of a name with a control character (or U+FFFD).
  const put = (bad: string) => ['put', '--replication', '1', local, bad];
  const mkdir = (bad: string) => ['mkdir', bad];
  // (Every character class is covered on paths.ts itself: test/unit/paths.test.ts.)
  const cases = [
    put('/names/new\nline'), put('/names/tab\there'), mkdir('/names/esc\u001b[31m'), mkdir('/na\u0085mes/x'),
    ['mv', '/names/ok.txt', '/names/new\nline'],
  ];
  for (const args of cases) {
    const r = await gfsctl(m, args);
    const lines = r.stderr.trim().split('\n');
    t.not(r.code, 0, `gfsctl ${args[0]} ${JSON.stringify(args.at(-1))}: non-zero exit`);
    t.equal(lines.length, 1, `one line on stderr: ${JSON.stringify(r.stderr)}`);
    t.match(lines[0], /^gfsctl: INVALID_PATH: path contains .*U\+/, 'names the code and the character');
  }

  // Invalid UTF-8 bytes in a real argv (through a shell: Node cannot pass raw bytes).
  const argv = spawnSync('/bin/sh', ['-c', `exec "$0" "$1" put - "$(printf '/names/\\377\\376')" </dev/null`, process.execPath, GFSCTL], {
    env: { ...process.env, GFS_MASTERS: m.join(',') }, encoding: 'utf8',
  });
  t.not(argv.status, 0, 'gfsctl put with the bytes ff fe in argv: non-zero exit');
  t.match(argv.stderr.trim(), /^gfsctl: INVALID_PATH: path contains U\+FFFD[^\n]*$/, 'one line naming U+FFFD');

  // The client library refuses before sending anything.
  await t.rejects(client.mkdir('/names/a\nb'), { code: 'INVALID_PATH' }, 'client library: mkdir');
  await t.rejects(client.put(Buffer.from('x'), '/names/a\tb'), { code: 'INVALID_PATH' }, 'client library: put');
  await t.rejects(client.rename('/names/ok.txt', '/names/a\u0000b'), { code: 'INVALID_PATH' }, 'client library: rename');

  // The master itself: bytes that are not UTF-8, which the protobuf decoder turns into
  // U+FFFD, so \xff\xfe and \xfe\xff would otherwise both become the same name.
  for (const bytes of [[0xff, 0xfe], [0xfe, 0xff], [0xc3], [0x0a]]) {
    const pathBytes = Buffer.concat([Buffer.from('/names/raw-'), Buffer.from(bytes)]);
    for (const method of ['Mkdir', 'CreateFile', 'Delete', 'Stat', 'List']) {
      const err = await rawPathCall(m[0]!, method, pathBytes);
      t.ok(err, `gRPC ${method} with path bytes ${pathBytes.toString('hex')} is refused`);
      t.equal(err && fromGrpcError(err).code, 'INVALID_PATH', `${method}: INVALID_PATH`);
    }
  }
  t.equal(await rawPathCall(m[0]!, 'Mkdir', Buffer.from('/names/raw-\u00e9ok')), null, 'a valid UTF-8 name over the same raw path is accepted');

  t.equal(await listing(), before + '/names/raw-\u00e9ok/\n', 'nothing else was created');
});
