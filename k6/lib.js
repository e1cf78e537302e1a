// Shared helpers for the Confab k6 scripts.
import http from 'k6/http';
import { check, fail } from 'k6';

export const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:18080').replace(/\/$/, '');
export const WS_URL = BASE_URL.replace(/^http/, 'ws') + '/ws';
export const RUN = __ENV.RUN_ID || Math.floor(Math.random() * 1e9).toString(36);
export const PASSWORD = 'k6-load-password';

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
