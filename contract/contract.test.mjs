// The files-and-previews contract, one suite for every tier that implements it:
//
//   CONTRACT_TARGET=origin-disk  the origin (`confab serve`) storing files under DATA_DIR/files
//   CONTRACT_TARGET=origin-s3    the origin storing files in S3 (moto_server on 127.0.0.1)
//   CONTRACT_TARGET=edge         the edge worker in workerd (miniflare, local R2, web/dist as its
//                                static assets) as the front door of a real origin: every API
//                                call and WebSocket of the suite goes through it (ORIGIN_URL), the
//                                origin's tickets send the bytes to it (CONFAB_EDGE_URL), and it
//                                serves files to members only, asking the origin who they are
//
// Run through scripts/test or scripts/edge test. CONFAB_BIN names the origin binary.
// Every address contacted is on 127.0.0.1: fixtures for previews are local servers, and the
// SSRF cases must be refused before any connection is attempted. The origin trusts the edge's
// signed client address (CONFAB_EDGE_SECRET) on every target, so every target also proves that
// a client sending that header to the origin directly cannot pick its address.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "..");
const TARGET = process.env.CONTRACT_TARGET ?? "origin-disk";
const BIN = process.env.CONFAB_BIN ?? path.join(ROOT, "target/debug/confab");
const MAX = 1024 * 1024; // CONFAB_MAX_UPLOAD_BYTES for the run
const EDGE = TARGET === "edge";
// Login and registration attempts per client address at once (CONFAB_AUTH_BURST_PER_ADDRESS).
const BURST = 6;
// The secret the origin and the edge share (CONFAB_EDGE_SECRET).
const EDGE_SECRET = crypto.randomBytes(32).toString("base64");
// How long a member's access is remembered at the edge (wrangler.toml's value, the most allowed).
const GRANT_SECS = 30;

const children = [];
// originUrl: the origin itself; apiUrl: where clients reach the API (the edge is the front door).
let tmp, originUrl, apiUrl, edgeUrl, mf, fixture, unlisted, keys;
let alice, bob, room;

// ---------- helpers ----------

// The edge runs in wrangler's dev server, which can close an idle keep-alive connection just as
// the next request goes out on it, and undici does not resend requests that carry a body. A
// request that failed that way got no answer at all: send it once more (bodies here are
// buffers, strings or forms, which can be sent again).
const nodeFetch = globalThis.fetch;
async function fetch(url, init) {
  try {
    return await nodeFetch(url, init);
  } catch (e) {
    const code = e?.cause?.code;
    if (!(e instanceof TypeError) || !["ECONNRESET", "UND_ERR_SOCKET", "EPIPE"].includes(code)) {
      throw e;
    }
    console.warn(`resending ${init?.method ?? "GET"} ${url} after ${code}`);
    return nodeFetch(url, init);
  }
}

const b64url = (buf) => Buffer.from(buf).toString("base64url");

function jwt(claims, privateKey) {
  const head = b64url(JSON.stringify({ alg: "EdDSA", typ: "JWT" }));
  const body = b64url(JSON.stringify(claims));
  const sig = crypto.sign(null, Buffer.from(`${head}.${body}`), privateKey);
  return `${head}.${body}.${b64url(sig)}`;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

function listen(handler) {
  return new Promise((resolve) => {
    const server = http.createServer(handler);
    server.listen(0, "127.0.0.1", () => resolve(server));
  });
}

async function waitFor(url, tries = 100) {
  for (let i = 0; i < tries; i++) {
    try {
      await fetch(url);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`${url} did not come up`);
}

function startOrigin(env) {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, ["serve"], {
      env: { ...process.env, RUST_LOG: "warn", ...env },
      stdio: ["ignore", "pipe", "inherit"],
    });
    children.push(child);
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/Confab is running at (\S+)/);
      if (m) resolve(m[1]);
    });
    child.on("exit", (code) => reject(new Error(`confab exited with ${code}`)));
  });
}

