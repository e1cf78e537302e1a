import { describe, expect, it } from 'vitest';
import { RoomTimeline } from '../src/lib/timeline';
import { firstUrl } from '../src/lib/links';
import type { ChatMessage, RoomEvent } from '../src/generated/protocol';

const author = { id: 'u', username: 'u' };
const m = (seq: number, extra: Partial<ChatMessage> = {}): ChatMessage => ({
  id: `m${seq}`,
  room: 'r',
  seq,
  author,
  body: `b${seq}`,
  client_msg_id: `c${seq}`,
  attachment: null,
  created_at: seq,
  edited_at: null,
  ...extra,
});
const message = (seq: number, extra: Partial<ChatMessage> = {}): RoomEvent => ({ type: 'message', ...m(seq, extra) });
const edited = (seq: number, id: string, body: string, at = seq * 10): RoomEvent => ({
  type: 'edited',
  room: 'r',
  seq,
  id,
  body,
  edited_at: at,
});
const deleted = (seq: number, id: string): RoomEvent => ({ type: 'deleted', room: 'r', seq, id });
const shown = (tl: RoomTimeline) => tl.messages.map((x) => [x.id, x.body]);

describe('RoomTimeline', () => {
  it('orders by seq whatever the arrival order and counts only new messages', () => {
    const tl = new RoomTimeline('r');
    expect(tl.merge([m(5), m(2), m(9)])).toBe(3);
    expect(tl.merge([m(2), m(7)])).toBe(1);
    expect(tl.messages.map((x) => x.seq)).toEqual([2, 5, 7, 9]);
    expect(tl.lastSeq).toBe(9);
    expect(tl.firstSeq).toBe(2);
  });

  it('applies the log: messages, edits (as new objects) and deletions, keeping maxSeq', () => {
    const tl = new RoomTimeline('r');
    tl.merge([m(1), m(2)]);
    const before = tl.messages[1];
    expect(tl.apply(message(3))).toBe(true);
    expect(tl.apply(edited(4, 'm2', 'new'))).toBe(true);
    expect(tl.messages[1]).not.toBe(before);
    expect(tl.messages[1]).toMatchObject({ body: 'new', edited_at: 40 });
    expect(tl.apply(deleted(5, 'm3'))).toBe(true);
    expect(shown(tl)).toEqual([
      ['m1', 'b1'],
      ['m2', 'new'],
    ]);
    expect(tl.lastSeq).toBe(2);
    expect(tl.maxSeq).toBe(5);
  });

  it('ignores duplicates: the same entry twice, an older edit after a newer one, a deleted message again', () => {
    const tl = new RoomTimeline('r');
    tl.merge([m(1), m(2)]);
    tl.apply(edited(3, 'm1', 'first edit'));
    tl.apply(edited(4, 'm1', 'second edit'));
    tl.apply(deleted(5, 'm2'));
    const v = tl.version;
    const objects = [...tl.messages];
    for (const e of [message(1), edited(3, 'm1', 'first edit'), edited(4, 'm1', 'second edit'), deleted(5, 'm2'), message(2)]) {
      expect(tl.apply(e)).toBe(false);
    }
    expect(tl.version).toBe(v);
    expect(tl.messages).toEqual(objects);
    expect(tl.messages[0]).toBe(objects[0]);
    expect(shown(tl)).toEqual([['m1', 'second edit']]);
    // A history page brings the deleted one back: still not shown.
    tl.merge([m(2)]);
    expect(shown(tl)).toEqual([['m1', 'second edit']]);
  });

  it('never shows a tombstone, and an edit of a deleted message (empty body) changes nothing', () => {
    const tl = new RoomTimeline('r');
    tl.merge([m(1)]);
    expect(tl.apply(message(2, { body: '', deleted_at: 99 }))).toBe(false);
    expect(tl.apply(edited(3, 'm2', ''))).toBe(false);
    expect(tl.apply(edited(4, 'm1', ''))).toBe(false);
    expect(shown(tl)).toEqual([['m1', 'b1']]);
    expect(tl.maxSeq).toBe(4);
    // A tombstone of a message held removes it; a history page with a tombstone shows nothing.
    expect(tl.apply(message(1, { body: '', deleted_at: 99 }))).toBe(true);
    tl.merge([m(7, { body: '', deleted_at: 5 })]);
    expect(tl.messages).toEqual([]);
    expect(tl.isDeleted('m2') && tl.isDeleted('m1')).toBe(true);
  });

  it('puts an edit that overtook its message (an older page in flight) on the copy that arrives', () => {
    const tl = new RoomTimeline('r');
    tl.merge([m(10)]);
    tl.apply(edited(11, 'm5', 'edited meanwhile', 500));
    tl.prepend([m(4), m(5)], false);
    expect(shown(tl)).toEqual([
      ['m4', 'b4'],
      ['m5', 'edited meanwhile'],
      ['m10', 'b10'],
    ]);
    // A copy that already has that edit (or a later one) is taken as it is.
    tl.apply(edited(12, 'm4', 'x', 100));
    tl.merge([m(4, { body: 'later', edited_at: 200 })]);
    expect(tl.messages[0].body).toBe('later');
  });

  it('reset keeps messages newer than the page and what it knows about edits and deletions', () => {
    const tl = new RoomTimeline('r');
    tl.merge([m(1), m(2)]);
    tl.apply(message(800));
    tl.apply(edited(801, 'm700', 'new text', 8010));
    tl.apply(deleted(802, 'm701'));
    // The page was read before those entries.
    tl.reset([m(700), m(701), m(702)], true);
    expect(shown(tl)).toEqual([
      ['m700', 'new text'],
      ['m702', 'b702'],
      ['m800', 'b800'],
    ]);
    expect(tl.hasMore).toBe(true);
    expect(tl.maxSeq).toBe(802);
  });

  it('trim keeps the newest messages and says older ones exist', () => {
    const tl = new RoomTimeline('r');
    tl.merge([m(1), m(2), m(3), m(4)]);
    tl.trim(2);
    expect(tl.messages.map((x) => x.seq)).toEqual([3, 4]);
    expect(tl.hasMore).toBe(true);
    expect(tl.maxSeq).toBe(4);
  });

  it('pending ops: the newest per message is shown; an ack applies the edit unless its entry came first', () => {
    const tl = new RoomTimeline('r');
    tl.merge([m(1), m(2)]);
    tl.addOp({ ref: 'a', room: 'r', kind: 'edit', id: 'm1', body: 'one', status: 'failed', error: 'x' });
    tl.addOp({ ref: 'b', room: 'r', kind: 'edit', id: 'm1', body: 'two', status: 'sending' });
    expect(tl.ops.map((o) => o.ref)).toEqual(['b']); // the failed one is superseded
    tl.addOp({ ref: 'c', room: 'r', kind: 'delete', id: 'm2', status: 'sending' });
    expect(tl.opFor('m1')?.ref).toBe('b');
    tl.settleOp(tl.findOp('b')!, 5, 1234);
    expect(tl.messages[0]).toMatchObject({ body: 'two', edited_at: 1234 });
    // The entry follows with the server's time.
    tl.apply(edited(5, 'm1', 'two', 50));
    expect(tl.messages[0]).toMatchObject({ body: 'two', edited_at: 50 });
    // Its entry came before the ack: the ack changes nothing.
    tl.addOp({ ref: 'd', room: 'r', kind: 'edit', id: 'm1', body: 'three', status: 'sending' });
    tl.apply(edited(7, 'm1', 'three', 70));
    tl.apply(edited(8, 'm1', 'four', 80)); // from another tab
    tl.settleOp(tl.findOp('d')!, 7, 9999);
    expect(tl.messages[0]).toMatchObject({ body: 'four', edited_at: 80 });
    tl.settleOp(tl.findOp('c')!, 6, 0);
    expect(shown(tl)).toEqual([['m1', 'four']]);
    expect(tl.ops).toEqual([]);
  });
});

