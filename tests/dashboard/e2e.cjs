// End-to-end test of the web dashboard in a real browser: Debian's
// chromium driven by playwright-core, against a multi-tenant shoal this
// script starts itself, with real memcached traffic. Run by
// scripts/dashboard-e2e.sh (which installs chromium and playwright-core);
// prints "N passed, M failed" and exits non-zero on any failure.
//
// Env: SHOAL_BIN (the binary), CHROMIUM (default /usr/bin/chromium),
// SCREENSHOTS (folder for the PNGs), NODE_PATH (where playwright-core is).
'use strict';

const { chromium } = require('playwright-core');
const { spawn, execFileSync } = require('child_process');
const fs = require('fs');
const http = require('http');
const net = require('net');
const os = require('os');
const path = require('path');

const BIN = process.env.SHOAL_BIN || 'target/release/shoal';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = process.env.SCREENSHOTS || 'target/dashboard-screenshots';
const TIMEOUT = 20000;

let passed = 0;
let failed = 0;
const cleanups = [];

function ok(name) {
  passed++;
  console.log('ok   ' + name);
}
function fail(name, why) {
  failed++;
  console.log('FAIL ' + name + ': ' + why);
}
function check(cond, name, why) {
  if (cond) ok(name);
  else fail(name, why || 'condition false');
  return cond;
}
async function step(name, fn) {
  try {
    await fn();
    ok(name);
  } catch (e) {
    fail(name, (e && e.stack) || String(e));
  }
}

// Polls `fn` until it returns a truthy value (or throws after `ms`).
async function until(what, fn, ms = TIMEOUT) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error('timed out waiting for ' + what + (last ? ': ' + last.message : ''));
    await new Promise((r) => setTimeout(r, 100));
  }
}

// ------------------------------------------------------------ the server

function startShoal(dir) {
  fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
  const log = path.join(dir, 'shoal.log');
  const out = fs.openSync(log, 'w');
  const child = spawn(BIN, ['--multi-tenant', '--data-dir', path.join(dir, 'data'), '--admin-addr', '127.0.0.1:0',
    '-l', '127.0.0.1', '-p', '0', '-t', '2', '--stats-interval', '1', '--introspection-sample', '1',
    // The alert step's webhook receiver is on 127.0.0.1.
    '--alert-allow-private'],
  { stdio: ['ignore', 'ignore', out] });
  cleanups.push(() => child.kill('SIGTERM'));
  return { child, log, dataDir: path.join(dir, 'data') };
}

async function addresses(server) {
  return until('shoal to listen', () => {
    if (server.child.exitCode !== null) throw new Error('shoal exited: ' + fs.readFileSync(server.log, 'utf8'));
    const text = fs.readFileSync(server.log, 'utf8');
    const data = /^shoal listening on (\S+)/m.exec(text);
    const admin = /^shoal admin listening on (\S+)/m.exec(text);
    return data && admin ? { data: data[1], admin: admin[1] } : null;
  }, 30000);
}

function createCache(server, admin, name, memory) {
  const out = execFileSync(BIN, ['cache', 'create', '--name', name, '--memory', memory, '--admin', admin,
    '--data-dir', server.dataDir], { encoding: 'utf8' });
  const id = /^Created cache (\d+)/m.exec(out);
  const user = /^MEMCACHIER_USERNAME=(\S+)/m.exec(out);
  const pass = /^MEMCACHIER_PASSWORD=(\S+)/m.exec(out);
  if (!id || !user || !pass) throw new Error('unexpected cache create output: ' + out);
  return { id: Number(id[1]), user: user[1], pass: pass[1], name };
}

function request(admin, method, urlPath, { auth, body, accept } = {}) {
  const [host, port] = admin.split(':');
  return new Promise((resolve, reject) => {
    const headers = { Connection: 'close' };
    if (auth) headers.Authorization = 'Basic ' + Buffer.from(auth.user + ':' + auth.pass).toString('base64');
    if (accept) headers.Accept = accept;
    const req = http.request({ host, port, method, path: urlPath, headers }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        let json = null;
        try { json = JSON.parse(text); } catch (e) { json = null; }
        resolve({ status: res.statusCode, json, text });
      });
    });
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

// ------------------------------------------------------------ memcached clients