async function register(name) {
  const res = await fetch(`${apiUrl}/api/auth/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: name, email: `${name}@example.com`, password: "correct horse battery" }),
  });
  assert.equal(res.status, 201, await res.clone().text());
  const me = await res.json();
  const cookie = res.headers.getSetCookie().find((c) => c.startsWith("confab_access="));
  const token = cookie.split(";")[0].split("=")[1];
  return { me, token, auth: { authorization: `Bearer ${token}` } };
}

async function api(user, method, p, body) {
  return fetch(`${apiUrl}${p}`, {
    method,
    headers: { ...user.auth, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function ticketFor(user, name, size, contentType = "application/octet-stream", roomId = room.id) {
  return api(user, "POST", "/api/uploads/ticket", { room_id: roomId, name, size, content_type: contentType });
}

/** Upload through the ticket flow: ticket from the origin, bytes to its upload_url. */
async function upload(user, name, bytes, contentType = "application/octet-stream") {
  const res = await ticketFor(user, name, bytes.length, contentType);
  assert.equal(res.status, 200, await res.clone().text());
  const ticket = await res.json();
  if (EDGE) assert.ok(ticket.upload_url.startsWith(edgeUrl), ticket.upload_url);
  return putBytes(ticket.ticket, bytes, contentType, ticket.upload_url);
}

function uploadUrl() {
  return EDGE ? `${edgeUrl}/uploads` : `${apiUrl}/api/uploads`;
}

function putBytes(ticket, bytes, contentType = "application/octet-stream", url = uploadUrl()) {
  return fetch(url, {
    method: "PUT",
    headers: { authorization: `Bearer ${ticket}`, "content-type": contentType },
    body: bytes,
  });
}

function multipart(user, name, bytes, roomId = room.id, type = "application/octet-stream") {
  const form = new FormData();
  form.append("room_id", roomId);
  form.append("file", new Blob([bytes], { type }), name);
  return fetch(`${apiUrl}/api/uploads`, { method: "POST", headers: user.auth, body: form });
}

function previewUrl(u) {
  const base = EDGE ? `${edgeUrl}/preview` : `${apiUrl}/api/preview`;
  return `${base}?url=${encodeURIComponent(u)}`;
}

/** The edge's client-address header value: `{address} {seconds} {HMAC-SHA256 hex}`. */
function signAddress(address, secret = EDGE_SECRET, at = Math.floor(Date.now() / 1000)) {
  const mac = crypto.createHmac("sha256", secret).update(`confab-client-address\n${address}\n${at}`).digest("hex");
  return `${address} ${at} ${mac}`;
}

/** A failed login (no such account) POSTed to `base`, from the local address `from`. */
function failedLogin(base, login, headers = {}, from = "127.0.0.1") {
  const url = new URL(`${base}/api/auth/login`);
  const body = JSON.stringify({ login, password: "not the password" });
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: "POST",
        localAddress: from,
        agent: false,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body), ...headers },
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** Polls `probe` (returning a status) until it gives `want`: the seconds it took, and whether
 * the first answer was already `want`. */
async function until(want, probe, limitSecs) {
  const t0 = Date.now();
  for (let tries = 1; ; tries++) {
    const got = await probe();
    const secs = (Date.now() - t0) / 1000;
    if (got === want) return { secs, first: tries === 1 };
    if (secs > limitSecs) assert.fail(`still ${got} after ${Math.round(secs)} s, wanted ${want}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

const PNG = Buffer.from(
  "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8cfc0f01f0005000201a0e1f1c60000000049454e44ae426082",
  "hex",
);
const HTML = Buffer.from("<!doctype html><html><script>alert(document.cookie)</script></html>");
const SVG = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><circle r="4"/></svg>');

// ---------- set-up ----------

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "confab-contract-"));
  keys = crypto.generateKeyPairSync("ed25519");
  const keyFile = path.join(tmp, "key.pem");
  fs.writeFileSync(keyFile, keys.privateKey.export({ type: "pkcs8", format: "pem" }));
  const publicRaw = keys.publicKey.export({ format: "jwk" }).x;

  unlisted = await listen((_req, res) => res.end("<title>must never be read</title>"));
  const unlistedPort = unlisted.address().port;
  fixture = await listen((req, res) => {
    if (req.url === "/page") {
      res.setHeader("content-type", "text/html; charset=utf-8");
      res.end(`<!doctype html><html><head><title>Plain title</title>
        <meta property="og:title" content="Fixture page">
        <meta name="twitter:description" content="A page served by the contract suite">
        <meta property="og:image" content="/image">
        <meta property="og:url" content="https://elsewhere.example/not-what-was-posted">
        <meta property="og:site_name" content="Confab fixtures"></head><body>hi</body></html>`);
    } else if (req.url === "/to-private") {
      res.writeHead(302, { location: "http://10.0.0.1/" }).end();
    } else if (req.url === "/to-loopback") {
      res.writeHead(302, { location: `http://127.0.0.1:${unlistedPort}/` }).end();
    } else if (req.url === "/to-metadata") {
      res.writeHead(301, { location: "http://169.254.169.254/latest/meta-data/" }).end();
    } else if (req.url === "/image") {
      res.setHeader("content-type", "image/png");
      res.end(PNG);
    } else {
      res.writeHead(404).end();
    }
  });
  const allow = `127.0.0.1:${fixture.address().port}`;

  const originPort = await freePort();
  originUrl = `http://127.0.0.1:${originPort}`;
  const env = {
    CONFAB_LISTEN: `127.0.0.1:${originPort}`,
    CONFAB_EDGE_SECRET: EDGE_SECRET,
    CONFAB_AUTH_BURST_PER_ADDRESS: String(BURST),
    // The suite registers many users (the default admits only the first without an invite).
    CONFAB_REGISTRATION: "open",
    CONFAB_DATA_DIR: path.join(tmp, "data"),
    CONFAB_JWT_PRIVATE_KEY_FILE: keyFile,
    CONFAB_MAX_UPLOAD_BYTES: String(MAX),
    CONFAB_PREVIEW_ALLOWLIST: allow,
    CONFAB_WEB_DIR: path.join(tmp, "no-web"),
  };
  if (TARGET === "origin-s3") {
    const port = await freePort();
    // `python3 -m moto.server` rather than the moto_server script: no PATH or pyenv-shim surprises.
    const moto = spawn(process.env.PYTHON ?? "python3", ["-m", "moto.server", "-H", "127.0.0.1", "-p", String(port)], {
      stdio: "ignore",
    });
    children.push(moto);
    await waitFor(`http://127.0.0.1:${port}/`);
    Object.assign(env, {
      CONFAB_S3_BUCKET: "confab-contract",
      CONFAB_S3_ENDPOINT: `http://127.0.0.1:${port}`,
      CONFAB_S3_REGION: "us-east-1",
      CONFAB_S3_ACCESS_KEY_ID: "test",
      CONFAB_S3_SECRET_ACCESS_KEY: "test",
    });
  }
  if (EDGE) {
    const { Miniflare } = await import("miniflare");
    mf = new Miniflare({
      modules: true,
      scriptPath: path.join(ROOT, "edge-worker/build/index.js"),
      modulesRoot: ROOT,
      modulesRules: [
        { type: "ESModule", include: ["**/*.js"] },
        { type: "CompiledWasm", include: ["**/*.wasm"] },
      ],
      compatibilityDate: "2025-01-01",
      // As wrangler.toml's [assets]: the Worker runs first and answers misses itself.
      assets: {
        directory: path.join(ROOT, "web/dist"),
        binding: "ASSETS",
        routerConfig: { invoke_user_worker_ahead_of_assets: true, has_user_worker: true },
        assetConfig: { not_found_handling: "none" },
      },
      r2Buckets: ["UPLOADS"],
      r2Persist: false,
      cf: false,
      host: "127.0.0.1",
      port: await freePort(),
      bindings: {
        CONFAB_JWT_PUBLIC_KEY: publicRaw,
        CONFAB_MAX_UPLOAD_BYTES: String(MAX),
        CONFAB_PREVIEW_ALLOWLIST: allow,
        CONFAB_FILE_ACCESS_TTL_SECS: String(GRANT_SECS),
        ORIGIN_URL: originUrl,
        CONFAB_EDGE_SECRET: EDGE_SECRET,
      },
    });
    edgeUrl = (await mf.ready).toString().replace(/\/$/, "");
    // The edge is the public URL: cookies, the WebSocket's Origin check and file links are its.
    env.CONFAB_EDGE_URL = edgeUrl;
    env.CONFAB_PUBLIC_URL = edgeUrl;
  }
  apiUrl = EDGE ? edgeUrl : originUrl;
  await startOrigin(env);
  alice = await register("alice");
  bob = await register("bob");
  const res = await api(alice, "POST", "/api/rooms", { name: "files" });
  assert.equal(res.status, 201);
  room = await res.json();
});

