/**
 * The dashboard (/ui) in headless Chromium against a real cluster: the admin token is
 * taken from ?token= (and from the login box), every data call carries it, the page
 * shows the three chunkservers alive with capacity bars and then one of them dead after
 * its process is killed, events arrive live, and nothing fails on the way. Without a
 * token the page shows only the login box and the API answers 401.
 *
 * Chromium is Debian's (/usr/bin/chromium, or $CHROMIUM), driven by playwright-core.
 */
import t from 'tap';
import { chromium, type Browser, type Page } from 'playwright-core';
import { cluster, eventually, promtoolCheck } from './helpers';
import { GfsClient } from '../../src/client';
import { limits } from '../../src/common/limits';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const deadAfterMs = 2_000;
const heartbeatIntervalMs = 200;
/** Generous: a loaded machine may be slow, the page must still get there. */
const slackMs = 15_000;

interface Watch { problems: string[]; dataCalls: { url: string; auth: string | undefined }[] }

/** Records every console error, page error, failed request and error answer of a page. */
function watch(page: Page): Watch {
  const w: Watch = { problems: [], dataCalls: [] };
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') w.problems.push(`console ${m.type()}: ${m.text()}`); });
  page.on('pageerror', (e) => w.problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => w.problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on('response', (r) => { if (r.status() >= 400) w.problems.push(`HTTP ${r.status()} for ${r.url()}`); });
  page.on('request', (r) => {
    if (new URL(r.url()).pathname.startsWith('/v1/')) w.dataCalls.push({ url: r.url(), auth: r.headers().authorization });
  });
  return w;
}

async function metric(base: string, name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}


t.test('dashboard: chunkservers alive with capacity bars, a killed one shown dead, live events, and a login box without a token', async (t) => {
  const { cluster: c } = await cluster(t, { heartbeatIntervalMs, deadAfterMs, auth: true });
  const base = c.rest;
  const token = c.credentials!.token;
  let browser: Browser | undefined;
  t.teardown(async () => { await browser?.close(); });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });

  // The API itself: 401 without a valid token, 403 with a token that is not a cluster admin.
  t.equal((await fetch(`${base}/v1/admin/overview`)).status, 401, 'overview without a token: 401');
  t.equal((await fetch(`${base}/v1/admin/events`)).status, 401, 'events without a token: 401');
  t.equal((await fetch(`${base}/v1/admin/overview`, { headers: { authorization: 'Bearer nope' } })).status, 401, 'a token the master does not know: 401');
  const admin = new GfsClient({ masters: c.masters, token });
  t.teardown(() => admin.close());
  await admin.admin.setNamespace('logs', { create: true });
  const reader = await admin.admin.createToken([{ namespace: 'logs', scopes: ['read'] }]);
  // The gateway learns a new token with its next copy of the master's table (401 until then).
  const denied = await eventually(async () => {
    const status = (await fetch(`${base}/v1/admin/overview`, { headers: { authorization: `Bearer ${reader.token}` } })).status;
    return status === 401 ? undefined : status;
  }, slackMs, 'the gateway to know the new token');
  t.equal(denied, 403, 'a read token on one namespace is not an admin: 403');

  // No token: the login box and no data call at all.
  const anon = await (await browser.newContext()).newPage();
  const anonWatch = watch(anon);
  await anon.goto(`${base}/ui`);
  await anon.locator('#login-form').waitFor({ state: 'visible' });
  t.equal(await anon.locator('#app').isVisible(), false, 'without a token the dashboard is hidden');
  t.same(anonWatch.dataCalls, [], 'without a token the page asks nothing');

  // ?token=: moved to sessionStorage and out of the URL.
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 1000 } })).newPage();
  const w = watch(page);
  const startedMs = Date.now();
  const callsBefore = await metric(base, 'gfs_gateway_admin_master_calls_total', 'call="status"');
  await page.goto(`${base}/ui?token=${encodeURIComponent(token)}`);
  await page.locator('#chunkservers tbody tr').nth(2).waitFor({ timeout: slackMs });
  t.notMatch(page.url(), /token=/, 'the token left the URL');
  t.equal(await page.evaluate("sessionStorage.getItem('gfs.token')"), token, 'the token is in sessionStorage');
  t.match(await page.locator('#refresh-note').textContent(), /Refreshes every 2 s/, 'the page states its refresh period');

  const addrs = c.chunkservers.map((p) => p.addr).sort();
  // The test is compiled without DOM types: the rows are read as plain objects.
  type Row = { node?: string; state?: string; badge?: string; bar?: string };
  const rows: Row[] = await page.locator('#chunkservers tbody tr').evaluateAll((trs: any[]) => trs.map((tr) => ({
    node: tr.dataset.node, state: tr.dataset.state,
    badge: tr.querySelector('.state')?.textContent, bar: tr.querySelector('.bar .fill')?.style.width,
  })));
  t.same(rows.map((r) => r.node).sort(), addrs, 'one row per chunkserver');
  for (const r of rows) {
    t.equal(r.state, 'alive', `${r.node} alive`);
    t.equal(r.badge, 'alive', `${r.node} shows alive`);
    t.match(r.bar, /^\d+(\.\d+)?%$/, `${r.node} has a capacity bar`);
  }
  t.match(await page.locator('#masters tbody tr').first().textContent(), /leader/, 'the master is shown as leader');
  // A new master waits for the chunkservers' reports before leaving safe mode; the page follows.
  await page.locator('#health').filter({ hasText: /safe mode\s*off/ }).waitFor({ timeout: slackMs });
  t.pass('safe mode shown off once the master left it');
  // The leader's history since start: each chunkserver came up.
  await page.locator('#events li[data-kind="node.up"]').nth(2).waitFor({ timeout: slackMs });

  // A second browser, logging in through the box: the gateway still makes one round per period.
  const second = await (await browser.newContext()).newPage();
  const w2 = watch(second);
  await second.goto(`${base}/ui`);
  await second.locator('#token').fill(token);
  await second.locator('#login-form button[type=submit]').click();
  await second.locator('#chunkservers tbody tr').nth(2).waitFor({ timeout: slackMs });

  // Kill one chunkserver: both pages show it dead, and node.down arrives as a live event.
  const victim = c.chunkservers[0]!.addr;
  const killedMs = Date.now();
  await c.killChunkserver(0);
  const deadBy = deadAfterMs + limits.uiRefreshMs + slackMs;
  for (const p of [page, second]) {
    await p.locator(`#chunkservers tr[data-node="${victim}"][data-state="dead"]`).waitFor({ timeout: deadBy });
  }
  t.comment(`shown dead ${Date.now() - killedMs} ms after the kill (dead-after ${deadAfterMs} ms, refresh ${limits.uiRefreshMs} ms)`);
  t.equal(await page.locator(`#chunkservers tr[data-node="${victim}"] .state`).textContent(), 'dead', 'the killed node shows dead');
  await page.locator('#events li[data-kind="node.down"]').first().waitFor({ timeout: slackMs });
  t.match(await page.locator('#events li[data-kind="node.down"]').first().textContent(), victim, 'node.down arrived live, naming the node');
  t.match(await page.locator('#health').textContent(), /alive \/ dead\s*2 \/ 1/, 'health counts 2 alive, 1 dead');

  // One overview round per refresh period, however many browsers.
  const elapsed = Date.now() - startedMs;
  const rounds = (await metric(base, 'gfs_gateway_admin_master_calls_total', 'call="status"')) - callsBefore;
  t.ok(rounds >= 1 && rounds <= Math.ceil(elapsed / limits.uiRefreshMs) + 2, `${rounds} master rounds in ${elapsed} ms for two browsers`);
  t.same(await promtoolCheck(await (await fetch(`${base}/metrics`)).text()), { code: 0, output: '' }, 'the gateway\'s /metrics passes promtool');

  for (const [name, x] of [['first', w], ['second', w2], ['anonymous', anonWatch]] as const) {
    t.same(x.problems, [], `${name} page: no console errors, failed requests or error answers`);
    t.ok(x.dataCalls.every((d) => d.auth === `Bearer ${token}`), `${name} page: every data call sends the bearer token`);
  }
  t.ok(w.dataCalls.some((d) => d.url.includes('/v1/admin/events?since=') && d.url.includes('wait=1')), 'events are long-polled from the gateway');

  // A refused token sends the page back to the login box with the reason.
  const bad = await (await browser.newContext()).newPage();
  await bad.goto(`${base}/ui?token=${encodeURIComponent(reader.token)}`);
  await bad.locator('#login-error').waitFor({ state: 'visible', timeout: slackMs });
  t.match(await bad.locator('#login-error').textContent(), /refused.*admin/, 'a token without admin shows why');
  t.equal(await bad.evaluate("sessionStorage.getItem('gfs.token')"), null, 'a refused token is forgotten');
});