// A text-protocol connection, authenticated with MemCachier's ASCII form.
class TextConn {
  static async open(addr, user, pass) {
    const c = new TextConn();
    const [host, port] = addr.split(':');
    c.sock = net.connect(Number(port), host);
    c.buf = '';
    c.waiters = [];
    c.sock.setEncoding('latin1');
    c.sock.on('data', (d) => { c.buf += d; c.wake(); });
    await new Promise((r, j) => { c.sock.once('connect', r); c.sock.once('error', j); });
    const r = await c.cmd('set ' + user + ' 0 0 ' + pass.length + '\r\n' + pass + '\r\n', /\r\n/);
    if (r.trim() !== 'STORED') throw new Error('ASCII auth: ' + r);
    return c;
  }
  wake() {
    for (const w of this.waiters.splice(0)) w();
  }
  // Sends `text`, waits until the buffer matches `end`, returns and consumes it.
  async cmd(text, end) {
    this.sock.write(text);
    return until('memcached reply', async () => {
      const m = end.exec(this.buf);
      if (!m) return null;
      const upto = m.index + m[0].length;
      const out = this.buf.slice(0, upto);
      this.buf = this.buf.slice(upto);
      return out;
    }, 10000);
  }
  set(k, v) { return this.cmd('set ' + k + ' 0 0 ' + v.length + '\r\n' + v + '\r\n', /\r\n/); }
  get(k) { return this.cmd('get ' + k + '\r\n', /END\r\n/); }
  del(k) { return this.cmd('delete ' + k + '\r\n', /\r\n/); }
  incr(k, n) { return this.cmd('incr ' + k + ' ' + n + '\r\n', /\r\n/); }
  touch(k) { return this.cmd('touch ' + k + ' 100\r\n', /\r\n/); }
  async stats() {
    const text = await this.cmd('stats\r\n', /END\r\n/);
    const out = {};
    for (const line of text.split('\r\n')) {
      const m = /^STAT (\S+) (\S+)/.exec(line);
      if (m) out[m[1]] = m[2];
    }
    return out;
  }
  close() { this.sock.destroy(); }
}

// SASL PLAIN over the binary protocol: the status of the auth answer.
function saslAuth(addr, user, pass) {
  const [host, port] = addr.split(':');
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(port), host);
    const key = Buffer.from('PLAIN');
    const value = Buffer.from('\0' + user + '\0' + pass);
    const hdr = Buffer.alloc(24);
    hdr[0] = 0x80;
    hdr[1] = 0x21;
    hdr.writeUInt16BE(key.length, 2);
    hdr.writeUInt32BE(key.length + value.length, 8);
    let got = Buffer.alloc(0);
    sock.on('connect', () => sock.write(Buffer.concat([hdr, key, value])));
    sock.on('data', (d) => {
      got = Buffer.concat([got, d]);
      if (got.length >= 24) {
        sock.destroy();
        resolve(got.readUInt16BE(6));
      }
    });
    sock.on('error', reject);
    sock.setTimeout(10000, () => { sock.destroy(); reject(new Error('SASL timeout')); });
  });
}

// ------------------------------------------------------------ the browser

