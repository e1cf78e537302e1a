// One room as the client shows it: confirmed messages ordered by seq and deduplicated by id and
// seq, the room's membership and settings changes (notices) between them, the user's own
// messages still waiting for an ack, and the user's edits, deletions and reactions still waiting
// for one. Framework-free, so the connection client and its tests can use it directly.
//
// The room's log (see shared/src/events.rs) is applied entry by entry with `apply`, live or
// replayed. Applying an entry twice changes nothing (messages are deduplicated by id and seq, an
// edit older than the one shown is ignored, a deleted message stays deleted, a reaction or pin
// entry no newer than the last one applied to the same thing is ignored, notices are kept by
// seq), so replays overlapping live entries are harmless; a deleted message's tombstone is never
// shown.
//
// Reactions are sets: a `reaction` entry says whether one user has one emoji on one message, so
// it is applied to the message's `users` exactly (adding someone already there, or removing
// someone absent, changes nothing). A `message` entry carries no reactions (the reaction entries
// after it add them), so one that meets a message already held keeps its reactions and pin.
// History pages carry reactions as they are now; the latest reaction and pin entries seen are
// put back on such a copy, since a page read before an entry can arrive after it.
//
// Normally the messages held are the room's newest, contiguous up to the live end. After a jump
// (`showAround`, to a search hit far back) they can be an older window: `hasNewer` is then true,
// live messages are not added (they would show after a gap) and `loadNewer` pages close the gap.
import type {
  Attachment,
  ChatMessage,
  MessageEdited,
  ReactionCount,
  ReplyTo,
  RoomEvent,
  UserPublic,
} from '../generated/protocol';

/** A message the user sent that the server has not acknowledged yet. */
export interface PendingMessage {
  client_msg_id: string;
  room: string;
  body: string;
  /** The uploaded file's id sent in the frame, and the full attachment for display. */
  attachment: Attachment | null;
  /** `sending`: waiting for an ack (resent after reconnects); `failed`: refused for good. */
  status: 'sending' | 'failed';
  error?: string;
  created_at: number;
  /** The message answered, as shown in the composer when it was sent. */
  reply_to?: ReplyTo;
}

/** An edit or deletion of one of the user's messages that the server has not acknowledged yet. */
export interface PendingOp {
  /** The request's id, resent unchanged so the server applies it once. */
  ref: string;
  room: string;
  kind: 'edit' | 'delete';
  /** The message's id. */
  id: string;
  /** The new text (edits only). */
  body?: string;
  /** `sending`: waiting for an ack (resent after reconnects); `failed`: refused for good. */
  status: 'sending' | 'failed';
  error?: string;
}

/** A reaction of the user's that the server has not acknowledged yet (shown at once). */
export interface PendingReaction {
  /** The request's id, resent unchanged so the server applies it once. */
  ref: string;
  room: string;
  /** The message's id. */
  message: string;
  emoji: string;
  /** Add or take back. */
  on: boolean;
}

/** A change to the room itself, shown as a small line between the messages. */
export type RoomNotice = Extract<
  RoomEvent,
  { type: 'member_added' } | { type: 'member_removed' } | { type: 'role_changed' } | { type: 'room_updated' }
>;

export function isNotice(e: RoomEvent): e is RoomNotice {
  return e.type === 'member_added' || e.type === 'member_removed' || e.type === 'role_changed' || e.type === 'room_updated';
}

/** How many characters of a message a reply quotes (what the server's `excerpt` holds). */
export const EXCERPT_CHARS = 120;

/** The start of a message's text, as a reply quotes it (as `confab_shared::conversation::excerpt`). */
export function excerptOf(body: string): string {
  const chars = [...body.replace(/\s+/g, ' ').trim()];
  return chars.length > EXCERPT_CHARS ? `${chars.slice(0, EXCERPT_CHARS).join('')}…` : chars.join('');
}

const NO_REACTIONS: ReactionCount[] = [];

/** How many deleted ids and recent edits a timeline remembers (see `deleted`, `recentEdits`). */
const REMEMBERED = 500;
/** How many (message, emoji, user) reaction states and pin states it remembers. */
const REMEMBERED_REACTIONS = 2000;

function remember<K, V>(map: Map<K, V>, key: K, value: V, limit = REMEMBERED): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > limit) map.delete(map.keys().next().value as K);
}

