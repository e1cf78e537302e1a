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