async function main() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-dash-'));
  cleanups.push(() => fs.rmSync(tmp, { recursive: true, force: true }));
  fs.mkdirSync(SHOTS, { recursive: true });

  const server = startShoal(tmp);
  const { data, admin } = await addresses(server);
  const origin = 'http://' + admin;
  const token = fs.readFileSync(path.join(server.dataDir, 'operator.token'), 'utf8').trim();
  const web = createCache(server, admin, 'web', '32MB');
  const jobs = createCache(server, admin, 'jobs', '16MB');
  ok('shoal started at ' + data + ', admin ' + admin + '; caches ' + web.id + ', ' + jobs.id);

  // A local webhook receiver for the alert.
  const hooks = [];
  const receiver = http.createServer((req, res) => {
    let text = '';
    req.on('data', (d) => { text += d; });
    req.on('end', () => {
      hooks.push({ path: req.url, body: text });
      res.end('ok');
    });
  });
  await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
  cleanups.push(() => receiver.close());
  const hookUrl = 'http://127.0.0.1:' + receiver.address().port + '/hook';

  // Real traffic on the web cache.
  const mc = await TextConn.open(data, web.user, web.pass);
  cleanups.push(() => mc.close());
  for (let i = 0; i < 60; i++) await mc.set('user:' + i, 'v'.repeat(100 + i));
  for (let i = 0; i < 40; i++) await mc.set('page:' + i, 'p'.repeat(300));
  for (let i = 0; i < 90; i++) await mc.get('user:' + (i % 75)); // 15 misses
  await mc.set('counter', '5');
  await mc.incr('counter', 3);
  await mc.incr('nope', 1);
  await mc.del('page:1');
  await mc.del('page:none');
  await mc.touch('user:3');
  const other = await TextConn.open(data, jobs.user, jobs.pass);
  await other.set('job:1', 'x');
  other.close();

  // The first dashboard link.
  const rot1 = await request(admin, 'POST', '/api/v2/caches/' + web.id + '/rotate_sso', { auth: web });
  check(rot1.status === 200 && typeof rot1.json === 'string', 'rotate_sso answers a link', JSON.stringify(rot1));
  const link1 = rot1.json;
  const asJson = await request(admin, 'GET', link1);
  check(asJson.status === 200 && asJson.json && asJson.json.id === web.id, 'the link still answers JSON to API clients', asJson.text);

  const profile = fs.mkdtempSync(path.join(tmp, 'profile-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 800 },
  });
  cleanups.unshift(() => context.close().catch(() => {}));
  const requests = [];
  context.on('request', (r) => requests.push(r.url()));
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(TIMEOUT);
  const consoleErrors = [];
  let expectErrors = false;
  page.on('console', (m) => { if (m.type() === 'error' && !expectErrors) consoleErrors.push(m.text() + ' @ ' + page.url()); });
  page.on('pageerror', (e) => consoleErrors.push('page error: ' + e.message + ' @ ' + page.url()));
  page.on('dialog', (d) => d.dismiss());

  const ready = () => page.waitForSelector('body[data-ready="1"]');
  const shot = async (name) => {
    await page.screenshot({ path: path.join(SHOTS, name + '.png'), fullPage: true });
  };
  // Waits until the page's script has refreshed its numbers once more.
  const refreshed = async () => {
    const before = await page.evaluate(() => document.body.dataset.refreshed || '0');
    await page.waitForFunction((b) => (document.body.dataset.refreshed || '0') !== b, before);
  };

  // ---- the cache's dashboard through its link
  await step('the dashboard link opens the dashboard in a browser', async () => {
    await page.goto(origin + link1 + '&refresh=1000');
    await page.waitForURL(origin + '/dashboard/caches/' + web.id);
    await ready();
    const h1 = await page.textContent('h1');
    if (!h1.includes('web')) throw new Error('heading: ' + h1);
  });

  await step('overview numbers equal `stats` on a data connection', async () => {
    const keys = ['curr_items', 'cmd_get', 'get_hits', 'get_misses', 'cmd_set', 'delete_hits', 'delete_misses',
      'incr_hits', 'incr_misses', 'touch_hits', 'curr_connections', 'total_connections', 'evictions', 'cmd_flush',
      'bytes', 'limit_maxbytes'];
    // The traffic has stopped; a connection closed just before may still be
    // counted by one read and not the next, so compare a few times.
    let stats, wrong = [];
    for (let round = 0; round < 3; round++) {
      stats = await mc.stats();
      await page.reload();
      await ready();
      const shown = await page.evaluate(() => {
        const out = {};
        for (const el of document.querySelectorAll('[data-stat]')) out[el.dataset.stat] = el.dataset.value;
        return out;
      });
      wrong = keys.filter((k) => String(shown[k]) !== String(stats[k]))
        .map((k) => k + ': page ' + shown[k] + ' stats ' + stats[k]);
      if (wrong.length === 0) break;
    }
    if (wrong.length) throw new Error(wrong.join(', '));
    const hitText = await page.textContent('[data-stat="hit_rate_hour"]');
    const expect = ((Number(stats.get_hits) / Number(stats.cmd_get)) * 100).toFixed(1) + '%';
    if (hitText.trim() !== expect) throw new Error('hit rate ' + hitText + ' expected ' + expect);
    const cls = await page.getAttribute('#card-hit-rate', 'class');
    if (!cls.includes('good')) throw new Error('hit rate card class ' + cls + ' (83% is green)');
  });

  await step('the graph has drawn points after two samples', async () => {
    await page.waitForFunction(() => {
      const u = window.shoalCharts && window.shoalCharts.main;
      return u && u.data[0].length >= 1 && u.data[1].some((v) => v !== null && v > 0);
    }, null, { timeout: TIMEOUT });
    const painted = await page.evaluate(() => {
      const c = document.querySelector('#chart-main canvas');
      const ctx = c.getContext('2d');
      const px = ctx.getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < px.length; i += 4) if (px[i + 3] > 0 && px[i + 2] > 150 && px[i] < 90) n++;
      return n;
    });
    if (painted < 5) throw new Error('no series pixels on the canvas (' + painted + ')');
    await page.check('input[name="range-main"][value="day"]');
    await page.selectOption('#series-b-main', 'get_rate');
    await page.waitForFunction(() => window.shoalCharts.main.series.length === 3 &&
      window.shoalCharts.main.series[2].label === 'Gets/s');
    await page.selectOption('#series-b-main', 'hit_rate');
  });
  await shot('overview');

  await step('latency percentiles per command class are shown', async () => {
    await until('latency rows', async () => (await page.$$('tbody[data-latency] tr th')).length >= 2);
  });

  // ---- settings: a credential added in the page authenticates over SASL
  let newCred = null;
  await step('a credential added in the page authenticates over SASL', async () => {
    await page.click('nav a[href$="/settings"]');
    await ready();
    const before = await page.$$eval('#credentials tbody tr', (rows) => rows.map((r) => r.dataset.username));
    await page.click('#add-credential');
    await page.waitForFunction((n) => document.querySelectorAll('#credentials tbody tr').length === n + 1, before.length);
    await ready();
    newCred = await page.$$eval('#credentials tbody tr', (rows, b) => {
      const r = rows.find((x) => !b.includes(x.dataset.username));
      return { user: r.dataset.username, pass: r.querySelector('.password').textContent.trim() };
    }, before);
    const status = await saslAuth(data, newCred.user, newCred.pass);
    if (status !== 0) throw new Error('SASL status ' + status);
    const bad = await saslAuth(data, newCred.user, newCred.pass + 'x');
    if (bad === 0) throw new Error('a wrong password authenticated');
  });
  await step('capability checkboxes change the credential', async () => {
    const box = '#credentials tr[data-username="' + newCred.user + '"] input[data-cap="write_capability"]';
    await page.uncheck(box);
    await until('write capability off', async () => {
      const r = await request(admin, 'GET', '/api/v2/caches/' + web.id + '/credentials', { auth: web });
      const c = r.json.find((x) => x.sasl_username === newCred.user);
      return c && c.write_capability === false && c.flush_capability === true;
    });
  });
  await shot('settings');
  await step('credentials are promoted and deleted in the page', async () => {
    const primary = async () => {
      const r = await request(admin, 'GET', '/api/v2/caches/' + web.id + '/credentials', { auth: web });
      return r.json.find((c) => c.primary).sasl_username;
    };
    await page.click('[data-promote="' + newCred.user + '"]');
    await page.waitForSelector('#credentials tr[data-username="' + web.user + '"] [data-promote]');
    await ready();
    if ((await primary()) !== newCred.user) throw new Error('primary is ' + (await primary()));
    await page.click('[data-promote="' + web.user + '"]');
    await page.waitForSelector('[data-delete-cred="' + newCred.user + '"]');
    await ready();
    await page.click('[data-delete-cred="' + newCred.user + '"]');
    await page.click('#confirm-ok');
    await page.waitForSelector('#credentials tr[data-username="' + newCred.user + '"]', { state: 'detached' });
    await ready();
    if ((await saslAuth(data, newCred.user, newCred.pass)) === 0) throw new Error('a deleted credential authenticated');
  });

  // ---- alerts: created in the page, fired to the local receiver
  await step('an alert created in the page fires to a local webhook', async () => {
    await page.click('nav a[href$="/alerts"]');
    await ready();
    await page.selectOption('#config-type', 'webhook');
    await page.fill('#config-url', hookUrl);
    await page.click('#config-form button[type="submit"]');
    await page.waitForSelector('#configs tr[data-config-id]');
    await ready();
    await page.selectOption('#alert-type', 'hit_rate');
    await page.fill('#alert-threshold', '40');
    await page.fill('#alert-description', 'e2e hit rate');
    await page.click('#alert-submit');
    await page.waitForSelector('#alerts tr[data-alert-id]');
    await ready();
    // Edit it in the page: threshold 40 → 90.
    await page.click('[data-edit-alert]');
    await page.fill('#alert-threshold', '90');
    await page.click('#alert-submit');
    await page.waitForFunction(() => document.querySelector('#alerts td.num') &&
      document.querySelector('#alerts td.num').textContent.trim() === '90%');
    await ready();
    // Misses only: the hit rate of the next interval is 0 % < 90 %.
    await until('the webhook to be called', async () => {
      for (let i = 0; i < 20; i++) await mc.get('missing:' + i);
      return hooks.length > 0;
    }, 30000);
    const body = JSON.parse(hooks[0].body);
    if (body.cache_id !== web.id || body.trigger_type !== 'hit_rate' || body.trigger_threshold !== 90) {
      throw new Error('webhook body ' + hooks[0].body);
    }
    // The page refreshes the alert's state by itself.
    await page.waitForSelector('#alerts [data-alert-state] .badge:text("firing")');
  });
  await shot('alerts');
  await step('an alert and a delivery config are deleted in the page', async () => {
    await page.click('[data-delete-alert]');
    await page.click('#confirm-ok');
    await page.waitForSelector('#alerts tr[data-alert-id]', { state: 'detached' });
    await ready();
    await page.click('[data-delete-config]');
    await page.click('#confirm-ok');
    await page.waitForSelector('#configs tr[data-config-id]', { state: 'detached' });
    const r = await request(admin, 'GET', '/api/v2/caches/' + web.id + '/alerts', { auth: web });
    if (r.json.length !== 0) throw new Error('alerts left: ' + r.text);
  });

  // ---- introspection
  await step('introspection: popular items, recent log, key lookup, watched prefix', async () => {
    await page.click('nav a[href$="/introspection"]');
    await ready();
    await until('popular keys', async () => (await page.$$('table[data-tops="most_hit_keys"] code')).length > 0);
    await until('recent log', async () => (await page.$$('#recent code')).length > 0);
    await page.fill('#key-input', 'user:7');
    await page.click('#key-form button');
    await page.waitForSelector('#key-result table');
    const inCache = await page.textContent('#key-result table');
    if (!inCache.includes('yes')) throw new Error('key_stats: ' + inCache);
    await page.fill('#prefix-input', 'user:');
    await page.click('#prefix-form button');
    await page.waitForSelector('li[data-prefix-id] code');
    await ready();
    for (let i = 0; i < 10; i++) await mc.get('user:' + i);
    await page.waitForFunction(() => Object.keys(window.shoalCharts).some((k) => k.startsWith('prefix-')));
  });
  await shot('introspection');
  await step('a watched prefix is removed in the page', async () => {
    await page.click('[data-unwatch]');
    await page.click('#confirm-ok');
    await page.waitForSelector('li[data-prefix-id]', { state: 'detached' });
    await ready();
    const r = await request(admin, 'GET', '/api/v2/caches/' + web.id + '/introspection/prefixes', { auth: web });
    if (r.json.length !== 0) throw new Error('prefixes left: ' + r.text);
  });

  // ---- flush
  await step('the Flush button empties the cache', async () => {
    await page.click('nav a[href="/dashboard/caches/' + web.id + '"]');
    await ready();
    const before = Number(await page.getAttribute('[data-stat="curr_items"]', 'data-value'));
    if (!(before > 0)) throw new Error('nothing to flush: ' + before);
    await page.click('#flush-button');
    await page.waitForSelector('#confirm-dialog[open]');
    await shot('flush-confirm');
    await page.click('#confirm-ok');
    await page.waitForSelector('#status .msg:text("Cache flushed.")');
    const got = await mc.get('user:1');
    if (got !== 'END\r\n') throw new Error('user:1 still there: ' + got);
    const stats = await mc.stats();
    if (stats.curr_items !== '0') throw new Error('curr_items ' + stats.curr_items);
    await page.waitForFunction(() => document.querySelector('[data-stat="curr_items"]').dataset.value === '0');
  });

  await step('keyboard: the first Tab reaches the skip link, every field has a label', async () => {
    await page.goto(origin + '/dashboard/caches/' + web.id + '/alerts');
    await ready();
    await page.keyboard.press('Tab');
    const first = await page.evaluate(() => document.activeElement.textContent.trim());
    if (first !== 'Skip to content') throw new Error('first focus: ' + first);
    for (const url of ['', '/settings', '/introspection', '/alerts']) {
      await page.goto(origin + '/dashboard/caches/' + web.id + url);
      await ready();
      const unlabeled = await page.evaluate(() => Array.from(document.querySelectorAll('input:not([type=hidden]), select, button'))
        .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.textContent.trim())
        .map((el) => el.outerHTML.slice(0, 80)));
      if (unlabeled.length) throw new Error('unlabeled on ' + url + ': ' + unlabeled.join(' | '));
    }
  });

  await step('phone width: no sideways scrolling', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    for (const url of ['', '/settings', '/introspection', '/alerts']) {
      await page.goto(origin + '/dashboard/caches/' + web.id + url);
      await ready();
      const over = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      if (over > 0) {
        const wide = await page.evaluate(() => Array.from(document.querySelectorAll('body *'))
          .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1 &&
            e.parentElement.getBoundingClientRect().right <= window.innerWidth + 1)
          .slice(0, 5).map((e) => e.tagName + '#' + e.id + '.' + e.className));
        throw new Error(url + ' overflows by ' + over + ' px: ' + wide.join(', '));
      }
    }
    await page.goto(origin + '/dashboard/caches/' + web.id);
    await ready();
    await shot('overview-phone');
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  // ---- the rotated link stops working
  await step('a rotated dashboard link stops working', async () => {
    await page.goto(origin + '/dashboard/caches/' + web.id + '/settings');
    await ready();
    await page.click('#rotate-sso');
    await page.click('#confirm-ok');
    const link2 = await page.getAttribute('#new-sso-link', 'href');
    if (!link2 || link2 === link1) throw new Error('no new link: ' + link2);
    // The session that rotated goes on.
    await page.reload();
    await ready();
    expectErrors = true; // the browser logs the 401 of the old link
    const old = await page.goto(origin + link1);
    if (old.status() !== 401) throw new Error('old link answered ' + old.status());
    const text = await page.textContent('main');
    if (!text.includes('not valid')) throw new Error('old link page: ' + text);
    const api = await request(admin, 'GET', link1);
    if (api.status !== 401) throw new Error('old link over the API: ' + api.status);
    expectErrors = false;
    const fresh = await page.goto(origin + link2);
    if (fresh.status() !== 200) throw new Error('new link answered ' + fresh.status());
    await page.waitForURL(origin + '/dashboard/caches/' + web.id);
    await ready();
  });

  // ---- the operator
  await step('operator sign-in sets an HttpOnly SameSite=Strict cookie', async () => {
    await page.goto(origin + '/dashboard/');
    await page.waitForURL(origin + '/dashboard/login');
    await shot('login');
    await page.fill('#token', 'wrong');
    expectErrors = true; // the browser logs the 401
    await page.click('button[type="submit"]');
    await page.waitForSelector('p[role="alert"]');
    expectErrors = false;
    await page.fill('#token', token);
    await page.click('button[type="submit"]');
    await page.waitForURL(origin + '/dashboard/');
    await ready();
    const cookies = await context.cookies(origin + '/dashboard/');
    const c = cookies.find((x) => x.name === 'shoal_op');
    if (!c || !c.httpOnly || c.sameSite !== 'Strict') throw new Error('cookie ' + JSON.stringify(c));
    if (c.value.includes(token)) throw new Error('the cookie carries the token itself');
  });

  await step('the operator overview lists every cache', async () => {
    const listed = await page.$$eval('#caches tr[data-cache-id]', (rows) => rows.map((r) => Number(r.dataset.cacheId)));
    const all = (await request(admin, 'GET', '/admin/v1/caches', {})).status; // 401 without a token
    if (all !== 401) throw new Error('operator API without token: ' + all);
    for (const c of [web, jobs]) if (!listed.includes(c.id)) throw new Error('cache ' + c.id + ' missing: ' + listed);
    const grade = await page.textContent('[data-status="status"]');
    if (!['green', 'yellow', 'red'].includes(grade.trim())) throw new Error('status ' + grade);
    await page.setViewportSize({ width: 390, height: 844 });
    const over = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    await shot('operator-phone');
    await page.setViewportSize({ width: 1280, height: 800 });
    if (over > 0) throw new Error('operator page overflows a phone by ' + over + ' px');
  });
  await shot('operator');

  await step('the operator creates a cache, changes a plan, disables and enables', async () => {
    await page.fill('#new-name', 'fresh');
    await page.fill('#new-memory', '8MB');
    await page.click('#create-cache button');
    await page.waitForSelector('#created:not([hidden])');
    await ready();
    const created = await page.textContent('#created');
    if (!/MEMCACHIER_USERNAME=/.test(created)) throw new Error('created: ' + created);
    const n = await page.$$eval('#caches tr[data-cache-id]', (rows) => rows.length);
    if (n !== 3) throw new Error(n + ' rows');
    await page.fill('#plan-' + jobs.id, '48MB');
    await page.click('form.plan-form[data-cache="' + jobs.id + '"] button');
    await page.waitForFunction((id) => {
      const el = document.querySelector('tr[data-cache-id="' + id + '"] [data-cache-stat="plan"]');
      return el && el.dataset.value === String(48 << 20);
    }, jobs.id);
    await ready();
    await page.click('button[data-set-enabled="false"][data-cache="' + jobs.id + '"]');
    await page.click('#confirm-ok');
    await page.waitForSelector('button[data-set-enabled="true"][data-cache="' + jobs.id + '"]');
    await ready();
    if ((await saslAuth(data, jobs.user, jobs.pass)) === 0) throw new Error('a disabled cache authenticated');
  });

  await step('a disabled cache is enabled from its own settings page', async () => {
    await page.goto(origin + '/dashboard/caches/' + jobs.id + '/settings');
    await ready();
    await shot('settings-disabled');
    await page.click('#enable-cache');
    await page.waitForSelector('#enable-cache', { state: 'detached' });
    await ready();
    if ((await saslAuth(data, jobs.user, jobs.pass)) !== 0) throw new Error('re-enabled cache refused');
    await page.goto(origin + '/dashboard/');
    await ready();
    await page.waitForSelector('button[data-set-enabled="false"][data-cache="' + jobs.id + '"]');
  });

  await step('the operator opens a cache\'s dashboard', async () => {
    await page.click('#caches tr[data-cache-id="' + jobs.id + '"] a.button');
    await page.waitForURL(origin + '/dashboard/caches/' + jobs.id);
    await ready();
    const items = await page.getAttribute('[data-stat="curr_items"]', 'data-value');
    if (items !== '1') throw new Error('jobs items ' + items);
  });

  await step('CSRF: an action without the session\'s token is refused', async () => {
    expectErrors = true; // the browser logs the 403
    const r = await page.evaluate(async (id) => {
      const resp = await fetch('/dashboard/caches/' + id + '/api/flush', { method: 'POST' });
      return resp.status;
    }, jobs.id);
    expectErrors = false;
    if (r !== 403) throw new Error('status ' + r);
  });

  check(consoleErrors.length === 0, 'no console errors', consoleErrors.join('\n'));
  const foreign = requests.filter((u) => !u.startsWith(origin + '/') && !u.startsWith('data:'));
  check(foreign.length === 0 && requests.length > 20, 'no request leaves the server\'s origin (' + requests.length + ' requests)', foreign.join('\n'));
}

// Stopped from outside (the runner's timeout): stop shoal too.
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    console.log('FAIL stopped by ' + sig);
    for (const c of cleanups) {
      try { c(); } catch (e) { /* best effort */ }
    }
    console.log(passed + ' passed, ' + (failed + 1) + ' failed');
    process.exit(1);
  });
}

main()
  .catch((e) => fail('test run', (e && e.stack) || String(e)))
  .finally(async () => {
    for (const c of cleanups) {
      try { await c(); } catch (e) { /* best effort */ }
    }
    console.log(passed + ' passed, ' + failed + ' failed');
    process.exit(failed === 0 && passed > 0 ? 0 : 1);
  });