/**
 * `reactions` with one user's `emoji` set or cleared (null when that changes nothing). Counts
 * move by one, `me` follows `selfId`; an emoji nobody has any more is dropped.
 */
export function withReaction(
  reactions: ReactionCount[] | undefined,
  emoji: string,
  user: string,
  on: boolean,
  selfId: string | undefined,
): ReactionCount[] | null {
  const list = reactions ?? [];
  const at = list.findIndex((r) => r.emoji === emoji);
  const has = at >= 0 && list[at].users.includes(user);
  if (has === on) return null;
  const mine = user === selfId;
  if (on) {
    if (at < 0) return [...list, { emoji, count: 1, me: mine, users: [user] }];
    const r = list[at];
    return list.map((x, i) => (i === at ? { ...r, count: r.count + 1, me: r.me || mine, users: [...r.users, user] } : x));
  }
  const r = list[at];
  if (r.count <= 1) return list.filter((_, i) => i !== at);
  return list.map((x, i) =>
    i === at ? { ...r, count: r.count - 1, me: mine ? false : r.me, users: r.users.filter((u) => u !== user) } : x,
  );
}

interface ReactionState {
  seq: number;
  message: string;
  emoji: string;
  user: string;
  on: boolean;
}

function reactionKey(message: string, emoji: string, user: string): string {
  return `${message}\u0000${emoji}\u0000${user}`;
}

function sameReply(a: ReplyTo | undefined, b: ReplyTo | undefined): boolean {
  return a === b || (!!a && !!b && a.id === b.id && a.excerpt === b.excerpt && a.deleted === b.deleted);
}

