#!/usr/bin/env node
// Copies the dashboard's plain files (src/gateway/ui/*.html|js|css) beside the compiled
// src/gateway/ui/assets.js, which serves them: the dashboard has no build step of its own.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const from = path.join(__dirname, '..', 'src', 'gateway', 'ui');
const to = path.join(__dirname, '..', 'dist', 'src', 'gateway', 'ui');
fs.mkdirSync(to, { recursive: true });
for (const name of fs.readdirSync(from)) {
  if (!/\.(html|js|css)$/.test(name)) continue;
  fs.copyFileSync(path.join(from, name), path.join(to, name));
}
