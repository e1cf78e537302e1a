// The chat connection: one WebSocket to `/ws`, framework-free so it can be tested with a fake
// socket and fake timers.
//
// What it guarantees to the views:
// - Reconnects by itself (backoff 250 ms doubling to 5 s). After a close code 1008, or a socket
//   that closed before `ready` (an expired access token looks like that in a browser), it first
//   checks the session over HTTP (which refreshes the token once); if the session is over it
//   stops and calls `onSessionEnded`.
// - A room's timeline follows the room's log (messages, edits, deletions, reactions, pins,
//   membership and room changes, in seq order). Every open room is resubscribed with `after_seq` = the highest seq applied, so every
//   entry missed (edits and deletions included) is replayed; when the server says
//   `recovered: false`, the room's history is reloaded over HTTP.
// - A room that goes off screen is unsubscribed but its timeline is kept (its newest
//   `keptMessages` messages, for the `keptRooms` rooms closed most recently); shown again, it is
//   resubscribed from where it was, without a reload.
// - Applying an entry twice changes nothing (replays, acks and live frames can overlap):
//   messages are deduplicated by id and seq, an edit no newer than the one shown is ignored, and
//   deleted messages (tombstones included) are never shown.
// - Sent messages, edits, deletions and reactions stay pending until acked; after a reconnect,
//   or a retryable error (`rate_limited`, `unavailable`), they are sent again with the SAME
//   `client_msg_id` or `ref`, which the server answers with the original ack instead of applying
//   them twice. A reaction refused for good is taken back and reported to `onRequestFailed`.
// - A jump to a message far back (`jumpTo`, for search results and reply quotes) shows the page
//   around it; `loadNewer` pages forward and `showLatest` goes back to the live end.
import type {
  Attachment,
  ClientFrame,
  MessagePage,
  ReplyTo,
  RoomEvent,
  ServerFrame,
  UserPublic,
} from '../generated/protocol';
import { RoomTimeline, type PendingMessage, type PendingOp, type PendingReaction } from './timeline';

export type ConnectionState = 'connecting' | 'live' | 'reconnecting' | 'closed';

/** The part of the browser's WebSocket this client uses. */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason?: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

export type SessionCheck = 'ok' | 'denied' | 'error';

export interface ConnectionOptions {
  /** ws:// or wss:// URL of `/ws`. */
  url: string;
  /** Loads a history page (newest when `beforeSeq` is undefined). */
  loadHistory: (room: string, beforeSeq?: number) => Promise<MessagePage>;
  /** Loads the page of messages around a seq (`around_seq`), for jumps. */
  loadAround?: (room: string, seq: number) => Promise<MessagePage>;
  /**
   * Loads the room's log after a seq (`GET /api/rooms/{id}/events`), for the membership and room
   * changes between the messages of a history page.
   */
  loadEvents?: (room: string, afterSeq: number) => Promise<{ events: RoomEvent[] }>;
  /** Checks (and if needed refreshes) the session over HTTP. */
  checkSession: () => Promise<SessionCheck>;
  /** Called once when the session is over; the app shows the login screen. */
  onSessionEnded?: () => void;
  createSocket?: (url: string) => SocketLike;
  newId?: () => string;
  /** Delay before reconnect attempt `n` (0-based), in ms. */
  backoff?: (attempt: number) => number;
  /** Delay before resending after a retryable send error, in ms. */
  retryDelayMs?: number;
  /** How many rooms off screen keep their timeline (the most recently closed ones). */
  keptRooms?: number;
  /** How many of its newest messages an off-screen room keeps. */
  keptMessages?: number;
}

type Listener<T> = (value: T) => void;

/** A request the server refused for good that has no place in the timeline to say so. */
export interface RequestFailure {
  room: string;
  kind: 'react';
  code: string;
  message: string;
}

const OPEN = 1;