after(async () => {
  for (const c of children) c.kill("SIGTERM");
  if (mf) await mf.dispose();
  fixture?.close();
  unlisted?.close();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

// ---------- uploads and serving ----------

test(`[${TARGET}] byte-exact round trip, served as a download with the safety headers`, async () => {
  const bytes = crypto.randomBytes(300 * 1024);
  bytes[0] = 0; // binary, never text
  const res = await upload(alice, "data.bin", bytes);
  assert.equal(res.status, 201, await res.clone().text());
  const att = await res.json();
  assert.equal(att.size, bytes.length);
  assert.equal(att.inline, false);
  assert.equal(att.content_type, "application/octet-stream");
  assert.match(att.id, /^[0-9a-f]{32}$/);

  const got = await fetch(att.url, { headers: alice.auth });
  assert.equal(got.status, 200);
  assert.ok(Buffer.from(await got.arrayBuffer()).equals(bytes), "bytes differ");
  assert.equal(got.headers.get("x-content-type-options"), "nosniff");
  assert.match(got.headers.get("content-disposition"), /^attachment;/);
  assert.match(got.headers.get("content-security-policy"), /sandbox/);
  assert.match(got.headers.get("cache-control"), /immutable/);
  const etag = got.headers.get("etag");
  assert.ok(etag);

  const again = await fetch(att.url, { headers: { ...alice.auth, "if-none-match": etag } });
  assert.equal(again.status, 304);

  const part = await fetch(att.url, { headers: { ...alice.auth, range: "bytes=100-199" } });
  assert.equal(part.status, 206);
  assert.equal(part.headers.get("content-range"), `bytes 100-199/${bytes.length}`);
  assert.ok(Buffer.from(await part.arrayBuffer()).equals(bytes.subarray(100, 200)));

  const bad = await fetch(att.url, { headers: { ...alice.auth, range: `bytes=${bytes.length}-` } });
  assert.equal(bad.status, 416);
});

test(`[${TARGET}] images are inline, by their bytes`, async () => {
  const res = await upload(alice, "dot.png", PNG, "image/png");
  assert.equal(res.status, 201, await res.clone().text());
  const att = await res.json();
  assert.equal(att.content_type, "image/png");
  assert.equal(att.inline, true);
  const got = await fetch(att.url, { headers: alice.auth });
  assert.equal(got.headers.get("content-type"), "image/png");
  assert.match(got.headers.get("content-disposition"), /^inline;/);
  assert.ok(Buffer.from(await got.arrayBuffer()).equals(PNG));
});

test(`[${TARGET}] SVG and HTML are never served inline`, async () => {
  for (const [name, bytes] of [["drawing.svg", SVG], ["page.html", HTML], ["page.txt", HTML]]) {
    const res = await upload(alice, name, bytes);
    assert.equal(res.status, 201, `${name}: ${await res.clone().text()}`);
    const att = await res.json();
    assert.equal(att.inline, false, name);
    const got = await fetch(att.url, { headers: alice.auth });
    assert.equal(got.status, 200);
    assert.match(got.headers.get("content-disposition"), /^attachment;/, name);
    assert.equal(got.headers.get("x-content-type-options"), "nosniff");
    assert.match(got.headers.get("content-security-policy"), /sandbox/);
    assert.notEqual(got.headers.get("content-type"), "image/png");
  }
});

test(`[${TARGET}] an HTML file named .png is refused`, async () => {
  let res = await upload(alice, "cat.png", HTML, "image/png");
  assert.ok([415, 422].includes(res.status), `got ${res.status}`);
  assert.ok((await res.json()).error.code);
  res = await upload(alice, "cat.png", HTML, "text/html");
  assert.ok([415, 422].includes(res.status), `got ${res.status}`);
  if (!EDGE) {
    res = await multipart(alice, "cat.png", HTML, room.id, "image/png");
    assert.ok([415, 422].includes(res.status), `got ${res.status}`);
  }
});

test(`[${TARGET}] the size limit is 413`, async () => {
  let res = await ticketFor(alice, "big.bin", MAX + 1);
  assert.equal(res.status, 413);
  // A ticket for a small file does not let a big one through.
  res = await ticketFor(alice, "small.bin", 10);
  const ticket = await res.json();
  res = await putBytes(ticket.ticket, Buffer.alloc(MAX + 1, 1), "application/octet-stream", ticket.upload_url);
  assert.equal(res.status, 413);
  assert.equal((await res.json()).error.code, "payload_too_large");
  if (!EDGE) {
    res = await multipart(alice, "big.bin", Buffer.alloc(MAX + 1, 1));
    assert.equal(res.status, 413);
  }
});

test(`[${TARGET}] forged, expired and misused tickets are refused`, async () => {
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    iss: "confab",
    aud: "confab-upload",
    sub: alice.me.id,
    room: room.id,
    key: crypto.randomBytes(16).toString("hex"),
    name: "x.bin",
    max: MAX,
    iat: now,
    exp: now + 600,
  };
  const other = crypto.generateKeyPairSync("ed25519").privateKey;
  const forged = jwt(claims, other);
  const expired = jwt({ ...claims, iat: now - 3600, exp: now - 60 }, keys.privateKey);
  const wrongAudience = jwt({ ...claims, aud: "something-else" }, keys.privateKey);
  const good = jwt(claims, keys.privateKey);
  const [h, p, s] = good.split(".");
  const tampered = `${h}.${b64url(JSON.stringify({ ...claims, max: MAX * 100 }))}.${s}`;
  for (const [what, t] of [
    ["forged", forged],
    ["expired", expired],
    ["wrong audience", wrongAudience],
    ["tampered", tampered],
    ["an access token", alice.token],
    ["garbage", "not-a-ticket"],
  ]) {
    const res = await putBytes(t, Buffer.from("hello"));
    assert.equal(res.status, 401, `${what}: ${res.status}`);
  }
  const res = await fetch(uploadUrl(), { method: "PUT", body: "hello" });
  assert.equal(res.status, 401);
});

test(`[${TARGET}] a non-member gets no ticket, no upload and no file`, async () => {
  let res = await ticketFor(bob, "x.bin", 5);
  assert.equal(res.status, 403);
  res = await multipart(bob, "x.bin", Buffer.from("hello"));
  assert.equal(res.status, 403);
  res = await fetch(`${apiUrl}/api/uploads/ticket`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ room_id: room.id, name: "x", size: 1, content_type: "text/plain" }),
  });
  assert.equal(res.status, 401);
  const up = await upload(alice, "secret.txt", Buffer.from("members only"));
  const att = await up.json();
  assert.equal((await fetch(att.url, { headers: bob.auth })).status, 403);
  assert.equal((await fetch(att.url)).status, 401);
});