describe('firstUrl', () => {
  it('finds the first http(s) URL without trailing punctuation', () => {
    expect(firstUrl('see https://example.test/a?b=1, then http://x.test')).toBe('https://example.test/a?b=1');
    expect(firstUrl('(http://127.0.0.1:8080/page).')).toBe('http://127.0.0.1:8080/page');
    expect(firstUrl('no links here, ftp://nope')).toBeNull();
  });
});

// ---- conversations: reactions, pins, notices, replies, jumps ------------------------------------

const ann = { id: 'ann', username: 'ann' };
const ben = { id: 'ben', username: 'ben' };
const reaction = (seq: number, message: string, emoji: string, user = ann, on = true): RoomEvent => ({
  type: 'reaction',
  room: 'r',
  seq,
  message,
  emoji,
  user,
  on,
});
const reactionsOf = (tl: RoomTimeline, id: string) =>
  (tl.find(id)?.reactions ?? []).map((r) => `${r.emoji}${r.count}${r.me ? '*' : ''}:${r.users.join(',')}`);

describe('RoomTimeline: reactions are sets', () => {
  it('adds and takes back one user per emoji; the same entry twice changes nothing; counts and me follow', () => {
    const tl = new RoomTimeline('r');
    tl.selfId = 'ben';
    tl.merge([m(1)]);
    expect(tl.apply(reaction(2, 'm1', '👍'))).toBe(true);
    expect(tl.apply(reaction(3, 'm1', '👍', ben))).toBe(true);
    expect(tl.apply(reaction(4, 'm1', '🎉'))).toBe(true);
    expect(reactionsOf(tl, 'm1')).toEqual(['👍2*:ann,ben', '🎉1:ann']);
    const v = tl.version;
    // Replayed (same seqs) and a newer "on" for someone already there: nothing.
    for (const e of [reaction(2, 'm1', '👍'), reaction(3, 'm1', '👍', ben), reaction(4, 'm1', '🎉')]) expect(tl.apply(e)).toBe(false);
    expect(tl.apply(reaction(5, 'm1', '👍'))).toBe(false);
    expect(tl.version).toBe(v);
    // Taken back: an "off" for someone absent changes nothing; the last one drops the emoji.
    expect(tl.apply(reaction(6, 'm1', '👍', ben, false))).toBe(true);
    expect(tl.apply(reaction(7, 'm1', '👍', ben, false))).toBe(false);
    expect(tl.apply(reaction(8, 'm1', '🎉', ann, false))).toBe(true);
    expect(reactionsOf(tl, 'm1')).toEqual(['👍1:ann']);
    // An older entry arriving late never undoes a newer one.
    expect(tl.apply(reaction(4, 'm1', '🎉'))).toBe(false);
    expect(tl.maxSeq).toBe(8);
  });

  it('a replayed message entry (no reactions) keeps the reactions of the copy held; its reaction entries are no-ops', () => {
    const tl = new RoomTimeline('r');
    tl.selfId = 'ben';
    tl.merge([m(1, { reactions: [{ emoji: '👍', count: 2, me: true, users: ['ann', 'ben'] }], pinned: true })]);
    const held = tl.find('m1');
    // The recovery replays the message's entry and the reactions after it.
    expect(tl.apply(message(1))).toBe(false);
    expect(tl.apply(reaction(2, 'm1', '👍', ann))).toBe(false);
    expect(tl.apply(reaction(3, 'm1', '👍', ben))).toBe(false);
    expect(tl.find('m1')).toBe(held);
    expect(reactionsOf(tl, 'm1')).toEqual(['👍2*:ann,ben']);
    expect(tl.find('m1')?.pinned).toBe(true);
    // A new message replayed with the entries after it ends up with exactly those reactions.
    tl.apply(message(4));
    tl.apply(reaction(5, 'm4', '❤️', ann));
    tl.apply(reaction(6, 'm4', '❤️', ben));
    tl.apply(reaction(7, 'm4', '❤️', ann, false));
    expect(reactionsOf(tl, 'm4')).toEqual(['❤️1*:ben']);
  });

  it('a history copy read before a reaction entry gets it put back; one read after is left as it is', () => {
    const tl = new RoomTimeline('r');
    tl.merge([m(10)]);
    // Entries for a message not held yet (an older page in flight).
    expect(tl.apply(reaction(11, 'm5', '👀', ann))).toBe(false);
    expect(tl.apply(reaction(12, 'm5', '🔥', ben))).toBe(false);
    expect(tl.apply(reaction(13, 'm5', '🔥', ben, false))).toBe(false);
    tl.prepend([m(5, { reactions: [{ emoji: '🔥', count: 1, me: false, users: ['ben'] }] })], false);
    expect(reactionsOf(tl, 'm5')).toEqual(['👀1:ann']);
    tl.merge([m(5, { reactions: [{ emoji: '👀', count: 1, me: false, users: ['ann'] }] })]);
    expect(reactionsOf(tl, 'm5')).toEqual(['👀1:ann']);
  });

  it('pending reactions show at once; the ack applies them like their entry, which is then a duplicate', () => {
    const tl = new RoomTimeline('r');
    tl.selfId = 'ben';
    tl.merge([m(1, { reactions: [{ emoji: '👍', count: 1, me: false, users: ['ann'] }] })]);
    tl.addReactionOp({ ref: 'x', room: 'r', message: 'm1', emoji: '👍', on: true });
    tl.addReactionOp({ ref: 'y', room: 'r', message: 'm1', emoji: '🎉', on: true });
    const shownNow = tl.reactionsOf(tl.find('m1')!).map((r) => `${r.emoji}${r.count}${r.me ? '*' : ''}`);
    expect(shownNow).toEqual(['👍2*', '🎉1*']);
    expect(reactionsOf(tl, 'm1')).toEqual(['👍1:ann']); // confirmed: unchanged
    tl.settleReaction(tl.findReactionOp('x')!, 5);
    expect(reactionsOf(tl, 'm1')).toEqual(['👍2*:ann,ben']);
    expect(tl.apply(reaction(5, 'm1', '👍', ben))).toBe(false);
    expect(tl.maxSeq).toBe(5); // the entry moved it, the ack did not
    tl.dropReactionOp('y'); // refused
    expect(tl.reactionsOf(tl.find('m1')!).map((r) => r.emoji)).toEqual(['👍']);
  });
});

