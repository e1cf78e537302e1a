import { describe, expect, it } from 'vitest';
import { RoomTimeline } from '../src/lib/timeline';
import { firstUrl } from '../src/lib/links';
import type { ChatMessage } from '../src/generated/protocol';

const author = { id: 'u', username: 'u' };
const m = (seq: number): ChatMessage => ({
  id: `m${seq}`,
  room: 'r',
  seq,
  author,
  body: `b${seq}`,
  client_msg_id: `c${seq}`,
  attachment: null,
  created_at: seq,
  edited_at: null,
});

describe('RoomTimeline', () => {
  it('orders by seq whatever the arrival order and counts only new messages', () => {
    const tl = new RoomTimeline('r');
    expect(tl.merge([m(5), m(2), m(9)])).toBe(3);
    expect(tl.merge([m(2), m(7)])).toBe(1);
    expect(tl.messages.map((x) => x.seq)).toEqual([2, 5, 7, 9]);
    expect(tl.lastSeq).toBe(9);
    expect(tl.firstSeq).toBe(2);
  });

  it('edits by replacing the object (memoized views re-render) and keeps maxSeq after deletes', () => {
    const tl = new RoomTimeline('r');
    tl.merge([m(1), m(2)]);
    const before = tl.messages[1];
    tl.edit('m2', 'new', 42);
    expect(tl.messages[1]).not.toBe(before);
    expect(tl.messages[1]).toMatchObject({ body: 'new', edited_at: 42 });
    tl.remove('m2');
    expect(tl.lastSeq).toBe(1);
    expect(tl.maxSeq).toBe(2);
  });
});

describe('firstUrl', () => {
  it('finds the first http(s) URL without trailing punctuation', () => {
    expect(firstUrl('see https://example.test/a?b=1, then http://x.test')).toBe('https://example.test/a?b=1');
    expect(firstUrl('(http://127.0.0.1:8080/page).')).toBe('http://127.0.0.1:8080/page');
    expect(firstUrl('no links here, ftp://nope')).toBeNull();
  });
});
