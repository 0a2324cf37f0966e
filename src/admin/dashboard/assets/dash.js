// shoal dashboard: refreshes the numbers the server rendered, draws the
// graphs (uPlot) and sends the actions. Every action is one request to
// /dashboard/.../api/..., which runs the API v2 (or /admin/v1) route that
// does it; this file implements none of them.
(function () {
  'use strict';

  const body = document.body;
  const page = body.dataset.page;
  const cacheId = body.dataset.cache;
  // `?refresh=MS` (at least 500) sets the refresh interval for this tab.
  const asked = Number(new URLSearchParams(location.search).get('refresh'));
  try { if (asked >= 500) sessionStorage.setItem('shoal-refresh', String(asked)); } catch (e) { /* ignore */ }
  let stored = 0;
  try { stored = Number(sessionStorage.getItem('shoal-refresh')); } catch (e) { /* ignore */ }
  const refreshMs = stored >= 500 ? stored : Number(body.dataset.refresh) || 5000;
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.content : '';
  const cacheBase = cacheId ? '/dashboard/caches/' + cacheId : '';
  const api = cacheBase + '/api/';
  const opApi = '/dashboard/operator/api/';
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

  // ------------------------------------------------------------ helpers

  function say(text, isError) {
    const box = $('#status');
    if (!box) return;
    const msg = document.createElement('div');
    msg.className = 'msg' + (isError ? ' error' : '');
    msg.textContent = text;
    box.appendChild(msg);
    setTimeout(() => msg.remove(), isError ? 10000 : 5000);
  }

  // Reloads the page (its tables are rendered by the server) and says `text` after.
  function reloadWith(text) {
    try { sessionStorage.setItem('shoal-flash', text); } catch (e) { /* private mode */ }
    location.reload();
  }

  async function call(method, url, data) {
    const opts = { method, headers: { 'X-CSRF-Token': csrf }, credentials: 'same-origin' };
    if (data !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(data);
    }
    const resp = await fetch(url, opts);
    const text = await resp.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch (e) { json = null; }
    if (!resp.ok) {
      const why = json && (json.message || json.error);
      const err = new Error(why || ('HTTP ' + resp.status));
      err.status = resp.status;
      throw err;
    }
    return json;
  }

  // Runs `fn`, reporting its failure on the page (never on the console).
  function guarded(fn) {
    return function (ev) {
      Promise.resolve()
        .then(() => fn.call(this, ev))
        .catch((e) => say(e.message || String(e), true));
    };
  }

  function confirmAction(text, okLabel) {
    const dialog = $('#confirm-dialog');
    $('#confirm-text').textContent = text;
    $('#confirm-ok').textContent = okLabel || 'Confirm';
    dialog.returnValue = '';
    return new Promise((resolve) => {
      dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
      dialog.showModal();
    });
  }

  const nf = new Intl.NumberFormat('en-US');
  function fmtBytes(n) {
    const units = ['B', 'KB', 'MB', 'GB', 'TB'];
    let v = Number(n) || 0, u = 0;
    while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
    return u === 0 ? v + ' B' : v.toFixed(1) + ' ' + units[u];
  }
  function fmt(v, kind) {
    if (v === null || v === undefined) return '—';
    switch (kind) {
      case 'bytes': return fmtBytes(v);
      case 'pct': return (v * 100).toFixed(1) + '%';
      default: return nf.format(v);
    }
  }
  function hitClass(r) {
    if (r === null || r === undefined) return 'none';
    return r >= 0.8 ? 'good' : r >= 0.5 ? 'warn' : 'bad';
  }
  function setClass(el, cls) {
    el.classList.remove('good', 'warn', 'bad', 'none');
    el.classList.add(cls);
  }
  function setNumber(el, v) {
    if (v === undefined) return;
    el.dataset.value = v === null ? '' : v;
    el.textContent = fmt(v, el.dataset.fmt);
  }
  function cell(tag, text, cls) {
    const c = document.createElement(tag);
    if (cls) c.className = cls;
    c.textContent = text;
    return c;
  }
  function emptyRow(tbody, cols, text) {
    const tr = document.createElement('tr');
    const td = cell('td', text, 'muted');
    td.colSpan = cols;
    tr.appendChild(td);
    tbody.appendChild(tr);
  }

  // Repeats `fn` every refresh interval, one run at a time.
  function every(fn) {
    let warned = false;
    const tick = () => {
      Promise.resolve()
        .then(fn)
        .then(() => { warned = false; })
        .catch((e) => {
          if (!warned) say('Refresh failed: ' + e.message, true);
          warned = true;
        })
        .finally(() => setTimeout(tick, refreshMs));
    };
    setTimeout(tick, refreshMs);
  }

  function renderLatency(latency) {
    const tbody = $('tbody[data-latency]');
    if (!tbody) return;
    tbody.textContent = '';
    const classes = Object.keys(latency || {});
    if (classes.length === 0) return emptyRow(tbody, 7, 'No requests yet.');
    for (const cls of classes) {
      const p = latency[cls];
      const tr = document.createElement('tr');
      const th = cell('th', cls);
      th.scope = 'row';
      tr.appendChild(th);
      for (const k of ['count', 'p50', 'p90', 'p99', 'p999', 'max']) tr.appendChild(cell('td', nf.format(p[k] || 0), 'num'));
      tbody.appendChild(tr);
    }
  }

  // ------------------------------------------------------------ graphs

  const COLORS = ['#1f5fbf', '#d9480f'];
  const FILLS = ['rgba(31,95,191,0.10)', 'rgba(217,72,15,0.0)'];
  const SERIES = {
    bytes: ['Memory used', 'bytes'], hit_rate: ['Hit rate', 'ratio'], items: ['Items', 'count'],
    get_rate: ['Gets/s', 'rate'], set_rate: ['Sets/s', 'rate'], request_rate: ['Requests/s', 'rate'],
    eviction_rate: ['Evictions/s', 'rate'], connections: ['Connections', 'count'],
    bytes_read_rate: ['Bytes in/s', 'byterate'], bytes_write_rate: ['Bytes out/s', 'byterate'],
    hits: ['Hits/s', 'rate'], misses: ['Misses/s', 'rate'], mutations: ['Mutations/s', 'rate'],
  };
  const RANGES = { hour: 3600, day: 86400, week: 7 * 86400, month: 30 * 86400 };

  function unitFmt(unit, v) {
    if (v === null || v === undefined) return '—';
    switch (unit) {
      case 'bytes': return fmtBytes(v);
      case 'byterate': return fmtBytes(v) + '/s';
      case 'ratio': return (v * 100).toFixed(0) + '%';
      case 'rate': return v >= 100 ? nf.format(Math.round(v)) : String(Math.round(v * 100) / 100);
      default: return nf.format(Math.round(v));
    }
  }

  // InfluxDB-style series ([{columns: [time, ...names], values}]) → uPlot data.
  function toColumns(answer, names) {
    const s = (answer && answer[0]) || { columns: ['time'], values: [] };
    const idx = names.map((n) => s.columns.indexOf(n));
    const xs = [], ys = names.map(() => []);
    for (const row of s.values || []) {
      xs.push(Date.parse(row[0]) / 1000);
      idx.forEach((i, k) => ys[k].push(i < 0 ? null : row[i]));
    }
    return [xs].concat(ys);
  }

  window.shoalCharts = {};

  // A chart in `el` of `names` (at most two), re-made when they change.
  function chart(key, el, height) {
    let plot = null, shape = '';
    const win = { start: 0, end: 1 };
    const width = () => Math.max(200, el.clientWidth - 16);
    // The x axis spans the chosen window [start, end] (unix seconds).
    return function draw(names, data, start, end) {
      if (typeof uPlot === 'undefined') throw new Error('chart library missing');
      win.start = start;
      win.end = end;
      if (plot && shape === names.join(',')) { plot.setData(data); return; }
      if (plot) plot.destroy();
      el.textContent = '';
      shape = names.join(',');
      const units = [];
      names.forEach((n) => { const u = SERIES[n][1]; if (!units.includes(u)) units.push(u); });
      const series = [{}].concat(names.map((n, i) => ({
        label: SERIES[n][0], scale: SERIES[n][1], stroke: COLORS[i], fill: FILLS[i], width: 2,
        points: { show: (u) => u.data[0].length <= 120, size: 6, fill: COLORS[i] },
        value: (u, v) => unitFmt(SERIES[n][1], v),
      })));
      const axes = [{ stroke: '#5b6475', grid: { stroke: '#eceff4' } }].concat(units.map((unit, i) => ({
        scale: unit, side: i === 0 ? 3 : 1, size: 72, stroke: '#5b6475',
        grid: { show: i === 0, stroke: '#eceff4' },
        values: (u, vals) => vals.map((v) => unitFmt(unit, v)),
      })));
      const scales = { x: { time: true, range: () => [win.start, win.end] } };
      for (const unit of units) {
        scales[unit] = unit === 'ratio'
          ? { range: [0, 1] }
          : { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] };
      }
      plot = new uPlot({ width: width(), height, series, axes, scales, legend: { live: true } }, data, el);
      window.shoalCharts[key] = plot;
      if (window.ResizeObserver && !el.dataset.observed) {
        el.dataset.observed = '1';
        new ResizeObserver(() => { if (plot) plot.setSize({ width: width(), height }); }).observe(el);
      }
    };
  }

  function mainChart() {
    const el = $('#chart-main');
    if (!el) return;
    const draw = chart('main', el, 280);
    const controls = $('.controls[data-chart="main"]');
    const load = async () => {
      const range = ($('input[name="range-main"]:checked', controls) || {}).value || 'hour';
      const a = $('#series-a-main').value;
      const b = $('#series-b-main').value;
      const names = b && b !== a ? [a, b] : [a];
      const now = Math.floor(Date.now() / 1000);
      const start = now - RANGES[range];
      const q = '?names=' + names.join(',') + '&startTime=' + start + '&endTime=' + (now + 60);
      const answer = await call('GET', api + 'insight/processed_stats' + q);
      const data = toColumns(answer, names);
      draw(names, data, start, now);
      el.dataset.points = String(data[0].length);
    };
    controls.addEventListener('change', guarded(load));
    guarded(load)();
    every(load);
  }

  // ------------------------------------------------------------ cache pages

  function fillSummary(s) {
    for (const el of $$('[data-stat]')) setNumber(el, s[el.dataset.stat]);
    for (const el of $$('[data-sum]')) {
      const n = el.dataset.sum.split(',').reduce((acc, k) => acc + (s[k] || 0), 0);
      el.dataset.value = n;
      el.textContent = nf.format(n);
    }
    const meter = $('#memory-meter');
    if (meter) { meter.max = Math.max(1, s.limit_maxbytes); meter.value = s.bytes; }
    const hit = $('#card-hit-rate');
    if (hit) setClass(hit, hitClass(s.hit_rate_hour));
    const badge = $('[data-enabled]');
    if (badge) { badge.textContent = s.enabled ? 'enabled' : 'disabled'; setClass(badge, s.enabled ? 'good' : 'bad'); }
  }

  async function refreshOverview() {
    const [s, lat] = await Promise.all([
      call('GET', cacheBase + '/summary.json'),
      call('GET', cacheBase + '/latency.json'),
    ]);
    fillSummary(s);
    renderLatency(lat.latency);
    body.dataset.refreshed = String(Date.now());
  }

  function overviewPage() {
    mainChart();
    every(refreshOverview);
    $('#flush-button').addEventListener('click', guarded(async () => {
      const ok = await confirmAction('Flush removes every item of this cache, on every server. It cannot be undone.', 'Flush cache');
      if (!ok) return;
      await call('POST', api + 'flush');
      say('Cache flushed.');
      await refreshOverview();
    }));
  }

  function renderTops(table, list) {
    const tbody = $('tbody', table);
    tbody.textContent = '';
    if (!list || list.length === 0) return emptyRow(tbody, 2, 'None yet.');
    for (const t of list) {
      const tr = document.createElement('tr');
      const td = document.createElement('td');
      td.appendChild(cell('code', t.name));
      tr.appendChild(td);
      tr.appendChild(cell('td', nf.format(t.popularity), 'num'));
      tbody.appendChild(tr);
    }
  }

  async function refreshIntrospection() {
    const [popular, recent] = await Promise.all([
      call('GET', api + 'introspection/popular_items'),
      call('GET', api + 'introspection/recent_logs'),
    ]);
    for (const table of $$('table[data-tops]')) renderTops(table, popular[table.dataset.tops]);
    const tbody = $('#recent tbody');
    tbody.textContent = '';
    const log = Object.values(recent || {}).flat().reverse();
    if (log.length === 0) emptyRow(tbody, 5, 'No requests yet.');
    for (const e of log) {
      const tr = document.createElement('tr');
      tr.appendChild(cell('td', e.timestamp));
      const td = document.createElement('td');
      td.appendChild(cell('code', e.key));
      tr.appendChild(td);
      tr.appendChild(cell('td', e.command));
      tr.appendChild(cell('td', e.status));
      tr.appendChild(cell('td', nf.format(e.size), 'num'));
      tbody.appendChild(tr);
    }
    body.dataset.refreshed = String(Date.now());
  }

  function prefixCharts() {
    for (const li of $$('li[data-prefix-id]')) {
      const id = li.dataset.prefixId;
      const el = $('#chart-prefix-' + id);
      const draw = chart('prefix-' + id, el, 170);
      const load = async () => {
        const now = Math.floor(Date.now() / 1000);
        const answer = await call('GET', api + 'introspection/prefixes/' + id + '/stats?startTime=' + (now - 3600) + '&endTime=' + (now + 60));
        draw(['hits', 'misses'], toColumns(answer, ['hits', 'misses']), now - 3600, now);
      };
      guarded(load)();
      every(load);
    }
  }

  function introspectionPage() {
    every(refreshIntrospection);
    prefixCharts();
    $('#key-form').addEventListener('submit', guarded(async (ev) => {
      ev.preventDefault();
      const key = $('#key-input').value;
      const answer = await call('GET', api + 'introspection/key_stats?key=' + encodeURIComponent(key));
      const k = answer[0];
      const out = $('#key-result');
      out.textContent = '';
      const table = document.createElement('table');
      table.className = 'data';
      const cap = cell('caption', 'Key ' + k.name, 'vh');
      table.appendChild(cap);
      const rows = [['In cache', k.in_cache ? 'yes' : 'no'], ['Size', fmtBytes(k.size)],
        ['Hits (sampled)', nf.format(k.hit_count)], ['Misses (sampled)', nf.format(k.miss_count)],
        ['Mutations (sampled)', nf.format(k.mutation_count)]];
      const tbody = document.createElement('tbody');
      for (const [name, value] of rows) {
        const tr = document.createElement('tr');
        const th = cell('th', name);
        th.scope = 'row';
        tr.appendChild(th);
        tr.appendChild(cell('td', value));
        tbody.appendChild(tr);
      }
      table.appendChild(tbody);
      out.appendChild(table);
    }));
    $('#prefix-form').addEventListener('submit', guarded(async (ev) => {
      ev.preventDefault();
      const name = $('#prefix-input').value;
      await call('POST', api + 'introspection/prefixes', { name });
      reloadWith('Watching prefix ' + name + '.');
    }));
    for (const btn of $$('[data-unwatch]')) {
      btn.addEventListener('click', guarded(async () => {
        if (!(await confirmAction('Stop watching prefix ' + btn.dataset.name + '? Its graphs are dropped.', 'Remove prefix'))) return;
        await call('DELETE', api + 'introspection/prefixes/' + btn.dataset.unwatch);
        reloadWith('Prefix ' + btn.dataset.name + ' removed.');
      }));
    }
  }

  function settingsPage() {
    for (const box of $$('input[data-cap]')) {
      box.addEventListener('change', guarded(async () => {
        const row = box.closest('tr');
        const user = row.dataset.username;
        const caps = {};
        for (const b of $$('input[data-cap]', row)) caps[b.dataset.cap] = b.checked;
        try {
          await call('PATCH', api + 'credentials/' + user, caps);
        } catch (e) {
          box.checked = !box.checked;
          throw e;
        }
        say('Capabilities of ' + user + ' saved.');
      }));
    }
    for (const btn of $$('[data-promote]')) {
      btn.addEventListener('click', guarded(async () => {
        await call('POST', api + 'credentials/primary/' + btn.dataset.promote);
        reloadWith(btn.dataset.promote + ' is now the primary credential.');
      }));
    }
    for (const btn of $$('[data-delete-cred]')) {
      btn.addEventListener('click', guarded(async () => {
        const user = btn.dataset.deleteCred;
        if (!(await confirmAction('Delete credential ' + user + '? Its open connections are closed.', 'Delete credential'))) return;
        await call('DELETE', api + 'credentials/' + user);
        reloadWith('Credential ' + user + ' deleted.');
      }));
    }
    $('#add-credential').addEventListener('click', guarded(async () => {
      const cred = await call('POST', api + 'credentials');
      reloadWith('Added credential ' + cred.sasl_username + '.');
    }));
    $('#rotate-sso').addEventListener('click', guarded(async () => {
      if (!(await confirmAction('Every earlier dashboard link stops working, and so do the sessions opened from them.', 'Rotate link'))) return;
      const link = await call('POST', api + 'rotate_sso');
      const out = $('#sso-link');
      out.textContent = 'New dashboard link: ';
      const a = document.createElement('a');
      a.href = link;
      a.textContent = location.origin + link;
      a.id = 'new-sso-link';
      out.appendChild(a);
    }));
    const enable = $('#enable-cache');
    if (enable) {
      enable.addEventListener('click', guarded(async () => {
        await call('POST', api + 'enable_cache');
        reloadWith('Cache enabled.');
      }));
    }
    for (const btn of $$('[data-copy]')) {
      btn.addEventListener('click', guarded(async () => {
        const text = $('#' + btn.dataset.copy).textContent;
        try {
          await navigator.clipboard.writeText(text);
          say('Copied.');
        } catch (e) {
          const range = document.createRange();
          range.selectNodeContents($('#' + btn.dataset.copy));
          const sel = getSelection();
          sel.removeAllRanges();
          sel.addRange(range);
          say('Selected: press Ctrl+C to copy.');
        }
      }));
    }
    every(async () => { fillSummary(await call('GET', cacheBase + '/summary.json')); });
  }

  function alertsPage() {
    const type = $('#config-type');
    const showFields = () => {
      for (const label of $$('#config-form label[data-for]')) {
        label.hidden = !label.dataset.for.split(' ').includes(type.value);
      }
    };
    type.addEventListener('change', showFields);
    showFields();
    $('#config-form').addEventListener('submit', guarded(async (ev) => {
      ev.preventDefault();
      const body = { delivery_type: type.value };
      if (type.value === 'email') body.email = $('#config-email').value;
      else body.slack_url = $('#config-url').value;
      if (type.value === 'slack' && $('#config-channel').value) body.slack_channel = $('#config-channel').value;
      const c = await call('POST', api + 'alerts/configs', body);
      reloadWith('Delivery config ' + c.id + ' added.');
    }));
    for (const btn of $$('[data-delete-config]')) {
      btn.addEventListener('click', guarded(async () => {
        const id = btn.dataset.deleteConfig;
        if (!(await confirmAction('Delete delivery config ' + id + '?', 'Delete config'))) return;
        await call('DELETE', api + 'alerts/configs/' + id);
        reloadWith('Delivery config ' + id + ' deleted.');
      }));
    }
    const form = $('#alert-form');
    const resetForm = () => {
      $('#alert-id').value = '';
      $('#alert-form-h').textContent = 'New alert';
      $('#alert-submit').textContent = 'Create alert';
      $('#alert-cancel').hidden = true;
    };
    form.addEventListener('submit', guarded(async (ev) => {
      ev.preventDefault();
      const config = $('#alert-config').value;
      if (!config) throw new Error('Add a delivery config first.');
      const body = {
        trigger_type: $('#alert-type').value,
        trigger_threshold: Number($('#alert-threshold').value),
        delivery_config_id: Number(config),
        description: $('#alert-description').value,
        enabled: $('#alert-enabled').checked,
      };
      const id = $('#alert-id').value;
      const a = id ? await call('PUT', api + 'alerts/' + id, body) : await call('POST', api + 'alerts', body);
      reloadWith((id ? 'Alert ' + a.id + ' saved.' : 'Alert ' + a.id + ' created.'));
    }));
    $('#alert-cancel').addEventListener('click', resetForm);
    for (const btn of $$('[data-edit-alert]')) {
      btn.addEventListener('click', () => {
        const a = JSON.parse(btn.closest('tr').dataset.alert);
        $('#alert-id').value = a.id;
        $('#alert-type').value = a.trigger_type;
        $('#alert-threshold').value = a.trigger_threshold;
        $('#alert-config').value = String(a.delivery_config_id);
        $('#alert-description').value = a.description;
        $('#alert-enabled').checked = a.enabled;
        $('#alert-form-h').textContent = 'Edit alert ' + a.id;
        $('#alert-submit').textContent = 'Save alert';
        $('#alert-cancel').hidden = false;
        $('#alert-type').focus();
      });
    }
    // Keeps each alert's firing state fresh.
    every(async () => {
      for (const a of await call('GET', api + 'alerts')) {
        const td = $('tr[data-alert-id="' + a.id + '"] [data-alert-state]');
        if (!td) continue;
        td.textContent = '';
        const badge = cell('span', a.triggered ? 'firing' : 'ok', 'badge ' + (a.triggered ? 'bad' : 'good'));
        td.appendChild(badge);
        if (a.last_triggered) {
          td.appendChild(document.createElement('br'));
          td.appendChild(cell('span', 'last ' + a.last_triggered, 'small muted'));
        }
      }
      body.dataset.refreshed = String(Date.now());
    });
    for (const btn of $$('[data-delete-alert]')) {
      btn.addEventListener('click', guarded(async () => {
        const id = btn.dataset.deleteAlert;
        if (!(await confirmAction('Delete alert ' + id + '?', 'Delete alert'))) return;
        await call('DELETE', api + 'alerts/' + id);
        reloadWith('Alert ' + id + ' deleted.');
      }));
    }
  }

  // ------------------------------------------------------------ operator

  async function refreshOperator() {
    const s = await call('GET', '/dashboard/operator/summary.json');
    for (const el of $$('[data-node]')) setNumber(el, s.node[el.dataset.node]);
    const st = s.node.status || {};
    for (const el of $$('[data-status]')) {
      const v = st[el.dataset.status];
      el.textContent = v === null || v === undefined ? '—' : (typeof v === 'number' ? nf.format(v) : v);
    }
    const card = $('#card-status');
    if (card) setClass(card, st.status === 'green' ? 'good' : st.status === 'yellow' ? 'warn' : 'bad');
    renderLatency(s.node.latency);
    $('#cache-count').textContent = String(s.caches.length);
    for (const c of s.caches) {
      const row = $('tr[data-cache-id="' + c.id + '"]');
      if (!row) continue;
      for (const el of $$('[data-cache-stat]', row)) {
        setNumber(el, c[el.dataset.cacheStat]);
        if (el.dataset.cacheStat === 'hit_rate_hour') setClass(el, hitClass(c.hit_rate_hour));
      }
    }
    body.dataset.refreshed = String(Date.now());
  }

  function operatorPage() {
    every(refreshOperator);
    for (const form of $$('form.plan-form')) {
      form.addEventListener('submit', guarded(async (ev) => {
        ev.preventDefault();
        const memory = $('input', form).value.trim();
        await call('PATCH', opApi + 'caches/' + form.dataset.cache, { memory });
        reloadWith('Plan of cache ' + form.dataset.cache + ' set to ' + memory + '.');
      }));
    }
    for (const btn of $$('[data-set-enabled]')) {
      btn.addEventListener('click', guarded(async () => {
        const enabled = btn.dataset.setEnabled === 'true';
        if (!enabled && !(await confirmAction('Disable cache ' + btn.dataset.name + '? Its clients are disconnected and cannot authenticate until it is enabled again.', 'Disable cache'))) return;
        await call('PATCH', opApi + 'caches/' + btn.dataset.cache, { enabled });
        reloadWith('Cache ' + btn.dataset.name + (enabled ? ' enabled.' : ' disabled.'));
      }));
    }
    $('#create-cache').addEventListener('submit', guarded(async (ev) => {
      ev.preventDefault();
      const r = await call('POST', opApi + 'caches', { name: $('#new-name').value.trim(), memory: $('#new-memory').value.trim() });
      const env = Object.entries(r.env).map(([k, v]) => k + '=' + v).join('\n');
      try { sessionStorage.setItem('shoal-created', 'Cache ' + r.cache.id + ' (' + r.cache.name + ') created:\n' + env); } catch (e) { /* ignore */ }
      reloadWith('Cache ' + r.cache.name + ' created.');
    }));
    let created = null;
    try { created = sessionStorage.getItem('shoal-created'); sessionStorage.removeItem('shoal-created'); } catch (e) { /* ignore */ }
    if (created) { const pre = $('#created'); pre.textContent = created; pre.hidden = false; }
  }

  // ------------------------------------------------------------ start

  let flash = null;
  try { flash = sessionStorage.getItem('shoal-flash'); sessionStorage.removeItem('shoal-flash'); } catch (e) { /* ignore */ }
  if (flash) say(flash);

  const pages = {
    overview: overviewPage, introspection: introspectionPage, settings: settingsPage,
    alerts: alertsPage, operator: operatorPage,
  };
  if (pages[page]) guarded(pages[page])();
  body.dataset.ready = '1';
})();