/** A random id accepted as `client_msg_id` (1-64 of [A-Za-z0-9_.:-]). */
export function randomId(): string {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === 'function') return c.randomUUID();
  const bytes = new Uint8Array(16);
  if (c && typeof c.getRandomValues === 'function') c.getRandomValues(bytes);
  else for (let i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

export const RETRYABLE = new Set(['rate_limited', 'unavailable']);

/** The server's limit on a message body, in characters. */
export const MAX_BODY_CHARS = 4000;

export class Connection {
  state: ConnectionState = 'connecting';
  /** Who we are, from `ready`. */
  user: UserPublic | null = null;

  private readonly opts: Required<Omit<ConnectionOptions, 'onSessionEnded' | 'loadAround' | 'loadEvents'>> &
    Pick<ConnectionOptions, 'onSessionEnded' | 'loadAround' | 'loadEvents'>;
  private socket: SocketLike | null = null;
  /** Whether the current socket said `ready`; whether any socket ever did. */
  private gotReady = false;
  private gotReadyEver = false;
  private attempt = 0;
  private stopped = false;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private lastFrameAt = 0;
  private idleTimeoutMs = 60_000;
  private readonly timelines = new Map<string, RoomTimeline>();
  private readonly open = new Set<string>();
  /** Open rooms subscribed to on the current socket. */
  private readonly subscribed = new Set<string>();
  /** Per room, how many jumps were applied (a newest page read before one must not undo it). */
  private readonly jumps = new Map<string, number>();
  /** Rooms off screen whose timeline is kept, least recently closed first. */
  private readonly kept = new Set<string>();
  /** History loads in flight, so a jump waits for the first load instead of racing it. */
  private readonly loading = new Map<string, Promise<void>>();
  private readonly loadingOlder = new Set<string>();
  private readonly stateListeners = new Set<Listener<ConnectionState>>();
  private readonly frameListeners = new Set<Listener<ServerFrame>>();
  private readonly timelineListeners = new Set<Listener<string>>();
  private readonly failureListeners = new Set<Listener<RequestFailure>>();

  constructor(options: ConnectionOptions) {
    this.opts = {
      createSocket: (url) => new WebSocket(url) as unknown as SocketLike,
      newId: randomId,
      backoff: (n) => Math.min(250 * 2 ** n, 5_000),
      retryDelayMs: 1_000,
      keptRooms: 5,
      keptMessages: 200,
      ...options,
    };
  }

  // ---- lifecycle ----------------------------------------------------------------------------

  start(): void {
    this.stopped = false;
    this.connect();
  }

  /** Closes for good (logout). */
  stop(): void {
    this.stopped = true;
    this.clearTimers();
    const s = this.socket;
    this.socket = null;
    if (s) {
      s.onclose = null;
      s.close(1000, 'bye');
    }
    this.setState('closed');
  }

  private connect(): void {
    if (this.stopped) return;
    this.setState(this.attempt === 0 && !this.gotReadyEver ? 'connecting' : 'reconnecting');
    this.gotReady = false;
    let s: SocketLike;
    try {
      s = this.opts.createSocket(this.opts.url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = s;
    s.onmessage = (ev) => {
      if (this.socket !== s) return;
      this.lastFrameAt = Date.now();
      let frame: ServerFrame;
      try {
        frame = JSON.parse(String(ev.data)) as ServerFrame;
      } catch {
        return;
      }
      this.handle(frame);
    };
    s.onclose = (ev) => {
      if (this.socket !== s) return;
      this.socket = null;
      this.onClosed(ev.code);
    };
    s.onerror = () => {
      // A close event always follows.
    };
  }

  private onClosed(code: number): void {
    this.clearTimers();
    this.subscribed.clear();
    if (this.stopped) return;
    this.setState('reconnecting');
    if (code === 1008 || !this.gotReady) {
      // Possibly an expired or revoked session: let HTTP tell (it refreshes the token once).
      void this.opts.checkSession().then((r) => {
        if (this.stopped) return;
        if (r === 'denied') {
          this.stopped = true;
          this.setState('closed');
          this.opts.onSessionEnded?.();
        } else {
          this.scheduleReconnect();
        }
      });
      return;
    }
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.reconnectTimer) return;
    const delay = this.opts.backoff(this.attempt++);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.connect();
    }, delay);
  }

  private clearTimers(): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = null;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
  }

  private setState(s: ConnectionState): void {
    if (this.state === s) return;
    this.state = s;
    for (const l of this.stateListeners) l(s);
  }

  private write(frame: ClientFrame): boolean {
    const s = this.socket;
    if (!s || s.readyState !== OPEN || !this.gotReady) return false;
    s.send(JSON.stringify(frame));
    return true;
  }

  // ---- frames ---------------------------------------------------------------------------------

  private handle(frame: ServerFrame): void {
    switch (frame.type) {
      case 'ready': {
        this.gotReady = true;
        this.gotReadyEver = true;
        this.attempt = 0;
        this.user = frame.user;
        for (const tl of this.timelines.values()) tl.selfId = frame.user.id;
        this.idleTimeoutMs = frame.idle_timeout_ms || 60_000;
        this.startPing();
        this.setState('live');
        this.subscribed.clear();
        // A new session starts visible: say so when this tab is hidden (pushes then come).
        if (!this.visible) this.write({ type: 'visibility', visible: false });
        for (const room of this.open) this.subscribe(room);
        // Pending messages, edits and deletions go again with the same client_msg_id or ref;
        // the server applies each once.
        for (const tl of this.timelines.values()) {
          for (const p of tl.pending) if (p.status === 'sending') this.sendPending(p);
          for (const o of tl.ops) if (o.status === 'sending') this.sendOp(o);
          for (const r of tl.reactionOps) this.sendReaction(r);
        }
        break;
      }
      case 'subscribed': {
        const tl = this.timelines.get(frame.room);
        if (tl && !frame.recovered && this.open.has(frame.room)) void this.reload(frame.room);
        break;
      }
      case 'message':
      case 'edited':
      case 'deleted':
      case 'reaction':
      case 'pinned':
      case 'unpinned':
      case 'member_added':
      case 'member_removed':
      case 'role_changed':
      case 'room_updated': {
        // Entries of the room's log. A room off screen is not subscribed: entries still in
        // flight are left to the replay when it is shown again.
        const tl = this.timelines.get(frame.room);
        if (tl && tl.loaded && this.open.has(frame.room) && tl.apply(frame)) this.changed(frame.room);
        break;
      }
      case 'ack': {
        const tl = this.timelines.get(frame.room);
        if (!tl) break;
        const p = tl.findPending(frame.client_msg_id ?? frame.ref);
        const op = p ? undefined : tl.findOp(frame.ref);
        const reaction = p || op ? undefined : tl.findReactionOp(frame.ref);
        if (reaction) {
          tl.settleReaction(reaction, frame.seq);
          this.changed(frame.room);
        } else if (op) {
          tl.settleOp(op, frame.seq, Date.now());
          this.changed(frame.room);
        } else if (p) {
          if (this.user && tl.loaded) {
            tl.confirm({
              id: frame.id,
              room: frame.room,
              seq: frame.seq,
              author: this.user,
              body: p.body,
              client_msg_id: p.client_msg_id,
              attachment: p.attachment,
              created_at: p.created_at,
              edited_at: null,
              ...(p.reply_to ? { reply_to: p.reply_to } : {}),
            });
          } else {
            tl.dropPending(p.client_msg_id);
          }
          this.changed(frame.room);
        }
        break;
      }
      case 'resync': {
        const tl = this.timelines.get(frame.room);
        if (tl && this.open.has(frame.room)) {
          this.write({ type: 'subscribe', room: frame.room, after_seq: tl.maxSeq });
        }
        break;
      }
      case 'error': {
        if (frame.ref) this.onRequestError(frame.ref, frame.code, frame.message);
        break;
      }
      case 'membership': {
        // No longer a member: nothing kept of the room (a rejoin loads it afresh).
        if (!frame.member) {
          this.kept.delete(frame.room);
          this.subscribed.delete(frame.room);
          // Shown or not, its timeline goes (what it showed is no longer the user's to see);
          // entries still in flight find no timeline to apply to.
          this.timelines.delete(frame.room);
        }
        break;
      }
      default:
        break;
    }
    for (const l of this.frameListeners) l(frame);
  }

  private onRequestError(ref: string, code: string, message: string): void {
    for (const tl of this.timelines.values()) {
      const p = tl.findPending(ref);
      if (p) {
        if (RETRYABLE.has(code)) {
          setTimeout(() => {
            if (p.status === 'sending' && tl.findPending(ref)) this.sendPending(p);
          }, this.opts.retryDelayMs);
        } else {
          p.status = 'failed';
          p.error = message;
          tl.touch();
          this.changed(tl.room);
        }
        return;
      }
      const reaction = tl.findReactionOp(ref);
      if (reaction) {
        if (RETRYABLE.has(code)) {
          setTimeout(() => {
            if (tl.findReactionOp(ref)) this.sendReaction(reaction);
          }, this.opts.retryDelayMs);
        } else {
          // Taken back (the chip shows as it was) and said elsewhere.
          tl.dropReactionOp(ref);
          this.changed(tl.room);
          for (const l of this.failureListeners) l({ room: tl.room, kind: 'react', code, message });
        }
        return;
      }
      const op = tl.findOp(ref);
      if (op) {
        if (RETRYABLE.has(code)) {
          setTimeout(() => {
            const now = tl.findOp(ref);
            if (now?.status === 'sending') this.sendOp(now);
          }, this.opts.retryDelayMs);
        } else if (code === 'not_found' && op.kind === 'delete') {
          // Already gone: what the user asked for.
          tl.dropOp(ref);
          tl.gone(op.id);
          this.changed(tl.room);
        } else {
          tl.updateOp(ref, { status: 'failed', error: message });
          this.changed(tl.room);
        }
        return;
      }
    }
  }

  private startPing(): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.lastFrameAt = Date.now();
    const every = Math.max(1_000, Math.min(20_000, Math.floor(this.idleTimeoutMs / 3)));
    this.pingTimer = setInterval(() => {
      // A socket silent for longer than the server's idle timeout is dead: start over.
      if (Date.now() - this.lastFrameAt > this.idleTimeoutMs + 10_000) {
        const s = this.socket;
        this.socket = null;
        if (s) {
          s.onclose = null;
          s.close(4000, 'silent');
        }
        this.onClosed(1006);
        return;
      }
      this.write({ type: 'ping' });
    }, every);
  }

  // ---- rooms ----------------------------------------------------------------------------------

  /** The timeline of a room (created empty on first use). */
  timeline(room: string): RoomTimeline {
    let tl = this.timelines.get(room);
    if (!tl) {
      tl = new RoomTimeline(room);
      tl.selfId = this.user?.id;
      this.timelines.set(room, tl);
    }
    return tl;
  }

  /**
   * Shows a room: a room whose timeline is kept resubscribes from the highest seq applied (the
   * server replays what changed meanwhile); otherwise its newest history is loaded first.
   */
  async openRoom(room: string): Promise<void> {
    this.open.add(room);
    this.kept.delete(room);
    const tl = this.timeline(room);
    if (tl.loaded) {
      this.subscribe(room);
      return;
    }
    await this.reload(room);
  }

  /**
   * Stops showing a room: unsubscribes and keeps its newest messages for when it is shown again,
   * for the few rooms closed most recently (older ones are dropped and reloaded when shown).
   */
  closeRoom(room: string): void {
    if (!this.open.delete(room)) return;
    this.write({ type: 'unsubscribe', room });
    this.subscribed.delete(room);
    const tl = this.timelines.get(room);
    if (!tl) return;
    const busy = tl.pending.length > 0 || tl.ops.length > 0 || tl.reactionOps.length > 0;
    if (!tl.loaded && !busy) {
      this.timelines.delete(room); // nothing worth keeping
      return;
    }
    if (tl.hasNewer) {
      // A window far back: shown again, the room opens at its live end.
      if (!busy) {
        this.timelines.delete(room);
        return;
      }
      tl.loaded = false;
      tl.hasNewer = false;
    }
    tl.trim(this.opts.keptMessages);
    this.kept.add(room);
    this.evict();
  }

  /** Drops the timelines of the rooms closed longest ago beyond `keptRooms`. */
  private evict(): void {
    let excess = this.kept.size - this.opts.keptRooms;
    for (const room of [...this.kept]) {
      if (excess <= 0) break;
      const tl = this.timelines.get(room);
      // One still waiting for acks stays until they come (its sends must not be lost).
      if (
        tl &&
        (tl.pending.some((p) => p.status === 'sending') || tl.ops.some((o) => o.status === 'sending') || tl.reactionOps.length)
      ) {
        continue;
      }
      this.kept.delete(room);
      this.timelines.delete(room);
      excess--;
    }
  }

  /** Whether a room off screen still has its timeline (for tests and diagnostics). */
  isKept(room: string): boolean {
    return this.kept.has(room) && !!this.timelines.get(room)?.loaded;
  }

  isOpen(room: string): boolean {
    return this.open.has(room);
  }

  private reload(room: string): Promise<void> {
    const inFlight = this.loading.get(room);
    if (inFlight) return inFlight;
    const p = this.load(room).finally(() => this.loading.delete(room));
    this.loading.set(room, p);
    return p;
  }

  private async load(room: string): Promise<void> {
    const tl = this.timeline(room);
    const jumps = this.jumps.get(room);
    try {
      const page = await this.opts.loadHistory(room);
      if (!this.open.has(room)) return;
      // A jump applied meanwhile shows what the user asked for; this page is not needed.
      if (this.jumps.get(room) === jumps) {
        tl.reset(page.messages, page.has_more);
        this.changed(room);
        void this.loadNotices(room, tl);
      }
      // A first load subscribes now; a reload after `recovered: false` is already subscribed.
      this.subscribe(room);
    } catch (e) {
      // Not a member (any more) or no such room: nothing to retry. Otherwise try again shortly
      // while the room is still shown.
      const status = (e as { status?: number } | null)?.status;
      if (status === 403 || status === 404) return;
      setTimeout(() => {
        if (this.open.has(room) && !tl.loaded) void this.reload(room);
      }, 2_000);
    }
  }

  /** The membership and room changes among the messages held (best effort). */
  private async loadNotices(room: string, tl: RoomTimeline, before?: number): Promise<void> {
    const first = tl.firstSeq;
    if (!this.opts.loadEvents) return;
    try {
      // From the oldest message held, or from the start when that is the room's first (or none).
      const page = await this.opts.loadEvents(room, tl.hasMore && first !== undefined ? first - 1 : 0);
      const events = before === undefined ? page.events : page.events.filter((e) => e.seq < before);
      if (this.timelines.get(room) === tl && tl.addNotices(events)) this.changed(room);
    } catch {
      // Only the notices are missing; the messages are all there.
    }
  }

  /** Subscribes to an open room with a timeline, from the highest seq applied, once per socket. */
  private subscribe(room: string): void {
    const tl = this.timelines.get(room);
    if (!tl?.loaded || !this.open.has(room) || this.subscribed.has(room)) return;
    if (this.write({ type: 'subscribe', room, after_seq: tl.maxSeq })) this.subscribed.add(room);
  }

  /** Loads the page before the oldest message held; resolves false when there is none. */
  async loadOlder(room: string): Promise<boolean> {
    const tl = this.timeline(room);
    if (!tl.loaded || !tl.hasMore || this.loadingOlder.has(room)) return false;
    this.loadingOlder.add(room);
    try {
      const before = tl.firstSeq;
      const page = await this.opts.loadHistory(room, before);
      tl.prepend(page.messages, page.has_more);
      this.changed(room);
      if (page.messages.length) void this.loadNotices(room, tl, before);
      return page.messages.length > 0;
    } finally {
      this.loadingOlder.delete(room);
    }
  }

  /**
   * Shows the message with this seq and the messages around it: from the timeline when held,
   * else the page around it (see `RoomTimeline.showAround`). Resolves whether it is now held.
   */
  async jumpTo(room: string, seq: number): Promise<boolean> {
    await this.loading.get(room)?.catch(() => {});
    const tl = this.timeline(room);
    if (tl.messages.some((m) => m.seq === seq)) return true;
    if (!this.opts.loadAround) return false;
    const page = await this.opts.loadAround(room, seq);
    if (this.timelines.get(room) !== tl) return false;
    tl.showAround(page.messages, page.has_more, page.has_newer);
    this.jumps.set(room, (this.jumps.get(room) ?? 0) + 1);
    this.subscribe(room);
    this.changed(room);
    void this.loadNotices(room, tl);
    return tl.messages.some((m) => m.seq === seq);
  }

  /** After a jump: loads the messages after the newest held; resolves false when there is none. */
  async loadNewer(room: string): Promise<boolean> {
    const tl = this.timeline(room);
    if (!tl.hasNewer || !this.opts.loadAround || this.loadingOlder.has(room)) return false;
    this.loadingOlder.add(room);
    try {
      const last = tl.lastSeq;
      const page = await this.opts.loadAround(room, last);
      tl.showAround(page.messages, tl.hasMore, page.has_newer);
      this.changed(room);
      return tl.lastSeq > last;
    } finally {
      this.loadingOlder.delete(room);
    }
  }

  /** After a jump: back to the room's newest messages (and the live log). */
  async showLatest(room: string): Promise<void> {
    const tl = this.timeline(room);
    if (!tl.hasNewer) return;
    await this.reload(room);
  }

  // ---- sending --------------------------------------------------------------------------------

  /** Sends a message; it stays pending until acked. Returns its client_msg_id. */
  send(room: string, body: string, attachment: Attachment | null = null, replyTo?: ReplyTo): string {
    const p: PendingMessage = {
      client_msg_id: this.opts.newId(),
      room,
      body,
      attachment,
      status: 'sending',
      created_at: Date.now(),
    };
    if (replyTo) p.reply_to = replyTo;
    // Refused here rather than by the server: a frame over its size limit closes the socket,
    // and resending it after every reconnect would loop.
    if ([...body].length > MAX_BODY_CHARS) {
      p.status = 'failed';
      p.error = `messages are limited to ${MAX_BODY_CHARS} characters`;
    }
    this.timeline(room).addPending(p);
    this.changed(room);
    if (p.status === 'sending') this.sendPending(p);
    return p.client_msg_id;
  }

  /** Sends a failed message again, with the same client_msg_id. */
  retry(room: string, clientMsgId: string): void {
    const tl = this.timeline(room);
    const p = tl.findPending(clientMsgId);
    if (!p || [...p.body].length > MAX_BODY_CHARS) return;
    p.status = 'sending';
    p.error = undefined;
    tl.touch();
    this.changed(room);
    this.sendPending(p);
  }

  discard(room: string, clientMsgId: string): void {
    this.timeline(room).dropPending(clientMsgId);
    this.changed(room);
  }

  private sendPending(p: PendingMessage): void {
    const frame: ClientFrame = {
      type: 'send',
      room: p.room,
      client_msg_id: p.client_msg_id,
      body: p.body,
    };
    if (p.attachment) frame.attachment = p.attachment.id;
    if (p.reply_to) frame.reply_to = p.reply_to.id;
    this.write(frame);
  }

  /**
   * Adds (`on`) or takes back one of the user's reactions; shown at once, pending until acked.
   * Returns the request's ref.
   */
  react(room: string, message: string, emoji: string, on: boolean): string {
    const op: PendingReaction = { ref: this.opts.newId(), room, message, emoji, on };
    this.timeline(room).addReactionOp(op);
    this.changed(room);
    this.sendReaction(op);
    return op.ref;
  }

  private sendReaction(op: PendingReaction): void {
    this.write({ type: 'react', room: op.room, message: op.message, emoji: op.emoji, on: op.on, ref: op.ref });
  }

  /** Edits one of the user's messages; pending until acked. Returns the request's ref. */
  edit(room: string, id: string, body: string): string {
    const op: PendingOp = { ref: this.opts.newId(), room, kind: 'edit', id, body, status: 'sending' };
    // Refused here, like an over-long send (a frame over the server's limit closes the socket).
    if ([...body].length > MAX_BODY_CHARS) {
      op.status = 'failed';
      op.error = `messages are limited to ${MAX_BODY_CHARS} characters`;
    }
    return this.addOp(op);
  }

  /** Deletes one of the user's messages; pending until acked. Returns the request's ref. */
  delete(room: string, id: string): string {
    return this.addOp({ ref: this.opts.newId(), room, kind: 'delete', id, status: 'sending' });
  }

  /** Sends a failed edit or deletion again, with the same ref. */
  retryOp(room: string, ref: string): void {
    const tl = this.timeline(room);
    const op = tl.findOp(ref);
    if (!op || (op.body !== undefined && [...op.body].length > MAX_BODY_CHARS)) return;
    tl.updateOp(ref, { status: 'sending', error: undefined });
    this.changed(room);
    this.sendOp(tl.findOp(ref)!);
  }

  /** Gives up a failed (or pending) edit or deletion: the message shows as the server has it. */
  discardOp(room: string, ref: string): void {
    this.timeline(room).dropOp(ref);
    this.changed(room);
  }

  private addOp(op: PendingOp): string {
    this.timeline(op.room).addOp(op);
    this.changed(op.room);
    if (op.status === 'sending') this.sendOp(op);
    return op.ref;
  }

  private sendOp(op: PendingOp): void {
    if (op.kind === 'edit') {
      this.write({ type: 'edit', room: op.room, id: op.id, body: op.body ?? '', ref: op.ref });
    } else {
      this.write({ type: 'delete', room: op.room, id: op.id, ref: op.ref });
    }
  }

  typing(room: string): void {
    this.write({ type: 'typing', room });
  }

  markRead(room: string, seq: number): void {
    this.write({ type: 'read', room, seq });
  }

  private visible = true;

  /** Whether this tab is visible: the server pushes notifications for rooms of hidden tabs. */
  setVisible(visible: boolean): void {
    if (visible === this.visible) return;
    this.visible = visible;
    this.write({ type: 'visibility', visible });
  }

  // ---- listeners ------------------------------------------------------------------------------

  onState(l: Listener<ConnectionState>): () => void {
    this.stateListeners.add(l);
    return () => this.stateListeners.delete(l);
  }

  /** Every server frame, after the connection applied it to the timelines. */
  onFrame(l: Listener<ServerFrame>): () => void {
    this.frameListeners.add(l);
    return () => this.frameListeners.delete(l);
  }

  /** A reaction (or another request with no place on screen) was refused for good. */
  onRequestFailed(l: Listener<RequestFailure>): () => void {
    this.failureListeners.add(l);
    return () => this.failureListeners.delete(l);
  }

  /** A room's timeline changed. */
  onTimeline(l: Listener<string>): () => void {
    this.timelineListeners.add(l);
    return () => this.timelineListeners.delete(l);
  }

  private changed(room: string): void {
    for (const l of this.timelineListeners) l(room);
  }
}
