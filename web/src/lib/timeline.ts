// One room's messages as the client shows them: confirmed messages ordered by seq and
// deduplicated by id and seq, plus the user's own messages still waiting for an ack.
// Framework-free, so the connection client and its tests can use it directly.
import type { Attachment, ChatMessage } from '../generated/protocol';

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

export class RoomTimeline {
  /** Confirmed messages, ascending by seq. */
  messages: ChatMessage[] = [];
  pending: PendingMessage[] = [];
  /** Whether older messages exist before the first one held. */
  hasMore = false;
  /** Whether a first page of history was loaded. */
  loaded = false;
  /** The highest seq ever seen here (deleted ones included): the `after_seq` to resume from. */
  maxSeq = 0;
  /** Bumped on every change, so views can tell when to re-render. */
  version = 0;
  /** The signed-in user's id: only their messages can settle a pending one. */
  selfId: string | undefined;

  constructor(readonly room: string) {}

  /** Adds or replaces messages; returns how many were new. */
  merge(incoming: ChatMessage[]): number {
    let added = 0;
    for (const m of incoming) {
      if (m.seq > this.maxSeq) this.maxSeq = m.seq;
      if (this.selfId === undefined || m.author.id === this.selfId) {
        this.pending = this.pending.filter((p) => p.client_msg_id !== m.client_msg_id);
      }
      const byId = this.messages.findIndex((x) => x.id === m.id || x.seq === m.seq);
      if (byId >= 0) {
        this.messages[byId] = { ...this.messages[byId], ...m };
        continue;
      }
      added++;
      // Mostly appends; find the place from the end.
      let i = this.messages.length;
      while (i > 0 && this.messages[i - 1].seq > m.seq) i--;
      this.messages.splice(i, 0, m);
    }
    this.version++;
    return added;
  }

  /** Puts older messages (a history page) in front. */
  prepend(page: ChatMessage[], hasMore: boolean): void {
    this.merge(page);
    this.hasMore = hasMore;
  }

  /** Replaces everything confirmed by a fresh newest page (after a failed recovery). */
  reset(page: ChatMessage[], hasMore: boolean): void {
    this.messages = [];
    this.merge(page);
    this.hasMore = hasMore;
    this.loaded = true;
  }

  edit(id: string, body: string, editedAt: number): void {
    const i = this.messages.findIndex((x) => x.id === id);
    if (i >= 0) {
      // A new object, so memoized views see the change.
      this.messages[i] = { ...this.messages[i], body, edited_at: editedAt };
      this.version++;
    }
  }

  remove(id: string): void {
    const before = this.messages.length;
    this.messages = this.messages.filter((x) => x.id !== id);
    if (this.messages.length !== before) this.version++;
  }

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

  touch(): void {
    this.version++;
  }

  /** The highest confirmed seq held (what a read marker can move to). */
  get lastSeq(): number {
    return this.messages.length ? this.messages[this.messages.length - 1].seq : 0;
  }

  get firstSeq(): number | undefined {
    return this.messages[0]?.seq;
  }
}
