// End-to-end test of the web client in a real browser against a real origin.
//
// Starts `confab serve` (CONFAB_BIN, default target/debug/confab) on 127.0.0.1:0 with a temporary data directory, serving
// web/dist (built first if missing), plus a loopback fixture page for link previews, and drives
// Debian's Chromium through playwright-core with two users in two browser contexts. Their
// WebSockets are routed through Playwright (routeWebSocket) so a step can take one user offline:
// the context goes offline for HTTP and every socket of the page is closed until it comes back.
// Screenshots of the main screens go to docs/screenshots/ with UPDATE_SCREENSHOTS=1, else to a
// temporary directory (so a test run leaves the committed pictures alone).
//
// Env: CONFAB_BIN (the server binary; default target/debug/confab, built when missing),
// CHROMIUM (default /usr/bin/chromium), E2E_HEADFUL=1 to watch, E2E_KEEP=1 to keep the data dir,
// E2E_SKIP=regex to leave out the steps whose names match.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ROOT = path.resolve(WEB, '..');
const BIN = process.env.CONFAB_BIN ? path.resolve(process.env.CONFAB_BIN) : path.join(ROOT, 'target', 'debug', 'confab');
const SHOTS = process.env.UPDATE_SCREENSHOTS
  ? path.join(ROOT, 'docs', 'screenshots')
  : fs.mkdtempSync(path.join(os.tmpdir(), 'confab-screenshots-'));
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const PASSWORD = 'correct horse battery staple';

function log(...args) {
  console.log(...args);
}

// ---- prerequisites -------------------------------------------------------------------------

function ensureBuilt() {
  if (!fs.existsSync(path.join(WEB, 'dist', 'index.html'))) {
    log('== web/dist missing: npm run build');
    const r = spawnSync('npm', ['run', 'build'], { cwd: WEB, stdio: 'inherit' });
    if (r.status !== 0) throw new Error('npm run build failed');
  }
  if (!fs.existsSync(BIN)) {
    if (process.env.CONFAB_BIN) throw new Error(`CONFAB_BIN=${process.env.CONFAB_BIN}: no such file`);
    log('== target/debug/confab missing: cargo build --bin confab');
    const r = spawnSync('cargo', ['build', '--bin', 'confab'], { cwd: ROOT, stdio: 'inherit' });
    if (r.status !== 0) throw new Error('cargo build failed');
  }
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found (apt-get install -y chromium)`);
}

// ---- the origin ------------------------------------------------------------------------------

class Origin {
  constructor(dataDir, env) {
    this.dataDir = dataDir;
    this.env = env;
    this.proc = null;
    this.url = null;
    this.port = 0;
  }

  async start(port = 0) {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.spawn(port);
        return;
      } catch (e) {
        // The port can be briefly unavailable right after a stop.
        if (port === 0 || attempt >= 20) throw e;
        await sleep(250);
      }
    }
  }

  async spawn(port) {
    const args = [
      'serve',
      '--listen', `127.0.0.1:${port}`,
      '--data-dir', this.dataDir,
      '--web-dir', path.join(WEB, 'dist'),
      '--send-rate', '1000',
      '--frame-rate', '1000',
      '--auth-burst-per-address', '1000',
      // The tests register many users; the invite test starts its own origin in invite mode.
      '--registration', this.env?.CONFAB_REGISTRATION ?? 'open',
    ];
    const proc = spawn(BIN, args, {
      cwd: ROOT,
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn', ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const stderr = [];
    proc.stderr.on('data', (d) => {
      stderr.push(d);
      if (process.env.E2E_VERBOSE) process.stderr.write(d);
    });
    const lines = readline.createInterface({ input: proc.stdout });
    const first = await Promise.race([
      once(lines, 'line').then(([l]) => l),
      once(proc, 'exit').then(() => null),
      sleep(30_000).then(() => null),
    ]);
    const m = first && /running at (http:\/\/\S+)/.exec(first);
    if (!m) {
      proc.kill('SIGKILL');
      throw new Error(`confab did not start: ${first ?? ''}\n${Buffer.concat(stderr).toString().slice(-2000)}`);
    }
    lines.on('line', () => {});
    this.proc = proc;
    this.url = m[1];
    this.port = Number(new URL(this.url).port);
  }

  /** SIGTERM and wait: the graceful path (sockets get close 1001, queued messages are written). */
  async stop() {
    if (!this.proc) return;
    const p = this.proc;
    this.proc = null;
    const exited = once(p, 'exit');
    p.kill('SIGTERM');
    const done = await Promise.race([exited.then(() => true), sleep(20_000).then(() => false)]);
    if (!done) {
      p.kill('SIGKILL');
      await exited;
    }
  }
}

// A loopback page for link previews, and a tiny image for its og:image.
function startFixture(png) {
  const server = http.createServer((req, res) => {
    if (req.url === '/image.png') {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': png.length });
      res.end(png);
      return;
    }
    const body = `<!doctype html><html><head><title>Fixture page</title>
<meta property="og:title" content="The Confab fixture article">
<meta property="og:description" content="A local page whose preview card the e2e test expects.">
<meta property="og:site_name" content="Fixture News">
<meta property="og:image" content="http://${req.headers.host}/image.png">
</head><body><h1>Fixture</h1></body></html>`;
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- page helpers ------------------------------------------------------------------------------

async function register(page, origin, name) {
  await page.goto(origin);
  await page.getByRole('tab', { name: 'Create account' }).click();
  const form = page.getByRole('form', { name: 'Create account' });
  await form.getByLabel('Username').fill(name);
  await form.getByLabel('Email').fill(`${name}@example.test`);
  await form.getByLabel('Password').fill(PASSWORD);
  await form.getByRole('button', { name: 'Create account' }).click();
  await live(page);
}

async function live(page, timeout = 20_000) {
  await page.locator('[data-testid=connection-state][data-state=live]').waitFor({ timeout });
}

async function createRoom(page, name) {
  await page.getByRole('button', { name: 'New room' }).click();
  await page.getByLabel('Room name').fill(name);
  await page.getByRole('button', { name: 'Create room' }).click();
  await roomShown(page, name);
}

async function joinRoom(page, name) {
  await page.getByRole('button', { name: 'Discover' }).click();
  await page.getByLabel('Search rooms to join').fill(name);
  await page.getByRole('button', { name: `Join ${name}`, exact: true }).click();
  await roomShown(page, name);
}

async function openRoom(page, name) {
  await page.locator(`[data-testid=room-link][data-room-name="${name}"]`).click();
  await roomShown(page, name);
}

async function roomShown(page, name) {
  await page.locator('[data-testid=room-title]', { hasText: `# ${name}` }).waitFor();
  await page.locator('[data-testid=message-list]').waitFor();
}

async function send(page, text) {
  const box = page.getByRole('textbox', { name: /^Message / });
  await box.fill(text);
  await box.press('Enter');
}

/** The message whose own text has `text` (not a reply quoting it). */
function message(page, text) {
  return page.locator('[data-testid=message]').filter({ has: page.locator('[data-testid=message-body]', { hasText: text }) });
}

function roomLink(page, name) {
  return page.locator(`[data-testid=room-link][data-room-name="${name}"]`);
}

/** Picks an item of a message's actions menu (Reply, Pin, Unpin, Edit, Delete). */
async function messageAction(page, text, item) {
  await messageMenu(page, text);
  await page.getByRole('menuitem', { name: item, exact: true }).click();
}

/** Reacts to a message through its picker: one of the common emoji, or typed in the field. */
async function react(page, text, emoji, { typed = false } = {}) {
  const m = message(page, text);
  await m.hover();
  await m.getByRole('button', { name: 'Add reaction' }).click();
  if (typed) {
    await page.getByLabel('Any emoji').fill(emoji);
    await page.getByRole('button', { name: 'React', exact: true }).click();
  } else {
    await page.getByRole('button', { name: `React with ${emoji}` }).click();
  }
}

function chip(page, text, emoji) {
  return message(page, text).locator(`[data-testid=reaction][data-emoji="${emoji}"]`);
}

/** Each reaction chip of a message as `emoji count`, in order. */
async function chips(page, text) {
  return message(page, text)
    .locator('[data-testid=reaction]')
    .evaluateAll((els) => els.map((e) => `${e.dataset.emoji} ${e.dataset.count}`));
}

