// Upload load: members upload a small PNG into their room through the origin fallback
// (`POST /api/uploads`, multipart `file` + `room_id`) and fetch it back.
//
//   BASE_URL=http://127.0.0.1:18080 USERS=20 DURATION=30 k6 run k6/uploads.js
import http from 'k6/http';
import { check, sleep } from 'k6';
import encoding from 'k6/encoding';
import { BASE_URL, RUN, register, api } from './lib.js';

const USERS = parseInt(__ENV.USERS || '20', 10);
const DURATION = parseInt(__ENV.DURATION || '30', 10);
// A 1x1 transparent PNG.
const PNG = encoding.b64decode(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==');

export const options = {
  setupTimeout: '300s',
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'],
  scenarios: { upload: { executor: 'constant-vus', vus: USERS, duration: `${DURATION}s` } },
  thresholds: {
    'http_req_duration{name:upload}': ['p(99)<500'],
    http_req_failed: ['rate<0.001'],
  },
};

export function setup() {
  const owner = register(`k6${RUN}up`);
  const room = api('POST', '/api/rooms', owner, { name: `k6${RUN}uploads` }, 'create room').json('id');
  const cookies = [];
  for (let i = 0; i < USERS; i++) {
    const c = register(`k6${RUN}up${i}`);
    api('POST', `/api/rooms/${room}/join`, c, {}, 'join room');
    cookies.push(c);
  }
  return { room, cookies };
}

export default function (data) {
  const cookie = data.cookies[(__VU - 1) % data.cookies.length];
  const res = http.post(`${BASE_URL}/api/uploads`, {
    room_id: data.room,
    file: http.file(PNG, `pixel-${__VU}-${__ITER}.png`, 'image/png'),
  }, { headers: { Cookie: cookie }, tags: { name: 'upload' } });
  check(res, { 'uploaded': (r) => r.status === 201 });
  if (res.status === 201) {
    const url = res.json('url');
    const full = url.startsWith('http') ? url : `${BASE_URL}${url}`;
    const got = http.get(full, { headers: { Cookie: cookie }, tags: { name: 'download' } });
    check(got, { 'downloaded': (r) => r.status === 200 && r.body.length === PNG.byteLength });
  }
  sleep(1);
}
