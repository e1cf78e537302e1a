// The room list (unread and mention badges, entries that rename or re-role), permissions,
// "seen by" and @mentions: the pure helpers behind the sidebar, the menus and the composer.
import { describe, expect, it } from 'vitest';
import type { Member, Room, RoomEvent, ServerFrame } from '../src/generated/protocol';
import {
  applyActivity,
  applyMemberEntry,
  applyRoomEntry,
  canEditRoom,
  canPin,
  markRoomRead,
  memberActions,
  roomLabel,
  splitRooms,
  withoutRoom,
} from '../src/lib/rooms';
import { moveReceipt, receiptsFrom, seenBy, type Receipts } from '../src/lib/receipts';
import { completeMention, matchPeople, mentionQuery, splitMentions } from '../src/lib/mentions';

const ann = { id: 'ann', username: 'ann' };
const ben = { id: 'ben', username: 'ben' };
const cat = { id: 'cat', username: 'cat' };

function room(id: string, extra: Partial<Room> = {}): Room {
  return {
    id,
    name: id,
    kind: 'room',
    visibility: 'public',
    topic: null,
    role: 'member',
    dm_with: [],
    created_by: 'ann',
    created_at: 1,
    member_count: 2,
    joined: true,
    last_seq: 10,
    last_read_seq: 10,
    unread: 0,
    mentions: 0,
    ...extra,
  };
}
const activity = (r: string, seq: number, unread: number, mention = false): Extract<ServerFrame, { type: 'activity' }> => ({
  type: 'activity',
  room: r,
  seq,
  unread,
  author: ben,
  mention,
});

describe('room list', () => {
  it('counts mentions apart from unread messages, once per message, and clears both when read', () => {
    let rooms = [room('a'), room('b', { unread: 3, mentions: 1, last_seq: 20 })];
    rooms = applyActivity(rooms, activity('a', 11, 1), false)!;
    rooms = applyActivity(rooms, activity('a', 12, 2, true), false)!;
    rooms = applyActivity(rooms, activity('a', 12, 2, true), false)!; // the same activity again
    rooms = applyActivity(rooms, activity('b', 19, 3, true), false)!; // already in the list it was loaded with
    rooms = applyActivity(rooms, activity('b', 21, 4, true), false)!;
    expect(rooms.map((r) => [r.id, r.unread, r.mentions])).toEqual([
      ['a', 2, 1],
      ['b', 4, 2],
    ]);
    // The room being read counts nothing.
    rooms = applyActivity(rooms, activity('a', 13, 3, true), true)!;
    expect(rooms[0]).toMatchObject({ unread: 0, mentions: 0 });
    rooms = markRoomRead(rooms, 'b', 21);
    expect(rooms[1]).toMatchObject({ unread: 0, mentions: 0, last_read_seq: 21 });
    expect(markRoomRead(rooms, 'b', 21)).toBe(rooms);
    expect(applyActivity(rooms, activity('zzz', 1, 1), false)).toBeNull();
  });

  it('splits rooms from direct conversations, names conversations after the others, and drops a room at once', () => {
    const dm = room('d1', { kind: 'dm', name: '', dm_with: [ben, cat], visibility: 'private', last_seq: 50 });
    const dm2 = room('d2', { kind: 'dm', name: '', dm_with: [cat], visibility: 'private', last_seq: 60 });
    const { rooms, dms } = splitRooms([room('zeta'), dm, room('alpha'), dm2]);
    expect(rooms.map((r) => r.id)).toEqual(['alpha', 'zeta']);
    expect(dms.map(roomLabel)).toEqual(['cat', 'ben, cat']);
    expect(withoutRoom([dm, dm2], 'd1').map((r) => r.id)).toEqual(['d2']);
  });

  it('applies renames and the user’s own role changes; replays change nothing', () => {
    const rooms = [room('a', { role: 'admin' })];
    const renamed = applyRoomEntry(rooms, { type: 'room_updated', room: 'a', seq: 11, name: 'new', topic: 't', by: ben }, 'ann');
    expect(renamed[0]).toMatchObject({ name: 'new', topic: 't' });
    expect(applyRoomEntry(renamed, { type: 'room_updated', room: 'a', seq: 11, name: 'new', topic: 't', by: ben }, 'ann')).toBe(renamed);
    const mine = applyRoomEntry(renamed, { type: 'role_changed', room: 'a', seq: 12, user: ann, role: 'owner', by: ben }, 'ann');
    expect(mine[0].role).toBe('owner');
    expect(applyRoomEntry(mine, { type: 'role_changed', room: 'a', seq: 13, user: ben, role: 'admin', by: ann }, 'ann')).toBe(mine);
  });

  it('applies membership entries to a members list as states', () => {
    const members: Member[] = [{ user: ann, role: 'owner', online: true, joined_at: 1 }];
    const added: RoomEvent = { type: 'member_added', room: 'a', seq: 2, user: ben, role: 'member', by: ann };
    let list = applyMemberEntry(members, added, 5);
    expect(applyMemberEntry(list, added, 6)).toBe(list);
    list = applyMemberEntry(list, { type: 'role_changed', room: 'a', seq: 3, user: ben, role: 'admin', by: ann });
    expect(list.map((m) => `${m.user.username}:${m.role}`)).toEqual(['ann:owner', 'ben:admin']);
    list = applyMemberEntry(list, { type: 'member_removed', room: 'a', seq: 4, user: ben, by: ann, banned: false });
    expect(list.map((m) => m.user.id)).toEqual(['ann']);
  });
});

