// Chat load: USERS users in rooms of ROOM_SIZE, each sending a message every INTERVAL_MS for
// DURATION seconds. Reports connect time, delivery latency (send -> each receipt by another
// member), delivered/expected, session success and errors. The session is lib.js's
// chatSession, which k6/compare.js also runs against the Socket.IO baseline.
//
//   BASE_URL=http://127.0.0.1:18080 USERS=1000 ROOM_SIZE=10 INTERVAL_MS=1000 DURATION=60 k6 run k6/chat.js
import { sleep } from 'k6';
import { chatMetrics, chatSession, chatSummary, confabChat, registerRooms, USERS, ROOM_SIZE, INTERVAL_MS, DURATION, RAMP_S } from './lib.js';


const metrics = chatMetrics();

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

// Registers everyone and fills the rooms up front, so the measured phase is only chat.
export function setup() {
  return Object.assign(registerRooms(USERS, ROOM_SIZE), { sendFrom: Date.now() + RAMP_S * 1000 + 2000 });
}

export default function (data) {
  const me = __VU - 1;
  // Spread connections over the ramp.
  sleep((RAMP_S * me) / USERS);
  chatSession(confabChat, metrics, {
    cookie: data.cookies[me], me,
    room: data.rooms[Math.floor(me / ROOM_SIZE)],
    roomSize: Math.min(ROOM_SIZE, USERS - Math.floor(me / ROOM_SIZE) * ROOM_SIZE),
    sendFrom: data.sendFrom, endAt: data.sendFrom + DURATION * 1000, intervalMs: INTERVAL_MS,
  });
}

export function handleSummary(data) {
  return chatSummary(data, { users: USERS, room_size: ROOM_SIZE, interval_ms: INTERVAL_MS, duration_s: DURATION },
    'k6-chat-summary.json');
}