test(`[${TARGET}] files are for members of the file's room now: joined in, left or logged out gone within a minute`, async (t) => {
  const carol = await register("carol");
  const dave = await register("dave");
  const up = await upload(alice, "minutes.txt", Buffer.from("members only, now"), "text/plain");
  assert.equal(up.status, 201, await up.clone().text());
  const att = await up.json();
  const get = (user, init = {}) => fetch(att.url, { ...init, headers: { ...(user?.auth ?? {}), ...(init.headers ?? {}) } });
  assert.equal((await get(alice)).status, 200);
  assert.equal((await get(carol)).status, 403, "not a member");
  assert.equal((await get(null)).status, 401, "not logged in");
  assert.equal((await get(carol, { method: "HEAD" })).status, 403, "HEAD too");
  // A token of carol's, signed by another key: not a login.
  const now = Math.floor(Date.now() / 1000);
  const forged = jwt(
    { iss: "confab", sub: alice.me.id, sid: crypto.randomUUID(), name: "alice", iat: now, exp: now + 600 },
    crypto.generateKeyPairSync("ed25519").privateKey,
  );
  assert.equal((await fetch(att.url, { headers: { authorization: `Bearer ${forged}` } })).status, 401, "forged token");
  const missing = att.url.replace(att.id, crypto.randomBytes(16).toString("hex"));
  assert.equal((await get(alice)).status, 200);
  assert.equal((await fetch(missing, { headers: alice.auth })).status, 404, "no such file");
  // Joining lets carol in at once (a refusal is never remembered); dave too.
  for (const u of [carol, dave]) {
    assert.equal((await api(u, "POST", `/api/rooms/${room.id}/join`, {})).status < 300, true);
    assert.equal((await get(u)).status, 200, `${u.me.username} joined`);
    assert.ok(Buffer.from(await (await get(u)).arrayBuffer()).equals(Buffer.from("members only, now")));
  }
  // Carol leaves and dave logs out; each loses access within a minute (the origin at once; the
  // edge once its remembered yes, at most 30 s old, runs out).
  const left = await api(carol, "POST", `/api/rooms/${room.id}/leave`, {});
  assert.ok(left.status < 300, `leave: ${left.status}`);
  const out = await api(dave, "POST", "/api/auth/logout");
  assert.ok(out.status < 300, `logout: ${out.status}`);
  const [leftAfter, outAfter] = await Promise.all([
    until(403, async () => (await get(carol)).status, 60),
    until(401, async () => (await get(dave)).status, 60),
  ]);
  t.diagnostic(`refused ${leftAfter.secs.toFixed(1)} s after leaving, ${outAfter.secs.toFixed(1)} s after logging out`);
  if (EDGE) {
    const secs = Math.max(leftAfter.secs, outAfter.secs);
    assert.ok(secs <= GRANT_SECS + 5, `${leftAfter.secs} s, ${outAfter.secs} s`);
  } else {
    assert.ok(leftAfter.first && outAfter.first, "the origin checks its store on every request");
  }
  // Alice, still a member, keeps access.
  assert.equal((await get(alice)).status, 200);
});