describe('RoomTimeline: pins, notices, replies', () => {
  it('pin entries set the flag (newest wins) and bump pinsVersion, held or not', () => {
    const tl = new RoomTimeline('r');
    tl.merge([m(1)]);
    const pin = (seq: number, id: string, on = true): RoomEvent => ({
      type: on ? 'pinned' : 'unpinned',
      room: 'r',
      seq,
      message: id,
      by: ann,
    });
    expect(tl.apply(pin(2, 'm1'))).toBe(true);
    expect(tl.find('m1')?.pinned).toBe(true);
    expect(tl.apply(pin(2, 'm1'))).toBe(false);
    expect(tl.apply(pin(3, 'm1', false))).toBe(true);
    expect(tl.find('m1')?.pinned).toBe(false);
    expect(tl.pinsVersion).toBe(2);
    // Not held: the list changes, and the copy that arrives later gets the state.
    expect(tl.apply(pin(4, 'm0'))).toBe(true);
    tl.prepend([m(0, { pinned: false })], false);
    expect(tl.find('m0')?.pinned).toBe(true);
  });

  it('membership and room entries are kept as notices by seq, once each, and say who', () => {
    const tl = new RoomTimeline('r');
    tl.merge([m(1), m(5)]);
    const added: RoomEvent = { type: 'member_added', room: 'r', seq: 3, user: ben, role: 'member', by: ann };
    const role: RoomEvent = { type: 'role_changed', room: 'r', seq: 6, user: ben, role: 'admin', by: ann };
    const updated: RoomEvent = { type: 'room_updated', room: 'r', seq: 7, name: 'renamed', topic: 'new topic', by: ben };
    const removed: RoomEvent = { type: 'member_removed', room: 'r', seq: 8, user: ben, by: ann, banned: true };
    for (const e of [role, added, updated, removed]) expect(tl.apply(e)).toBe(true);
    for (const e of [role, added, updated, removed]) expect(tl.apply(e)).toBe(false);
    expect(tl.notices.map((n) => `${n.seq}:${n.type}`)).toEqual(['3:member_added', '6:role_changed', '7:room_updated', '8:member_removed']);
    expect(tl.users.get('ben')).toEqual(ben);
    // From the log over HTTP: added without moving maxSeq.
    const before = tl.maxSeq;
    expect(tl.addNotices([{ type: 'member_added', room: 'r', seq: 2, user: ann, role: 'owner', by: ann }, message(1)])).toBe(true);
    expect(tl.notices.map((n) => n.seq)).toEqual([2, 3, 6, 7, 8]);
    expect(tl.maxSeq).toBe(before);
    // Trimmed with the messages before them.
    tl.trim(1);
    expect(tl.notices.map((n) => n.seq)).toEqual([6, 7, 8]);
  });

  it('a reply quotes its parent until the parent is deleted; then it says deleted, whatever copy comes', () => {
    const tl = new RoomTimeline('r');
    const quote = { id: 'm1', author: ann, excerpt: 'b1', deleted: false };
    tl.merge([m(1), m(2, { reply_to: quote })]);
    tl.apply(edited(3, 'm1', 'the parent, edited'));
    expect(tl.find('m2')?.reply_to).toMatchObject({ excerpt: 'the parent, edited', deleted: false });
    expect(tl.apply(deleted(4, 'm1'))).toBe(true);
    expect(tl.find('m2')?.reply_to).toEqual({ id: 'm1', author: ann, excerpt: '', deleted: true });
    // A replayed message entry of the reply, or a stale history copy, does not bring the text back.
    tl.apply(message(2, { reply_to: quote }));
    expect(tl.find('m2')?.reply_to?.deleted).toBe(true);
    tl.merge([m(2, { reply_to: quote }), m(6, { reply_to: quote })]);
    expect(tl.find('m2')?.reply_to?.deleted).toBe(true);
    expect(tl.find('m6')?.reply_to?.deleted).toBe(true);
    // A tombstone of the parent does the same for a reply arriving first.
    tl.apply(message(7, { reply_to: { id: 'm5', author: ben, excerpt: 'hi', deleted: false } }));
    tl.apply(message(5, { body: '', deleted_at: 1 }));
    expect(tl.find('m7')?.reply_to).toMatchObject({ excerpt: '', deleted: true });
  });

  it('a jump far back shows a window; live messages wait beyond the gap; newer pages close it', () => {
    const tl = new RoomTimeline('r');
    tl.reset([m(900), m(901)], true);
    tl.showAround([m(100), m(101), m(102)], true, true);
    expect(tl.messages.map((x) => x.seq)).toEqual([100, 101, 102]);
    expect(tl.hasNewer).toBe(true);
    expect(tl.maxSeq).toBe(901);
    // Live: a new message is not shown after the gap; an edit of one held is.
    expect(tl.apply(message(902))).toBe(false);
    tl.apply(edited(903, 'm101', 'edited live'));
    expect(tl.find('m101')?.body).toBe('edited live');
    // Paging forward merges, up to the live end.
    tl.showAround([m(101), m(102), m(103)], true, true);
    expect(tl.messages.map((x) => x.seq)).toEqual([100, 101, 102, 103]);
    expect(tl.find('m101')?.body).toBe('edited live');
    tl.showAround([m(103), m(900), m(901), m(902)], true, false);
    expect(tl.hasNewer).toBe(false);
    expect(tl.messages.map((x) => x.seq)).toEqual([100, 101, 102, 103, 900, 901, 902]);
    expect(tl.apply(message(904))).toBe(true);
    // The newest page again (showLatest) ends any window.
    tl.showAround([m(50)], true, true);
    tl.reset([m(903), m(904)], true);
    expect(tl.hasNewer).toBe(false);
    expect(tl.messages.map((x) => x.seq)).toEqual([903, 904]);
  });
});
