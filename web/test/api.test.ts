// The HTTP client's session handling: one refresh on a 401, shared by concurrent calls.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { api, ApiError, onSessionLost } from '../src/lib/api';

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

const ME = { id: 'u1', username: 'ann', email: 'ann@example.test', created_at: 1 };
const UNAUTHORIZED = { error: { code: 'unauthorized', message: 'sign in' } };

afterEach(() => {
  vi.unstubAllGlobals();
  onSessionLost(() => {});
});

describe('api', () => {
  it('refreshes once on a 401 and retries', async () => {
    const calls: string[] = [];
    let refreshed = false;
    vi.stubGlobal('fetch', async (path: string, init?: RequestInit) => {
      calls.push(`${init?.method ?? 'GET'} ${path}`);
      if (path === '/api/auth/refresh') {
        refreshed = true;
        return new Response(null, { status: 204 });
      }
      return refreshed ? json(200, ME) : json(401, UNAUTHORIZED);
    });
    expect(await api.me()).toEqual(ME);
    expect(calls).toEqual(['GET /api/me', 'POST /api/auth/refresh', 'GET /api/me']);
  });

  it('shares one refresh between concurrent 401s', async () => {
    let refreshes = 0;
    let refreshed = false;
    vi.stubGlobal('fetch', async (path: string) => {
      if (path === '/api/auth/refresh') {
        refreshes++;
        await new Promise((r) => setTimeout(r, 10));
        refreshed = true;
        return new Response(null, { status: 204 });
      }
      return refreshed ? json(200, ME) : json(401, UNAUTHORIZED);
    });
    await Promise.all([api.me(), api.me(), api.me()]);
    expect(refreshes).toBe(1);
  });

  it('reports a lost session when the refresh is refused, and throws the API error', async () => {
    const lost = vi.fn();
    onSessionLost(lost);
    vi.stubGlobal('fetch', async (path: string) =>
      path === '/api/auth/refresh' ? json(401, UNAUTHORIZED) : json(401, UNAUTHORIZED),
    );
    const err = await api.rooms('joined').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe('unauthorized');
    expect(lost).toHaveBeenCalledTimes(1);
  });

  it('turns a network failure into a network ApiError without refreshing', async () => {
    const f = vi.fn(async () => {
      throw new TypeError('fetch failed');
    });
    vi.stubGlobal('fetch', f);
    const err = await api.me().catch((e: unknown) => e);
    expect((err as ApiError).code).toBe('network');
    expect(f).toHaveBeenCalledTimes(1);
  });

  it('waits for a password change in flight before refreshing (its answer carries new cookies)', async () => {
    const calls: string[] = [];
    let answerChange: () => void = () => {};
    vi.stubGlobal('fetch', async (path: string) => {
      calls.push(path);
      if (path === '/api/me/password') {
        await new Promise<void>((r) => (answerChange = r));
        return json(200, ME);
      }
      if (path === '/api/auth/refresh') return new Response(null, { status: 204 });
      return calls.includes('/api/auth/refresh') ? json(200, ME) : json(401, UNAUTHORIZED);
    });
    const change = api.changePassword({ current_password: 'a'.repeat(8), new_password: 'b'.repeat(8) });
    const me = api.me(); // e.g. the socket was closed by the revocation before the answer came
    await new Promise((r) => setTimeout(r, 20));
    expect(calls).toEqual(['/api/me/password', '/api/me']);
    answerChange();
    await change;
    expect(await me).toEqual(ME);
    expect(calls).toEqual(['/api/me/password', '/api/me', '/api/auth/refresh', '/api/me']);
  });

  it('puts the conversation endpoints where the contract says, queries encoded, bodies as JSON', async () => {
    const calls: string[] = [];
    vi.stubGlobal('fetch', async (path: string, init?: RequestInit) => {
      calls.push(`${init?.method ?? 'GET'} ${path}${init?.body ? ` ${init.body}` : ''}`);
      return init?.method === 'DELETE' ? new Response(null, { status: 204 }) : json(200, {});
    });
    await api.setPinned('m1', true);
    await api.search('hello world', 'r1');
    await api.messagesAround('r1', 42, 30);
    await api.createDm(['u2', 'u3']);
    await api.createRoom({ name: 'secret', visibility: 'private', topic: 'plans' });
    await api.setRole('r1', 'u2', 'owner');
    await api.removeMember('r1', 'u2');
    await api.ban('r1', 'u3');
    await api.updateMe({ share_read_receipts: false });
    expect(calls).toEqual([
      'PUT /api/messages/m1/pin',
      'GET /api/search?q=hello+world&room=r1&limit=20',
      'GET /api/rooms/r1/messages?around_seq=42&limit=30',
      'POST /api/dms {"users":["u2","u3"]}',
      'POST /api/rooms {"name":"secret","visibility":"private","topic":"plans"}',
      'PATCH /api/rooms/r1/members/u2 {"role":"owner"}',
      'DELETE /api/rooms/r1/members/u2',
      'POST /api/rooms/r1/bans {"user":"u3"}',
      'PATCH /api/me {"share_read_receipts":false}',
    ]);
  });
});