// ---------- the client's address ----------

test(`[${TARGET}] a client-address header sent to the origin directly is ignored`, async () => {
  // From a loopback address of its own (127.0.0.9), so only these attempts count against it.
  const from = "127.0.0.9";
  const now = Math.floor(Date.now() / 1000);
  const forged = [
    `198.51.100.1 ${now} ${"0".repeat(64)}`,
    signAddress("198.51.100.2", "another secret of the same length as the real one"),
    signAddress("198.51.100.3", EDGE_SECRET, now - 600),
    signAddress("198.51.100.4", EDGE_SECRET, now + 600),
    "198.51.100.5",
    "",
  ];
  assert.ok(forged.length === BURST);
  for (const value of forged) {
    const status = await failedLogin(originUrl, "nobody-direct", { "x-confab-client-address": value }, from);
    assert.equal(status, 401, value);
  }
  // Each claimed a fresh address; all counted against the peer, which is now out of budget.
  const status = await failedLogin(originUrl, "nobody-direct", { "x-confab-client-address": signAddress("198.51.100.6", "x".repeat(44)), "x-forwarded-for": "198.51.100.6" }, from);
  assert.equal(status, 429);
  // What only the edge can send (the secret's signature, fresh) is taken: another budget.
  assert.equal(await failedLogin(originUrl, "nobody-direct", { "x-confab-client-address": signAddress("198.51.100.7") }, from), 401);
});

