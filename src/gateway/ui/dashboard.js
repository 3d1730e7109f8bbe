// The gfs dashboard: plain JS, no build step, no request outside this gateway.
// The admin token is taken once (the login box, or ?token= which is moved out of the URL)
// and kept in sessionStorage; every data call sends it as Authorization: Bearer. The
// overview is read every refresh period (the gateway caches it for that long, so browsers
// share one master round); events come from the gateway's long poll, not from the master.
'use strict';

(() => {
  const TOKEN_KEY = 'gfs.token';
  const EVENTS_SHOWN = 100;
  const RETRY_MS = 2000;
  let refreshMs = 2000;
  let session = 0; // bumped on login/logout: loops of an older session stop
  let eventsCursor;

  const $ = (id) => document.getElementById(id);

  function el(tag, opts = {}, ...children) {
    const e = document.createElement(tag);
    if (opts.cls) e.className = opts.cls;
    if (opts.text !== undefined) e.textContent = String(opts.text);
    if (opts.title) e.title = opts.title;
    for (const [k, v] of Object.entries(opts.data || {})) e.dataset[k] = v;
    for (const c of children) if (c) e.append(c);
    return e;
  }

  // ---- formatting
  function bytes(n) {
    if (!n) return '0 B';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return `${n >= 100 || i === 0 ? Math.round(n) : n.toFixed(1)} ${units[i]}`;
  }
  const rate = (n) => `${bytes(n)}/s`;
  function duration(ms) {
    if (!ms || ms < 0) return '—';
    const s = Math.round(ms / 1000);
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
    return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  }
  function ago(wallMs) {
    if (!wallMs) return '—';
    const ms = Math.max(0, Date.now() - wallMs);
    return ms < 1000 ? 'just now' : `${duration(ms)} ago`;
  }
  const clock = (wallMs) => new Date(wallMs).toLocaleTimeString();

  // ---- token and API
  function takeTokenFromUrl() {
    const url = new URL(location.href);
    const t = url.searchParams.get('token');
    if (t === null) return;
    if (t !== '') sessionStorage.setItem(TOKEN_KEY, t);
    url.searchParams.delete('token');
    history.replaceState(null, '', url.pathname + url.search + url.hash);
  }

  class AuthError extends Error {}

  async function api(path, signalSession) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token === null) throw new AuthError('no token');
    // '' = an open cluster (gfs dev --no-auth): no Authorization header at all.
    const headers = token === '' ? {} : { Authorization: `Bearer ${token}` };
    const res = await fetch(path, { headers, cache: 'no-store' });
    let body;
    try { body = await res.json(); } catch { body = undefined; }
    if (signalSession !== session) throw new AuthError('session ended');
    if (res.status === 401 || res.status === 403) throw new AuthError(body?.error?.message || `HTTP ${res.status}`);
    if (!res.ok) throw new Error(body?.error ? `${body.error.code}: ${body.error.message}` : `HTTP ${res.status}`);
    return body;
  }

  function showLogin(message) {
    session++;
    sessionStorage.removeItem(TOKEN_KEY);
    $('app').hidden = true;
    $('logout').hidden = true;
    $('login').hidden = false;
    $('login-error').hidden = !message;
    $('login-error').textContent = message || '';
    $('token').focus();
  }

  function start() {
    const mine = ++session;
    $('login').hidden = true;
    $('app').hidden = false;
    $('logout').hidden = false;
    eventsCursor = undefined;
    $('events').replaceChildren();
    void overviewLoop(mine);
    void eventsLoop(mine);
  }

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  // ---- overview
  async function overviewLoop(mine) {
    while (mine === session) {
      try {
        const o = await api('/v1/admin/overview', mine);
        refreshMs = o.refreshMs || refreshMs;
        renderOverview(o);
        $('banner').hidden = true;
      } catch (e) {
        if (e instanceof AuthError) { if (mine === session) showLogin(e.message === 'no token' ? '' : `The token was refused: ${e.message}`); return; }
        $('banner').hidden = false;
        $('banner').textContent = `Cannot read the cluster: ${e.message} (showing the last answer; retrying)`;
      }
      await sleep(refreshMs);
    }
  }

  function card(label, value, tone) {
    return el('div', { cls: `card ${tone || ''}` }, el('div', { cls: 'label', text: label }), el('div', { cls: 'value', text: value }));
  }

  function kv(dl, pairs) {
    dl.replaceChildren(...pairs.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: v })]));
  }

  function renderOverview(o) {
    const c = o.cluster;
    $('refresh-period').textContent = `${o.refreshMs / 1000} s`;
    $('updated').textContent = `updated ${clock(o.atMs)}`;
    const usedRatio = c.capacityBytes ? c.usedBytes / c.capacityBytes : 0;
    $('health').replaceChildren(
      card('safe mode', c.safeMode ? 'ON' : 'off', c.safeMode ? 'bad' : 'ok'),
      card('leader', c.leader || 'none', c.leader ? '' : 'bad'),
      card('chunkservers alive / dead', `${c.nodesAlive} / ${c.nodesDead}`, c.nodesDead ? 'warn' : 'ok'),
      card('under-replicated chunks', c.underReplicated, c.underReplicated ? 'warn' : 'ok'),
      card('lost chunks', c.missing, c.missing ? 'bad' : 'ok'),
      card('files / chunks', `${c.files} / ${c.chunks}`),
      card('used', `${bytes(c.usedBytes)} of ${bytes(c.capacityBytes)} (${(usedRatio * 100).toFixed(1)}%)`),
    );
    if (c.safeMode && c.safeModeReason) $('health').append(card('why safe mode', c.safeModeReason, 'bad'));

    $('masters').tBodies[0].replaceChildren(...o.masters.map((m) => el('tr', { data: { master: m.addr } },
      el('td', { text: m.id || '—' }), el('td', { text: m.addr }),
      el('td', {}, el('span', { cls: `role ${m.role}`, text: m.role })),
      el('td', { cls: 'num', text: m.epoch }), el('td', { cls: 'num', text: m.commitIndex }),
      el('td', { cls: 'num', text: m.appliedIndex }), el('td', { cls: 'num', text: m.role === 'unreachable' ? '—' : `${m.lag} entries` }),
    )));

    $('chunkservers').tBodies[0].replaceChildren(...o.chunkservers.map((n) => {
      // The bar is the node's disk: gfs chunks, then what else fills it, then free space.
      const cap = n.capacityBytes || 1;
      const ratio = Math.min(1, n.usedBytes / cap);
      const otherRatio = Math.max(0, Math.min(1 - ratio, (n.capacityBytes - n.freeBytes - n.usedBytes) / cap));
      const full = ratio + otherRatio;
      const fill = el('div', { cls: `fill${full >= 0.95 ? ' full' : full >= 0.8 ? ' high' : ''}` });
      const other = el('div', { cls: 'fill other' });
      fill.style.width = `${(ratio * 100).toFixed(1)}%`; // CSSOM, allowed by the page's CSP
      other.style.width = `${(otherRatio * 100).toFixed(1)}%`;
      return el('tr', { data: { node: n.addr, state: n.state } },
        el('td', { text: n.addr, title: n.id }),
        el('td', { text: `${n.zone || '—'} / ${n.tier || '—'}` }),
        el('td', {}, el('span', { cls: `state ${n.state}`, text: n.state, title: n.drainingDetail || '' }),
          n.drainingDetail ? el('span', { cls: 'muted detail', text: ` ${n.drainingDetail}` }) : null),
        el('td', { cls: 'capacity' },
          el('span', { cls: 'bar', title: `${bytes(n.usedBytes)} of chunks, ${bytes(n.capacityBytes - n.freeBytes - n.usedBytes)} other, ${bytes(n.freeBytes)} free` }, fill, other),
          `${bytes(n.usedBytes)} chunks, ${bytes(n.freeBytes)} free of ${bytes(n.capacityBytes)}`),
        el('td', { cls: 'num', text: n.chunks }),
        // A dead node's last report is not its rate now.
        el('td', { cls: 'num', text: n.state === 'dead' ? '—' : rate(n.readBytesPerSec) }),
        el('td', { cls: 'num', text: n.state === 'dead' ? '—' : rate(n.writeBytesPerSec) }),
        el('td', { cls: 'num', text: `${n.repairsIn} / ${n.repairsOut}` }),
        el('td', { text: ago(n.lastHeartbeatMs) }),
      );
    }));

    const r = o.repair;
    kv($('repair'), r ? [
      ['under-replicated', r.underReplicated], ['queued', `${r.queuedChunks} chunks, ${bytes(r.queuedBytes)}`],
      ['copying now', `${r.inflightChunks} chunks, ${bytes(r.inflightBytes)}`], ['rate', rate(r.bytesPerSec)],
      ['ETA', r.queuedChunks + r.inflightChunks === 0 ? 'nothing to repair' : r.etaKnown === false ? 'unknown yet' : duration(r.etaMs)],
      ['lost (no healthy replica)', r.missingChunks], ['unrepairable now', r.unrepairableChunks],
      ['corrupt / stale replicas', `${r.corruptReplicas} / ${r.staleReplicas}`], ['completed / failed', `${r.completedTotal} / ${r.failedTotal}`],
    ] : [['repair', 'no report']]);

    const b = o.balance;
    kv($('balance'), b ? [
      ['mode', b.automatic ? `automatic, threshold ${(b.thresholdRatio * 100).toFixed(0)}%` : 'manual (gfsctl balance)'],
      ['fill min / mean / max', `${(b.minFillRatio * 100).toFixed(1)}% / ${(b.meanFillRatio * 100).toFixed(1)}% / ${(b.maxFillRatio * 100).toFixed(1)}%`],
      ['moves in flight / done', `${b.inflightMoves} / ${b.completedMoves}`],
      ['moved / to move', `${bytes(b.movedBytes)} / ${bytes(b.bytesToMove)}`],
      ['ETA', b.inflightMoves === 0 && b.bytesToMove === 0 ? 'balanced' : duration(b.etaMs)],
    ] : [['balance', 'no report']]);

    const f = o.fsck;
    $('fsck-age').textContent = f && f.atMs ? `(as of ${clock(f.atMs)})` : '';
    kv($('fsck'), f ? [
      ['verdict', f.error ? `not fresh: ${f.error.code} ${f.error.message}` : f.healthy ? 'healthy' : 'problems found'],
      ['checked', `${f.filesChecked} files, ${f.chunksChecked} chunks`],
      ['under- / over-replicated', `${f.underReplicated} / ${f.overReplicated}`],
      ['missing / corrupt', `${f.missing} / ${f.corrupt}`],
      ...(f.problemFiles.length ? [['files with problems', f.problemFiles.join(', ') + (f.truncated ? ', …' : '')]] : []),
    ] : [['fsck', 'not run yet']]);
  }

  // ---- events
  const BAD_KINDS = new Set(['node.down', 'chunk.corrupt', 'process.stopping']);
  const OK_KINDS = new Set(['node.up', 'chunk.healed', 'process.started']);

  function eventItem(e) {
    const data = Object.entries(e.data || {}).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ');
    const tone = BAD_KINDS.has(e.kind) ? 'bad' : OK_KINDS.has(e.kind) ? 'ok' : '';
    return el('li', { data: { kind: e.kind, id: e.id }, title: `${e.id} from ${e.source}` },
      el('span', { cls: 'time', text: clock(e.timeMs) }), el('span', { cls: `kind ${tone}`, text: e.kind }), data);
  }

  async function eventsLoop(mine) {
    while (mine === session) {
      try {
        const q = eventsCursor === undefined ? '' : `?since=${eventsCursor}&wait=1`;
        const page = await api(`/v1/admin/events${q}`, mine);
        const list = $('events');
        if (page.gap) list.replaceChildren();
        for (const e of page.events) list.prepend(eventItem(e));
        while (list.children.length > EVENTS_SHOWN) list.lastChild.remove();
        eventsCursor = page.cursor;
        $('events-state').textContent = list.children.length ? '(live, newest first)' : '(live; none yet)';
      } catch (e) {
        if (e instanceof AuthError) { if (mine === session) showLogin(e.message === 'no token' ? '' : `The token was refused: ${e.message}`); return; }
        $('events-state').textContent = `(reconnecting: ${e.message})`;
        await sleep(RETRY_MS);
      }
    }
  }

  // ---- wiring
  document.addEventListener('DOMContentLoaded', () => {
    $('login-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, $('token').value.trim());
      $('token').value = '';
      start();
    });
    $('logout').addEventListener('click', () => showLogin(''));
    takeTokenFromUrl();
    if (sessionStorage.getItem(TOKEN_KEY) !== null) start();
    else showLogin('');
  });
})();
