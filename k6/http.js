// HTTP load: users log in, list their rooms, and read history pages.
//
//   BASE_URL=http://127.0.0.1:18080 USERS=50 DURATION=30 k6 run k6/http.js
import { check, sleep } from 'k6';
import { RUN, register, api } from './lib.js';

const USERS = parseInt(__ENV.USERS || '50', 10);
const DURATION = parseInt(__ENV.DURATION || '30', 10);

export const options = {
  setupTimeout: '300s',
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'],
  scenarios: {
    browse: { executor: 'constant-vus', vus: USERS, duration: `${DURATION}s` },
  },
  thresholds: {
    'http_req_duration{name:rooms}': ['p(99)<100'],
    'http_req_duration{name:history}': ['p(99)<100'],
    http_req_failed: ['rate<0.001'],
  },
};

export function setup() {
  const owner = register(`k6${RUN}owner`);
  const room = api('POST', '/api/rooms', owner, { name: `k6${RUN}history` }, 'create room').json('id');
  const cookies = [];
  for (let i = 0; i < USERS; i++) {
    const c = register(`k6${RUN}h${i}`);
    api('POST', `/api/rooms/${room}/join`, c, {}, 'join room');
    cookies.push(c);
  }
  return { room, cookies };
}

export default function (data) {
  const cookie = data.cookies[(__VU - 1) % data.cookies.length];
  const me = api('GET', '/api/me', cookie, undefined, 'me');
  check(me, { 'me 200': (r) => r.status === 200 });
  const rooms = api('GET', '/api/rooms?scope=joined', cookie, undefined, 'rooms');
  check(rooms, { 'rooms 200': (r) => r.status === 200 });
  const discover = api('GET', '/api/rooms?scope=discover&limit=20', cookie, undefined, 'rooms');
  check(discover, { 'discover 200': (r) => r.status === 200 });
  const history = api('GET', `/api/rooms/${data.room}/messages?limit=50`, cookie, undefined, 'history');
  check(history, { 'history 200': (r) => r.status === 200 });
  sleep(0.5);
}