test(`[${TARGET}] a ticket is used once`, async () => {
  const res = await ticketFor(alice, "once.txt", 5);
  const ticket = await res.json();
  assert.equal((await putBytes(ticket.ticket, Buffer.from("first"), "text/plain", ticket.upload_url)).status, 201);
  assert.equal((await putBytes(ticket.ticket, Buffer.from("again"), "text/plain", ticket.upload_url)).status, 409);
});

// ---------- the edge as the front door ----------

/** A CSP as directive → sorted sources, without the given origins (`'self'` covers them). */
function cspOf(header, dropped = []) {
  const out = {};
  for (const part of header.split(";")) {
    const [name, ...sources] = part.trim().split(/\s+/);
    if (name) out[name] = sources.filter((x) => !dropped.includes(x)).sort();
  }
  return out;
}

test(`[${TARGET}] the web client comes from the edge: hashed files for a year, index.html revalidated`, { skip: !EDGE }, async () => {
  const page = await fetch(`${edgeUrl}/`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get("content-type"), /^text\/html/);
  assert.equal(page.headers.get("cache-control"), "no-cache");
  const html = await page.text();
  assert.match(html, /<div id="root">/);
  const etag = page.headers.get("etag");
  assert.ok(etag, "an ETag to revalidate with");
  const again = await fetch(`${edgeUrl}/`, { headers: { "if-none-match": etag } });
  assert.equal(again.status, 304);
  assert.equal(again.headers.get("cache-control"), "no-cache");
  // The page's headers are the origin's page headers for the same public URL (the origin also
  // names its edge, which is 'self' here, and the localhost spelling of a loopback URL).
  for (const h of ["x-content-type-options", "x-frame-options", "referrer-policy", "cross-origin-opener-policy"]) {
    const fromOrigin = (await fetch(`${originUrl}/`)).headers.get(h);
    assert.equal(page.headers.get(h), fromOrigin, h);
  }
  const originCsp = (await fetch(`${originUrl}/`)).headers.get("content-security-policy");
  assert.deepEqual(cspOf(page.headers.get("content-security-policy")), cspOf(originCsp, [edgeUrl, edgeUrl.replace("http://127.0.0.1", "ws://localhost")]));

  const scripts = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]);
  assert.ok(scripts.length > 0, "index.html names its hashed bundles");
  for (const p of scripts) {
    const res = await fetch(`${edgeUrl}${p}`);
    assert.equal(res.status, 200, p);
    assert.equal(res.headers.get("cache-control"), "public, max-age=31536000, immutable", p);
    assert.equal(res.headers.get("x-content-type-options"), "nosniff");
    await res.arrayBuffer();
  }
  // Unhashed files are revalidated; a client route is the page; a missing file is no page.
  const icon = await fetch(`${edgeUrl}/favicon.svg`);
  assert.equal(icon.status, 200);
  assert.equal(icon.headers.get("cache-control"), "no-cache");
  const route = await fetch(`${edgeUrl}/rooms/somewhere`);
  assert.equal(route.status, 200);
  assert.equal(await route.text(), html);
  const gone = await fetch(`${edgeUrl}/assets/index-0000aaaa.js`);
  assert.equal(gone.status, 404);
  assert.notEqual(gone.headers.get("cache-control"), "public, max-age=31536000, immutable");
  assert.doesNotMatch(gone.headers.get("content-type") ?? "", /html/);
});

