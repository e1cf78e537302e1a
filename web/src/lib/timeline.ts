// One room as the client shows it: confirmed messages ordered by seq and deduplicated by id and
// seq, the user's own messages still waiting for an ack, and the user's edits and deletions still
// waiting for one. Framework-free, so the connection client and its tests can use it directly.
//
// The room's log (see shared/src/events.rs) is applied entry by entry with `apply`: `message`,
// `edited` and `deleted` entries, live or replayed. Applying an entry twice changes nothing
// (messages are deduplicated by id and seq, an edit older than the one shown is ignored, a
// deleted message stays deleted), so replays overlapping live entries are harmless; a deleted
// message's tombstone is never shown.
import type { Attachment, ChatMessage, MessageEdited, RoomEvent } from '../generated/protocol';

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

/** How many deleted ids and recent edits a timeline remembers (see `deleted`, `recentEdits`). */
const REMEMBERED = 500;

function remember<K, V>(map: Map<K, V>, key: K, value: V): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > REMEMBERED) map.delete(map.keys().next().value as K);
}

export class RoomTimeline {
  /** Confirmed messages, ascending by seq. */
  messages: ChatMessage[] = [];
  pending: PendingMessage[] = [];
  /** The user's edits and deletions waiting for an ack, in the order they were made. */
  ops: PendingOp[] = [];
  /** Whether older messages exist before the first one held. */
  hasMore = false;
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
  /** The signed-in user's id: only their messages can settle a pending one. */
  selfId: string | undefined;

  /** Message id → seq of the last `edited` entry applied to it. */
  private readonly editSeq = new Map<string, number>();
  /** Ids of messages known to be deleted: never shown again, whatever copy arrives later. */
  private readonly deleted = new Map<string, true>();
  /**
   * The latest edits seen: a history page read before an edit can arrive after it (older pages,
   * a reload after a failed recovery) and bring the old text back; this puts the new one on it.
   */
  private readonly recentEdits = new Map<string, MessageEdited>();

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
          changed = this.put(m);
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
    return true;
  }

  /**
   * Removes a message for good: it is deleted (its pending edits and deletions go too). Returns
   * whether anything shown changed.
   */
  private forget(id: string): boolean {
    remember(this.deleted, id, true);
    this.recentEdits.delete(id);
    this.editSeq.delete(id);
    const before = this.messages.length + this.ops.length;
    this.messages = this.messages.filter((x) => x.id !== id);
    this.ops = this.ops.filter((o) => o.id !== id);
    return this.messages.length + this.ops.length !== before;
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

  /**
   * Inserts or replaces one confirmed message (dropping tombstones and deleted ones); returns
   * whether anything shown changed.
   */
  private put(m: ChatMessage): boolean {
    const settled = this.settlePending(m);
    if (m.deleted_at != null || this.deleted.has(m.id)) return settled;
    const edit = this.recentEdits.get(m.id);
    if (edit && edit.edited_at > (m.edited_at ?? 0)) {
      m = { ...m, body: edit.body, edited_at: edit.edited_at };
      this.editSeq.set(m.id, Math.max(edit.seq, this.editSeq.get(m.id) ?? 0));
    }
    const at = this.messages.findIndex((x) => x.id === m.id || x.seq === m.seq);
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
        next.attachment?.id === old.attachment?.id;
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
    this.put(m);
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
   * known about deletions and edits.
   */
  reset(page: ChatMessage[], hasMore: boolean): void {
    const newest = page.reduce((n, m) => Math.max(n, m.seq), 0);
    const kept = newest ? this.messages.filter((m) => m.seq > newest) : [];
    this.messages = [];
    this.merge(page);
    for (const m of kept) this.put(m);
    const held = new Set(this.messages.map((m) => m.id));
    for (const id of [...this.editSeq.keys()]) if (!held.has(id)) this.editSeq.delete(id);
    this.hasMore = hasMore;
    this.loaded = true;
  }

  /** Drops all but the newest `keep` messages (an off-screen room keeps a short tail). */
  trim(keep: number): void {
    if (this.messages.length <= keep) return;
    const dropped = this.messages.slice(0, this.messages.length - keep);
    this.messages = this.messages.slice(-keep);
    for (const m of dropped) this.editSeq.delete(m.id);
    this.hasMore = true;
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

  /** The server says the message does not exist: it is not shown any more. */
  gone(id: string): void {
    this.forget(id);
    this.version++;
  }

  touch(): void {
    this.version++;
  }

  /** The highest confirmed message seq held (what a read marker can move to). */
  get lastSeq(): number {
    return this.messages.length ? this.messages[this.messages.length - 1].seq : 0;
  }

  get firstSeq(): number | undefined {
    return this.messages[0]?.seq;
  }
}
