// "Seen by": how far the other members have read, placed under the newest messages. Pure, so it
// is unit-tested; the view feeds it `GET /api/rooms/{id}/receipts` and the `read` frames.
import type { ChatMessage, Receipt, UserPublic } from '../generated/protocol';

/** Read markers by user id. */
export type Receipts = ReadonlyMap<string, Receipt>;

export function receiptsFrom(list: Receipt[]): Map<string, Receipt> {
  return new Map(list.map((r) => [r.user.id, r]));
}

/** A marker moved (markers only move forward); the same map when nothing changed. */
export function moveReceipt(receipts: Receipts, user: UserPublic, seq: number): Receipts {
  const old = receipts.get(user.id);
  if (old && old.seq >= seq) return receipts;
  return new Map(receipts).set(user.id, { user, seq });
}

/**
 * Message id → who (besides the user) has read up to that message and no further, for the
 * newest `latest` messages only. A reader is shown under the newest message they have read,
 * except under their own (which says nothing new).
 */
export function seenBy(
  messages: Pick<ChatMessage, 'id' | 'seq' | 'author'>[],
  receipts: Receipts,
  meId: string,
  latest = 10,
): Map<string, UserPublic[]> {
  const out = new Map<string, UserPublic[]>();
  if (!messages.length) return out;
  const from = Math.max(0, messages.length - latest);
  for (const r of receipts.values()) {
    if (r.user.id === meId) continue;
    // The newest message at or before the marker (messages ascend by seq).
    let lo = 0;
    let hi = messages.length - 1;
    let at = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (messages[mid].seq <= r.seq) {
        at = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    if (at < from) continue;
    const m = messages[at];
    if (m.author.id === r.user.id) continue;
    const list = out.get(m.id) ?? [];
    list.push(r.user);
    out.set(m.id, list);
  }
  for (const list of out.values()) list.sort((a, b) => a.username.localeCompare(b.username));
  return out;
}
