// Unit tests of the connection client against a fake WebSocket and fake timers.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Connection, type ConnectionOptions, type SessionCheck, type SocketLike } from '../src/lib/connection';
import type { ChatMessage, ClientFrame, MessagePage, RoomEvent, ServerFrame } from '../src/generated/protocol';

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

function setup(
  pages: MessagePage[] = [{ messages: [msg(1), msg(2)], has_more: false, has_newer: false }],
  extra: Partial<ConnectionOptions> = {},
): Harness {
  const sockets: FakeSocket[] = [];
  const queue = [...pages];
  const history = vi.fn(async (): Promise<MessagePage> => queue.shift() ?? { messages: [], has_more: false, has_newer: false });
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
    ...extra,
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
      { messages: [msg(1), msg(2)], has_more: false, has_newer: false },
      { messages: [msg(700), msg(701)], has_more: true, has_newer: false },
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
    h.last().deliver({ type: 'ack', room: ROOM, ref: id, client_msg_id: id, id: 'm-3', seq: 3 });
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
    s.deliver({ type: 'ack', room: ROOM, ref: first, client_msg_id: first, id: 'm-3', seq: 3 });
    s.deliver({ type: 'ack', room: ROOM, ref: second, client_msg_id: second, id: 'm-4', seq: 4 });
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
      { messages: [msg(51), msg(52)], has_more: true, has_newer: false },
      { messages: [msg(49), msg(50)], has_more: false, has_newer: false },
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

// ---- the room log: edits and deletions, live and on recovery ----------------------------------

function edited(seq: number, id: string, body: string, room = ROOM): ServerFrame {
  return { type: 'edited', room, seq, id, body, edited_at: 10_000 + seq };
}
function deleted(seq: number, id: string, room = ROOM): ServerFrame {
  return { type: 'deleted', room, seq, id };
}
function tombstone(seq: number, author = BOB, extra: Partial<ChatMessage> = {}): ServerFrame {
  return asFrame(msg(seq, author, { body: '', deleted_at: 20_000 + seq, ...extra }));
}
function subscribed(last_seq: number, recovered = true, room = ROOM): ServerFrame {
  return { type: 'subscribed', room, last_seq, recovered, online: [] };
}
const shown = (h: Harness, room = ROOM) => h.conn.timeline(room).messages.map((m) => [m.id, m.body]);

async function live(h: Harness): Promise<FakeSocket> {
  h.conn.start();
  h.last().accept();
  await h.conn.openRoom(ROOM);
  return h.last();
}

async function reconnect(h: Harness): Promise<FakeSocket> {
  h.last().drop(1006);
  await vi.advanceTimersByTimeAsync(100);
  h.last().accept();
  return h.last();
}

describe('Connection: the room log', () => {
  it('a recovery that replays message, edited and deleted in seq order leaves the right state, without a reload', async () => {
    const h = setup([{ messages: [msg(1), msg(2), msg(3, ME)], has_more: false, has_newer: false }]);
    await live(h);
    const changes: string[] = [];
    h.conn.onTimeline((r) => changes.push(r));
    const s = await reconnect(h);
    expect(s.ofType('subscribe')).toEqual([{ type: 'subscribe', room: ROOM, after_seq: 3 }]);
    // What happened meanwhile: a new message, edits (one of a message that came meanwhile), and
    // deletions (one of a message that came meanwhile, replayed as a tombstone).
    s.deliver(asFrame(msg(4)));
    s.deliver(edited(5, 'm-1', 'message 1, edited'));
    s.deliver(tombstone(6));
    s.deliver(edited(7, 'm-4', 'message 4, edited'));
    s.deliver(deleted(8, 'm-2'));
    s.deliver(edited(9, 'm-6', '')); // an edit of the message deleted since
    s.deliver(deleted(10, 'm-6'));
    s.deliver(edited(11, 'm-1', 'message 1, edited twice'));
    s.deliver(subscribed(11));
    expect(shown(h)).toEqual([
      ['m-1', 'message 1, edited twice'],
      ['m-3', 'message 3'],
      ['m-4', 'message 4, edited'],
    ]);
    const tl = h.conn.timeline(ROOM);
    expect(tl.messages[0].edited_at).toBe(10_011);
    expect(tl.maxSeq).toBe(11);
    expect(h.history).toHaveBeenCalledTimes(1);
    expect(changes.length).toBeGreaterThan(0);
    // The next recovery resumes after the last entry, edits and deletions included.
    const s2 = await reconnect(h);
    expect(s2.ofType('subscribe')).toEqual([{ type: 'subscribe', room: ROOM, after_seq: 11 }]);
  });

  it('never shows a tombstone, live or replayed; one of my pending sends is settled by it and not brought back by its ack', async () => {
    const h = setup();
    const s = await live(h);
    s.deliver(tombstone(3));
    expect(shown(h).map(([id]) => id)).toEqual(['m-1', 'm-2']);
    // Sent, then (from another tab of mine) deleted before this tab heard the ack.
    const cid = h.conn.send(ROOM, 'regret');
    const s2 = await reconnect(h);
    s2.deliver(tombstone(4, ME, { client_msg_id: cid }));
    s2.deliver(deleted(5, 'm-4'));
    s2.deliver(subscribed(5));
    expect(h.conn.timeline(ROOM).pending).toEqual([]);
    // The resend gets the original ack: still nothing shown.
    expect(s2.ofType('send').map((f) => f.client_msg_id)).toEqual([cid]);
    s2.deliver({ type: 'ack', room: ROOM, ref: cid, client_msg_id: cid, id: 'm-4', seq: 4 });
    expect(shown(h).map(([id]) => id)).toEqual(['m-1', 'm-2']);
  });

  it('edits and deletes go over the socket with a ref, pending until acked; the ack is matched by ref', async () => {
    const h = setup([{ messages: [msg(1, ME), msg(2, ME), msg(3)], has_more: false, has_newer: false }]);
    const s = await live(h);
    const e = h.conn.edit(ROOM, 'm-1', 'new text');
    const d = h.conn.delete(ROOM, 'm-2');
    expect(s.ofType('edit')).toEqual([{ type: 'edit', room: ROOM, id: 'm-1', body: 'new text', ref: e }]);
    expect(s.ofType('delete')).toEqual([{ type: 'delete', room: ROOM, id: 'm-2', ref: d }]);
    const tl = h.conn.timeline(ROOM);
    expect(tl.opFor('m-1')).toMatchObject({ kind: 'edit', status: 'sending', body: 'new text' });
    expect(tl.opFor('m-2')).toMatchObject({ kind: 'delete', status: 'sending' });
    expect(shown(h)[0]).toEqual(['m-1', 'message 1']); // confirmed text until acked
    // Acks carry the ref and no client_msg_id; the delete's entry overtakes its ack.
    s.deliver({ type: 'ack', room: ROOM, ref: e, id: 'm-1', seq: 4 });
    s.deliver(deleted(5, 'm-2'));
    expect(tl.ops.map((o) => o.ref)).toEqual([]);
    expect(shown(h)).toEqual([
      ['m-1', 'new text'],
      ['m-3', 'message 3'],
    ]);
    s.deliver(edited(4, 'm-1', 'new text'));
    s.deliver({ type: 'ack', room: ROOM, ref: d, id: 'm-2', seq: 5 });
    expect(tl.messages[0]).toMatchObject({ body: 'new text', edited_at: 10_004 });
    expect(shown(h).map(([id]) => id)).toEqual(['m-1', 'm-3']);
    expect(h.history).toHaveBeenCalledTimes(1); // no HTTP involved
  });

  it('an edit and a delete pending over a reconnect are resent with the same ref and applied once', async () => {
    const h = setup([{ messages: [msg(1, ME), msg(2, ME), msg(3)], has_more: false, has_newer: false }]);
    const s = await live(h);
    const e = h.conn.edit(ROOM, 'm-1', 'edited before the drop'); // reached the server; the ack did not come back
    s.drop(1006);
    const d = h.conn.delete(ROOM, 'm-2'); // made while offline
    expect(h.conn.state).toBe('reconnecting');
    expect(h.conn.timeline(ROOM).ops.map((o) => [o.ref, o.status])).toEqual([
      [e, 'sending'],
      [d, 'sending'],
    ]);
    await vi.advanceTimersByTimeAsync(100);
    h.last().accept();
    const s2 = h.last();
    // Subscribe first (the replay), then the resends, in the order they were made, same refs.
    expect(s2.sent.map((f) => f.type)).toEqual(['subscribe', 'edit', 'delete']);
    expect(s2.ofType('edit')).toEqual([{ type: 'edit', room: ROOM, id: 'm-1', body: 'edited before the drop', ref: e }]);
    expect(s2.ofType('delete')).toEqual([{ type: 'delete', room: ROOM, id: 'm-2', ref: d }]);
    // The server replays the edit it had applied, answers the resent edit with the original ack
    // (same seq), applies the delete once and sends its entry, which arrives twice (a replay
    // racing the live copy).
    s2.deliver(edited(4, 'm-1', 'edited before the drop'));
    s2.deliver(subscribed(4));
    s2.deliver({ type: 'ack', room: ROOM, ref: e, id: 'm-1', seq: 4 });
    s2.deliver(deleted(5, 'm-2'));
    s2.deliver({ type: 'ack', room: ROOM, ref: d, id: 'm-2', seq: 5 });
    s2.deliver(deleted(5, 'm-2'));
    const tl = h.conn.timeline(ROOM);
    expect(tl.ops).toEqual([]);
    expect(shown(h)).toEqual([
      ['m-1', 'edited before the drop'],
      ['m-3', 'message 3'],
    ]);
    expect(tl.messages[0].edited_at).toBe(10_004);
    // Nothing pending is sent again after the next reconnect.
    const s3 = await reconnect(h);
    expect(s3.sent.map((f) => f.type)).toEqual(['subscribe']);
  });

  it('duplicate entries by seq change nothing and re-render nothing', async () => {
    const h = setup();
    const s = await live(h);
    s.deliver(asFrame(msg(3)));
    s.deliver(edited(4, 'm-1', 'one'));
    s.deliver(edited(6, 'm-1', 'two'));
    s.deliver(deleted(5, 'm-3'));
    const before = shown(h);
    const changes: string[] = [];
    h.conn.onTimeline((r) => changes.push(r));
    for (const f of [asFrame(msg(3)), edited(4, 'm-1', 'one'), deleted(5, 'm-3'), edited(6, 'm-1', 'two'), asFrame(msg(2))]) {
      s.deliver(f);
    }
    expect(shown(h)).toEqual(before);
    expect(before).toEqual([
      ['m-1', 'two'],
      ['m-2', 'message 2'],
    ]);
    expect(changes).toEqual([]);
  });

  it('retries a rate-limited edit with the same ref; forbidden, not_found and validation are shown, retry and discard work', async () => {
    const h = setup([{ messages: [msg(1, ME), msg(2, ME), msg(3)], has_more: false, has_newer: false }]);
    const s = await live(h);
    const tl = h.conn.timeline(ROOM);
    const a = h.conn.edit(ROOM, 'm-1', 'fast');
    s.deliver({ type: 'error', code: 'rate_limited', message: 'slow down', ref: a });
    expect(tl.findOp(a)?.status).toBe('sending');
    await vi.advanceTimersByTimeAsync(500);
    expect(s.ofType('edit').map((f) => f.ref)).toEqual([a, a]);
    s.deliver({ type: 'error', code: 'unavailable', message: 'busy', ref: a });
    await vi.advanceTimersByTimeAsync(500);
    expect(s.ofType('edit').map((f) => f.ref)).toEqual([a, a, a]);
    s.deliver({ type: 'ack', room: ROOM, ref: a, id: 'm-1', seq: 4 });
    expect(shown(h)[0]).toEqual(['m-1', 'fast']);

    const b = h.conn.edit(ROOM, 'm-3', 'not mine');
    s.deliver({ type: 'error', code: 'forbidden', message: 'not your message', ref: b });
    expect(tl.findOp(b)).toMatchObject({ status: 'failed', error: 'not your message' });
    const c = h.conn.edit(ROOM, 'm-2', '   ');
    s.deliver({ type: 'error', code: 'validation', message: 'body must not be empty', ref: c });
    expect(tl.opFor('m-2')).toMatchObject({ ref: c, status: 'failed', error: 'body must not be empty' });
    // Failed ones are not resent on reconnect, only when retried.
    const s2 = await reconnect(h);
    expect(s2.ofType('edit')).toEqual([]);
    h.conn.retryOp(ROOM, b);
    expect(s2.ofType('edit').map((f) => f.ref)).toEqual([b]);
    expect(tl.findOp(b)?.status).toBe('sending');
    h.conn.discardOp(ROOM, c);
    expect(tl.opFor('m-2')).toBeUndefined();
    expect(shown(h)[1]).toEqual(['m-2', 'message 2']);

    // An edit of a message that no longer exists fails; deleting one that no longer exists is done.
    const e = h.conn.edit(ROOM, 'm-9', 'gone?');
    s2.deliver({ type: 'error', code: 'not_found', message: 'no such message', ref: e });
    expect(tl.findOp(e)).toMatchObject({ status: 'failed', error: 'no such message' });
    const d = h.conn.delete(ROOM, 'm-2');
    s2.deliver({ type: 'error', code: 'not_found', message: 'no such message', ref: d });
    expect(tl.findOp(d)).toBeUndefined();
    expect(shown(h).map(([id]) => id)).toEqual(['m-1', 'm-3']);
  });

  it('refuses an over-long edit locally', async () => {
    const h = setup([{ messages: [msg(1, ME)], has_more: false, has_newer: false }]);
    const s = await live(h);
    const ref = h.conn.edit(ROOM, 'm-1', 'x'.repeat(4_001));
    expect(s.ofType('edit')).toEqual([]);
    expect(h.conn.timeline(ROOM).findOp(ref)?.status).toBe('failed');
    h.conn.retryOp(ROOM, ref);
    expect(s.ofType('edit')).toEqual([]);
  });

  it('a room off screen keeps its timeline and resubscribes with after_seq when shown again', async () => {
    const h = setup();
    const s = await live(h);
    s.deliver(asFrame(msg(3)));
    h.conn.closeRoom(ROOM);
    expect(s.ofType('unsubscribe')).toEqual([{ type: 'unsubscribe', room: ROOM }]);
    expect(h.conn.isKept(ROOM)).toBe(true);
    // Entries still in flight for the room off screen are left to the replay.
    s.deliver(edited(4, 'm-1', 'in flight'));
    expect(shown(h)[0]).toEqual(['m-1', 'message 1']);
    // Shown again: no reload, a subscribe from where it was, and the replay applies.
    await h.conn.openRoom(ROOM);
    expect(h.history).toHaveBeenCalledTimes(1);
    expect(s.ofType('subscribe').map((f) => f.after_seq)).toEqual([2, 3]);
    s.deliver(edited(4, 'm-1', 'in flight'));
    s.deliver(deleted(5, 'm-2'));
    s.deliver(subscribed(5));
    expect(shown(h)).toEqual([
      ['m-1', 'in flight'],
      ['m-3', 'message 3'],
    ]);
  });

  it('a room shown again after missing too much reloads its history', async () => {
    const h = setup([
      { messages: [msg(1), msg(2)], has_more: false, has_newer: false },
      { messages: [msg(900), msg(901)], has_more: true, has_newer: false },
    ]);
    const s = await live(h);
    h.conn.closeRoom(ROOM);
    await h.conn.openRoom(ROOM);
    s.deliver(subscribed(901, false));
    await vi.advanceTimersByTimeAsync(0);
    expect(h.history).toHaveBeenCalledTimes(2);
    expect(shown(h).map(([id]) => id)).toEqual(['m-900', 'm-901']);
    expect(h.conn.timeline(ROOM).hasMore).toBe(true);
  });

  it('recovered:false after a partial replay: reloads, keeping what came live while the page loaded', async () => {
    const h = setup();
    const s = await live(h);
    h.conn.closeRoom(ROOM);
    let answer: (p: MessagePage) => void = () => {};
    h.history.mockImplementationOnce(() => new Promise<MessagePage>((r) => (answer = r)));
    await h.conn.openRoom(ROOM);
    // The server replays the first 500 missed entries (3..502), then says it could not replay all.
    for (let seq = 3; seq <= 502; seq++) s.deliver(asFrame(msg(seq)));
    s.deliver(subscribed(600, false));
    expect(h.history).toHaveBeenCalledTimes(2);
    // Live entries while the newest page loads (read before they happened).
    s.deliver(asFrame(msg(601)));
    s.deliver(edited(602, 'm-560', 'edited live'));
    s.deliver(deleted(603, 'm-599'));
    answer({ messages: [msg(550), msg(560), msg(599), msg(600)], has_more: true, has_newer: false });
    await vi.advanceTimersByTimeAsync(0);
    expect(shown(h)).toEqual([
      ['m-550', 'message 550'],
      ['m-560', 'edited live'],
      ['m-600', 'message 600'],
      ['m-601', 'message 601'],
    ]);
    expect(h.conn.timeline(ROOM).maxSeq).toBe(603);
    expect(h.conn.timeline(ROOM).hasMore).toBe(true);
  });

  it('keeps only the few rooms closed most recently, and a short tail of each', async () => {
    const rooms = ['a', 'b', 'c', 'd'];
    const h = setup([], { keptRooms: 2, keptMessages: 3 });
    h.history.mockImplementation(async (room: string) => ({
      messages: [1, 2, 3, 4, 5].map((n) => ({ ...msg(n), room, id: `${room}-${n}` })),
      has_more: false,
      has_newer: false,
    }));
    h.conn.start();
    h.last().accept();
    for (const r of rooms) {
      await h.conn.openRoom(r);
      h.conn.closeRoom(r);
    }
    expect(rooms.map((r) => h.conn.isKept(r))).toEqual([false, false, true, true]);
    expect(h.conn.timeline('d').messages.map((m) => m.seq)).toEqual([3, 4, 5]);
    expect(h.conn.timeline('d').hasMore).toBe(true);
    expect(h.history).toHaveBeenCalledTimes(4);
    // A kept one opens without a reload; an evicted one is loaded again.
    await h.conn.openRoom('d');
    expect(h.history).toHaveBeenCalledTimes(4);
    await h.conn.openRoom('a');
    expect(h.history).toHaveBeenCalledTimes(5);
    expect(h.history).toHaveBeenLastCalledWith('a');
  });

  it('a room off screen with a send still waiting for its ack is not dropped', async () => {
    const h = setup([], { keptRooms: 1 });
    h.history.mockImplementation(async () => ({ messages: [], has_more: false, has_newer: false }));
    h.conn.start();
    h.last().accept();
    await h.conn.openRoom('a');
    const cid = h.conn.send('a', 'still going');
    h.conn.closeRoom('a');
    await h.conn.openRoom('b');
    h.conn.closeRoom('b');
    expect(h.conn.isKept('a')).toBe(true);
    h.last().deliver({ type: 'ack', room: 'a', ref: cid, client_msg_id: cid, id: 'm-1', seq: 1 });
    expect(h.conn.timeline('a').messages.map((m) => m.body)).toEqual(['still going']);
  });

  it('forgets a room it is no longer a member of', async () => {
    const h = setup();
    const s = await live(h);
    h.conn.closeRoom(ROOM);
    expect(h.conn.isKept(ROOM)).toBe(true);
    s.deliver({ type: 'membership', room: ROOM, member: false });
    expect(h.conn.isKept(ROOM)).toBe(false);
    expect(h.conn.timeline(ROOM).loaded).toBe(false);
  });
});

// ---- conversations: reactions, pins, membership, replies, jumps ---------------------------------

describe('Connection: conversations', () => {
  const react = (seq: number, message: string, emoji: string, user = BOB, on = true): ServerFrame => ({
    type: 'reaction',
    room: ROOM,
    seq,
    message,
    emoji,
    user,
    on,
  });
  const chips = (h: Harness, id: string) =>
    h.conn
      .timeline(ROOM)
      .reactionsOf(h.conn.timeline(ROOM).find(id)!)
      .map((r) => `${r.emoji}${r.count}${r.me ? '*' : ''}`);

  it('a reaction is shown at once, sent with a ref, settled by its ack, and resent with the same ref after a drop', async () => {
    const h = setup();
    const s = await live(h);
    const ref = h.conn.react(ROOM, 'm-1', '👍', true);
    expect(s.ofType('react')).toEqual([{ type: 'react', room: ROOM, message: 'm-1', emoji: '👍', on: true, ref }]);
    expect(chips(h, 'm-1')).toEqual(['👍1*']);
    // Dropped before the ack: sent again, same ref, after the subscribe.
    const s2 = await reconnect(h);
    expect(s2.sent.map((f) => f.type)).toEqual(['subscribe', 'react']);
    expect(s2.ofType('react')[0].ref).toBe(ref);
    // The replay has the entry (the first send reached the server), then the original ack.
    s2.deliver(react(3, 'm-1', '👍', ME));
    s2.deliver(subscribed(3));
    s2.deliver({ type: 'ack', room: ROOM, ref, id: 'm-1', seq: 3 });
    expect(chips(h, 'm-1')).toEqual(['👍1*']);
    expect(h.conn.timeline(ROOM).reactionOps).toEqual([]);
    // Taken back: the ack comes before the entry; the entry then changes nothing.
    const off = h.conn.react(ROOM, 'm-1', '👍', false);
    expect(chips(h, 'm-1')).toEqual([]);
    s2.deliver({ type: 'ack', room: ROOM, ref: off, id: 'm-1', seq: 4 });
    expect(chips(h, 'm-1')).toEqual([]);
    const changes: string[] = [];
    h.conn.onTimeline((r) => changes.push(r));
    s2.deliver(react(4, 'm-1', '👍', ME, false));
    expect(changes).toEqual([]);
    expect(h.conn.timeline(ROOM).maxSeq).toBe(4);
  });

  it('a refused reaction is taken back and reported; a rate-limited one is retried with the same ref', async () => {
    const h = setup();
    const s = await live(h);
    const failures: string[] = [];
    h.conn.onRequestFailed((f) => failures.push(`${f.room} ${f.kind} ${f.code}: ${f.message}`));
    const bad = h.conn.react(ROOM, 'm-1', 'not an emoji', true);
    s.deliver({ type: 'error', code: 'validation', message: 'not an emoji', ref: bad });
    expect(chips(h, 'm-1')).toEqual([]);
    expect(failures).toEqual([`${ROOM} react validation: not an emoji`]);
    const slow = h.conn.react(ROOM, 'm-2', '🎉', true);
    s.deliver({ type: 'error', code: 'rate_limited', message: 'slow down', ref: slow });
    expect(chips(h, 'm-2')).toEqual(['🎉1*']);
    await vi.advanceTimersByTimeAsync(500);
    expect(s.ofType('react').map((f) => f.ref)).toEqual([bad, slow, slow]);
  });

  it('recovery replays reactions, pins and membership entries over the history held, exactly once', async () => {
    const h = setup([
      {
        messages: [msg(1, BOB, { reactions: [{ emoji: '👍', count: 1, me: true, users: [ME.id] }] }), msg(2)],
        has_more: false,
        has_newer: false,
      },
    ]);
    await live(h);
    const s = await reconnect(h);
    const carol = { id: 'u-carol', username: 'carol' };
    const entries: ServerFrame[] = [
      react(3, 'm-1', '👍'),
      react(4, 'm-2', '❤️'),
      react(5, 'm-1', '👍', ME, false),
      { type: 'pinned', room: ROOM, seq: 6, message: 'm-2', by: BOB },
      { type: 'member_added', room: ROOM, seq: 7, user: carol, role: 'member', by: BOB },
      { type: 'role_changed', room: ROOM, seq: 8, user: carol, role: 'admin', by: BOB },
      { type: 'room_updated', room: ROOM, seq: 9, name: 'renamed', topic: 'now with a topic', by: carol },
      { type: 'member_removed', room: ROOM, seq: 10, user: carol, by: BOB, banned: true },
    ];
    // Replayed, and (a replay racing live copies) delivered a second time.
    for (const f of [...entries, ...entries]) s.deliver(f);
    s.deliver(subscribed(10));
    const tl = h.conn.timeline(ROOM);
    expect(chips(h, 'm-1')).toEqual(['👍1']);
    expect(tl.find('m-1')?.reactions?.[0].users).toEqual([BOB.id]);
    expect(chips(h, 'm-2')).toEqual(['❤️1']);
    expect(tl.find('m-2')?.pinned).toBe(true);
    expect(tl.notices.map((n) => n.type)).toEqual(['member_added', 'role_changed', 'room_updated', 'member_removed']);
    expect(tl.maxSeq).toBe(10);
    expect(h.history).toHaveBeenCalledTimes(1);
    const s2 = await reconnect(h);
    expect(s2.ofType('subscribe')).toEqual([{ type: 'subscribe', room: ROOM, after_seq: 10 }]);
  });

  it('a reply is sent with reply_to and shown quoted while pending and after its ack', async () => {
    const h = setup();
    const s = await live(h);
    const quote = { id: 'm-1', author: BOB, excerpt: 'message 1', deleted: false };
    const cid = h.conn.send(ROOM, 'answering', null, quote);
    expect(s.ofType('send')).toEqual([{ type: 'send', room: ROOM, client_msg_id: cid, body: 'answering', reply_to: 'm-1' }]);
    expect(h.conn.timeline(ROOM).pending[0].reply_to).toEqual(quote);
    s.deliver({ type: 'ack', room: ROOM, ref: cid, client_msg_id: cid, id: 'm-3', seq: 3 });
    expect(h.conn.timeline(ROOM).find('m-3')?.reply_to).toEqual(quote);
    // The parent deleted: the reply says so.
    s.deliver(deleted(4, 'm-1'));
    expect(h.conn.timeline(ROOM).find('m-3')?.reply_to).toMatchObject({ deleted: true, excerpt: '' });
    // The broadcast copy brings the mentions.
    s.deliver(asFrame(msg(3, ME, { body: 'answering', client_msg_id: cid, mentions: [BOB.id], reply_to: quote })));
    expect(h.conn.timeline(ROOM).find('m-3')).toMatchObject({ mentions: [BOB.id], reply_to: { deleted: true } });
  });

  it('jumps to a message far back, pages forward, and goes back to the live end', async () => {
    const around = vi.fn(async (_room: string, seq: number): Promise<MessagePage> => {
      if (seq === 100) return { messages: [msg(99), msg(100), msg(101)], has_more: true, has_newer: true };
      return { messages: [msg(101), msg(102), msg(901)], has_more: true, has_newer: false };
    });
    const h = setup(
      [
        { messages: [msg(900), msg(901)], has_more: true, has_newer: false },
        { messages: [msg(901), msg(902)], has_more: true, has_newer: false },
      ],
      { loadAround: around },
    );
    const s = await live(h);
    const tl = h.conn.timeline(ROOM);
    expect(await h.conn.jumpTo(ROOM, 100)).toBe(true);
    expect(around).toHaveBeenCalledWith(ROOM, 100);
    expect(tl.messages.map((m) => m.seq)).toEqual([99, 100, 101]);
    expect(tl.hasNewer).toBe(true);
    // Already held: no request.
    expect(await h.conn.jumpTo(ROOM, 99)).toBe(true);
    expect(around).toHaveBeenCalledTimes(1);
    expect(await h.conn.loadNewer(ROOM)).toBe(true);
    expect(tl.messages.map((m) => m.seq)).toEqual([99, 100, 101, 102, 901]);
    expect(tl.hasNewer).toBe(false);
    // Still subscribed once, from the live end.
    expect(s.ofType('subscribe')).toEqual([{ type: 'subscribe', room: ROOM, after_seq: 901 }]);
    await h.conn.jumpTo(ROOM, 100);
    expect(tl.hasNewer).toBe(false); // held: no jump needed
  });

  it('a jump made while the first page loads is not undone by it', async () => {
    let answer: (p: MessagePage) => void = () => {};
    const h = setup([], {
      loadAround: async () => ({ messages: [msg(10), msg(11)], has_more: true, has_newer: true }),
    });
    h.history.mockImplementationOnce(() => new Promise<MessagePage>((r) => (answer = r)));
    h.conn.start();
    h.last().accept();
    const jumped = h.conn.jumpTo(ROOM, 10); // the view asks before the app opened the room
    const opened = h.conn.openRoom(ROOM);
    await jumped;
    answer({ messages: [msg(500), msg(501)], has_more: true, has_newer: false });
    await opened;
    const tl = h.conn.timeline(ROOM);
    expect(tl.messages.map((m) => m.seq)).toEqual([10, 11]);
    expect(tl.hasNewer).toBe(true);
    expect(h.last().ofType('subscribe')).toHaveLength(1);
    // Shown again later: a window far back is not kept, the room opens at its live end.
    h.conn.closeRoom(ROOM);
    h.history.mockResolvedValueOnce({ messages: [msg(600)], has_more: true, has_newer: false });
    await h.conn.openRoom(ROOM);
    expect(h.conn.timeline(ROOM).messages.map((m) => m.seq)).toEqual([600]);
  });

  it('loads the notices among a history page from the room log, without moving after_seq', async () => {
    const events = vi.fn(async () => ({
      events: [
        asFrame(msg(1)) as RoomEvent,
        { type: 'member_added', room: ROOM, seq: 2, user: BOB, role: 'member', by: BOB } as RoomEvent,
        { type: 'room_updated', room: ROOM, seq: 5, name: 'x', topic: null, by: ME } as RoomEvent,
      ],
    }));
    const h = setup([{ messages: [msg(1), msg(3)], has_more: false, has_newer: false }], { loadEvents: events });
    const s = await live(h);
    await vi.advanceTimersByTimeAsync(0);
    expect(events).toHaveBeenCalledWith(ROOM, 0);
    expect(h.conn.timeline(ROOM).notices.map((n) => n.seq)).toEqual([2, 5]);
    expect(s.ofType('subscribe')).toEqual([{ type: 'subscribe', room: ROOM, after_seq: 3 }]);
    expect(h.conn.timeline(ROOM).maxSeq).toBe(3);
  });

  it('removed from an open room: its timeline is dropped and it is not resubscribed after a reconnect', async () => {
    const h = setup();
    const s = await live(h);
    s.deliver({ type: 'membership', room: ROOM, member: false });
    expect(h.conn.timeline(ROOM).loaded).toBe(false);
    s.deliver(react(3, 'm-1', '👍')); // stragglers are not applied
    expect(h.conn.timeline(ROOM).messages).toEqual([]);
    const s2 = await reconnect(h);
    expect(s2.ofType('subscribe')).toEqual([]);
  });
});
