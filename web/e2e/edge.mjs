// The web client through the edge, in a real browser: the edge worker in workerd (miniflare,
// edge-worker/build, web/dist as its static assets) in front of a real origin (`confab serve`,
// CONFAB_BIN, default target/debug/confab), as wrangler.toml deploys it. The browser only ever
// talks to the edge: it loads the client from the edge's assets, signs up, out and in through
// /api passed to the origin, chats over WebSockets passed through the edge, and sends an image
// (the upload's body streamed through the edge). Console errors fail the run (a CSP violation is
// one), so the edge's page headers are checked by the browser itself.
//
// Run by `scripts/edge e2e` (which builds web/dist, the worker and the origin first).
// Env: CONFAB_BIN, CHROMIUM (default /usr/bin/chromium), E2E_HEADFUL=1 to watch.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';

const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ROOT = path.resolve(WEB, '..');
const BIN = process.env.CONFAB_BIN ? path.resolve(process.env.CONFAB_BIN) : path.join(ROOT, 'target', 'debug', 'confab');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const PASSWORD = 'correct horse battery staple';
const IMMUTABLE = 'public, max-age=31536000, immutable';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function assert(cond, what) {
  if (!cond) throw new Error(`assertion failed: ${what}`);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

async function startOrigin(port, env) {
  const proc = spawn(BIN, ['serve'], {
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn', CONFAB_LISTEN: `127.0.0.1:${port}`, CONFAB_REGISTRATION: 'open', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = readline.createInterface({ input: proc.stdout });
  const started = await Promise.race([
    new Promise((resolve) => lines.once('line', (l) => resolve(/running at/.test(l)))),
    new Promise((resolve) => proc.once('exit', () => resolve(false))),
    sleep(30_000).then(() => false),
  ]);
  if (!started) {
    proc.kill('SIGKILL');
    throw new Error('confab did not start');
  }
  lines.on('line', () => {});
  return proc;
}

// ---- page helpers (the same selectors as run.mjs) ----------------------------------------------

async function live(page, timeout = 20_000) {
  await page.locator('[data-testid=connection-state][data-state=live]').waitFor({ timeout });
}

async function register(page, url, name) {
  await page.goto(url);
  await page.getByRole('tab', { name: 'Create account' }).click();
  const form = page.getByRole('form', { name: 'Create account' });
  await form.getByLabel('Username').fill(name);
  await form.getByLabel('Email').fill(`${name}@example.test`);
  await form.getByLabel('Password').fill(PASSWORD);
  await form.getByRole('button', { name: 'Create account' }).click();
  await live(page);
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

async function seen(page, text, timeout = 15_000) {
  await page.locator('[data-testid=message]', { hasText: text }).first().waitFor({ timeout });
}

// ---- the run -----------------------------------------------------------------------------------

async function main() {
  for (const f of [BIN, path.join(WEB, 'dist', 'index.html'), path.join(ROOT, 'edge-worker', 'build', 'index.js'), CHROMIUM]) {
    if (!fs.existsSync(f)) throw new Error(`${f} is missing: run scripts/edge e2e`);
  }
  // miniflare is the contract suite's dependency (contract/package.json).
  const contract = createRequire(path.join(ROOT, 'contract', 'package.json'));
  const { Miniflare } = await import(pathToFileURL(contract.resolve('miniflare')).href);

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'confab-edge-e2e-'));
  const keys = crypto.generateKeyPairSync('ed25519');
  const keyFile = path.join(tmp, 'key.pem');
  fs.writeFileSync(keyFile, keys.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const secret = crypto.randomBytes(32).toString('base64');
  const originPort = await freePort();
  const originUrl = `http://127.0.0.1:${originPort}`;

  const mf = new Miniflare({
    modules: true,
    scriptPath: path.join(ROOT, 'edge-worker/build/index.js'),
    modulesRoot: ROOT,
    modulesRules: [
      { type: 'ESModule', include: ['**/*.js'] },
      { type: 'CompiledWasm', include: ['**/*.wasm'] },
    ],
    compatibilityDate: '2025-01-01',
    assets: {
      directory: path.join(WEB, 'dist'),
      binding: 'ASSETS',
      routerConfig: { invoke_user_worker_ahead_of_assets: true, has_user_worker: true },
      assetConfig: { not_found_handling: 'none' },
    },
    r2Buckets: ['UPLOADS'],
    r2Persist: false,
    cf: false,
    host: '127.0.0.1',
    port: await freePort(),
    bindings: {
      ORIGIN_URL: originUrl,
      CONFAB_EDGE_SECRET: secret,
      CONFAB_JWT_PUBLIC_KEY: keys.publicKey.export({ format: 'jwk' }).x,
      CONFAB_MAX_UPLOAD_BYTES: '26214400',
      CONFAB_FILE_ACCESS_TTL_SECS: '30',
      CONFAB_PREVIEW_ALLOWLIST: '',
    },
  });
  const edgeUrl = (await mf.ready).toString().replace(/\/$/, '');
  // The origin's public URL is the edge's; it serves no client of its own here (CONFAB_WEB_DIR
  // names nothing), so every page the browser shows came from the edge. Without CONFAB_EDGE_URL
  // the browser's uploads stay on the origin's disk (/api/files, through the edge): the R2 side
  // of files is the contract suite's.
  const origin = await startOrigin(originPort, {
    CONFAB_DATA_DIR: path.join(tmp, 'data'),
    CONFAB_WEB_DIR: path.join(tmp, 'no-web'),
    CONFAB_JWT_PRIVATE_KEY_FILE: keyFile,
    CONFAB_PUBLIC_URL: edgeUrl,
    CONFAB_EDGE_SECRET: secret,
  });
  console.log(`== edge ${edgeUrl} in front of origin ${originUrl}`);

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: !process.env.E2E_HEADFUL,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const png = await (async () => {
    const p = await browser.newPage({ viewport: { width: 64, height: 48 } });
    await p.setContent('<body style="margin:0;background:#0967d2"></body>');
    const buf = await p.screenshot();
    await p.close();
    return buf;
  })();
  const ctx = { viewport: { width: 1200, height: 760 } };
  const alice = await (await browser.newContext(ctx)).newPage();
  const bob = await (await browser.newContext(ctx)).newPage();
  const errors = [];
  const responses = [];
  const sockets = [];
  for (const [who, p] of [['alice', alice], ['bob', bob]]) {
    p.setDefaultTimeout(15_000);
    p.on('pageerror', (e) => errors.push(`${who}: uncaught ${e.message}`));
    p.on('console', (m) => {
      // A signed-out page asks /api/me first (401): the browser logs that on purpose.
      if ((m.type() === 'error' || m.type() === 'warning') && !/status of 401/.test(m.text())) {
        errors.push(`${who}: console ${m.type()}: ${m.text()}`);
      }
    });
    p.on('response', (r) => responses.push(r));
    p.on('websocket', (ws) => sockets.push(ws.url()));
    p.on('request', (r) => {
      if (!r.url().startsWith(edgeUrl) && !/^(data|blob):/.test(r.url())) errors.push(`${who}: a request not to the edge: ${r.url()}`);
    });
  }

  let passed = 0;
  let failed = 0;
  async function step(name, fn) {
    const t0 = Date.now();
    try {
      await fn();
      passed++;
      console.log(`ok ${name} (${Date.now() - t0} ms)`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${name}: ${e.message}`);
      await alice.screenshot({ path: path.join(os.tmpdir(), 'confab-edge-e2e-fail-alice.png') }).catch(() => {});
      await bob.screenshot({ path: path.join(os.tmpdir(), 'confab-edge-e2e-fail-bob.png') }).catch(() => {});
    }
  }

  try {
    await step('the web client loads from the edge: the page revalidated, its bundle cached for a year', async () => {
      await alice.goto(edgeUrl);
      await alice.getByRole('tab', { name: 'Sign in' }).waitFor();
      const page = responses.find((r) => r.url() === `${edgeUrl}/`);
      assert(page, 'the page came from the edge');
      const headers = await page.allHeaders();
      assert(headers['cache-control'] === 'no-cache', `page: ${headers['cache-control']}`);
      assert((headers['content-security-policy'] ?? '').includes("script-src 'self'"), 'the client CSP');
      const scripts = responses.filter((r) => /\/assets\/.+\.js$/.test(r.url()));
      assert(scripts.length > 0, 'a hashed script was loaded');
      for (const s of scripts) {
        const cc = (await s.allHeaders())['cache-control'];
        assert(cc === IMMUTABLE, `${s.url()}: ${cc}`);
      }
    });

    await step('two users sign up through the edge; one signs out and in again', async () => {
      await register(alice, edgeUrl, 'alice');
      await register(bob, edgeUrl, 'bob');
      await bob.getByRole('button', { name: 'Account menu' }).click();
      await bob.getByRole('menuitem', { name: 'Sign out' }).click();
      const login = bob.getByRole('form', { name: 'Sign in' });
      await login.getByLabel('Username or email').fill('bob@example.test');
      await login.getByLabel('Password').fill(PASSWORD);
      await login.getByRole('button', { name: 'Sign in' }).click();
      await live(bob);
    });

    await step('they chat both ways over WebSockets passed through the edge', async () => {
      await alice.getByRole('button', { name: 'New room' }).click();
      await alice.getByLabel('Room name').fill('edge');
      await alice.getByRole('button', { name: 'Create room' }).click();
      await roomShown(alice, 'edge');
      await bob.getByRole('button', { name: 'Discover' }).click();
      await bob.getByLabel('Search rooms to join').fill('edge');
      await bob.getByRole('button', { name: 'Join edge', exact: true }).click();
      await roomShown(bob, 'edge');
      await send(alice, 'Hello Bob, from behind the edge');
      await seen(bob, 'Hello Bob, from behind the edge');
      await send(bob, 'Hi Alice, the edge passed it on');
      await seen(alice, 'Hi Alice, the edge passed it on');
      const wsUrl = `${edgeUrl.replace(/^http/, 'ws')}/ws`;
      assert(sockets.length >= 2 && sockets.every((u) => u === wsUrl), `sockets: ${sockets.join(', ')}`);
    });

    await step('an image sent through the edge shows for both', async () => {
      await alice.locator('input[type=file]').setInputFiles({ name: 'blue.png', mimeType: 'image/png', buffer: png });
      for (const p of [alice, bob]) {
        const img = p.locator('[data-testid=inline-image]').last();
        await img.waitFor();
        await p.waitForFunction((el) => el.complete && el.naturalWidth > 0, await img.elementHandle(), { timeout: 10_000 });
      }
    });

    await step('no uncaught errors, no console errors (CSP included), no request past the edge', async () => {
      assert(errors.length === 0, errors.join('\n   '));
    });
  } finally {
    await browser.close().catch(() => {});
    origin.kill('SIGTERM');
    await mf.dispose();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
