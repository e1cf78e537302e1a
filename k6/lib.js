// Shared helpers for the Confab k6 scripts, and the chat session k6/chat.js and k6/compare.js
// share.
import http from 'k6/http';
import ws from 'k6/ws';
import { check, fail } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';

export const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:18080').replace(/\/$/, '');
export const WS_URL = BASE_URL.replace(/^http/, 'ws') + '/ws';
export const RUN = __ENV.RUN_ID || Math.floor(Math.random() * 1e9).toString(36);
export const PASSWORD = 'k6-load-password';

// The chat scenarios' load, from the environment (the same names in every script).
export const USERS = parseInt(__ENV.USERS || '100', 10);
export const ROOM_SIZE = parseInt(__ENV.ROOM_SIZE || '10', 10);
export const INTERVAL_MS = parseInt(__ENV.INTERVAL_MS || '1000', 10);
export const DURATION = parseInt(__ENV.DURATION || '30', 10);
export const RAMP_S = parseInt(__ENV.RAMP || '20', 10);

// Registers a user and returns the Cookie header that authenticates it. The target must run
// with CONFAB_REGISTRATION=open (scripts/cluster and scripts/bench set it).
export function register(name) {
  const res = http.post(`${BASE_URL}/api/auth/register`,
    JSON.stringify({ username: name, email: `${name}@k6.test`, password: PASSWORD }),
    { headers: { 'Content-Type': 'application/json' }, tags: { name: 'register' } });
  if (!check(res, { 'registered': (r) => r.status === 201 })) {
    fail(`register ${name}: ${res.status} ${res.body}`);
  }
  const access = res.cookies.confab_access;
  // Keep the VU's cookie jar empty: every request names its user explicitly.
  http.cookieJar().clear(BASE_URL);
  return `confab_access=${access[0].value}`;
}

export function api(method, path, cookie, body, tag) {
  const params = { headers: { 'Content-Type': 'application/json', Cookie: cookie }, tags: { name: tag || path } };
  return http.request(method, `${BASE_URL}${path}`, body === undefined ? null : JSON.stringify(body), params);
}

// ---- The chat session that k6/chat.js and k6/compare.js share ----------------------------
//
// One client logic, two wire protocols: a protocol object says how a frame reads and what to
// send; chatSession does the rest (join, the sending schedule, counting, latency), so a
// comparison between targets compares the servers, not two clients.

// Chat message bodies are `k6 SENDER SENT_AT_MS`; receivers read them without a JSON parse.
const BODY = '"body":"k6 ';

export function chatBody(me) {
  return `k6 ${me} ${Date.now()}`;
}

// The metrics every chat script reports. Call once, in the init context.
export function chatMetrics() {
  return {
    deliveryLatency: new Trend('delivery_latency', true),
    connectTime: new Trend('ws_connect_time', true),
    sent: new Counter('messages_sent'),
    acked: new Counter('messages_acked'),
    delivered: new Counter('messages_delivered'),
    expected: new Counter('messages_expected'),
    wsErrors: new Counter('ws_errors'),
    sessionOk: new Rate('ws_session_ok'),
  };
}

// Registers `users` users and puts them in rooms of `roomSize` (one owner per room creates
// it, the others join), so a measured phase is only chat. Returns the rooms' ids and each
// user's Cookie header.
export function registerRooms(users, roomSize) {
  const rooms = [];
  const cookies = [];
  for (let i = 0; i < users; i++) {
    cookies.push(register(`k6${RUN}u${i}`));
  }
  for (let r = 0; r * roomSize < users; r++) {
    const owner = cookies[r * roomSize];
    const res = api('POST', '/api/rooms', owner, { name: `k6${RUN}r${r}` }, 'create room');
    check(res, { 'room created': (x) => x.status === 201 });
    rooms.push(res.json('id'));
    for (let i = r * roomSize + 1; i < Math.min(users, (r + 1) * roomSize); i++) {
      api('POST', `/api/rooms/${rooms[r]}/join`, cookies[i], {}, 'join room');
    }
  }
  return { rooms, cookies };
}

// Confab's WebSocket protocol (/ws, JSON frames; the session cookie authenticates).
// read() names a control frame: open, ready, joined, ack, error, rejoin, ping or '' (ignored).
export const confabChat = {
  url: () => WS_URL,
  params: (cookie) => ({ headers: { Cookie: cookie } }),
  isChat: (text) => text.startsWith('{"type":"message"'),
  read(text) {
    const f = JSON.parse(text);
    switch (f.type) {
      case 'ready': return 'ready';
      case 'subscribed': return 'joined';
      case 'ack': return 'ack';
      case 'error': return 'error';
      case 'resync': return 'rejoin';
      default: return '';
    }
  },
  hello: null,
  pong: null,
  join: (room) => JSON.stringify({ type: 'subscribe', room }),
  send: (room, n, body) => JSON.stringify({ type: 'send', room, client_msg_id: `k${n}`, body }),
  // The server drops clients silent for 60 s.
  keepalive: '{"type":"ping"}',
};

