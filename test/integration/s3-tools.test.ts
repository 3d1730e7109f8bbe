/**
 * The S3 API through the command-line tools people point at it: awscli (s3 and s3api),
 * s3cmd, rclone and restic, each against a real cluster. A missing tool fails its test
 * with a message saying what to install (scripts/test.js installs them as root).
 */
import t, { type Test } from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { cluster, patterned } from './helpers';

interface Run { code: number | null; stdout: string; stderr: string }

function run(cmd: string, args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

function requireTool(t: Test, bin: string, pkg: string): boolean {
  const found = spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0;
  if (!found) t.fail(`${bin} is not installed: apt-get install ${pkg} (scripts/test.js does it as root)`);
  return found;
}

async function ok(t: Test, what: string, p: Promise<Run>): Promise<Run> {
  const r = await p;
  t.equal(r.code, 0, `${what} exits 0${r.code === 0 ? '' : `: ${r.stderr.slice(-800)}`}`);
  return r;
}

t.test('s3 tools: awscli, s3cmd, rclone and restic against a real cluster', async (t) => {
  const { cluster: c, dir } = await cluster(t);
  const creds = JSON.parse(fs.readFileSync(path.join(c.dataDir, 'credentials.json'), 'utf8')) as { accessKeyId: string; secretAccessKey: string };
  const endpoint = c.endpoints().s3;
  const hostPort = endpoint.replace(/^http:\/\//, '');
  const awsEnv = { AWS_ACCESS_KEY_ID: creds.accessKeyId, AWS_SECRET_ACCESS_KEY: creds.secretAccessKey, AWS_DEFAULT_REGION: 'us-east-1', AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null' };
  const local = path.join(dir, 'payload.bin');
  const payload = patterned(3_000_000, 9);
  fs.writeFileSync(local, payload);

  // Every awscli on PATH (a pip-installed v1 may shadow Debian's v2): each must work.
  const awsBins = spawnSync('sh', ['-c', 'which -a aws'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
  const versions = new Map<string, string>();
  for (const bin of awsBins) {
    const v = spawnSync(bin, ['--version'], { encoding: 'utf8', env: { ...process.env, ...awsEnv } });
    const name = /aws-cli\/(\d+)\./.exec(`${v.stdout}${v.stderr}`)?.[1];
    if (name !== undefined && !versions.has(name)) versions.set(name, bin);
  }
  if (versions.size === 0) versions.set('missing', 'aws');
  for (const [major, bin] of versions) await t.test(`awscli v${major} (${bin}): s3 mb/cp/ls/rm and s3api`, async (t) => {
    if (!requireTool(t, bin, 'awscli')) return;
    const aws = (...args: string[]) => run(bin, ['--endpoint-url', endpoint, ...args], awsEnv);
    const bucket = `cli-${major}`;
    await ok(t, 'aws s3 mb', aws('s3', 'mb', `s3://${bucket}`));
    await ok(t, 'aws s3 cp up', aws('s3', 'cp', local, `s3://${bucket}/dir/payload.bin`));
    const ls = await ok(t, 'aws s3 ls', aws('s3', 'ls', `s3://${bucket}/`));
    t.match(ls.stdout, /PRE dir\//);
    const lsr = await ok(t, 'aws s3 ls --recursive', aws('s3', 'ls', '--recursive', `s3://${bucket}`));
    t.match(lsr.stdout, /3000000 dir\/payload\.bin/);
    const back = path.join(dir, 'back.bin');
    await ok(t, 'aws s3 cp down', aws('s3', 'cp', `s3://${bucket}/dir/payload.bin`, back));
    t.ok(fs.readFileSync(back).equals(payload), 'bytes equal');
    await ok(t, 'aws s3api put-object', aws('s3api', 'put-object', '--bucket', bucket, '--key', 'odd key/..', '--body', local, '--metadata', 'a=b'));
    const head = JSON.parse((await ok(t, 'aws s3api head-object', aws('s3api', 'head-object', '--bucket', bucket, '--key', 'odd key/..'))).stdout) as { ContentLength: number; Metadata: Record<string, string> };
    t.equal(head.ContentLength, payload.length);
    t.same(head.Metadata, { a: 'b' });
    const list = JSON.parse((await ok(t, 'aws s3api list-objects-v2', aws('s3api', 'list-objects-v2', '--bucket', bucket))).stdout) as { Contents: { Key: string }[] };
    t.same(list.Contents.map((o) => o.Key), ['dir/payload.bin', 'odd key/..']);
    // 12 MB: above awscli's 8 MiB threshold, so a multipart upload and a ranged download.
    const big = path.join(dir, `big-${major}.bin`);
    const bigBytes = patterned(12_000_000, 10);
    fs.writeFileSync(big, bigBytes);
    await ok(t, 'aws s3 cp (multipart)', aws('s3', 'cp', big, `s3://${bucket}/big.bin`));
    const bigBack = path.join(dir, `big-back-${major}.bin`);
    await ok(t, 'aws s3 cp down (multipart)', aws('s3', 'cp', `s3://${bucket}/big.bin`, bigBack));
    t.ok(fs.readFileSync(bigBack).equals(bigBytes), 'multipart bytes equal');
    await ok(t, 'aws s3 rm', aws('s3', 'rm', '--recursive', `s3://${bucket}/`));
    const empty = await ok(t, 'aws s3 ls after rm', aws('s3', 'ls', '--recursive', `s3://${bucket}`));
    t.equal(empty.stdout.trim(), '');
    await ok(t, 'aws s3 rb', aws('s3', 'rb', `s3://${bucket}`));
  });

  await t.test('s3cmd: mb/put/ls/get/del', async (t) => {
    if (!requireTool(t, 's3cmd', 's3cmd')) return;
    const cfg = path.join(dir, 's3cfg');
    fs.writeFileSync(cfg, `[default]\naccess_key = ${creds.accessKeyId}\nsecret_key = ${creds.secretAccessKey}\nhost_base = ${hostPort}\nhost_bucket = ${hostPort}\nuse_https = False\nsignature_v2 = False\n`);
    const s3cmd = (...args: string[]) => run('s3cmd', ['-c', cfg, ...args], {});
    await ok(t, 's3cmd mb', s3cmd('mb', 's3://s3cmd'));
    await ok(t, 's3cmd put', s3cmd('put', local, 's3://s3cmd/a/payload.bin'));
    const ls = await ok(t, 's3cmd ls -r', s3cmd('ls', '-r', 's3://s3cmd'));
    t.match(ls.stdout, /3000000\s+s3:\/\/s3cmd\/a\/payload\.bin/);
    const back = path.join(dir, 's3cmd.bin');
    await ok(t, 's3cmd get', s3cmd('get', '--force', 's3://s3cmd/a/payload.bin', back));
    t.ok(fs.readFileSync(back).equals(payload), 'bytes equal');
    await ok(t, 's3cmd del', s3cmd('del', 's3://s3cmd/a/payload.bin'));
    await ok(t, 's3cmd rb', s3cmd('rb', 's3://s3cmd'));
  });

  const rcloneEnv: Record<string, string> = {
    RCLONE_CONFIG: '/dev/null', RCLONE_CONFIG_G_TYPE: 's3', RCLONE_CONFIG_G_PROVIDER: 'Other', RCLONE_CONFIG_G_ENDPOINT: endpoint,
    RCLONE_CONFIG_G_ACCESS_KEY_ID: creds.accessKeyId, RCLONE_CONFIG_G_SECRET_ACCESS_KEY: creds.secretAccessKey, RCLONE_CONFIG_G_REGION: 'us-east-1',
  };

  await t.test('rclone: copy a tree up and back, check by MD5, purge', async (t) => {
    if (!requireTool(t, 'rclone', 'rclone')) return;
    delete process.env['AWS_CA_BUNDLE'];
    const tree = path.join(dir, 'tree');
    fs.mkdirSync(path.join(tree, 'sub'), { recursive: true });
    fs.copyFileSync(local, path.join(tree, 'sub', 'payload.bin'));
    fs.writeFileSync(path.join(tree, 'small.txt'), 'small\n');
    const rclone = (...args: string[]) => run('rclone', args, rcloneEnv);
    await ok(t, 'rclone mkdir', rclone('mkdir', 'g:rclone'));
    await ok(t, 'rclone copy up', rclone('copy', tree, 'g:rclone/tree'));
    const check = await ok(t, 'rclone check', rclone('check', tree, 'g:rclone/tree'));
    t.match(check.stderr, /0 differences found/);
    const back = path.join(dir, 'tree-back');
    await ok(t, 'rclone copy down', rclone('copy', 'g:rclone/tree', back));
    t.ok(fs.readFileSync(path.join(back, 'sub', 'payload.bin')).equals(payload));
    t.equal(fs.readFileSync(path.join(back, 'small.txt'), 'utf8'), 'small\n');
    await ok(t, 'rclone purge', rclone('purge', 'g:rclone'));
  });

  await t.test('restic: init, backup, check, restore', async (t) => {
    if (!requireTool(t, 'restic', 'restic')) return;
    delete process.env['AWS_CA_BUNDLE'];
    const env = { AWS_ACCESS_KEY_ID: creds.accessKeyId, AWS_SECRET_ACCESS_KEY: creds.secretAccessKey, RESTIC_PASSWORD: 'test-password', RESTIC_CACHE_DIR: path.join(dir, 'restic-cache') };
    const repo = `s3:${endpoint}/restic/repo`;
    const src = path.join(dir, 'backup-src');
    fs.mkdirSync(src);
    fs.copyFileSync(local, path.join(src, 'payload.bin'));
    fs.writeFileSync(path.join(src, 'note.txt'), 'note');
    await ok(t, 'restic init (creates the bucket)', run('restic', ['-r', repo, 'init'], env));
    await ok(t, 'restic backup', run('restic', ['-r', repo, 'backup', src], env));
    await ok(t, 'restic check', run('restic', ['-r', repo, 'check', '--read-data'], env));
    const target = path.join(dir, 'restored');
    await ok(t, 'restic restore', run('restic', ['-r', repo, 'restore', 'latest', '--target', target], env));
    t.ok(fs.readFileSync(path.join(target, src, 'payload.bin')).equals(payload), 'restored bytes equal');
  });
});
