// Chat load: USERS users in rooms of ROOM_SIZE, each sending a message every INTERVAL_MS for
// DURATION seconds. Reports connect time, delivery latency (send -> each receipt by another
// member), delivered/expected, session success and errors.
//
//   BASE_URL=http://127.0.0.1:18080 USERS=1000 ROOM_SIZE=10 INTERVAL_MS=1000 DURATION=60 k6 run k6/chat.js
import ws from 'k6/ws';
import { check, sleep } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';
import { BASE_URL, WS_URL, RUN, register, api } from './lib.js';

const USERS = parseInt(__ENV.USERS || '100', 10);
const ROOM_SIZE = parseInt(__ENV.ROOM_SIZE || '10', 10);
const INTERVAL_MS = parseInt(__ENV.INTERVAL_MS || '1000', 10);
const DURATION = parseInt(__ENV.DURATION || '30', 10);
const RAMP_S = parseInt(__ENV.RAMP || '20', 10);

const deliveryLatency = new Trend('delivery_latency', true);
const connectTime = new Trend('ws_connect_time', true);
const sent = new Counter('messages_sent');
const acked = new Counter('messages_acked');
const delivered = new Counter('messages_delivered');
const expected = new Counter('messages_expected');
const wsErrors = new Counter('ws_errors');
const sessionOk = new Rate('ws_session_ok');

export const options = {
  setupTimeout: '300s',
  // Every received WebSocket message is a metric sample: fewer tags make each one cheaper.
  systemTags: ['scenario', 'status', 'name', 'check', 'error_code'],
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'],
  scenarios: {
    chat: {
      executor: 'per-vu-iterations',
      vus: USERS,
      iterations: 1,
      maxDuration: `${RAMP_S * 3 + DURATION + 120}s`,
    },
  },
  thresholds: {
    delivery_latency: ['p(99)<50'],
    ws_session_ok: ['rate==1'],
    ws_errors: ['count==0'],
  },
};

// Creates the rooms (one owner per room) and registers everyone up front, so the measured
// phase is only chat.
export function setup() {
  const rooms = [];
  const cookies = [];
  for (let i = 0; i < USERS; i++) {
    cookies.push(register(`k6${RUN}u${i}`));
  }
  for (let r = 0; r * ROOM_SIZE < USERS; r++) {
    const owner = cookies[r * ROOM_SIZE];
    const res = api('POST', '/api/rooms', owner, { name: `k6${RUN}r${r}` }, 'create room');
    check(res, { 'room created': (x) => x.status === 201 });
    rooms.push(res.json('id'));
    for (let i = r * ROOM_SIZE + 1; i < Math.min(USERS, (r + 1) * ROOM_SIZE); i++) {
      api('POST', `/api/rooms/${rooms[r]}/join`, cookies[i], {}, 'join room');
    }
  }
  return { rooms, cookies, sendFrom: Date.now() + RAMP_S * 1000 + 2000 };
}

export default function (data) {
  const me = __VU - 1;
  const room = data.rooms[Math.floor(me / ROOM_SIZE)];
  // Spread connections over the ramp.
  sleep((RAMP_S * me) / USERS);
  const started = Date.now();
  const endAt = data.sendFrom + DURATION * 1000;
  let ok = true;
  let n = 0;
  // Counted here and added once at the end: a metric sample per message costs k6 CPU that
  // this machine's servers need.
  let got = 0;
  let acks = 0;
  const roomSize = Math.min(ROOM_SIZE, USERS - Math.floor(me / ROOM_SIZE) * ROOM_SIZE);
  const res = ws.connect(WS_URL, { headers: { Cookie: data.cookies[me] } }, (socket) => {
    socket.on('message', (text) => {
      // Chat messages are nearly all the traffic: read the body without parsing the frame.
      if (text.startsWith('{"type":"message"')) {
        const at = text.indexOf('"body":"k6 ');
        if (at >= 0) {
          const from = at + 11;
          const space = text.indexOf(' ', from);
          if (parseInt(text.substring(from, space), 10) !== me) {
            deliveryLatency.add(Date.now() - parseInt(text.substring(space + 1, text.indexOf('"', space)), 10));
            got += 1;
          }
        }
        return;
      }
      const f = JSON.parse(text);
      if (f.type === 'ready') {
        connectTime.add(Date.now() - started);
        socket.send(JSON.stringify({ type: 'subscribe', room }));
      } else if (f.type === 'subscribed') {
        const offset = Math.max(0, data.sendFrom - Date.now()) + Math.random() * INTERVAL_MS;
        socket.setTimeout(() => {
          socket.setInterval(() => {
            if (Date.now() >= endAt) return;
            n += 1;
            socket.send(JSON.stringify({ type: 'send', room, client_msg_id: `k${n}`, body: `k6 ${me} ${Date.now()}` }));
            sent.add(1);
          }, INTERVAL_MS);
        }, offset);
      } else if (f.type === 'ack') {
        acks += 1;
      } else if (f.type === 'error') {
        wsErrors.add(1);
        if (__ENV.DEBUG) console.warn(`error frame: ${text}`);
      } else if (f.type === 'resync') {
        socket.send(JSON.stringify({ type: 'subscribe', room }));
      }
    });
    socket.on('error', (e) => {
      ok = false;
      wsErrors.add(1);
      console.warn(`user ${me}: socket error: ${e.error()}`);
    });
    socket.on('close', () => {
      if (Date.now() < endAt) {
        ok = false;
        console.warn(`user ${me}: closed ${Math.round((endAt - Date.now()) / 1000)} s early`);
      }
    });
    socket.setInterval(() => socket.send('{"type":"ping"}'), 20000);
    // Stop a little after the sending phase so late deliveries are counted.
    socket.setTimeout(() => socket.close(), Math.max(0, endAt - Date.now()) + 3000);
  });
  delivered.add(got);
  acked.add(acks);
  expected.add(acks * (roomSize - 1));
  ok = ok && check(res, { 'ws upgraded': (r) => r && r.status === 101 });
  if (!res || res.status !== 101) console.warn(`user ${me}: upgrade answered ${res && res.status}`);
  sessionOk.add(ok);
}

export function handleSummary(data) {
  const m = (name) => (data.metrics[name] ? data.metrics[name].values : {});
  const exp = m('messages_expected').count || 0;
  const del = m('messages_delivered').count || 0;
  const out = {
    users: USERS, room_size: ROOM_SIZE, interval_ms: INTERVAL_MS, duration_s: DURATION,
    delivery_ms: m('delivery_latency'), connect_ms: m('ws_connect_time'),
    sent: m('messages_sent').count || 0, acked: m('messages_acked').count || 0,
    delivered: del, expected: exp, delivered_ratio: exp ? del / exp : 1,
    session_success: m('ws_session_ok').rate, ws_errors: m('ws_errors').count || 0,
  };
  return {
    stdout: JSON.stringify(out, null, 2) + '\n',
    [__ENV.SUMMARY || 'k6-chat-summary.json']: JSON.stringify(out, null, 2),
  };
}