test(`[${TARGET}] /api and /ws pass through the edge, WebSocket included`, { skip: !EDGE }, async () => {
  const { default: WebSocket } = await import("ws");
  // The session cookie set through the edge works there, as for a browser.
  const me = await fetch(`${edgeUrl}/api/me`, { headers: { cookie: `confab_access=${bob.token}` } });
  assert.equal(me.status, 200);
  assert.equal((await me.json()).id, bob.me.id);
  assert.equal((await fetch(`${edgeUrl}/api/nothing-here`)).status, 404);
  const res = await api(alice, "POST", "/api/rooms", { name: "through-the-edge" });
  assert.equal(res.status, 201);
  const chat = await res.json();
  assert.ok((await api(bob, "POST", `/api/rooms/${chat.id}/join`, {})).status < 300);

  const open = (user) =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(`${edgeUrl.replace(/^http/, "ws")}/ws`, {
        headers: { cookie: `confab_access=${user.token}`, origin: edgeUrl },
      });
      const frames = [];
      const waiters = [];
      ws.on("message", (data) => {
        const f = JSON.parse(String(data));
        frames.push(f);
        for (const w of [...waiters]) if (w.pred(f)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(f); }
      });
      ws.next = (pred, ms = 10_000) => {
        const seen = frames.find(pred);
        if (seen) { frames.splice(frames.indexOf(seen), 1); return Promise.resolve(seen); }
        return new Promise((res, rej) => {
          const w = { pred, resolve: (f) => { clearTimeout(t); frames.splice(frames.indexOf(f), 1); res(f); } };
          const t = setTimeout(() => rej(new Error(`no frame within ${ms} ms; got ${JSON.stringify(frames)}`)), ms);
          waiters.push(w);
        });
      };
      ws.on("open", () => resolve(ws));
      ws.on("error", reject);
      ws.on("unexpected-response", (_req, r) => reject(new Error(`upgrade answered ${r.statusCode}`)));
    });
  const a = await open(alice);
  const b = await open(bob);
  try {
    await a.next((f) => f.type === "ready");
    await b.next((f) => f.type === "ready");
    for (const ws of [a, b]) {
      ws.send(JSON.stringify({ type: "subscribe", room: chat.id }));
      await ws.next((f) => f.type === "subscribed" && f.room === chat.id);
    }
    a.send(JSON.stringify({ type: "send", room: chat.id, client_msg_id: "edge-1", body: "hello through the edge" }));
    const ack = await a.next((f) => f.type === "ack");
    assert.ok(ack.seq > 0);
    const got = await b.next((f) => f.type === "message" && f.body === "hello through the edge");
    assert.equal(got.seq, ack.seq);
    b.send(JSON.stringify({ type: "send", room: chat.id, client_msg_id: "edge-2", body: "and back" }));
    await a.next((f) => f.type === "message" && f.body === "and back");
  } finally {
    a.close();
    b.close();
  }
  // A foreign page's socket is refused by the origin's Origin check, behind the edge too.
  await assert.rejects(
    new Promise((resolve, reject) => {
      const ws = new WebSocket(`${edgeUrl.replace(/^http/, "ws")}/ws`, {
        headers: { cookie: `confab_access=${alice.token}`, origin: "https://evil.example" },
      });
      ws.on("open", () => { ws.close(); resolve(); });
      ws.on("unexpected-response", (_req, r) => reject(new Error(`status ${r.statusCode}`)));
      ws.on("error", reject);
    }),
    /status 403/,
  );
});