/** Opens the room settings of the room on screen and returns the dialog. */
async function roomSettings(page) {
  await page.getByRole('button', { name: 'Room settings' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByRole('tab', { name: 'Members' }).waitFor();
  return dialog;
}

/** Through the room settings: adds a user by searching for them. */
async function addMember(page, username) {
  const dialog = await roomSettings(page);
  await dialog.getByLabel('Search people to add').fill(username);
  await dialog.getByRole('button', { name: `Add ${username}`, exact: true }).click();
  await dialog.locator(`[data-testid=settings-member][data-username=${username}]`).waitFor();
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' });
}

/** Through the room settings: one of the actions on a member (confirm() accepted). */
async function memberAction(page, username, item) {
  const dialog = await roomSettings(page);
  await dialog.getByRole('button', { name: `Actions for ${username}` }).click();
  await page.getByRole('menuitem', { name: item, exact: true }).click();
  return dialog;
}

async function closeDialog(page) {
  await page.keyboard.press('Escape');
  await page.getByRole('dialog').waitFor({ state: 'detached' });
}

function notice(page, text) {
  return page.locator('[data-testid=notice]', { hasText: text });
}

/** Searches messages in the open panel until a result shows (the index can lag a moment). */
async function searchFor(page, q, { expectNone = false } = {}) {
  const input = page.locator('[data-testid=search-panel]').getByRole('textbox', { name: 'Search messages' });
  for (let i = 0; ; i++) {
    await input.fill('');
    await input.fill(q);
    const found = page.locator('[data-testid=search-result]').first();
    const none = page.getByText('No messages match.');
    await found.or(none).first().waitFor({ timeout: 10_000 });
    if (expectNone || (await found.count()) > 0) {
      if (i > 0) log(`   search "${q}": found after ${i} retries`);
      return;
    }
    if (i >= 10) throw new Error(`no search result for "${q}"`);
    await sleep(500);
  }
}

/** Opens a message's actions menu: with the mouse, or with the keyboard (Tab focus, Enter). */
async function messageMenu(page, text, { keyboard = false } = {}) {
  const m = message(page, text);
  const button = m.getByRole('button', { name: 'Message actions' });
  if (keyboard) {
    await button.focus();
    await page.keyboard.press('Enter');
  } else {
    await m.hover();
    await button.click();
  }
}

/** Edits one of the page user's messages through its menu. */
async function editMessage(page, text, body, opts = {}) {
  await messageMenu(page, text, opts);
  if (opts.keyboard) {
    // Arrow keys to Edit (Reply and Pin come first), Enter picks it.
    const edit = page.getByRole('menuitem', { name: 'Edit' });
    await edit.waitFor();
    for (let i = 0; i < 4 && (await edit.getAttribute('data-highlighted')) === null; i++) await page.keyboard.press('ArrowDown');
    await page.keyboard.press('Enter');
  } else {
    await page.getByRole('menuitem', { name: 'Edit' }).click();
  }
  const edit = page.getByRole('textbox', { name: 'Edit message' });
  await edit.fill(body);
  await edit.press('Enter');
}

/** Deletes one of the page user's messages through its menu (the confirm() is accepted). */
async function deleteMessage(page, text) {
  await messageMenu(page, text);
  await page.getByRole('menuitem', { name: 'Delete' }).click();
}

/** What the page shows of the room on screen: each message's seq and text, in order. */
async function shownLog(page) {
  return page
    .locator('[data-testid=message]')
    .evaluateAll((els) => els.map((e) => `${e.dataset.seq}: ${e.querySelector('[data-testid=message-body]')?.textContent ?? ''}`));
}

/** Waits until two pages show the same messages with the same texts (and returns them). */
async function sameLog(a, b, what, timeout = 10_000) {
  const t0 = Date.now();
  for (;;) {
    const [x, y] = [await shownLog(a), await shownLog(b)];
    if (JSON.stringify(x) === JSON.stringify(y)) return x;
    if (Date.now() - t0 > timeout) throw new Error(`${what}: the pages differ:\n   ${x.join(' | ')}\n   ${y.join(' | ')}`);
    await sleep(200);
  }
}

/** Waits until the page has no edit or deletion waiting for its ack. */
async function nothingPending(page, timeout = 15_000) {
  await page.waitForFunction(() => !document.querySelector('[data-testid=message][data-pending]'), null, { timeout });
}

/**
 * Routes the page's WebSockets through Playwright so the test can cut them: `cut()` takes the
 * context offline (HTTP fails) and closes every socket of the page, and refuses new ones until
 * `restore()`; `leaked` counts server frames that came while cut (held back; must stay 0, as
 * every socket was closed).
 */
async function cuttable(page) {
  // offlineUntil: until when the browser's log of failed requests is expected (a little after
  // restore(), for requests that failed just before it).
  // frames: the server's frames to the page, kept while `recording` (to check a replay).
  const net = { offline: false, offlineUntil: 0, sockets: new Set(), leaked: 0, refused: 0, recording: false, frames: [] };
  await page.routeWebSocket(/\/ws$/, (ws) => {
    if (net.offline) {
      net.refused++;
      void ws.close({ code: 4000, reason: 'offline (test)' });
      return;
    }
    const server = ws.connectToServer();
    const pair = { ws, server };
    net.sockets.add(pair);
    ws.onMessage((m) => server.send(m));
    server.onMessage((m) => {
      if (net.offline) {
        net.leaked++; // from a socket the cut missed: counted, held back
        return;
      }
      if (net.recording) net.frames.push(JSON.parse(String(m)));
      ws.send(m);
    });
    ws.onClose((code, reason) => {
      net.sockets.delete(pair);
      void server.close({ code, reason }).catch(() => {});
    });
    server.onClose((code, reason) => {
      net.sockets.delete(pair);
      void ws.close({ code, reason }).catch(() => {}); // the page sees the server's close code
    });
  });
  return {
    net,
    async cut() {
      net.offline = true;
      net.offlineUntil = Infinity;
      await page.context().setOffline(true);
      for (const { ws, server } of [...net.sockets]) {
        await server.close({ code: 1000, reason: 'offline (test)' }).catch(() => {});
        await ws.close({ code: 4000, reason: 'offline (test)' }).catch(() => {});
      }
      net.sockets.clear();
      net.leaked = 0;
    },
    async restore() {
      await page.context().setOffline(false);
      net.offline = false;
      net.offlineUntil = Date.now() + 3_000;
    },
    get open() {
      return net.sockets.size;
    },
  };
}

/** Records the page's requests for a room's history (`GET /api/rooms/{id}/messages`). */
function historyLoads(page) {
  const seen = [];
  page.on('request', (r) => {
    if (/\/api\/rooms\/[^/]+\/messages/.test(r.url())) seen.push(r.url());
  });
  return seen;
}

async function seen(page, text, timeout = 15_000) {
  await message(page, text).first().waitFor({ timeout });
}

async function countOf(page, text) {
  return message(page, text).count();
}

function assert(cond, what) {
  if (!cond) throw new Error(`assertion failed: ${what}`);
}

async function probe(origin, method, p) {
  const r = await fetch(origin + p, { method });
  return r.status !== 404 && r.status !== 405;
}

async function shoot(page, name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  const file = path.join(SHOTS, `${name}.png`);
  await page.screenshot({ path: file });
  log(`   screenshot ${path.relative(ROOT, file)} (${Math.round(fs.statSync(file).size / 1024)} KB)`);
}

// ---- the run -----------------------------------------------------------------------------------

async function main() {
  ensureBuilt();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'confab-e2e-'));
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: !process.env.E2E_HEADFUL,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ].filter((a) => a !== '--headless' || !process.env.E2E_HEADFUL),
  });
  // A small image made by the browser itself, for the upload and the fixture's og:image.
  const png = await (async () => {
    const p = await browser.newPage({ viewport: { width: 96, height: 64 } });
    await p.setContent(
      '<body style="margin:0;background:linear-gradient(135deg,#0967d2,#47a3f3)"><div style="font:bold 28px sans-serif;color:#fff;padding:14px">Hi!</div></body>',
    );
    const buf = await p.screenshot();
    await p.close();
    return buf;
  })();
  // A "design mock" for the screenshots.
  const mock = await (async () => {
    const p = await browser.newPage({ viewport: { width: 320, height: 180 } });
    await p.setContent(
      `<body style="margin:0;font-family:sans-serif;background:#f0f4f8">
        <div style="height:34px;background:#0967d2;color:#fff;font:bold 15px sans-serif;padding:9px 14px;box-sizing:border-box">Acme · Landing page v2</div>
        <div style="padding:16px 14px"><div style="font:bold 20px sans-serif;color:#102a43">Chat that keeps up.</div>
        <div style="margin:8px 0 14px;color:#486581;font-size:13px">Rooms, files and previews in real time.</div>
        <span style="background:#f0b429;color:#102a43;font-weight:bold;padding:8px 16px;border-radius:6px;font-size:13px">Get started</span></div></body>`,
    );
    const buf = await p.screenshot();
    await p.close();
    return buf;
  })();
  const fixture = await startFixture(png);
  const fixtureHost = `127.0.0.1:${fixture.address().port}`;
  const origin = new Origin(dataDir, { CONFAB_PREVIEW_ALLOWLIST: fixtureHost });
  await origin.start();
  log(`== origin ${origin.url}, data ${dataDir}, fixture http://${fixtureHost}/`);

  const ctxOptions = { viewport: { width: 1200, height: 760 }, colorScheme: 'light', deviceScaleFactor: 1 };
  const aliceCtx = await browser.newContext(ctxOptions);
  const bobCtx = await browser.newContext(ctxOptions);
  const carolCtx = await browser.newContext(ctxOptions);
  // Browser notifications: a stand-in Notification that says "granted" and records each one.
  await bobCtx.addInitScript(() => {
    window.__notes = [];
    class FakeNotification {
      static permission = 'granted';
      static requestPermission() {
        return Promise.resolve('granted');
      }
      constructor(title, options) {
        window.__notes.push({ title, body: options?.body ?? '', tag: options?.tag ?? '' });
      }
      close() {}
    }
    window.Notification = FakeNotification;
  });
  const alice = await aliceCtx.newPage();
  const bob = await bobCtx.newPage();
  const carol = await carolCtx.newPage();
  // Their sockets go through Playwright, so the test can take any one offline.
  const aliceNet = await cuttable(alice);
  const bobNet = await cuttable(bob);
  const carolNet = await cuttable(carol);
  const bobHistory = historyLoads(bob);
  const carolHistory = historyLoads(carol);
  const aliceRequests = [];
  alice.on('request', (r) => aliceRequests.push(r.url()));
  for (const p of [alice, bob, carol]) {
    p.setDefaultTimeout(15_000);
    p.on('dialog', (d) => void d.accept()); // confirm() before deleting or leaving
  }
  // Uncaught exceptions and console errors or warnings fail the run, except the browser's own
  // network log lines for what the test does on purpose: a signed-out page asking /api/me (401,
  // then a refused refresh), requests while the server is stopped, and requests of a page the
  // test took offline, and the refusals a step provokes on purpose (`allowing`).
  const errors = [];
  let serverDown = false;
  const nets = { alice: aliceNet.net, bob: bobNet.net, carol: carolNet.net };
  const allowed = [];
  const expectedLog = (who, text) =>
    /^Failed to load resource: the server responded with a status of 401 /.test(text) ||
    allowed.some((re) => re.test(text)) ||
    (serverDown && /ERR_CONNECTION_REFUSED/.test(text)) ||
    (Date.now() < (nets[who]?.offlineUntil ?? 0) && /ERR_INTERNET_DISCONNECTED/.test(text));
  const watch = (who, p) => {
    p.on('pageerror', (e) => errors.push(`${who}: uncaught ${e.message}`));
    p.on('console', (m) => {
      if ((m.type() === 'error' || m.type() === 'warning') && !expectedLog(who, m.text())) {
        errors.push(`${who}: console ${m.type()}: ${m.text()} (${m.location().url})`);
      }
    });
  };
  watch('alice', alice);
  watch('bob', bob);
  watch('carol', carol);
  /** Runs `fn` with console lines matching `re` (a refusal provoked on purpose) expected. */
  async function allowing(re, fn) {
    allowed.push(re);
    try {
      return await fn();
    } finally {
      await sleep(300); // the browser logs a failed request a moment after it
      allowed.splice(allowed.indexOf(re), 1);
    }
  }

  let passed = 0;
  let failed = 0;
  let skipped = 0;
  async function step(name, fn) {
    // E2E_SKIP=regex: leave out the steps it matches (for a quicker run while working on others).
    if (process.env.E2E_SKIP && new RegExp(process.env.E2E_SKIP).test(name)) {
      skipped++;
      log(`-  ${name} (skipped: E2E_SKIP)`);
      return;
    }
    const t0 = Date.now();
    try {
      const r = await fn();
      if (r === 'skip') {
        skipped++;
        log(`-  ${name} (skipped: the server has no such endpoint yet)`);
        return;
      }
      passed++;
      log(`ok ${name} (${Date.now() - t0} ms)`);
    } catch (e) {
      failed++;
      log(`FAIL ${name}: ${e.message}`);
      const at = (e.stack ?? '').split('\n').find((l) => l.includes('run.mjs'));
      if (at) log(`   ${at.trim()}`);
      for (const [who, p] of [['alice', alice], ['bob', bob], ['carol', carol]]) {
        await p.screenshot({ path: path.join(os.tmpdir(), `confab-e2e-fail-${who}.png`) }).catch(() => {});
      }
      log(`   (failure screenshots in ${os.tmpdir()}/confab-e2e-fail-*.png)`);
    }
  }

  try {
    await step('login screen renders', async () => {
      await alice.goto(origin.url);
      await alice.getByRole('tab', { name: 'Sign in' }).waitFor();
      await shoot(alice, 'login');
    });

    await step('three users register in three browser contexts', async () => {
      await register(alice, origin.url, 'alice');
      await register(bob, origin.url, 'bob');
      await register(carol, origin.url, 'carol');
    });

    await step('alice creates a room and bob discovers and joins it', async () => {
      await createRoom(alice, 'general');
      await joinRoom(bob, 'general');
    });

    await step('they chat both ways in real time, with Markdown', async () => {
      await send(alice, 'Hello **Bob**! Welcome to `general`.');
      await seen(bob, 'Welcome to general');
      assert((await message(bob, 'Welcome').locator('strong', { hasText: 'Bob' }).count()) === 1, 'bold rendered');
      await send(bob, 'Hi Alice, good to be here');
      await seen(alice, 'good to be here');
      // Raw HTML is shown as text, never rendered.
      await send(alice, 'no <b>raw</b> html');
      await seen(bob, 'no <b>raw</b> html');
      assert((await message(bob, 'raw').locator('b').count()) === 0, 'no raw HTML element');
    });

    await step('Chromium and the server agree permessage-deflate on /ws; compressed frames both ways', async () => {
      // A page of Alice's without the test's WebSocket routing: the browser's own socket.
      const p = await aliceCtx.newPage();
      watch('deflate probe', p);
      await p.goto(`${origin.url}/#/rooms/${await currentRoomId(alice)}`);
      await seen(p, 'good to be here');
      const probe = await p.evaluate(async (room) => {
        const ws = new WebSocket(`${location.origin.replace(/^http/, 'ws')}/ws`);
        const frames = [];
        await new Promise((resolve, reject) => {
          ws.onopen = resolve;
          ws.onerror = () => reject(new Error('socket error'));
        });
        ws.onmessage = (e) => frames.push(JSON.parse(e.data));
        const until = async (pred) => {
          for (let i = 0; i < 100 && !frames.some(pred); i++) await new Promise((r) => setTimeout(r, 50));
          return frames.find(pred);
        };
        ws.send(JSON.stringify({ type: 'subscribe', room }));
        await until((f) => f.type === 'subscribed');
        // Long enough that both sides compress it.
        const body = 'compressed both ways, '.repeat(30).trim();
        ws.send(JSON.stringify({ type: 'send', room, client_msg_id: 'deflate-probe', body }));
        const echoed = await until((f) => f.type === 'message' && f.body === body);
        ws.close();
        return { extensions: ws.extensions, echoed: Boolean(echoed), body };
      }, await currentRoomId(alice));
      assert(probe.extensions.startsWith('permessage-deflate'), `negotiated: "${probe.extensions}"`);
      assert(probe.echoed, 'the compressed message came back compressed and intact');
      await seen(bob, 'compressed both ways, compressed');
      await p.close();
    });

    await step('own messages can be edited and deleted, live for the other user', async () => {
      await send(alice, 'a message with a tpyo');
      await seen(bob, 'a message with a tpyo');
      // With the keyboard: focus the actions button, Enter opens the menu, Enter picks Edit.
      await editMessage(alice, 'a message with a tpyo', 'a message without typos', { keyboard: true });
      await message(bob, 'a message without typos').filter({ hasText: '(edited)' }).waitFor();
      assert((await countOf(bob, 'tpyo')) === 0, 'old text gone');
      await nothingPending(alice);
      // Others' messages can be answered, not edited or deleted.
      await messageMenu(alice, 'good to be here');
      await alice.getByRole('menuitem', { name: 'Reply' }).waitFor();
      assert((await alice.getByRole('menuitem', { name: /^(Edit|Delete)$/ }).count()) === 0, 'no edit or delete on others');
      await alice.keyboard.press('Escape');
      await deleteMessage(alice, 'a message without typos');
      await message(bob, 'a message without typos').waitFor({ state: 'detached' });
      await message(alice, 'a message without typos').waitFor({ state: 'detached' });
      await nothingPending(alice);
    });

    await step('edits and deletions made while bob is offline show when he is back, without a reload', async () => {
      const texts = ['log: stays as it is', 'log: to be edited', 'log: to be deleted', 'log: edited, then deleted'];
      for (const t of texts) await send(alice, t);
      for (const t of texts) await seen(bob, t);
      await bobNet.cut();
      try {
        await bob.locator('[data-testid=connection-state][data-state=reconnecting]').waitFor();
        assert(bobNet.open === 0, 'bob has no socket open');
        await editMessage(alice, 'log: to be edited', 'log: edited while bob was away');
        await deleteMessage(alice, 'log: to be deleted');
        await editMessage(alice, 'log: edited, then deleted', 'log: an edit nobody may see');
        await deleteMessage(alice, 'log: an edit nobody may see');
        // Sent and deleted while he is away: his replay has its tombstone, never to be shown.
        await send(alice, 'log: sent and deleted while bob was away');
        await seen(alice, 'log: sent and deleted while bob was away');
        await nothingPending(alice);
        await alice.locator('[data-testid=pending-message]').waitFor({ state: 'detached' });
        await deleteMessage(alice, 'log: sent and deleted while bob was away');
        await send(alice, 'log: new while bob was away');
        await seen(alice, 'log: new while bob was away');
        await nothingPending(alice);
        await message(alice, 'log: to be deleted').waitFor({ state: 'detached' });
        // Bob really heard nothing: still the old texts, no frame came, he keeps trying.
        await bob.waitForTimeout(1_000);
        assert((await countOf(bob, 'log: to be deleted')) === 1, 'bob still shows the message deleted meanwhile');
        assert((await countOf(bob, 'log: to be edited')) === 1, 'bob still shows the old text');
        assert(bobNet.open === 0 && bobNet.net.leaked === 0, `no frame reached bob (${bobNet.net.leaked})`);
        assert(bobNet.net.refused > 0, 'bob tried to reconnect while offline');
        assert((await bob.locator('[data-testid=connection-state]').getAttribute('data-state')) === 'reconnecting', 'badge: reconnecting');
      } finally {
        bobNet.net.frames = [];
        bobNet.net.recording = true;
        await bobNet.restore();
      }
      const loadsBefore = bobHistory.length;
      await live(bob, 30_000);
      // What the server replayed to him: the log entries he missed, then `subscribed`.
      const t0 = Date.now();
      while (!bobNet.net.frames.some((f) => f.type === 'subscribed') && Date.now() - t0 < 10_000) await sleep(100);
      bobNet.net.recording = false;
      const replay = bobNet.net.frames.slice(0, bobNet.net.frames.findIndex((f) => f.type === 'subscribed') + 1);
      const kinds = replay.map((f) => (f.type === 'message' && f.deleted_at ? 'tombstone' : f.type));
      log(`   bob's replay: ${kinds.join(', ')}`);
      assert(replay.at(-1)?.type === 'subscribed' && replay.at(-1).recovered === true, 'subscribed, recovered');
      for (const k of ['edited', 'deleted', 'tombstone', 'message']) assert(kinds.includes(k), `the replay has a ${k} entry`);
      const seqs = replay.filter((f) => 'seq' in f && f.type !== 'subscribed').map((f) => f.seq);
      assert(seqs.every((x, i) => i === 0 || x > seqs[i - 1]), `the replay is in seq order: ${seqs}`);
      const expectLog = async (p, when) => {
        await message(p, 'log: edited while bob was away').filter({ hasText: '(edited)' }).waitFor();
        await seen(p, 'log: new while bob was away');
        await message(p, 'log: to be deleted').waitFor({ state: 'detached' });
        await message(p, 'log: edited, then deleted').waitFor({ state: 'detached' });
        for (const [t, n] of [
          ['log: stays as it is', 1],
          ['log: edited while bob was away', 1],
          ['log: new while bob was away', 1],
          ['log: to be edited', 0],
          ['log: to be deleted', 0],
          ['log: edited, then deleted', 0],
          ['log: an edit nobody may see', 0],
          ['log: sent and deleted while bob was away', 0],
        ]) {
          assert((await countOf(p, t)) === n, `${when}: ${n} "${t}"`);
        }
      };
      await expectLog(bob, 'back online');
      // Exactly what alice, who never left, shows: no tombstone, no stale text.
      await sameLog(alice, bob, 'back online');
      assert(bobHistory.length === loadsBefore, `back online without reloading history: ${bobHistory.slice(loadsBefore)}`);
      // And the server's history agrees.
      await bob.reload();
      await live(bob);
      await roomShown(bob, 'general');
      await expectLog(bob, 'after a reload');
      await sameLog(alice, bob, 'after a reload');
    });

    await step('an edit and a deletion made while offline are pending, then sent on reconnect', async () => {
      await send(alice, 'offline: edit me');
      await send(alice, 'offline: delete me');
      await seen(bob, 'offline: delete me');
      await aliceNet.cut();
      try {
        await alice.locator('[data-testid=connection-state][data-state=reconnecting]').waitFor();
        await editMessage(alice, 'offline: edit me', 'offline: edited while offline');
        await deleteMessage(alice, 'offline: delete me');
        const edited = message(alice, 'offline: edited while offline');
        await edited.locator('[data-testid=op-status]', { hasText: 'Saving…' }).waitFor();
        assert((await edited.getAttribute('data-pending')) === 'edit-sending', 'edit pending');
        await message(alice, 'offline: delete me').locator('[data-testid=op-status]', { hasText: 'Deleting…' }).waitFor();
        await bob.waitForTimeout(500);
        assert((await countOf(bob, 'offline: edit me')) === 1, 'nothing reached bob yet');
      } finally {
        await aliceNet.restore();
      }
      await live(alice, 30_000);
      await nothingPending(alice, 20_000);
      for (const p of [alice, bob]) {
        await message(p, 'offline: edited while offline').filter({ hasText: '(edited)' }).waitFor();
        await message(p, 'offline: delete me').waitFor({ state: 'detached' });
        assert((await countOf(p, 'offline: edit')) === 1, 'one edited message');
      }
      await sameLog(alice, bob, 'after alice is back');
    });

    await step('typing indicator and online members', async () => {
      await bob.waitForTimeout(2_100); // typing is relayed at most once per 2 s
      await bob.getByRole('textbox', { name: /^Message #/ }).pressSequentially('typing something', { delay: 20 });
      await alice.locator('[data-testid=typing]', { hasText: 'bob is typing' }).waitFor();
      await bob.getByRole('textbox', { name: /^Message #/ }).fill('');
      await alice.locator('[data-testid=member][data-online=true]', { hasText: 'bob' }).waitFor();
    });

    await step('an unread badge appears for a room not on screen', async () => {
      await createRoom(alice, 'random');
      await joinRoom(bob, 'random');
      await openRoom(bob, 'general');
      await send(alice, 'Over here in random');
      await send(alice, 'Twice, even');
      const badge = bob.locator('[data-testid=room-link][data-room-name="random"] [data-testid=unread-badge]');
      await badge.filter({ hasText: /^2$/ }).waitFor();
      const notes = await bob.evaluate(() => window.__notes);
      assert(notes.some((n) => n.title === 'alice in random'), `a notification for random: ${JSON.stringify(notes)}`);
      assert(!notes.some((n) => n.title === 'alice in general'), 'no notification for the room on screen');
      await openRoom(bob, 'random');
      await seen(bob, 'Twice, even');
      await badge.waitFor({ state: 'detached' });
      await openRoom(alice, 'general');
      await openRoom(bob, 'general');
    });

    await step('a room shown again gets the edits and deletions made while it was off screen, without a reload', async () => {
      await send(alice, 'away: edit me');
      await send(alice, 'away: delete me');
      await seen(bob, 'away: delete me');
      await openRoom(bob, 'random');
      const loadsBefore = bobHistory.length;
      try {
        await editMessage(alice, 'away: edit me', 'away: edited while bob looked elsewhere');
        await deleteMessage(alice, 'away: delete me');
        await nothingPending(alice);
        await message(alice, 'away: delete me').waitFor({ state: 'detached' });
      } finally {
        await openRoom(bob, 'general');
      }
      await message(bob, 'away: edited while bob looked elsewhere').filter({ hasText: '(edited)' }).waitFor();
      await message(bob, 'away: delete me').waitFor({ state: 'detached' });
      assert((await countOf(bob, 'away: edit me')) === 0, 'old text gone');
      await sameLog(alice, bob, 'general shown again');
      assert(bobHistory.length === loadsBefore, `general shown again without reloading its history: ${bobHistory.slice(loadsBefore)}`);
    });

    await step('an image appears inline for both users', async () => {
      if (!(await probe(origin.url, 'POST', '/api/uploads'))) return 'skip';
      await alice.locator('input[type=file]').setInputFiles({ name: 'hello.png', mimeType: 'image/png', buffer: png });
      for (const p of [alice, bob]) {
        const img = p.locator('[data-testid=inline-image]').last();
        await img.waitFor();
        await p.waitForFunction(
          (el) => el.complete && el.naturalWidth > 0,
          await img.elementHandle(),
          { timeout: 10_000 },
        );
      }
      await bob.locator('[data-testid=inline-image]').last().click();
      await bob.locator('[data-testid=image-viewer]').waitFor();
      await bob.keyboard.press('Escape');
      await bob.locator('[data-testid=image-viewer]').waitFor({ state: 'detached' });
    });

    await step('files by drag-and-drop and paste; other files as download cards', async () => {
      if (!(await probe(origin.url, 'POST', '/api/uploads'))) return 'skip';
      const before = await bob.locator('[data-testid=inline-image]').count();
      // Drop a text file onto the conversation.
      await alice.evaluate(() => {
        const dt = new DataTransfer();
        dt.items.add(new File(['hello from a dropped file\n'], 'notes.txt', { type: 'text/plain' }));
        const target = document.querySelector('[data-testid=message-list]');
        target.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
        target.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
      });
      for (const p of [alice, bob]) {
        const card = p.locator('[data-testid=file-card]', { hasText: 'notes.txt' });
        await card.waitFor();
        const href = await card.getByRole('link').getAttribute('href');
        const r = await p.evaluate(async (u) => (await fetch(u)).text(), href);
        assert(r.includes('hello from a dropped file'), 'the download serves the file');
      }
      // Paste an image into the composer.
      await alice.evaluate(async (bytes) => {
        const dt = new DataTransfer();
        dt.items.add(new File([new Uint8Array(bytes)], 'pasted.png', { type: 'image/png' }));
        const box = document.querySelector('textarea[aria-label^="Message #"]');
        box.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
      }, [...png]);
      await bob.locator('[data-testid=inline-image]').nth(before).waitFor();
    });

    await step('a link preview card renders for a local fixture page', async () => {
      if (!(await probe(origin.url, 'GET', '/api/preview?url=x'))) return 'skip';
      await send(alice, `Read this: http://${fixtureHost}/article`);
      for (const p of [alice, bob]) {
        await p.locator('[data-testid=link-preview]', { hasText: 'The Confab fixture article' }).waitFor();
      }
    });

    await step('older messages load when scrolling up', async () => {
      await createRoom(alice, 'history');
      // 60 messages over a second WebSocket of alice's (faster than typing them).
      const lines = Array.from({ length: 60 }, (_, i) => `line ${String(i + 1).padStart(3, '0')}`);
      await postViaSocket(alice, 'history', lines);
      await seen(alice, 'line 060');
      await joinRoom(bob, 'history');
      await seen(bob, 'line 060');
      assert((await countOf(bob, 'line 001')) === 0, 'only the newest page at first');
      const list = bob.locator('[data-testid=message-list]');
      await list.evaluate((el) => {
        el.scrollTop = 0;
      });
      await seen(bob, 'line 001');
      await bob.getByText('This is the beginning of #history.').waitFor();
      for (const n of ['001', '011', '060']) assert((await countOf(bob, `line ${n}`)) === 1, `one line ${n}`);
      await openRoom(alice, 'general');
      await openRoom(bob, 'general');
    });

    await step('a server restart mid-conversation loses no message', async () => {
      const port = origin.port;
      await send(alice, 'before restart: one');
      await send(bob, 'before restart: two');
      await seen(alice, 'before restart: two');
      await seen(bob, 'before restart: one');
      serverDown = true;
      await origin.stop();
      for (const p of [alice, bob]) {
        await p.locator('[data-testid=connection-state][data-state=reconnecting]').waitFor();
      }
      // Written while the server is down: shown as pending, sent on reconnect.
      await send(alice, 'during outage: from alice');
      await send(bob, 'during outage: from bob');
      await alice.locator('[data-testid=pending-message]').first().waitFor();
      await origin.start(port);
      assert(origin.port === port, 'same port');
      await live(alice, 30_000);
      await live(bob, 30_000);
      serverDown = false;
      await send(alice, 'after restart: back');
      const all = [
        'before restart: one',
        'before restart: two',
        'during outage: from alice',
        'during outage: from bob',
        'after restart: back',
      ];
      for (const p of [alice, bob]) {
        for (const t of all) await seen(p, t, 20_000);
        await p.locator('[data-testid=pending-message]').waitFor({ state: 'detached' });
        for (const t of all) assert((await countOf(p, t)) === 1, `exactly one "${t}"`);
      }
      // And a fresh load from the server's history agrees (everything was persisted).
      await bob.reload();
      await live(bob);
      await openRoom(bob, 'general');
      for (const t of all) {
        await seen(bob, t);
        assert((await countOf(bob, t)) === 1, `exactly one "${t}" after reload`);
      }
    });

    await step('a private room with a topic: not listed; its owner adds people, makes an admin, changes the topic', async () => {
      await alice.getByRole('button', { name: 'New room' }).click();
      await alice.getByLabel('Room name').fill('plans');
      await alice.getByLabel('Topic', { exact: true }).fill('Q3 plans');
      await alice.locator('label', { hasText: 'Private' }).click();
      await alice.getByRole('button', { name: 'Create room' }).click();
      await roomShown(alice, 'plans');
      await alice.locator('[data-testid=room-topic]', { hasText: 'Q3 plans' }).waitFor();
      await alice.getByRole('img', { name: 'Private room' }).waitFor();
      // Not in Discover for anyone else.
      await bob.getByRole('button', { name: 'Discover' }).click();
      await bob.getByLabel('Search rooms to join').fill('plans');
      await bob.getByText(/^No rooms to join/).waitFor();
      assert((await bob.getByRole('button', { name: 'Join plans', exact: true }).count()) === 0, 'plans not listed');
      await closeDialog(bob);
      // Added by the owner: the room shows up in their sidebars at once.
      await addMember(alice, 'bob');
      await addMember(alice, 'carol');
      await roomLink(bob, 'plans').waitFor();
      await roomLink(carol, 'plans').waitFor();
      const dialog = await memberAction(alice, 'bob', 'Make admin');
      await dialog.locator('[data-testid=settings-member][data-username=bob][data-role=admin]').waitFor();
      await dialog.getByRole('tab', { name: 'About' }).click();
      await dialog.getByLabel('Topic', { exact: true }).fill('Q3 plans, final');
      await dialog.getByRole('button', { name: 'Save' }).click();
      await dialog.getByText('Saved.').waitFor();
      // Renamed, and back (the others see it with the topic below).
      for (const name of ['plans-q3', 'plans']) {
        await dialog.getByRole('form', { name: 'Room name and topic' }).getByLabel('Room name').fill(name);
        await dialog.getByRole('button', { name: 'Save' }).click();
        await alice.locator('[data-testid=room-title]', { hasText: new RegExp(`^# ${name}$`) }).waitFor();
        await roomLink(alice, name).waitFor();
      }
      await closeDialog(alice);
      await alice.locator('[data-testid=room-topic]', { hasText: 'Q3 plans, final' }).waitFor();
      await notice(alice, 'You added carol').waitFor();
      await notice(alice, 'You made bob an admin').waitFor();
      // The others see the changes as small lines, the new topic and bob's role.
      await openRoom(bob, 'plans');
      await bob.locator('[data-testid=room-topic]', { hasText: 'Q3 plans, final' }).waitFor();
      await notice(bob, 'alice added you').waitFor();
      await notice(bob, 'alice made you an admin').waitFor();
      await notice(bob, 'alice updated the room: #plans-q3').waitFor();
      await notice(bob, 'alice updated the room: #plans,').nth(1).waitFor(); // the topic, then the name back
      await bob.locator('[data-testid=member][data-role=admin]', { hasText: 'bob' }).waitFor();
      // The menus follow the role: an admin manages plain members and bans, not the owner.
      const bobs = await roomSettings(bob);
      await bobs.getByRole('tab', { name: 'Banned' }).waitFor();
      await bobs.getByRole('button', { name: 'Actions for carol' }).waitFor();
      assert((await bobs.getByRole('button', { name: 'Actions for alice' }).count()) === 0, 'an admin cannot act on the owner');
      await closeDialog(bob);
      await openRoom(carol, 'plans');
      await notice(carol, 'alice added you').waitFor();
      const carols = await roomSettings(carol);
      assert((await carols.getByRole('tab', { name: 'Banned' }).count()) === 0, 'a member sees no bans');
      assert((await carols.getByRole('button', { name: /^Actions for / }).count()) === 0, 'a member manages nobody');
      await carols.getByRole('tab', { name: 'About' }).click();
      assert((await carols.getByRole('button', { name: 'Save' }).count()) === 0, 'a member cannot rename');
      await closeDialog(carol);
    });

    await step('direct messages: a people picker, their own sidebar section, the same conversation for the same people', async () => {
      const start = async () => {
        await alice.getByRole('button', { name: 'New conversation' }).click();
        const dialog = alice.getByRole('dialog');
        for (const name of ['bob', 'carol']) {
          await dialog.getByLabel('Search people to message').fill(name);
          const pick = dialog.getByLabel(`Pick ${name}`);
          await pick.focus();
          await alice.keyboard.press('Space'); // checkboxes work from the keyboard
          await dialog.locator('[data-testid=picked]', { hasText: name }).waitFor();
        }
        await dialog.getByRole('button', { name: 'Start conversation' }).click();
        await alice.locator('[data-testid=room-title]', { hasText: 'bob, carol' }).waitFor();
        return currentRoomId(alice);
      };
      const dm = await start();
      assert((await alice.getByRole('button', { name: 'Leave' }).count()) === 0, 'a conversation cannot be left');
      assert((await alice.getByRole('button', { name: 'Room settings' }).count()) === 0, 'nor managed');
      await alice.getByRole('list', { name: 'Direct messages' }).locator('[data-testid=room-link][data-kind=dm]').first().waitFor();
      await send(alice, 'dm: hello you two');
      await seen(alice, 'dm: hello you two');
      for (const p of [bob, carol]) {
        const link = p.getByRole('list', { name: 'Direct messages' }).locator(`[data-testid=room-link][data-kind=dm]`);
        await link.first().waitFor();
        assert((await p.getByRole('list', { name: 'Your rooms' }).locator('[data-kind=dm]').count()) === 0, 'not among the rooms');
      }
      await roomLink(bob, 'alice, carol').click();
      await bob.locator('[data-testid=room-title]', { hasText: 'alice, carol' }).waitFor();
      await seen(bob, 'dm: hello you two');
      await send(bob, 'dm: hi both');
      await seen(alice, 'dm: hi both');
      // Asking again for the same people opens the same conversation.
      await openRoom(alice, 'general');
      assert((await start()) === dm, 'the same conversation');
      await seen(alice, 'dm: hi both');
      await openRoom(alice, 'general');
      await openRoom(bob, 'general');
    });

    await step('replies: quoted in the composer (cancellable), quoted above the message, a jump to the parent, "deleted" once it is gone', async () => {
      await send(alice, 'reply: what do you think of the plan?');
      await seen(bob, 'reply: what do you think of the plan?');
      await messageAction(bob, 'reply: what do you think of the plan?', 'Reply');
      const bar = bob.locator('[data-testid=replying-to]');
      await bar.filter({ hasText: 'reply: what do you think of the plan?' }).waitFor();
      await bob.getByRole('button', { name: 'Cancel reply' }).click();
      await bar.waitFor({ state: 'detached' });
      await messageAction(bob, 'reply: what do you think of the plan?', 'Reply');
      await bar.waitFor();
      await send(bob, 'reply: looks good to me');
      await bar.waitFor({ state: 'detached' });
      for (const p of [alice, bob]) {
        await message(p, 'reply: looks good to me')
          .locator('[data-testid=reply-quote][data-deleted=false]', { hasText: 'reply: what do you think of the plan?' })
          .waitFor();
      }
      await message(alice, 'reply: looks good to me').locator('[data-testid=reply-quote]').click();
      await alice.locator('[data-testid=message][data-highlighted=true]', { hasText: 'what do you think of the plan?' }).waitFor();
      await deleteMessage(alice, 'reply: what do you think of the plan?');
      for (const p of [alice, bob]) {
        await message(p, 'reply: looks good to me').locator('[data-testid=reply-quote][data-deleted=true]').waitFor();
        assert((await countOf(p, 'what do you think')) === 0, 'the parent is gone');
      }
      // And from the server's history as well.
      await bob.reload();
      await live(bob);
      await roomShown(bob, 'general');
      await message(bob, 'reply: looks good to me').locator('[data-testid=reply-quote][data-deleted=true]').waitFor();
    });

    await step('reactions: a picker (common emoji or any typed), chips that toggle yours, counts and who reacted', async () => {
      await send(bob, 'react: lunch at noon?');
      await seen(alice, 'react: lunch at noon?');
      await react(alice, 'react: lunch at noon?', '👍');
      await chip(bob, 'react: lunch at noon?', '👍').and(bob.locator('[data-count="1"][data-me=false]')).waitFor();
      assert((await chip(bob, 'react: lunch at noon?', '👍').getAttribute('aria-label')).includes('alice'), 'the chip names alice');
      // Bob adds his with the chip, from the keyboard.
      await chip(bob, 'react: lunch at noon?', '👍').focus();
      await bob.keyboard.press('Enter');
      await chip(alice, 'react: lunch at noon?', '👍').and(alice.locator('[data-count="2"]')).waitFor();
      const mine = chip(bob, 'react: lunch at noon?', '👍');
      await mine.and(bob.locator('[aria-pressed=true]')).waitFor();
      const label = await chip(alice, 'react: lunch at noon?', '👍').getAttribute('aria-label');
      assert(label.includes('you') && label.includes('bob'), `alice's chip names both: ${label}`);
      // Takes his back.
      await mine.click();
      await chip(alice, 'react: lunch at noon?', '👍').and(alice.locator('[data-count="1"]')).waitFor();
      await mine.and(bob.locator('[aria-pressed=false]')).waitFor();
      // Any emoji typed in the field; a non-emoji is refused and shows nothing.
      await react(alice, 'react: lunch at noon?', '🦀', { typed: true });
      await chip(bob, 'react: lunch at noon?', '🦀').waitFor();
      await react(alice, 'react: lunch at noon?', 'nope', { typed: true });
      await alice.getByText('Reaction not added').first().waitFor();
      await chip(alice, 'react: lunch at noon?', 'nope').waitFor({ state: 'detached' });
      assert(JSON.stringify(await chips(alice, 'react: lunch at noon?')) === JSON.stringify(['👍 1', '🦀 1']), 'alice: 👍 1, 🦀 1');
      assert(JSON.stringify(await chips(bob, 'react: lunch at noon?')) === JSON.stringify(['👍 1', '🦀 1']), 'bob: the same');
      // The server's history agrees.
      await bob.reload();
      await live(bob);
      await roomShown(bob, 'general');
      await seen(bob, 'react: lunch at noon?');
      assert(JSON.stringify(await chips(bob, 'react: lunch at noon?')) === JSON.stringify(['👍 1', '🦀 1']), 'bob after a reload');
    });

    await step('@mentions: autocomplete of members, highlighted (yours more), a mention badge apart from the unread count', async () => {
      await openRoom(bob, 'random');
      const box = alice.getByRole('textbox', { name: 'Message #general' });
      await box.fill('');
      await box.pressSequentially('mention: hey @bo', { delay: 20 });
      const option = alice.locator('[data-testid=mention-suggestions]').getByRole('option', { name: 'bob' });
      await option.waitFor();
      assert((await option.getAttribute('aria-selected')) === 'true', 'the first suggestion is active');
      // Completes, does not send; what is typed straight after goes after the completion.
      await box.press('Enter');
      await box.pressSequentially('have a look', { delay: 0 });
      assert((await box.inputValue()) === 'mention: hey @bob have a look', `completed, then typed: ${await box.inputValue()}`);
      await box.press('Enter');
      await seen(alice, 'mention: hey @bob have a look');
      await message(alice, 'mention: hey @bob').locator('.mention[data-mention=bob]').waitFor();
      assert((await message(alice, 'mention: hey @bob').locator('.mention-me').count()) === 0, 'not alice’s own mention');
      const general = roomLink(bob, 'general');
      await general.locator('[data-testid=mention-badge]', { hasText: '@1' }).waitFor();
      await general.locator('[data-testid=unread-badge]').waitFor();
      // Counted by the server too: a reload shows the same badge.
      await bob.reload();
      await live(bob);
      await roomLink(bob, 'general').locator('[data-testid=mention-badge]', { hasText: '@1' }).waitFor();
      await openRoom(bob, 'general');
      await bob.locator('[data-testid=message][data-mentions-me=true]', { hasText: 'have a look' }).waitFor();
      await message(bob, 'mention: hey @bob').locator('.mention-me[data-mention=bob]').waitFor();
      await general.locator('[data-testid=mention-badge]').waitFor({ state: 'detached' });
    });

    await step('pins: from the message menu, marked in the timeline, listed in the pins panel with a jump; private rooms: owners and admins only', async () => {
      await messageAction(bob, 'mention: hey @bob', 'Pin');
      for (const p of [alice, bob]) await message(p, 'mention: hey @bob').locator('[data-testid=pinned-mark]').waitFor();
      await alice.getByRole('button', { name: 'Pinned messages' }).click();
      const panel = alice.locator('[data-testid=pins-panel]');
      const pin = panel.locator('[data-testid=pin]', { hasText: 'have a look' });
      await pin.waitFor();
      await pin.getByText('Pinned by bob').waitFor();
      await pin.getByRole('button', { name: 'Jump to message' }).click();
      await panel.waitFor({ state: 'detached' });
      await alice.locator('[data-testid=message][data-highlighted=true]', { hasText: 'have a look' }).waitFor();
      // Unpinned from the panel, live for bob.
      await alice.getByRole('button', { name: 'Pinned messages' }).click();
      await panel.locator('[data-testid=pin]').getByRole('button', { name: /^Unpin/ }).click();
      await panel.getByText(/Nothing is pinned yet/).waitFor();
      await closeDialog(alice);
      await message(bob, 'mention: hey @bob').locator('[data-testid=pinned-mark]').waitFor({ state: 'detached' });
      await messageAction(alice, 'mention: hey @bob', 'Pin'); // pinned again, for the screenshots
      // In the private room a plain member has no Pin.
      await openRoom(alice, 'plans');
      await send(alice, 'plans: kickoff on Monday');
      await seen(carol, 'plans: kickoff on Monday');
      await messageMenu(carol, 'plans: kickoff on Monday');
      await carol.getByRole('menuitem', { name: 'Reply' }).waitFor();
      assert((await carol.getByRole('menuitem', { name: 'Pin' }).count()) === 0, 'a member cannot pin in a private room');
      await carol.keyboard.press('Escape');
    });

    await step('while carol is offline: reactions, a pin, a removal, an addition and a topic change; all replayed when she is back', async () => {
      await openRoom(bob, 'plans');
      await send(alice, 'plans: agenda draft');
      for (const p of [bob, carol]) await seen(p, 'plans: agenda draft');
      await carolNet.cut();
      try {
        await carol.locator('[data-testid=connection-state][data-state=reconnecting]').waitFor();
        await react(alice, 'plans: agenda draft', '🎉');
        await react(bob, 'plans: agenda draft', '🎉');
        await chip(alice, 'plans: agenda draft', '🎉').and(alice.locator('[data-count="2"]')).waitFor();
        await react(bob, 'plans: agenda draft', '👀');
        await chip(alice, 'plans: agenda draft', '🎉').click(); // alice takes hers back
        await chip(bob, 'plans: agenda draft', '🎉').and(bob.locator('[data-count="1"]')).waitFor();
        await messageAction(alice, 'plans: kickoff on Monday', 'Pin');
        await message(alice, 'plans: kickoff on Monday').locator('[data-testid=pinned-mark]').waitFor();
        // Bob removed: the room goes from his sidebar at once; then added back.
        const dialog = await memberAction(alice, 'bob', 'Remove from room');
        await dialog.locator('[data-testid=settings-member][data-username=bob]').waitFor({ state: 'detached' });
        await closeDialog(alice);
        await roomLink(bob, 'plans').waitFor({ state: 'detached' });
        await bob.locator('[data-testid=room-title]', { hasText: '# plans' }).waitFor({ state: 'detached' });
        await addMember(alice, 'bob');
        await roomLink(bob, 'plans').waitFor();
        const about = await roomSettings(alice);
        await about.getByRole('tab', { name: 'About' }).click();
        await about.getByLabel('Topic', { exact: true }).fill('Q3 plans, approved');
        await about.getByRole('button', { name: 'Save' }).click();
        await about.getByText('Saved.').waitFor();
        await closeDialog(alice);
        await carol.waitForTimeout(500);
        assert((await chip(carol, 'plans: agenda draft', '🎉').count()) === 0, 'carol has heard nothing yet');
        assert(carolNet.net.leaked === 0, 'no frame reached carol');
      } finally {
        carolNet.net.frames = [];
        carolNet.net.recording = true;
        await carolNet.restore();
      }
      const loadsBefore = carolHistory.length;
      await live(carol, 30_000);
      const t0 = Date.now();
      while (!carolNet.net.frames.some((f) => f.type === 'subscribed') && Date.now() - t0 < 10_000) await sleep(100);
      carolNet.net.recording = false;
      const replay = carolNet.net.frames.slice(0, carolNet.net.frames.findIndex((f) => f.type === 'subscribed') + 1);
      const kinds = replay.map((f) => f.type);
      log(`   carol's replay: ${kinds.join(', ')}`);
      for (const k of ['reaction', 'pinned', 'member_removed', 'member_added', 'room_updated']) assert(kinds.includes(k), `the replay has a ${k} entry`);
      assert(replay.at(-1)?.recovered === true, 'recovered');
      await chip(carol, 'plans: agenda draft', '👀').waitFor();
      assert(JSON.stringify(await chips(carol, 'plans: agenda draft')) === JSON.stringify(await chips(alice, 'plans: agenda draft')), 'carol’s reactions are alice’s');
      assert(JSON.stringify(await chips(carol, 'plans: agenda draft')) === JSON.stringify(['🎉 1', '👀 1']), `🎉 1, 👀 1: ${await chips(carol, 'plans: agenda draft')}`);
      await message(carol, 'plans: kickoff on Monday').locator('[data-testid=pinned-mark]').waitFor();
      await notice(carol, 'alice removed bob').waitFor();
      await notice(carol, 'alice added bob').nth(1).waitFor(); // again, after the first time
      await carol.locator('[data-testid=room-topic]', { hasText: 'Q3 plans, approved' }).waitFor();
      await carol.locator('[data-testid=member][data-role=member]', { hasText: 'bob' }).waitFor();
      assert(carolHistory.length === loadsBefore, `back without reloading history: ${carolHistory.slice(loadsBefore)}`);
    });

    await step('a banned member loses the room at once; unban; the owner cannot leave before handing over', async () => {
      await openRoom(bob, 'plans');
      const dialog = await memberAction(alice, 'bob', 'Ban from room');
      await roomLink(bob, 'plans').waitFor({ state: 'detached' });
      await bob.locator('[data-testid=room-title]', { hasText: '# plans' }).waitFor({ state: 'detached' });
      await notice(carol, 'alice banned bob').waitFor();
      await dialog.getByRole('tab', { name: 'Banned' }).click();
      const ban = dialog.locator('[data-testid=ban][data-username=bob]');
      await ban.waitFor();
      await ban.getByRole('button', { name: 'Unban bob' }).click();
      await dialog.getByText('Nobody is banned.').waitFor();
      await closeDialog(alice);
      // The owner cannot leave while others remain: the server says why.
      await allowing(/status of 409/, async () => {
        await alice.getByRole('button', { name: 'Leave' }).click();
        await alice.getByText(/hand over ownership first/i).first().waitFor();
      });
      await roomLink(alice, 'plans').waitFor();
      // Handing over: carol becomes the owner, alice an admin, who can then leave.
      const handed = await memberAction(alice, 'carol', 'Hand over ownership');
      await handed.locator('[data-testid=settings-member][data-username=carol][data-role=owner]').waitFor();
      await handed.locator('[data-testid=settings-member][data-username=alice][data-role=admin]').waitFor();
      await closeDialog(alice);
      await notice(carol, 'alice made you the owner').waitFor();
      const carols = await roomSettings(carol);
      await carols.getByRole('tab', { name: 'Banned' }).waitFor(); // her role changed live
      await carols.getByRole('button', { name: 'Actions for alice' }).waitFor();
      await closeDialog(carol);
      await alice.getByRole('button', { name: 'Leave' }).click();
      await roomLink(alice, 'plans').waitFor({ state: 'detached' });
      await notice(carol, 'alice left').waitFor();
      await openRoom(alice, 'general');
      await openRoom(bob, 'general');
    });

    await step('search: highlighted excerpts as text, all rooms or this room; a result jumps to the message with its context', async () => {
      await createRoom(alice, 'archive');
      const lines = Array.from({ length: 120 }, (_, i) =>
        i === 9 ? 'line 010 has the <b>needle</b> in the haystack' : `line ${String(i + 1).padStart(3, '0')}`,
      );
      await postViaSocket(alice, 'archive', lines);
      await seen(alice, 'line 120');
      // A fresh page, which holds nothing of archive (else the hit is among what it holds).
      await alice.reload();
      await live(alice);
      await openRoom(alice, 'general');
      await alice.getByRole('button', { name: 'Search messages' }).click();
      const panel = alice.locator('[data-testid=search-panel]');
      await searchFor(alice, 'needle');
      const result = panel.locator('[data-testid=search-result]').first();
      await result.locator('mark', { hasText: /needle/i }).waitFor();
      assert((await result.locator('b').count()) === 0, 'no markup from the excerpt');
      assert((await result.textContent()).includes('archive'), 'the result names its room');
      const before = aliceRequests.length;
      aliceNet.net.frames = [];
      aliceNet.net.recording = true;
      await result.click();
      await roomShown(alice, 'archive');
      await alice.locator('[data-testid=message][data-highlighted=true]', { hasText: 'needle' }).waitFor();
      for (const t of ['line 005', 'line 015']) await seen(alice, t);
      if ((await countOf(alice, 'line 120')) !== 0) {
        const seq = await alice.locator('[data-testid=message][data-highlighted=true]').getAttribute('data-seq');
        const page = await alice.evaluate(async ([room, seq]) => (await fetch(`/api/rooms/${room}/messages?around_seq=${seq}&limit=50`)).json(), [await currentRoomId(alice), seq]);
        log(`   frames: ${aliceNet.net.frames.map((f) => f.type + (f.type === 'subscribed' ? f.recovered : '')).join(',')}; requests: ${aliceRequests.slice(before).filter((u) => u.includes('/api/')).join(' ')}`);
        log(`   around ${seq}: ${page.messages.length} messages ${page.messages[0]?.seq}..${page.messages.at(-1)?.seq}, has_more ${page.has_more}, has_newer ${page.has_newer}`);
      }
      assert((await countOf(alice, 'line 120')) === 0, 'a window around the hit, not the newest page');
      assert(aliceRequests.slice(before).some((u) => /[?&]around_seq=/.test(u)), 'loaded with around_seq');
      await alice.getByRole('button', { name: 'Jump to latest' }).click();
      await seen(alice, 'line 120');
      await alice.getByRole('button', { name: 'Jump to latest' }).waitFor({ state: 'detached' });
      // This room only: found in archive, not in general.
      await alice.getByRole('button', { name: 'Search this conversation' }).click();
      await panel.getByText('This room (# archive)').waitFor();
      await searchFor(alice, 'needle');
      await closeDialog(alice);
      await openRoom(alice, 'general');
      await alice.getByRole('button', { name: 'Search this conversation' }).click();
      await searchFor(alice, 'needle', { expectNone: true });
      await panel.getByText('No messages match.').waitFor();
      await closeDialog(alice);
    });

    await step('seen by on the latest messages; the setting to stop sharing read receipts', async () => {
      await openRoom(bob, 'general');
      aliceNet.net.frames = [];
      aliceNet.net.recording = true;
      await send(alice, 'seen: did you read this?');
      await seen(bob, 'seen: did you read this?');
      try {
        await message(alice, 'seen: did you read this?').locator('[data-testid=seen-by]', { hasText: 'bob' }).waitFor({ timeout: 20_000 });
      } catch (e) {
        const receipts = await alice.evaluate(async (room) => (await fetch(`/api/rooms/${room}/receipts`)).json(), await currentRoomId(alice));
        const reads = aliceNet.net.frames.filter((f) => f.type === 'read');
        const sent = await alice.locator('[data-testid=message]').last().getAttribute('data-seq');
        log(`   receipts ${JSON.stringify(receipts)}; read frames ${JSON.stringify(reads)}; last seq ${sent}`);
        throw e;
      } finally {
        aliceNet.net.recording = false;
      }
      const toggle = async (on) => {
        await bob.getByRole('button', { name: 'Account menu' }).click();
        await bob.getByRole('menuitem', { name: 'Profile and password' }).click();
        const sw = bob.getByLabel('Share read receipts');
        assert((await sw.isChecked()) === !on, `sharing was ${!on}`);
        await sw.focus();
        await bob.keyboard.press('Space');
        for (let i = 0; (await sw.isChecked()) !== on; i++) {
          if (i > 50) throw new Error('the switch did not change');
          await sleep(100);
        }
        await bob.waitForTimeout(300); // the PATCH answered (the switch is disabled meanwhile)
        await closeDialog(bob);
      };
      await toggle(false);
      await send(alice, 'seen: and this one?');
      await seen(bob, 'seen: and this one?');
      await bob.waitForTimeout(1_500);
      await alice.reload();
      await live(alice);
      await roomShown(alice, 'general');
      await seen(alice, 'seen: and this one?');
      await alice.waitForTimeout(1_000);
      assert((await alice.locator('[data-testid=seen-by]', { hasText: 'bob' }).count()) === 0, 'bob’s receipts are not shared any more');
      await toggle(true);
    });

    await step('notifications: the settings panel (this device, previews, e-mail) and the per-room menu with muted rooms marked', async () => {
      await openRoom(bob, 'general');
      await bob.getByRole('button', { name: 'Account menu' }).click();
      await bob.getByRole('menuitem', { name: 'Notifications' }).click();
      await bob.getByRole('dialog', { name: 'Notifications' }).waitFor();
      for (const label of ['Browser notifications on this device', 'Show message text in notifications', 'E-mail me what I missed']) {
        await bob.getByLabel(label).waitFor({ state: 'attached' });
      }
      // This server sends no e-mail: that switch is off and disabled.
      assert(await bob.getByLabel('E-mail me what I missed').isDisabled(), 'no e-mail without SMTP');
      const previews = bob.getByLabel('Show message text in notifications');
      assert(await previews.isChecked(), 'previews are on by default');
      await previews.focus();
      await bob.keyboard.press('Space');
      for (let i = 0; await previews.isChecked(); i++) {
        if (i > 50) throw new Error('the previews switch did not change');
        await sleep(100);
      }
      for (let i = 0; ; i++) {
        const me = await bob.evaluate(async () => (await fetch('/api/me')).json());
        if (me.push_previews === false) break;
        if (i > 50) throw new Error('push_previews did not reach the server');
        await sleep(100);
      }
      await closeDialog(bob);

      // The room's menu: mentions (the default) → mute; the room list marks it muted.
      await bob.getByRole('button', { name: 'Room notifications: Mentions only' }).click();
      await bob.getByRole('menuitemradio', { name: 'Mute' }).click();
      await bob.getByRole('button', { name: 'Room notifications: Mute' }).waitFor();
      await roomLink(bob, 'general').locator('[data-testid=muted-mark]').waitFor();
      const room = await currentRoomId(bob);
      const settings = await bob.evaluate(async () => (await fetch('/api/me/notifications')).json());
      assert(settings.levels.some((l) => l.room === room && l.level === 'none'), 'the level is stored');
      // Back to all messages: the mark goes.
      await bob.getByRole('button', { name: 'Room notifications: Mute' }).click();
      await bob.getByRole('menuitemradio', { name: 'All messages' }).click();
      await bob.getByRole('button', { name: 'Room notifications: All messages' }).waitFor();
      for (let i = 0; (await roomLink(bob, 'general').locator('[data-testid=muted-mark]').count()) > 0; i++) {
        if (i > 50) throw new Error('the muted mark stayed');
        await sleep(100);
      }
      // The service worker is registered for this origin.
      const sw = await bob.evaluate(async () => !!(await navigator.serviceWorker.getRegistration('/')));
      assert(sw, 'the service worker is registered');
    });

    await step('password change keeps this tab signed in; sign out and back in', async () => {
      await bob.getByRole('button', { name: 'Account menu' }).click();
      await bob.getByRole('menuitem', { name: 'Profile and password' }).click();
      const form = bob.getByRole('form', { name: 'Change password' });
      await form.getByLabel('Current password').fill(PASSWORD);
      await form.getByLabel(/^New password/).fill('an even better passphrase');
      await form.getByLabel('Repeat new password').fill('an even better passphrase');
      await form.getByRole('button', { name: 'Change password' }).click();
      await bob.getByText('Password changed').waitFor();
      await bob.keyboard.press('Escape');
      // The server closes every socket of the user; this tab has the new session and reconnects.
      await live(bob, 20_000);
      await send(alice, 'after the password change');
      await seen(bob, 'after the password change');
      await bob.getByRole('button', { name: 'Account menu' }).click();
      await bob.getByRole('menuitem', { name: 'Sign out' }).click();
      const login = bob.getByRole('form', { name: 'Sign in' });
      await login.getByLabel('Username or email').fill('bob@example.test');
      await login.getByLabel('Password').fill('an even better passphrase');
      await login.getByRole('button', { name: 'Sign in' }).click();
      await live(bob);
      await openRoom(bob, 'general');
      await seen(bob, 'after the password change');
    });

    await step('screenshots: light, dark and phone width', async () => {
      // A fresh room with a conversation that shows the main features.
      const uploads = await probe(origin.url, 'POST', '/api/uploads');
      const previews = await probe(origin.url, 'GET', '/api/preview?url=x');
      await createRoom(alice, 'design-review');
      await joinRoom(bob, 'design-review');
      await send(alice, 'Morning! The new **landing page** mock is up, notes welcome.');
      if (uploads) {
        await alice.locator('input[type=file]').setInputFiles({ name: 'landing-mock.png', mimeType: 'image/png', buffer: mock });
        await bob.locator('[data-testid=inline-image]').waitFor();
      }
      await seen(bob, 'landing page');
      await messageAction(bob, 'landing page', 'Reply');
      await send(bob, 'Looks great. From the review:\n\n- [x] bigger call to action\n- [ ] check contrast in `dark mode`\n\n> ship it on Friday?');
      await seen(alice, 'bigger call to action');
      await react(alice, 'bigger call to action', '👍');
      await react(alice, 'bigger call to action', '🎉');
      await chip(bob, 'bigger call to action', '🎉').waitFor();
      await react(bob, 'bigger call to action', '🎉');
      await messageAction(bob, 'landing page', 'Pin');
      if (previews) {
        await send(alice, `Background reading: http://${fixtureHost}/article`);
        await bob.locator('[data-testid=link-preview]').waitFor();
      }
      if (uploads) {
        await bob.locator('input[type=file]').setInputFiles({
          name: 'review-notes.txt',
          mimeType: 'text/plain',
          buffer: Buffer.from('1. call to action\n2. contrast\n'),
        });
        await alice.locator('[data-testid=file-card]', { hasText: 'review-notes.txt' }).waitFor();
      }
      await send(alice, 'Friday works for me. @bob can you book the demo room?');
      await seen(bob, 'Friday works for me.');
      // Some activity elsewhere, for the unread badges.
      await postViaSocket(alice, 'random', ['lunch?', 'the usual place', 'at noon']);
      await bob.locator('[data-testid=room-link][data-room-name="random"] [data-testid=unread-badge]').filter({ hasText: /^3$/ }).waitFor();
      if (uploads || previews) {
        await alice.locator('[data-testid=link-preview] img, [data-testid=inline-image]').last().waitFor();
      }
      for (const p of [alice, bob]) await p.mouse.move(5, 700);
      await alice.waitForTimeout(400);
      await shoot(alice, 'chat-light');
      await bob.getByRole('button', { name: 'Switch to dark mode' }).click();
      await bob.mouse.move(5, 700); // no tooltip over the picture
      await bob.waitForTimeout(400);
      await shoot(bob, 'chat-dark');
      const phone = await aliceCtx.newPage();
      watch('phone', phone);
      await phone.setViewportSize({ width: 390, height: 760 });
      await phone.goto(`${origin.url}/#/rooms/${await currentRoomId(alice)}`);
      await live(phone);
      await seen(phone, 'Friday works for me.');
      await phone.waitForTimeout(400);
      await shoot(phone, 'phone');
      await phone.getByRole('button', { name: 'Open rooms' }).click();
      await phone.getByRole('dialog').locator('[data-testid=room-link][data-room-name="random"]').waitFor();
      await phone.waitForTimeout(400);
      await shoot(phone, 'phone-rooms');
      await phone.keyboard.press('Escape');
      // At phone width the room's actions are in one menu.
      await phone.getByRole('button', { name: 'Room menu' }).click();
      await phone.getByRole('menuitem', { name: 'Pinned messages' }).click();
      await phone.locator('[data-testid=pins-panel] [data-testid=pin]', { hasText: 'landing page' }).waitFor();
      await phone.close();
      // The search panel and the room settings.
      await alice.getByRole('button', { name: 'Search messages' }).click();
      await searchFor(alice, 'call to action');
      await alice.mouse.move(5, 700);
      await alice.waitForTimeout(400);
      await shoot(alice, 'search');
      await closeDialog(alice);
      await roomSettings(alice);
      await alice.waitForTimeout(400);
      await shoot(alice, 'room-settings');
      await closeDialog(alice);
    });

    await step('site administration: the first account administers, invites a newcomer who signs up by the link, then deactivates them', async () => {
      // A server of its own in the default mode (invite), so the accounts above stay as they are.
      const siteDir = fs.mkdtempSync(path.join(os.tmpdir(), 'confab-e2e-site-'));
      const site = new Origin(siteDir, { CONFAB_REGISTRATION: 'invite' });
      await site.start();
      const rootCtx = await browser.newContext(ctxOptions);
      const newCtx = await browser.newContext(ctxOptions);
      try {
        const root = await rootCtx.newPage();
        const newbie = await newCtx.newPage();
        root.setDefaultTimeout(15_000);
        newbie.setDefaultTimeout(15_000);
        watch('root', root);
        await register(root, site.url, 'root');
        await root.getByRole('button', { name: 'Account menu' }).click();
        await root.getByRole('menuitem', { name: 'Site administration' }).click();
        const dialog = root.getByRole('dialog', { name: 'Site administration' });
        await dialog.getByRole('tab', { name: 'Invites' }).click();
        await dialog.getByRole('button', { name: 'Create invite' }).click();
        const url = (await dialog.getByTestId('invite-url').textContent()).trim();
        assert(/\/invite\/cfi_/.test(url), `invite url ${url}`);

        // Without the link, registration is refused; with it, the newcomer is in at once.
        await newbie.goto(url.replace(/^https?:\/\/[^/]+/, site.url));
        const form = newbie.getByRole('form', { name: 'Create account' });
        await form.getByLabel('Username').fill('newbie');
        await form.getByLabel('Email').fill('newbie@example.test');
        await form.getByLabel('Password').fill(PASSWORD);
        await form.getByRole('button', { name: 'Create account' }).click();
        await live(newbie);
        assert(new URL(newbie.url()).pathname === '/', `the link is left: ${newbie.url()}`);
        const refused = await fetch(`${site.url}/api/auth/register`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ username: 'uninvited', email: 'u@example.test', password: PASSWORD }),
        });
        assert(refused.status === 403, `registration without an invite: ${refused.status}`);

        // The administrator finds the newcomer and deactivates them: their page is signed out.
        await dialog.getByRole('tab', { name: 'Users' }).click();
        await dialog.getByLabel('Search users').fill('newb');
        const row = dialog.locator('[data-testid=admin-user][data-username=newbie]');
        await row.getByRole('button', { name: 'Deactivate' }).click();
        await row.getByText('deactivated').waitFor();
        await newbie.getByRole('tab', { name: 'Sign in' }).waitFor({ timeout: 20_000 });
        await dialog.getByRole('tab', { name: 'Audit log' }).click();
        await dialog.locator('[data-testid=audit-entry][data-action="user.deactivate"]').waitFor();
        await dialog.locator('[data-testid=audit-entry][data-action="invite.create"]').waitFor();
      } finally {
        await rootCtx.close();
        await newCtx.close();
        await site.stop();
        fs.rmSync(siteDir, { recursive: true, force: true });
      }
    });

    // Chromium logs every script, style, image or connection the CSP blocks as a console
    // error, which fails the step below; this one checks that the policy is there at all.
    await step('the pages are served under the server\'s CSP', async () => {
      const res = await fetch(`${origin.url}/`);
      const csp = res.headers.get('content-security-policy') ?? '';
      assert(csp.includes("script-src 'self'"), `no CSP on the page: ${csp}`);
    });
    await step('no uncaught errors and no console errors in the pages', async () => {
      assert(errors.length === 0, errors.join('\n   '));
    });
  } finally {
    await browser.close().catch(() => {});
    await origin.stop();
    fixture.close();
    if (!process.env.E2E_KEEP) fs.rmSync(dataDir, { recursive: true, force: true });
  }

  log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
  process.exit(failed ? 1 : 0);
}

/** Posts messages into a room (by name) over a second WebSocket of the page's user. */
async function postViaSocket(page, roomName, bodies) {
  await page.evaluate(
    async ({ roomName, bodies }) => {
      const page = await (await fetch('/api/rooms?scope=joined&limit=100')).json();
      const room = page.rooms.find((r) => r.name === roomName).id;
      const ws = new WebSocket(`ws://${location.host}/ws`);
      let acks = 0;
      await new Promise((resolve, reject) => {
        ws.onerror = reject;
        ws.onmessage = (e) => {
          const f = JSON.parse(e.data);
          if (f.type === 'ready') {
            bodies.forEach((body, i) =>
              ws.send(JSON.stringify({ type: 'send', room, client_msg_id: `bulk-${Date.now()}-${i}`, body })),
            );
          } else if (f.type === 'ack' && ++acks === bodies.length) resolve();
          else if (f.type === 'error') reject(new Error(f.message));
        };
      });
      ws.close();
    },
    { roomName, bodies },
  );
}

async function currentRoomId(page) {
  const hash = await page.evaluate(() => window.location.hash);
  return decodeURIComponent(hash.replace(/^#\/rooms\//, ''));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