function sameList<T>(a: T[] | undefined, b: T[] | undefined): boolean {
  const x = a ?? [];
  const y = b ?? [];
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

export class RoomTimeline {
  /** Confirmed messages, ascending by seq. */
  messages: ChatMessage[] = [];
  /** Membership, role and room changes seen in the log, ascending by seq. */
  notices: RoomNotice[] = [];
  pending: PendingMessage[] = [];
  /** The user's edits and deletions waiting for an ack, in the order they were made. */
  ops: PendingOp[] = [];
  /** The user's reactions waiting for an ack, in the order they were made. */
  reactionOps: PendingReaction[] = [];
  /** Whether older messages exist before the first one held. */
  hasMore = false;
  /** Whether newer messages exist after the last one held (only after a jump back). */
  hasNewer = false;
  /** Whether a first page of history was loaded. */
  loaded = false;
  /**
   * The highest log seq applied (from the log, or a history page, which reflects every entry up
   * to its newest message): the `after_seq` to resume from. Acks do not move it, since an ack can
   * overtake log entries of others that come before it.
   */
  maxSeq = 0;
  /** Bumped on every change, so views can tell when to re-render. */
  version = 0;
  /** Bumped on every pin or unpin entry (a pins list shown is then out of date). */
  pinsVersion = 0;
  /** The signed-in user's id: only their messages can settle a pending one. */
  selfId: string | undefined;
  /** Everyone this timeline has seen (authors, reactors, members in notices), by id. */
  readonly users = new Map<string, UserPublic>();

  /** Message id → seq of the last `edited` entry applied to it. */
  private readonly editSeq = new Map<string, number>();
  /** Ids of messages known to be deleted: never shown again, whatever copy arrives later. */
  private readonly deleted = new Map<string, true>();
  /**
   * The latest edits seen: a history page read before an edit can arrive after it (older pages,
   * a reload after a failed recovery) and bring the old text back; this puts the new one on it.
   */
  private readonly recentEdits = new Map<string, MessageEdited>();
  /** (message, emoji, user) → the latest reaction entry (or acked reaction) applied. */
  private readonly reactionState = new Map<string, ReactionState>();
  /** Messages with an entry in `reactionState` (so copies without any skip the lookup). */
  private readonly reacted = new Map<string, true>();
  /** Message id → the latest pin or unpin entry applied. */
  private readonly pinState = new Map<string, { seq: number; pinned: boolean }>();

  constructor(readonly room: string) {}

  // ---- the log ------------------------------------------------------------------------------

  /** Applies one entry of the room's log; returns whether anything changed. */
  apply(entry: RoomEvent): boolean {
    if (entry.seq > this.maxSeq) this.maxSeq = entry.seq;
    let changed: boolean;
    switch (entry.type) {
      case 'message': {
        const { type: _type, ...m } = entry;
        if (m.deleted_at != null) {
          // A tombstone: the message was deleted since. Settles a pending send of ours, shows nothing.
          changed = this.settlePending(m);
          changed = this.forget(m.id) || changed;
        } else {
          changed = this.put(m, true);
        }
        break;
      }
      case 'edited': {
        const { type: _type, ...e } = entry;
        changed = this.applyEdit(e);
        break;
      }
      case 'deleted':
        changed = this.forget(entry.id);
        break;
      case 'reaction':
        this.users.set(entry.user.id, entry.user);
        changed = this.applyReaction({
          seq: entry.seq,
          message: entry.message,
          emoji: entry.emoji,
          user: entry.user.id,
          on: entry.on,
        });
        break;
      case 'pinned':
      case 'unpinned':
        this.users.set(entry.by.id, entry.by);
        changed = this.applyPin(entry.message, entry.seq, entry.type === 'pinned');
        break;
      case 'member_added':
      case 'member_removed':
      case 'role_changed':
      case 'room_updated':
        changed = this.addNotice(entry);
        break;
      default:
        changed = false;
    }
    if (changed) this.version++;
    return changed;
  }

  private applyEdit(e: MessageEdited): boolean {
    // An empty body: the message was deleted since (its `deleted` entry follows).
    if (!e.body || this.deleted.has(e.id)) return false;
    // The same entry again, or one older than the edit shown.
    if ((this.editSeq.get(e.id) ?? 0) >= e.seq) return false;
    if ((this.recentEdits.get(e.id)?.seq ?? 0) < e.seq) remember(this.recentEdits, e.id, e);
    const i = this.messages.findIndex((x) => x.id === e.id);
    if (i < 0) return false; // not held: `put` applies it if a copy arrives
    this.editSeq.set(e.id, e.seq);
    // A new object, so memoized views see the change.
    this.messages[i] = { ...this.messages[i], body: e.body, edited_at: e.edited_at };
    this.requote(e.id, (r) => ({ ...r, excerpt: excerptOf(e.body) }));
    return true;
  }

  /** Sets one user's reaction unless a newer entry for it was applied; returns whether it showed. */
  private applyReaction(r: ReactionState): boolean {
    const key = reactionKey(r.message, r.emoji, r.user);
    if ((this.reactionState.get(key)?.seq ?? 0) >= r.seq) return false;
    remember(this.reactionState, key, r, REMEMBERED_REACTIONS);
    remember(this.reacted, r.message, true, REMEMBERED_REACTIONS);
    const i = this.messages.findIndex((x) => x.id === r.message);
    if (i < 0) return false; // not held: put on the copy when it arrives
    const next = withReaction(this.messages[i].reactions, r.emoji, r.user, r.on, this.selfId);
    if (!next) return false;
    this.messages[i] = { ...this.messages[i], reactions: next };
    return true;
  }

  private applyPin(id: string, seq: number, pinned: boolean): boolean {
    if ((this.pinState.get(id)?.seq ?? 0) >= seq) return false;
    remember(this.pinState, id, { seq, pinned }, REMEMBERED_REACTIONS);
    this.pinsVersion++;
    const i = this.messages.findIndex((x) => x.id === id);
    if (i >= 0 && !!this.messages[i].pinned !== pinned) this.messages[i] = { ...this.messages[i], pinned };
    // A pins list shown changes even when the message is not held here.
    return true;
  }

  private addNotice(n: RoomNotice): boolean {
    this.users.set(n.by.id, n.by);
    if (n.type !== 'room_updated') this.users.set(n.user.id, n.user);
    let i = this.notices.length;
    while (i > 0 && this.notices[i - 1].seq > n.seq) i--;
    if (i > 0 && this.notices[i - 1].seq === n.seq) return false;
    this.notices.splice(i, 0, n);
    return true;
  }

  /**
   * Notices read from the log over HTTP (`GET /api/rooms/{id}/events`) for the messages held, so
   * a history page shows the changes between its messages too. `maxSeq` stays: only the live
   * log moves it.
   */
  addNotices(entries: RoomEvent[]): boolean {
    const first = this.firstSeq;
    let changed = false;
    for (const e of entries) {
      if (!isNotice(e)) continue;
      // Before the oldest message held (unless that is the room's first): not in view.
      if (first !== undefined && this.hasMore && e.seq < first) continue;
      if (this.hasNewer && e.seq > this.lastSeq) continue;
      if (this.addNotice(e)) changed = true;
    }
    if (changed) this.version++;
    return changed;
  }

  /** Replaces the quote of `parent` in the replies held. */
  private requote(parent: string, f: (r: ReplyTo) => ReplyTo): void {
    for (let i = 0; i < this.messages.length; i++) {
      const r = this.messages[i].reply_to;
      if (r && r.id === parent) this.messages[i] = { ...this.messages[i], reply_to: f(r) };
    }
    for (const p of this.pending) if (p.reply_to?.id === parent) p.reply_to = f(p.reply_to);
  }

  /**
   * Removes a message for good: it is deleted (its pending edits and deletions go too, and the
   * replies to it say so). Returns whether anything shown changed.
   */
  private forget(id: string): boolean {
    remember(this.deleted, id, true);
    this.recentEdits.delete(id);
    this.editSeq.delete(id);
    const before = this.messages.length + this.ops.length;
    let quoted = false;
    this.messages = this.messages.filter((x) => x.id !== id);
    this.ops = this.ops.filter((o) => o.id !== id);
    this.reactionOps = this.reactionOps.filter((o) => o.message !== id);
    this.requote(id, (r) => {
      if (r.deleted) return r;
      quoted = true;
      return { ...r, excerpt: '', deleted: true };
    });
    return quoted || this.messages.length + this.ops.length !== before;
  }

  /** Whether the message was deleted (as far as this timeline knows). */
  isDeleted(id: string): boolean {
    return this.deleted.has(id);
  }

  /** A message of ours settles the pending send with its client_msg_id; returns whether one did. */
  private settlePending(m: ChatMessage): boolean {
    if (this.selfId !== undefined && m.author.id !== this.selfId) return false;
    const before = this.pending.length;
    this.pending = this.pending.filter((p) => p.client_msg_id !== m.client_msg_id);
    return this.pending.length !== before;
  }

  /** What is known since a copy of a message was made, put back on it. */
  private upToDate(m: ChatMessage): ChatMessage {
    const edit = this.recentEdits.get(m.id);
    if (edit && edit.edited_at > (m.edited_at ?? 0)) {
      m = { ...m, body: edit.body, edited_at: edit.edited_at };
      this.editSeq.set(m.id, Math.max(edit.seq, this.editSeq.get(m.id) ?? 0));
    }
    if (m.reply_to && !m.reply_to.deleted && this.deleted.has(m.reply_to.id)) {
      m = { ...m, reply_to: { ...m.reply_to, excerpt: '', deleted: true } };
    }
    if (this.reacted.has(m.id)) {
      let reactions = m.reactions;
      for (const r of this.reactionState.values()) {
        if (r.message === m.id) reactions = withReaction(reactions, r.emoji, r.user, r.on, this.selfId) ?? reactions;
      }
      if (reactions !== m.reactions) m = { ...m, reactions };
    }
    const pin = this.pinState.get(m.id);
    if (pin && !!m.pinned !== pin.pinned) m = { ...m, pinned: pin.pinned };
    return m;
  }

  /**
   * Inserts or replaces one confirmed message (dropping tombstones and deleted ones); returns
   * whether anything shown changed. `fromLog`: a `message` entry of the log, which carries no
   * reactions or pin (a copy held keeps its own) and is not added beyond a gap (`hasNewer`).
   */
  private put(m: ChatMessage, fromLog = false): boolean {
    const settled = this.settlePending(m);
    if (m.deleted_at != null || this.deleted.has(m.id)) return settled;
    this.users.set(m.author.id, m.author);
    const at = this.messages.findIndex((x) => x.id === m.id || x.seq === m.seq);
    if (at < 0 && fromLog && this.hasNewer && m.seq > this.lastSeq) return settled;
    if (fromLog && at >= 0) {
      const held = this.messages[at];
      m = { ...m, reactions: held.reactions, pinned: held.pinned };
      if (held.reply_to?.deleted && m.reply_to) m = { ...m, reply_to: held.reply_to };
    }
    m = this.upToDate(m);
    if (at >= 0) {
      const old = this.messages[at];
      // Whichever copy has the later edit wins (a copy made before an edit can arrive after it).
      const keepText = old.id === m.id && (old.edited_at ?? 0) > (m.edited_at ?? 0);
      const next = keepText ? { ...old, ...m, body: old.body, edited_at: old.edited_at } : { ...old, ...m };
      const same =
        next.id === old.id &&
        next.seq === old.seq &&
        next.body === old.body &&
        next.edited_at === old.edited_at &&
        next.attachment?.id === old.attachment?.id &&
        sameReply(next.reply_to, old.reply_to) &&
        sameList(next.mentions, old.mentions) &&
        !!next.pinned === !!old.pinned &&
        JSON.stringify(next.reactions ?? []) === JSON.stringify(old.reactions ?? []);
      if (same) return settled; // a duplicate: keep the object (memoized views stay)
      this.messages[at] = next;
      return true;
    }
    // Mostly appends; find the place from the end.
    let i = this.messages.length;
    while (i > 0 && this.messages[i - 1].seq > m.seq) i--;
    this.messages.splice(i, 0, m);
    return true;
  }

  // ---- history and acks ---------------------------------------------------------------------

  /** Adds or replaces messages of a history page; returns how many were new. */
  merge(incoming: ChatMessage[]): number {
    let added = 0;
    for (const m of incoming) {
      if (m.seq > this.maxSeq) this.maxSeq = m.seq;
      if (this.put(m)) added++;
    }
    this.version++;
    return added;
  }

  /** Shows the user's own message as the server acknowledged it (`maxSeq` stays). */
  confirm(m: ChatMessage): void {
    if (this.hasNewer) {
      // Beyond the gap: the newest page shows it when the user goes there.
      this.settlePending(m);
    } else {
      this.put(m);
    }
    this.version++;
  }

  /** Puts older messages (a history page) in front. */
  prepend(page: ChatMessage[], hasMore: boolean): void {
    this.merge(page);
    this.hasMore = hasMore;
  }

  /**
   * Replaces everything confirmed by a fresh newest page (a first load, or after a failed
   * recovery). Messages newer than the page (live while it loaded) stay, and so does what is
   * known about deletions, edits, reactions and pins.
   */
  reset(page: ChatMessage[], hasMore: boolean): void {
    const newest = page.reduce((n, m) => Math.max(n, m.seq), 0);
    const kept = newest && !this.hasNewer ? this.messages.filter((m) => m.seq > newest) : [];
    this.messages = [];
    this.hasNewer = false;
    this.merge(page);
    for (const m of kept) this.put(m);
    this.dropOutside();
    this.hasMore = hasMore;
    this.loaded = true;
  }

  /**
   * Shows a page of messages around a seq (`around_seq`): merged when it reaches the messages
   * held (or the live end), otherwise it replaces them, with `hasNewer` set until `loadNewer`
   * pages (merged here too) reach the live end.
   */
  showAround(page: ChatMessage[], hasMore: boolean, hasNewer: boolean): void {
    const newest = page.reduce((n, m) => Math.max(n, m.seq), 0);
    const first = this.firstSeq;
    const joins = !hasNewer || (first !== undefined && newest >= first);
    if (joins) {
      const before = this.firstSeq;
      this.merge(page);
      if (before === undefined || this.firstSeq !== before) this.hasMore = hasMore;
      if (!hasNewer) this.hasNewer = false;
    } else {
      this.messages = [];
      this.merge(page);
      this.hasMore = hasMore;
      this.hasNewer = true;
      this.dropOutside();
    }
    this.loaded = true;
    this.version++;
  }

  /** After a page replaced what was held: what is known about messages no longer held goes. */
  private dropOutside(): void {
    const held = new Set(this.messages.map((m) => m.id));
    for (const id of [...this.editSeq.keys()]) if (!held.has(id)) this.editSeq.delete(id);
    const first = this.firstSeq ?? 0;
    const last = this.hasNewer ? this.lastSeq : Infinity;
    this.notices = this.notices.filter((n) => (!this.hasMore || n.seq >= first) && n.seq <= last);
  }

  /** Drops all but the newest `keep` messages (an off-screen room keeps a short tail). */
  trim(keep: number): void {
    if (this.messages.length <= keep) return;
    const dropped = this.messages.slice(0, this.messages.length - keep);
    this.messages = this.messages.slice(-keep);
    for (const m of dropped) this.editSeq.delete(m.id);
    this.hasMore = true;
    const first = this.firstSeq ?? 0;
    this.notices = this.notices.filter((n) => n.seq >= first);
    this.version++;
  }

  // ---- pending sends ------------------------------------------------------------------------

  addPending(p: PendingMessage): void {
    this.pending.push(p);
    this.version++;
  }

  findPending(clientMsgId: string): PendingMessage | undefined {
    return this.pending.find((p) => p.client_msg_id === clientMsgId);
  }

  dropPending(clientMsgId: string): void {
    this.pending = this.pending.filter((p) => p.client_msg_id !== clientMsgId);
    this.version++;
  }

  // ---- pending edits and deletions ----------------------------------------------------------

  /** Queues an edit or deletion; earlier failed ones of the same message are superseded. */
  addOp(op: PendingOp): void {
    this.ops = this.ops.filter((o) => o.id !== op.id || o.status !== 'failed');
    this.ops.push(op);
    this.version++;
  }

  findOp(ref: string): PendingOp | undefined {
    return this.ops.find((o) => o.ref === ref);
  }

  /** Changes an op (as a new object, so memoized views see it). */
  updateOp(ref: string, patch: Partial<Pick<PendingOp, 'status' | 'error'>>): void {
    this.ops = this.ops.map((o) => (o.ref === ref ? { ...o, ...patch } : o));
    this.version++;
  }

  dropOp(ref: string): void {
    this.ops = this.ops.filter((o) => o.ref !== ref);
    this.version++;
  }

  /** The newest op on a message, if any (what its view shows). */
  opFor(id: string): PendingOp | undefined {
    for (let i = this.ops.length - 1; i >= 0; i--) if (this.ops[i].id === id) return this.ops[i];
    return undefined;
  }

  /**
   * An op was acknowledged at log seq `seq`: show its effect now, before (or without) its log
   * entry; the entry, when it comes, applies the server's version of the same change.
   */
  settleOp(op: PendingOp, seq: number, now: number): void {
    this.ops = this.ops.filter((o) => o.ref !== op.ref);
    if (op.kind === 'delete') {
      this.forget(op.id);
    } else if (op.body !== undefined && (this.editSeq.get(op.id) ?? 0) < seq) {
      // The log entry (if not here yet) brings the server's edited_at.
      const i = this.messages.findIndex((x) => x.id === op.id);
      if (i >= 0) this.messages[i] = { ...this.messages[i], body: op.body, edited_at: now };
    }
    this.version++;
  }

  // ---- pending reactions --------------------------------------------------------------------

  addReactionOp(op: PendingReaction): void {
    this.reactionOps.push(op);
    this.version++;
  }

  findReactionOp(ref: string): PendingReaction | undefined {
    return this.reactionOps.find((o) => o.ref === ref);
  }

  dropReactionOp(ref: string): void {
    this.reactionOps = this.reactionOps.filter((o) => o.ref !== ref);
    this.version++;
  }

  /**
   * A reaction was acknowledged at log seq `seq`: applied as its entry will be (the entry, when
   * it comes, is then a duplicate). `maxSeq` stays, as for every ack.
   */
  settleReaction(op: PendingReaction, seq: number): void {
    this.reactionOps = this.reactionOps.filter((o) => o.ref !== op.ref);
    if (this.selfId !== undefined) {
      this.applyReaction({ seq, message: op.message, emoji: op.emoji, user: this.selfId, on: op.on });
    }
    this.version++;
  }

  /** A message's reactions as shown: the confirmed ones with the user's pending ones on top. */
  reactionsOf(m: ChatMessage): ReactionCount[] {
    // The same empty list every time, so memoized message views see no change.
    let reactions = m.reactions ?? NO_REACTIONS;
    if (this.selfId === undefined) return reactions;
    for (const op of this.reactionOps) {
      if (op.message === m.id) reactions = withReaction(reactions, op.emoji, this.selfId, op.on, this.selfId) ?? reactions;
    }
    return reactions;
  }

  /** The server says the message does not exist: it is not shown any more. */
  gone(id: string): void {
    this.forget(id);
    this.version++;
  }

  touch(): void {
    this.version++;
  }

  /** The message held with this id, if any. */
  find(id: string): ChatMessage | undefined {
    return this.messages.find((m) => m.id === id);
  }

  /** The highest confirmed message seq held (what a read marker can move to). */
  get lastSeq(): number {
    return this.messages.length ? this.messages[this.messages.length - 1].seq : 0;
  }

  get firstSeq(): number | undefined {
    return this.messages[0]?.seq;
  }
}