test(`[${TARGET}] login throttling sees each address the edge forwards, and only those`, { skip: !EDGE }, async () => {
  // CF-Connecting-IP is Cloudflare's; miniflare takes the client's, so the suite can be many
  // clients. A client's own X-Confab-Client-Address (even a validly signed one) is replaced.
  const as = (ip, extra = {}) => failedLogin(edgeUrl, "nobody-edge", { "cf-connecting-ip": ip, ...extra });
  for (let i = 0; i < BURST; i++) assert.equal(await as("198.51.100.70"), 401);
  assert.equal(await as("198.51.100.70"), 429, "out of budget");
  assert.equal(
    await as("198.51.100.70", { "x-confab-client-address": signAddress("198.51.100.71") }),
    429,
    "the client's own header is dropped by the edge",
  );
  assert.equal(await as("198.51.100.72"), 401, "another client has its own budget");
  assert.equal(await as("2001:db8::72"), 401, "IPv6 too");
});

// ---------- link previews ----------

test(`[${TARGET}] preview of a local fixture page`, async () => {
  const page = `http://127.0.0.1:${fixture.address().port}/page`;
  const res = await fetch(previewUrl(page), { headers: alice.auth });
  assert.equal(res.status, 200, await res.clone().text());
  const p = await res.json();
  assert.equal(p.title, "Fixture page");
  assert.equal(p.description, "A page served by the contract suite");
  assert.equal(p.site_name, "Confab fixtures");
  // The card links to the URL that was posted, whatever og:url says.
  assert.equal(p.url, page);
  // The image is served by this tier, never from the page's own address (which would tell the
  // page's site who read the message, and when).
  const base = EDGE ? `${edgeUrl}/preview` : `${apiUrl}/api/preview`;
  assert.equal(p.image, `${base}/image?url=${encodeURIComponent(page)}`);
  const image = await fetch(p.image, { headers: alice.auth });
  assert.equal(image.status, 200, await image.clone().text());
  assert.equal(image.headers.get("content-type"), "image/png");
  assert.equal(image.headers.get("x-content-type-options"), "nosniff");
  assert.deepEqual(Buffer.from(await image.arrayBuffer()), PNG);
  assert.equal((await fetch(p.image)).status, 401, "preview images need a login");
  assert.equal((await fetch(previewUrl(page))).status, 401, "previews need a login");
  const img = await fetch(previewUrl(`http://127.0.0.1:${fixture.address().port}/image`), { headers: alice.auth });
  assert.equal(img.status, 422, "only HTML is previewed");
});

test(`[${TARGET}] every SSRF attempt is refused`, async () => {
  const port = unlisted.address().port;
  const fx = `http://127.0.0.1:${fixture.address().port}`;
  const forbidden = [
    `http://127.0.0.1:${port}/`,
    "http://10.0.0.1/",
    "http://10.255.255.254:8080/admin",
    "http://169.254.169.254/latest/meta-data/",
    `http://[::1]:${port}/`,
    `http://[::ffff:127.0.0.1]:${port}/`,
    `http://[::ffff:7f00:1]:${port}/`,
    "http://[::ffff:169.254.169.254]/",
    `http://2130706433:${port}/`,
    `http://127.1:${port}/`,
    `http://0x7f.0.0.1:${port}/`,
    `http://0177.0.0.1:${port}/`,
    `http://localhost:${port}/`,
    "http://192.168.1.1/",
    "http://172.16.0.1/",
    "http://100.64.0.1/",
    "http://[fd00::1]/",
    "http://[fe80::1]/",
    "http://0.0.0.0/",
    `${fx}/to-private`,
    `${fx}/to-loopback`,
    `${fx}/to-metadata`,
  ];
  for (const u of forbidden) {
    const res = await fetch(previewUrl(u), { headers: alice.auth });
    assert.equal(res.status, 403, `${u} gave ${res.status}`);
    assert.equal((await res.json()).error.code, "forbidden");
  }
  for (const u of ["file:///etc/passwd", "ftp://127.0.0.1/", "gopher://127.0.0.1:70/", "data:text/html,<title>x</title>", "javascript:alert(1)", "not a url"]) {
    const res = await fetch(previewUrl(u), { headers: alice.auth });
    assert.equal(res.status, 400, `${u} gave ${res.status}`);
  }
});
