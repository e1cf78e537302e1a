// Chat while new users sign up: USERS users, registered up front, chat in rooms of ROOM_SIZE
// (one message every INTERVAL_MS each, for DURATION seconds, delivery latency measured as in
// k6/chat.js) while NEW_USERS more register one by one as they arrive, spread evenly over the
// same DURATION seconds, and each then signs in on the WebSocket (connects, waits for `ready`).
// Reports the chatters' delivery latency during the sign-ups, and sign-ups attempted,
// completed and their latency.
//
//   BASE_URL=http://127.0.0.1:18080 USERS=1000 NEW_USERS=1000 ROOM_SIZE=10 INTERVAL_MS=1000 \
//     DURATION=60 k6 run k6/signup_chat.js
import http from 'k6/http';
import ws from 'k6/ws';
import exec from 'k6/execution';
import { sleep } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';
import { BASE_URL, WS_URL, RUN, PASSWORD, chatMetrics, chatSession, confabChat, registerRooms, USERS, ROOM_SIZE, INTERVAL_MS, DURATION, RAMP_S } from './lib.js';

const NEW_USERS = parseInt(__ENV.NEW_USERS || '100', 10);
// Sign-ups in flight at once are bounded by these VUs; a sign-up that finds none free is
// counted in dropped_iterations (attempted, not completed).
const SIGNUP_VUS = parseInt(__ENV.SIGNUP_VUS || '100', 10);

const metrics = chatMetrics();
const signupLatency = new Trend('signup_latency', true);
const signupsAttempted = new Counter('signups_attempted');
const signupOk = new Rate('signup_ok');
const newcomerReady = new Rate('newcomer_ws_ready');

export const options = {
  setupTimeout: '600s',
  systemTags: ['scenario', 'status', 'name', 'check', 'error_code'],
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'],
  scenarios: {
    chat: {
      executor: 'per-vu-iterations',
      exec: 'chat',
      vus: USERS,
      iterations: 1,
      maxDuration: `${RAMP_S * 3 + DURATION + 120}s`,
    },
    // NEW_USERS arrivals spread over the chat's sending phase (which starts RAMP + 2 s in).
    signups: {
      executor: 'constant-arrival-rate',
      exec: 'newcomer',
      rate: NEW_USERS,
      timeUnit: `${DURATION}s`,
      duration: `${DURATION}s`,
      startTime: `${RAMP_S + 2}s`,
      preAllocatedVUs: SIGNUP_VUS,
      maxVUs: SIGNUP_VUS,
      gracefulStop: '120s',
    },
  },
  thresholds: {
    delivery_latency: ['p(99)<50'],
    ws_session_ok: ['rate==1'],
    ws_errors: ['count==0'],
    signup_ok: ['rate==1'],
    newcomer_ws_ready: ['rate==1'],
    dropped_iterations: ['count==0'],
  },
};

// The chatting population: registered, in rooms, before anything is measured (as k6/chat.js).
export function setup() {
  return Object.assign(registerRooms(USERS, ROOM_SIZE), { sendFrom: Date.now() + RAMP_S * 1000 + 2000 });
}

// One chatting user, k6/chat.js's session; the user index comes from the scenario (VU numbers
// are shared with the sign-up scenario).
export function chat(data) {
  const me = exec.scenario.iterationInTest;
  sleep((RAMP_S * me) / USERS);
  chatSession(confabChat, metrics, {
    cookie: data.cookies[me], me,
    room: data.rooms[Math.floor(me / ROOM_SIZE)],
    roomSize: Math.min(ROOM_SIZE, USERS - Math.floor(me / ROOM_SIZE) * ROOM_SIZE),
    sendFrom: data.sendFrom, endAt: data.sendFrom + DURATION * 1000, intervalMs: INTERVAL_MS,
  });
}

// One new user arriving: registers (Argon2id on the origin's hashing pool), then signs in on
// the WebSocket with the session it got, and leaves once the server says `ready`.
export function newcomer() {
  const name = `k6${RUN}n${exec.scenario.iterationInTest}`;
  signupsAttempted.add(1);
  const res = http.post(`${BASE_URL}/api/auth/register`,
    JSON.stringify({ username: name, email: `${name}@k6.test`, password: PASSWORD }),
    { headers: { 'Content-Type': 'application/json' }, tags: { name: 'register' }, timeout: '120s' });
  http.cookieJar().clear(BASE_URL);
  signupLatency.add(res.timings.duration);
  const ok = res.status === 201 && res.cookies.confab_access !== undefined;
  signupOk.add(ok);
  if (!ok) {
    console.warn(`sign-up ${name}: ${res.status} ${res.body}`);
    return;
  }
  const cookie = `confab_access=${res.cookies.confab_access[0].value}`;
  let ready = false;
  ws.connect(WS_URL, { headers: { Cookie: cookie } }, (socket) => {
    socket.on('message', (text) => {
      if (text.startsWith('{"type":"ready"')) {
        ready = true;
        socket.close();
      }
    });
    socket.setTimeout(() => socket.close(), 10000);
  });
  newcomerReady.add(ready);
}

export function handleSummary(data) {
  const m = (name) => (data.metrics[name] ? data.metrics[name].values : {});
  const exp = m('messages_expected').count || 0;
  const del = m('messages_delivered').count || 0;
  const dropped = m('dropped_iterations').count || 0;
  const attempted = (m('signups_attempted').count || 0) + dropped;
  const completed = m('signup_ok').passes || 0;
  const out = {
    users: USERS, new_users: NEW_USERS, room_size: ROOM_SIZE, interval_ms: INTERVAL_MS,
    duration_s: DURATION,
    delivery_ms: m('delivery_latency'), connect_ms: m('ws_connect_time'),
    sent: m('messages_sent').count || 0, acked: m('messages_acked').count || 0,
    delivered: del, expected: exp, delivered_ratio: exp ? del / exp : 1,
    session_success: m('ws_session_ok').rate, ws_errors: m('ws_errors').count || 0,
    signups_attempted: attempted, signups_completed: completed,
    signups_not_started: dropped,
    signup_ms: m('signup_latency'),
    newcomer_ws_ready: m('newcomer_ws_ready').rate,
    thresholds_ok: Object.values(data.metrics).every((x) => !x.thresholds
      || Object.values(x.thresholds).every((t) => t.ok)),
  };
  return {
    stdout: JSON.stringify(out, null, 2) + '\n',
    [__ENV.SUMMARY || 'k6-signup-summary.json']: JSON.stringify(out, null, 2),
  };
}
