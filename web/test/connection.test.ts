// Unit tests of the connection client against a fake WebSocket and fake timers.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Connection, type SessionCheck, type SocketLike } from '../src/lib/connection';
import type { ChatMessage, ClientFrame, MessagePage, ServerFrame } from '../src/generated/protocol';

class FakeSocket implements SocketLike {
  readyState = 0;
  sent: ClientFrame[] = [];
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason?: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  closedWith: number | null = null;

  constructor(readonly url: string) {}

  send(data: string): void {
    if (this.readyState !== 1) throw new Error('send on a socket that is not open');
    this.sent.push(JSON.parse(data) as ClientFrame);
  }
  close(code = 1000): void {
    this.closedWith = code;
    this.readyState = 3;
  }
  // Test controls.
  accept(): void {
    this.readyState = 1;
    this.onopen?.({});
    this.deliver({ type: 'ready', user: ME, idle_timeout_ms: 60_000 });
  }
  deliver(frame: ServerFrame): void {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
  drop(code = 1006): void {
    this.readyState = 3;
    this.onclose?.({ code });
  }
  ofType<T extends ClientFrame['type']>(t: T): Extract<ClientFrame, { type: T }>[] {
    return this.sent.filter((f) => f.type === t) as Extract<ClientFrame, { type: T }>[];
  }
}

const ME = { id: 'u-me', username: 'me' };
const BOB = { id: 'u-bob', username: 'bob' };
const ROOM = 'r-1';

function msg(seq: number, author = BOB, extra: Partial<ChatMessage> = {}): ChatMessage {
  return {
    id: `m-${seq}`,
    room: ROOM,
    seq,
    author,
    body: `message ${seq}`,
    client_msg_id: `c-${seq}`,
    attachment: null,
    created_at: 1_000 + seq,
    edited_at: null,
    ...extra,
  };
}

function asFrame(m: ChatMessage): ServerFrame {
  return { type: 'message', ...m };
}

interface Harness {
  conn: Connection;
  sockets: FakeSocket[];
  history: ReturnType<typeof vi.fn>;
  session: { result: SessionCheck };
  ended: ReturnType<typeof vi.fn>;
  last: () => FakeSocket;
}

function setup(pages: MessagePage[] = [{ messages: [msg(1), msg(2)], has_more: false }]): Harness {
  const sockets: FakeSocket[] = [];
  const queue = [...pages];
  const history = vi.fn(async (): Promise<MessagePage> => queue.shift() ?? { messages: [], has_more: false });
  const session = { result: 'ok' as SessionCheck };
  const ended = vi.fn();
  let n = 0;
  const conn = new Connection({
    url: 'ws://test/ws',
    loadHistory: history,
    checkSession: async () => session.result,
    onSessionEnded: ended,
    createSocket: (url) => {
      const s = new FakeSocket(url);
      sockets.push(s);
      return s;
    },
    newId: () => `cid-${++n}`,
    backoff: () => 100,
    retryDelayMs: 500,
  });
  return { conn, sockets, history, session, ended, last: () => sockets[sockets.length - 1] };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('Connection', () => {
  it('goes live on ready, loads history, then subscribes after the highest seq', async () => {
    const h = setup();
    const states: string[] = [];
    h.conn.onState((s) => states.push(s));
    h.conn.start();
    expect(h.conn.state).toBe('connecting');
    h.last().accept();
    expect(h.conn.state).toBe('live');
    await h.conn.openRoom(ROOM);
    expect(h.history).toHaveBeenCalledWith(ROOM);
    expect(h.last().ofType('subscribe')).toEqual([{ type: 'subscribe', room: ROOM, after_seq: 2 }]);
    expect(h.conn.timeline(ROOM).messages.map((m) => m.seq)).toEqual([1, 2]);
    expect(states).toEqual(['live']);
  });

  it('dedupes messages by id and seq and keeps them in seq order', async () => {
    const h = setup();
    h.conn.start();
    h.last().accept();
    await h.conn.openRoom(ROOM);
    const s = h.last();
    s.deliver(asFrame(msg(4)));
    s.deliver(asFrame(msg(3)));
    s.deliver(asFrame(msg(4))); // replayed twice
    s.deliver(asFrame(msg(2))); // already loaded from history
    s.deliver(asFrame({ ...msg(3), id: 'm-3', body: 'message 3' })); // same id again
    const tl = h.conn.timeline(ROOM);
    expect(tl.messages.map((m) => m.seq)).toEqual([1, 2, 3, 4]);
    expect(tl.messages.map((m) => m.id)).toEqual(['m-1', 'm-2', 'm-3', 'm-4']);
    expect(tl.maxSeq).toBe(4);
  });

  it('reconnects after a drop and resubscribes with after_seq; replayed messages are not duplicated', async () => {
    const h = setup();
    h.conn.start();
    h.last().accept();
    await h.conn.openRoom(ROOM);
    h.last().deliver(asFrame(msg(3)));
    h.last().drop(1001); // server restarting
    expect(h.conn.state).toBe('reconnecting');
    expect(h.sockets).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(100);
    expect(h.sockets).toHaveLength(2);
    h.last().accept();
    expect(h.conn.state).toBe('live');
    expect(h.last().ofType('subscribe')).toEqual([{ type: 'subscribe', room: ROOM, after_seq: 3 }]);
    // The server replays what was missed (and, racing, one we had), then confirms.
    h.last().deliver(asFrame(msg(3)));
    h.last().deliver(asFrame(msg(4)));
    h.last().deliver({ type: 'subscribed', room: ROOM, last_seq: 4, recovered: true, online: [] });
    expect(h.conn.timeline(ROOM).messages.map((m) => m.seq)).toEqual([1, 2, 3, 4]);
    expect(h.history).toHaveBeenCalledTimes(1);
  });

  it('reloads history when recovery was incomplete', async () => {
    const h = setup([
      { messages: [msg(1), msg(2)], has_more: false },
      { messages: [msg(700), msg(701)], has_more: true },
    ]);
    h.conn.start();
    h.last().accept();
    await h.conn.openRoom(ROOM);
    h.last().drop();
    await vi.advanceTimersByTimeAsync(100);
    h.last().accept();
    h.last().deliver({ type: 'subscribed', room: ROOM, last_seq: 701, recovered: false, online: [] });
    await vi.advanceTimersByTimeAsync(0);
    expect(h.history).toHaveBeenCalledTimes(2);
    const tl = h.conn.timeline(ROOM);
    expect(tl.messages.map((m) => m.seq)).toEqual([700, 701]);
    expect(tl.hasMore).toBe(true);
  });

  it('resubscribes after a resync with the highest seq held', async () => {
    const h = setup();
    h.conn.start();
    h.last().accept();
    await h.conn.openRoom(ROOM);
    h.last().deliver(asFrame(msg(9)));
    h.last().deliver({ type: 'resync', room: ROOM });
    expect(h.last().ofType('subscribe').map((f) => f.after_seq)).toEqual([2, 9]);
  });

  it('keeps a sent message pending until acked, then shows it once', async () => {
    const h = setup();
    h.conn.start();
    h.last().accept();
    await h.conn.openRoom(ROOM);
    const id = h.conn.send(ROOM, 'hello');
    expect(h.last().ofType('send')).toEqual([{ type: 'send', room: ROOM, client_msg_id: id, body: 'hello' }]);
    const tl = h.conn.timeline(ROOM);
    expect(tl.pending.map((p) => [p.client_msg_id, p.status])).toEqual([[id, 'sending']]);
    h.last().deliver({ type: 'ack', room: ROOM, client_msg_id: id, id: 'm-3', seq: 3 });
    expect(tl.pending).toEqual([]);
    expect(tl.messages.map((m) => [m.seq, m.body, m.author.id])).toEqual([
      [1, 'message 1', BOB.id],
      [2, 'message 2', BOB.id],
      [3, 'hello', ME.id],
    ]);
    // The broadcast copy of the same message arrives too: still one.
    h.last().deliver(asFrame(msg(3, ME, { body: 'hello', client_msg_id: id })));
    expect(tl.messages).toHaveLength(3);
  });

  it('a message frame from another of my tabs settles the pending one', async () => {
    const h = setup();
    h.conn.start();
    h.last().accept();
    await h.conn.openRoom(ROOM);
    const id = h.conn.send(ROOM, 'hi');
    h.last().deliver(asFrame(msg(3, BOB, { client_msg_id: id }))); // someone else, same id: not ours
    expect(h.conn.timeline(ROOM).pending).toHaveLength(1);
    h.last().deliver(asFrame(msg(4, ME, { body: 'hi', client_msg_id: id })));
    expect(h.conn.timeline(ROOM).pending).toHaveLength(0);
  });

  it('resends pending messages with the same client_msg_id after reconnecting', async () => {
    const h = setup();
    h.conn.start();
    h.last().accept();
    await h.conn.openRoom(ROOM);
    const first = h.conn.send(ROOM, 'one');
    h.last().drop(1001);
    const second = h.conn.send(ROOM, 'two'); // typed while offline
    expect(h.conn.timeline(ROOM).pending.map((p) => p.body)).toEqual(['one', 'two']);
    await vi.advanceTimersByTimeAsync(100);
    h.last().accept();
    const s = h.last();
    // Subscribe goes before the resends.
    expect(s.sent.map((f) => f.type)).toEqual(['subscribe', 'send', 'send']);
    expect(s.ofType('send').map((f) => [f.client_msg_id, f.body])).toEqual([
      [first, 'one'],
      [second, 'two'],
    ]);
    // The server had stored "one" before the drop: it answers with the original ack.
    s.deliver(asFrame(msg(3, ME, { body: 'one', client_msg_id: first })));
    s.deliver({ type: 'ack', room: ROOM, client_msg_id: first, id: 'm-3', seq: 3 });
    s.deliver({ type: 'ack', room: ROOM, client_msg_id: second, id: 'm-4', seq: 4 });
    const tl = h.conn.timeline(ROOM);
    expect(tl.pending).toEqual([]);
    expect(tl.messages.map((m) => m.body)).toEqual(['message 1', 'message 2', 'one', 'two']);
  });

  it('retries a rate-limited send with the same id, and marks a refused one failed', async () => {
    const h = setup();
    h.conn.start();
    h.last().accept();
    await h.conn.openRoom(ROOM);
    const a = h.conn.send(ROOM, 'fast');
    const b = h.conn.send(ROOM, 'this is fine');
    h.last().deliver({ type: 'error', code: 'rate_limited', message: 'slow down', ref: a });
    h.last().deliver({ type: 'error', code: 'validation', message: 'too long', ref: b });
    const tl = h.conn.timeline(ROOM);
    expect(tl.findPending(b)?.status).toBe('failed');
    expect(tl.findPending(b)?.error).toBe('too long');
    expect(h.last().ofType('send').filter((f) => f.client_msg_id === a)).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(500);
    expect(h.last().ofType('send').filter((f) => f.client_msg_id === a)).toHaveLength(2);
    // A failed message is not resent on reconnect, only when the user retries it.
    h.last().drop();
    await vi.advanceTimersByTimeAsync(100);
    h.last().accept();
    expect(h.last().ofType('send').map((f) => f.client_msg_id)).toEqual([a]);
    h.conn.retry(ROOM, b);
    expect(h.last().ofType('send').map((f) => f.client_msg_id)).toEqual([a, b]);
    expect(tl.findPending(b)?.status).toBe('sending');
  });

  it('backs off while the server is down and keeps the pending message', async () => {
    const h = setup();
    h.session.result = 'error'; // HTTP unreachable as well
    h.conn.start();
    h.last().accept();
    await h.conn.openRoom(ROOM);
    const id = h.conn.send(ROOM, 'during outage');
    h.last().drop(1001);
    for (let i = 0; i < 3; i++) {
      await vi.advanceTimersByTimeAsync(100);
      h.last().drop(1006); // refused before ready
      await vi.advanceTimersByTimeAsync(0);
    }
    expect(h.sockets).toHaveLength(4);
    expect(h.conn.state).toBe('reconnecting');
    await vi.advanceTimersByTimeAsync(100);
    h.last().accept();
    expect(h.last().ofType('send').map((f) => f.client_msg_id)).toEqual([id]);
    expect(h.ended).not.toHaveBeenCalled();
  });

  it('on close 1008 checks the session: refreshed reconnects, denied ends the session', async () => {
    const h = setup();
    h.conn.start();
    h.last().accept();
    h.last().drop(1008);
    await vi.advanceTimersByTimeAsync(100);
    expect(h.sockets).toHaveLength(2);
    h.last().accept();
    expect(h.conn.state).toBe('live');
    h.session.result = 'denied';
    h.last().drop(1008);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(h.sockets).toHaveLength(2);
    expect(h.conn.state).toBe('closed');
    expect(h.ended).toHaveBeenCalledTimes(1);
  });

  it('applies edits and deletions and loads older pages before the first seq', async () => {
    const h = setup([
      { messages: [msg(51), msg(52)], has_more: true },
      { messages: [msg(49), msg(50)], has_more: false },
    ]);
    h.conn.start();
    h.last().accept();
    await h.conn.openRoom(ROOM);
    h.last().deliver({ type: 'edited', room: ROOM, id: 'm-52', seq: 52, body: 'changed', edited_at: 9 });
    h.last().deliver({ type: 'deleted', room: ROOM, id: 'm-51', seq: 51 });
    expect(await h.conn.loadOlder(ROOM)).toBe(true);
    expect(h.history).toHaveBeenLastCalledWith(ROOM, 52);
    const tl = h.conn.timeline(ROOM);
    expect(tl.messages.map((m) => [m.seq, m.body])).toEqual([
      [49, 'message 49'],
      [50, 'message 50'],
      [52, 'changed'],
    ]);
    expect(tl.hasMore).toBe(false);
    expect(await h.conn.loadOlder(ROOM)).toBe(false);
  });

  it('pings periodically and unsubscribes closed rooms', async () => {
    const h = setup();
    h.conn.start();
    h.last().accept();
    await h.conn.openRoom(ROOM);
    await vi.advanceTimersByTimeAsync(20_000);
    expect(h.last().ofType('ping').length).toBe(1);
    h.conn.closeRoom(ROOM);
    expect(h.last().ofType('unsubscribe')).toEqual([{ type: 'unsubscribe', room: ROOM }]);
    h.conn.stop();
    expect(h.last().closedWith).toBe(1000);
    expect(h.conn.state).toBe('closed');
  });

  it('refuses a body over the limit locally instead of sending a frame the server would close on', async () => {
    const h = setup();
    h.conn.start();
    h.last().accept();
    await h.conn.openRoom(ROOM);
    const id = h.conn.send(ROOM, 'x'.repeat(100_000));
    expect(h.last().ofType('send')).toEqual([]);
    expect(h.conn.timeline(ROOM).findPending(id)?.status).toBe('failed');
    h.conn.retry(ROOM, id);
    expect(h.last().ofType('send')).toEqual([]);
    h.last().drop();
    await vi.advanceTimersByTimeAsync(100);
    h.last().accept();
    expect(h.last().ofType('send')).toEqual([]);
  });
});
