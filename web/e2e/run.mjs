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
// CHROMIUM (default /usr/bin/chromium), E2E_HEADFUL=1 to watch, E2E_KEEP=1 to keep the data dir.
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
  const box = page.getByRole('textbox', { name: /^Message #/ });
  await box.fill(text);
  await box.press('Enter');
}

function message(page, text) {
  return page.locator('[data-testid=message]', { hasText: text });
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
  // Their sockets go through Playwright, so the test can take either one offline.
  const aliceNet = await cuttable(alice);
  const bobNet = await cuttable(bob);
  const bobHistory = historyLoads(bob);
  for (const p of [alice, bob]) {
    p.setDefaultTimeout(15_000);
    p.on('dialog', (d) => void d.accept()); // confirm() before deleting or leaving
  }
  // Uncaught exceptions and console errors or warnings fail the run, except the browser's own
  // network log lines for what the test does on purpose: a signed-out page asking /api/me (401,
  // then a refused refresh), requests while the server is stopped, and requests of a page the
  // test took offline.
  const errors = [];
  let serverDown = false;
  const nets = { alice: aliceNet.net, bob: bobNet.net };
  const expectedLog = (who, text) =>
    /^Failed to load resource: the server responded with a status of 401 /.test(text) ||
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

  let passed = 0;
  let failed = 0;
  let skipped = 0;
  async function step(name, fn) {
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
      for (const [who, p] of [['alice', alice], ['bob', bob]]) {
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

    await step('two users register in two browser contexts', async () => {
      await register(alice, origin.url, 'alice');
      await register(bob, origin.url, 'bob');
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
      await send(bob, 'Looks great. From the review:\n\n- [x] bigger call to action\n- [ ] check contrast in `dark mode`\n\n> ship it on Friday?');
      await seen(alice, 'bigger call to action');
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
      await send(alice, 'Friday works for me.');
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
      await phone.close();
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
