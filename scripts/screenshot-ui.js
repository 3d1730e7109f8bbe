#!/usr/bin/env node
// Screenshot of the dashboard of a running `gfs dev` cluster (docs/dashboard.png):
//   node scripts/screenshot-ui.js [DATA_DIR (./gfs-data)] [OUT (docs/dashboard.png)]
// It reads DATA_DIR/endpoints.json and credentials.json, opens REST/ui?token=... in
// Debian's headless Chromium (playwright-core, no browser download) and waits for the
// chunkserver rows and the events list before taking the picture.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { chromium } = require('playwright-core');

async function main() {
  const dataDir = process.argv[2] ?? 'gfs-data';
  const out = process.argv[3] ?? path.join(__dirname, '..', 'docs', 'dashboard.png');
  const { rest } = JSON.parse(fs.readFileSync(path.join(dataDir, 'endpoints.json'), 'utf8'));
  const { token } = JSON.parse(fs.readFileSync(path.join(dataDir, 'credentials.json'), 'utf8'));
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    await page.goto(`${rest}/ui?token=${encodeURIComponent(token)}`);
    await page.waitForSelector('#chunkservers tbody tr');
    await page.waitForSelector('#events li');
    await page.waitForTimeout(500);
    await page.screenshot({ path: out, fullPage: true });
    process.stdout.write(`${out}\n`);
  } finally {
    await browser.close();
  }
}

main().catch((e) => { process.stderr.write(`${e.stack ?? e}\n`); process.exit(1); });
