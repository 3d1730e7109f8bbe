#!/usr/bin/env node
// Runs every test (unit, simulation, integration) with tap and ends with the line
// "N passed, M failed", counting each named test (t.test) inside each file.
// Integration tests need etcd, nats-server, promtool and chromium; when they are missing and we run as
// root, they are installed from Debian's packages, otherwise we say how.
'use strict';
const { spawnSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

function have(bin) {
  return spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0;
}

// promtool (Debian's prometheus) lints every /metrics; script (util-linux) gives gfsctl a TTY.
// awscli, s3cmd, rclone and restic are the S3 clients test/integration/s3-tools.test.ts drives;
// chromium runs the dashboard test (driven by playwright-core, which downloads no browser).
const missing = [['etcd', 'etcd-server'], ['nats-server', 'nats-server'], ['promtool', 'prometheus'], ['script', 'util-linux'],
  ['aws', 'awscli'], ['s3cmd', 's3cmd'], ['rclone', 'rclone'], ['restic', 'restic'], ['chromium', 'chromium']].filter(([bin]) => !have(bin));
if (missing.length > 0) {
  const pkgs = missing.map(([, pkg]) => pkg);
  if (process.getuid && process.getuid() === 0) {
    console.log(`installing ${pkgs.join(' ')} from Debian packages`);
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
    const r = spawnSync('apt-get', ['install', '-y', '-qq', ...pkgs], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    if (r.status !== 0) { console.error(`could not install ${pkgs.join(' ')}`); process.exit(1); }
  } else {
    console.error(`missing ${missing.map(([b]) => b).join(', ')}: run "sudo apt-get install ${pkgs.join(' ')}"`);
    process.exit(1);
  }
}

function findTests(dir) {
  if (!fs.existsSync(dir)) return [];
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...findTests(p));
    else if (e.name.endsWith('.test.js')) out.push(p);
  }
  return out.sort();
}

const only = process.argv.slice(2);
const files = only.length > 0 ? only : ['unit', 'sim', 'integration'].flatMap((d) => findTests(path.join('dist', 'test', d)));
const tapBin = path.join(path.dirname(require.resolve('tap/package.json')), 'dist', 'esm', 'run.mjs');
const jobs = process.env.GFS_TEST_JOBS ?? '2';
const child = spawn(process.execPath, [tapBin, '--reporter=tap', `--jobs=${jobs}`, ...files], { stdio: ['ignore', 'pipe', 'inherit'] });

let passed = 0;
let failed = 0;
let buf = '';
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk);
  buf += chunk.toString();
  let i;
  while ((i = buf.indexOf('\n')) >= 0) {
    const line = buf.slice(0, i);
    buf = buf.slice(i + 1);
    // Depth 1 = the named tests inside each test file.
    const m = /^    (not ok|ok) \d+ - /.exec(line);
    if (m) { if (m[1] === 'ok') passed++; else failed++; }
    // A whole file that failed without reporting a named failure (crash, timeout).
    if (/^not ok \d+ - /.test(line)) fileFailures++;
  }
});
let fileFailures = 0;
child.on('exit', (code) => {
  if (code !== 0 && failed === 0) failed = Math.max(1, fileFailures);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed > 0 || code !== 0 ? 1 : 0);
});