describe('permissions', () => {
  const member = (user = ben, role: Member['role'] = 'member'): Member => ({ user, role, online: true, joined_at: 1 });
  it('the owner manages everyone else; an admin only plain members; a member nobody; nobody in a DM', () => {
    const owner = room('a', { role: 'owner' });
    expect(memberActions(owner, member(ben, 'admin'), 'ann')).toEqual({ roles: ['member'], handOver: true, remove: true, ban: true });
    expect(memberActions(owner, member(ann, 'owner'), 'ann').remove).toBe(false); // themself: they leave
    const admin = room('a', { role: 'admin' });
    expect(memberActions(admin, member(ben), 'ann')).toEqual({ roles: [], handOver: false, remove: true, ban: true });
    expect(memberActions(admin, member(cat, 'admin'), 'ann').remove).toBe(false);
    expect(memberActions(admin, member(cat, 'owner'), 'ann').ban).toBe(false);
    expect(memberActions(room('a'), member(ben), 'ann').remove).toBe(false);
    expect(memberActions(room('d', { kind: 'dm', role: 'owner' }), member(ben), 'ann').remove).toBe(false);
  });
  it('pins: anyone in public rooms and DMs, owners and admins in private rooms; editing: owners and admins', () => {
    expect(canPin(room('a'))).toBe(true);
    expect(canPin(room('a', { visibility: 'private' }))).toBe(false);
    expect(canPin(room('a', { visibility: 'private', role: 'admin' }))).toBe(true);
    expect(canPin(room('d', { kind: 'dm', visibility: 'private' }))).toBe(true);
    expect(canEditRoom(room('a'))).toBe(false);
    expect(canEditRoom(room('a', { role: 'admin' }))).toBe(true);
    expect(canEditRoom(room('d', { kind: 'dm', role: 'owner' }))).toBe(false);
  });
});

describe('seen by', () => {
  const msgs = [1, 2, 3, 4, 5].map((seq) => ({ id: `m${seq}`, seq, author: seq === 5 ? cat : ann }));
  it('puts each other reader under the newest message they read, among the latest ones only', () => {
    let receipts: Receipts = receiptsFrom([
      { user: ann, seq: 5 }, // me
      { user: ben, seq: 3 },
      { user: cat, seq: 5 }, // under their own message: nothing to say
    ]);
    expect([...seenBy(msgs, receipts, 'ann')].map(([id, us]) => [id, us.map((u) => u.username)])).toEqual([['m3', ['ben']]]);
    // Markers only move forward; a gap in seqs (reactions, edits) lands on the message before.
    expect(moveReceipt(receipts, ben, 2)).toBe(receipts);
    receipts = moveReceipt(receipts, ben, 4);
    receipts = moveReceipt(receipts, { id: 'dan', username: 'dan' }, 4);
    expect(seenBy(msgs, receipts, 'ann').get('m4')?.map((u) => u.username)).toEqual(['ben', 'dan']);
    expect(seenBy(msgs, receipts, 'ann', 1).size).toBe(0);
  });
});

describe('@mentions', () => {
  it('finds the mention being typed, not an email address', () => {
    expect(mentionQuery('hi @be', 6)).toEqual({ start: 3, query: 'be' });
    expect(mentionQuery('@', 1)).toEqual({ start: 0, query: '' });
    expect(mentionQuery('mail ann@example', 16)).toBeNull();
    expect(mentionQuery('hi @ben and', 11)).toBeNull();
  });
  it('completes it and suggests people by prefix', () => {
    expect(completeMention('hi @be', { start: 3, query: 'be' }, 'ben')).toEqual({ text: 'hi @ben ', caret: 8 });
    expect(completeMention('hi @be there', { start: 3, query: 'be' }, 'ben')).toEqual({ text: 'hi @ben there', caret: 8 });
    const people = [ann, ben, { id: 'bea', username: 'Beatrice' }, cat];
    expect(matchPeople(people, 'BE', 'ann').map((u) => u.username)).toEqual(['ben', 'Beatrice']);
  });
  it('splits text into mentions of the given names only', () => {
    expect(splitMentions('@ben: ask @cat or @nobody, not mail@ben.test', new Set(['ben', 'cat']))).toEqual([
      { text: '@ben', mention: 'ben' },
      { text: ': ask ' },
      { text: '@cat', mention: 'cat' },
      { text: ' or @nobody, not mail@ben.test' },
    ]);
  });
});
