// The same chat load against Confab or the Socket.IO + Redis adapter baseline (bench/socketio),
// for `scripts/bench compare`: USERS users in rooms of ROOM_SIZE, each sending a message every
// INTERVAL_MS for DURATION seconds after a RAMP of connections. Both targets run lib.js's
// chatSession (same schedule, same body, same latency and delivery counting); only the wire
// protocol differs. On Confab the users are registered and the rooms filled in setup(), before
// the measured window; the baseline has no accounts, its rooms are names.
//
//   TARGET=confab   BASE_URL=http://127.0.0.1:18080 USERS=1000 k6 run k6/compare.js
//   TARGET=socketio BASE_URL=http://127.0.0.1:PORT  USERS=1000 k6 run k6/compare.js
import { sleep } from 'k6';
import { RUN, chatMetrics, chatSession, chatSummary, confabChat, registerRooms, socketioChat, USERS, ROOM_SIZE, INTERVAL_MS, DURATION, RAMP_S } from './lib.js';

const TARGET = __ENV.TARGET || 'confab';
const PROTOCOLS = { confab: confabChat, socketio: socketioChat };
if (!PROTOCOLS[TARGET]) throw new Error(`TARGET must be confab or socketio, not ${TARGET}`);

const metrics = chatMetrics();

export const options = {
  setupTimeout: '300s',
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
  // No latency threshold: this script measures two systems, it does not judge one.
  thresholds: {
    ws_session_ok: ['rate==1'],
    ws_errors: ['count==0'],
  },
};

export function setup() {
  let target;
  if (TARGET === 'confab') {
    target = registerRooms(USERS, ROOM_SIZE);
  } else {
    target = { rooms: [], cookies: [] };
    for (let r = 0; r * ROOM_SIZE < USERS; r++) target.rooms.push(`k6${RUN}r${r}`);
  }
  // Written when the measured window starts (connections begin), for scripts/bench's samplers.
  if (__ENV.MARK) console.log(`${__ENV.MARK} ${Date.now()}`);
  return Object.assign(target, { sendFrom: Date.now() + RAMP_S * 1000 + 2000 });
}

export default function (data) {
  const me = __VU - 1;
  sleep((RAMP_S * me) / USERS);
  chatSession(PROTOCOLS[TARGET], metrics, {
    cookie: data.cookies[me], me,
    room: data.rooms[Math.floor(me / ROOM_SIZE)],
    roomSize: Math.min(ROOM_SIZE, USERS - Math.floor(me / ROOM_SIZE) * ROOM_SIZE),
    sendFrom: data.sendFrom, endAt: data.sendFrom + DURATION * 1000, intervalMs: INTERVAL_MS,
  });
}

export function handleSummary(data) {
  return chatSummary(data, {
    target: TARGET, users: USERS, room_size: ROOM_SIZE, interval_ms: INTERVAL_MS, duration_s: DURATION, ramp_s: RAMP_S,
  }, 'k6-compare-summary.json');
}