// Socket.IO v5 over Engine.IO v4, WebSocket transport only (what bench/socketio serves):
// `0{…}` opens, `40` connects the default namespace (answered `40{…}`), `2`/`3` are the
// server's ping and our pong, events are `42["name",payload]`, `42N[…]` asks for ack N,
// answered `43N[…]`.
export const socketioChat = {
  url: () => BASE_URL.replace(/^http/, 'ws') + '/socket.io/?EIO=4&transport=websocket',
  params: () => ({}),
  isChat: (text) => text.startsWith('42["message"'),
  read(text) {
    if (text === '2') return 'ping';
    if (text.startsWith('0')) return 'open';
    if (text.startsWith('40')) return 'ready';
    if (text.startsWith('42["joined"')) return 'joined';
    if (text.startsWith('43')) return 'ack';
    // 44: connect error, 41: disconnected by the server.
    if (text.startsWith('44') || text.startsWith('41')) return 'error';
    return '';
  },
  hello: '40',
  pong: '3',
  join: (room) => `42${JSON.stringify(['join', room])}`,
  send: (room, n, body) => `42${n}${JSON.stringify(['message', { room, body }])}`,
  keepalive: null,
};

// One user's session: connect, join `room`, send one message per `intervalMs` from a random
// offset after `sendFrom` until `endAt`, close 3 s later (late deliveries count), and add what
// was sent, acknowledged and delivered by the room's `roomSize - 1` others to `m`.
export function chatSession(protocol, m, { cookie, me, room, roomSize, sendFrom, endAt, intervalMs }) {
  const started = Date.now();
  let ok = true;
  let n = 0;
  let sending = false;
  // Counted here and added once at the end: a metric sample per message costs k6 CPU that
  // this machine's servers need.
  let got = 0;
  let acks = 0;
  const res = ws.connect(protocol.url(), protocol.params(cookie), (socket) => {
    let closing = false;
    socket.on('message', (text) => {
      // Chat messages are nearly all the traffic: read the body without parsing the frame.
      if (protocol.isChat(text)) {
        const at = text.indexOf(BODY);
        if (at >= 0) {
          const from = at + BODY.length;
          const space = text.indexOf(' ', from);
          if (parseInt(text.substring(from, space), 10) !== me) {
            m.deliveryLatency.add(Date.now() - parseInt(text.substring(space + 1, text.indexOf('"', space)), 10));
            got += 1;
          }
        }
        return;
      }
      switch (protocol.read(text)) {
        case 'open':
          socket.send(protocol.hello);
          break;
        case 'ping':
          socket.send(protocol.pong);
          break;
        case 'ready':
          m.connectTime.add(Date.now() - started);
          socket.send(protocol.join(room));
          break;
        case 'rejoin':
          socket.send(protocol.join(room));
          break;
        case 'joined': {
          if (sending) break;
          sending = true;
          const offset = Math.max(0, sendFrom - Date.now()) + Math.random() * intervalMs;
          socket.setTimeout(() => {
            socket.setInterval(() => {
              if (Date.now() >= endAt) return;
              n += 1;
              socket.send(protocol.send(room, n, chatBody(me)));
              m.sent.add(1);
            }, intervalMs);
          }, offset);
          break;
        }
        case 'ack':
          acks += 1;
          break;
        case 'error':
          m.wsErrors.add(1);
          if (__ENV.DEBUG) console.warn(`error frame: ${text}`);
          break;
        default:
      }
    });
    socket.on('error', (e) => {
      if (closing) {
        // After our close: k6 answering a ping the server sent as the close crossed it gets
        // "close sent". The session's work is over and counted; it is no failure of either side.
        console.warn(`user ${me}: after closing: ${e.error()}`);
        return;
      }
      ok = false;
      m.wsErrors.add(1);
      console.warn(`user ${me}: socket error: ${e.error()}`);
    });
    socket.on('close', () => {
      if (Date.now() < endAt) {
        ok = false;
        console.warn(`user ${me}: closed ${Math.round((endAt - Date.now()) / 1000)} s early`);
      }
    });
    // Nothing is sent once the close is: a keepalive due at the same moment would fail the
    // session with "close sent".
    if (protocol.keepalive) {
      socket.setInterval(() => { if (!closing) socket.send(protocol.keepalive); }, 20000);
    }
    socket.setTimeout(() => { closing = true; socket.close(); }, Math.max(0, endAt - Date.now()) + 3000);
  });
  m.delivered.add(got);
  m.acked.add(acks);
  m.expected.add(acks * (roomSize - 1));
  ok = ok && check(res, { 'ws upgraded': (r) => r && r.status === 101 });
  if (!res || res.status !== 101) console.warn(`user ${me}: upgrade answered ${res && res.status}`);
  m.sessionOk.add(ok);
}

// The summary a chat script writes (stdout and the SUMMARY file, default `file`).
export function chatSummary(data, params, file) {
  const m = (name) => (data.metrics[name] ? data.metrics[name].values : {});
  const exp = m('messages_expected').count || 0;
  const del = m('messages_delivered').count || 0;
  const out = Object.assign({}, params, {
    delivery_ms: m('delivery_latency'), connect_ms: m('ws_connect_time'),
    sent: m('messages_sent').count || 0, acked: m('messages_acked').count || 0,
    delivered: del, expected: exp, delivered_ratio: exp ? del / exp : 1,
    session_success: m('ws_session_ok').rate, ws_errors: m('ws_errors').count || 0,
  });
  return {
    stdout: JSON.stringify(out, null, 2) + '\n',
    [__ENV.SUMMARY || file]: JSON.stringify(out, null, 2),
  };
}
