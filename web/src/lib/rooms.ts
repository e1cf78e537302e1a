// The room list as the sidebar shows it, and who may do what in a room. Framework-free and pure
// (every function returns a new list or the same one when nothing changed), so it is unit-tested.
import type { Member, Room, RoomEvent, RoomRole, ServerFrame } from '../generated/protocol';

type Activity = Extract<ServerFrame, { type: 'activity' }>;

/** What a room is called: its name, or for a direct conversation the other people in it. */
export function roomLabel(r: Pick<Room, 'kind' | 'name' | 'dm_with'>): string {
  if (r.kind !== 'dm') return r.name;
  return (
    r.dm_with
      .map((u) => u.username)
      .sort((a, b) => a.localeCompare(b))
      .join(', ') || 'Only you'
  );
}

/** The heading of a room: `# name`, or the people of a direct conversation. */
export function roomTitle(r: Pick<Room, 'kind' | 'name' | 'dm_with'>): string {
  return r.kind === 'dm' ? roomLabel(r) : `# ${r.name}`;
}

/** Rooms and direct conversations apart, each sorted by what the sidebar shows. */
export function splitRooms(rooms: Room[]): { rooms: Room[]; dms: Room[] } {
  const byLabel = (a: Room, b: Room) => roomLabel(a).localeCompare(roomLabel(b));
  return {
    rooms: rooms.filter((r) => r.kind !== 'dm').sort(byLabel),
    // Conversations with something new first, then the most recently active.
    dms: rooms.filter((r) => r.kind === 'dm').sort((a, b) => b.last_seq - a.last_seq || byLabel(a, b)),
  };
}

/**
 * A new message somewhere: its room's unread count becomes the server's, and a mention of the
 * user adds one to the room's mentions, unless the user is reading that room (`reading`). An
 * activity no newer than the room's `last_seq` is already counted in the list (it was loaded
 * after) or a duplicate: ignored. Returns null for a room not in the list (reload it).
 */
export function applyActivity(rooms: Room[], f: Activity, reading: boolean): Room[] | null {
  const r = rooms.find((x) => x.id === f.room);
  if (!r) return null;
  if (f.seq <= r.last_seq) return rooms;
  const next: Room = {
    ...r,
    last_seq: f.seq,
    unread: reading ? 0 : f.unread,
    mentions: reading ? 0 : r.mentions + (f.mention ? 1 : 0),
  };
  return rooms.map((x) => (x === r ? next : x));
}

/** The user read a room up to `seq`: nothing unread, no mention left. */
export function markRoomRead(rooms: Room[], id: string, seq?: number): Room[] {
  const r = rooms.find((x) => x.id === id);
  if (!r || (r.unread === 0 && r.mentions === 0 && (seq === undefined || r.last_read_seq >= seq))) return rooms;
  const next = { ...r, unread: 0, mentions: 0, last_read_seq: Math.max(r.last_read_seq, seq ?? 0) };
  return rooms.map((x) => (x === r ? next : x));
}

/**
 * A log entry that changes how a room is listed: its name and topic (`room_updated`), the user's
 * own role (`role_changed`). Each sets a value, so a replayed entry is harmless.
 */
export function applyRoomEntry(rooms: Room[], e: RoomEvent, meId: string): Room[] {
  const r = rooms.find((x) => x.id === e.room);
  if (!r) return rooms;
  let next: Room = r;
  if (e.type === 'room_updated') {
    if (r.name !== e.name || r.topic !== e.topic) next = { ...r, name: e.name, topic: e.topic };
  } else if (e.type === 'role_changed' && e.user.id === meId) {
    if (r.role !== e.role) next = { ...r, role: e.role };
  }
  return next === r ? rooms : rooms.map((x) => (x === r ? next : x));
}

/** The room is no longer one of the user's (removed, banned, left): gone from the list at once. */
export function withoutRoom(rooms: Room[], id: string): Room[] {
  return rooms.some((r) => r.id === id) ? rooms.filter((r) => r.id !== id) : rooms;
}

// ---- who may do what ----------------------------------------------------------------------------

const MANAGERS: ReadonlySet<RoomRole | null> = new Set<RoomRole | null>(['owner', 'admin']);

/** Renaming and changing the topic: owners and admins of a room (a direct conversation has none). */
export function canEditRoom(r: Pick<Room, 'kind' | 'role'>): boolean {
  return r.kind !== 'dm' && MANAGERS.has(r.role);
}

/** Adding people, and seeing and lifting bans. */
export function canManageMembers(r: Pick<Room, 'kind' | 'role'>): boolean {
  return r.kind !== 'dm' && MANAGERS.has(r.role);
}

/** Pinning: any member of a public room or a direct conversation; owners and admins elsewhere. */
export function canPin(r: Pick<Room, 'kind' | 'visibility' | 'role'>): boolean {
  if (r.kind === 'dm' || r.visibility === 'public') return r.role !== null;
  return MANAGERS.has(r.role);
}

/** Whether the user can leave (a direct conversation cannot be left). */
export function canLeave(r: Pick<Room, 'kind'>): boolean {
  return r.kind !== 'dm';
}

export interface MemberActions {
  /** The roles the member can be given (besides owner; see `handOver`). */
  roles: RoomRole[];
  /** Make them the owner (the user becomes an admin). */
  handOver: boolean;
  remove: boolean;
  ban: boolean;
}

const NONE: MemberActions = { roles: [], handOver: false, remove: false, ban: false };

/**
 * What the user may do to a member: the owner changes roles, hands over and removes or bans
 * anyone else; an admin removes or bans plain members; nobody acts on themself (they leave) and
 * nothing changes the members of a direct conversation.
 */
export function memberActions(r: Pick<Room, 'kind' | 'role'>, target: Member, meId: string): MemberActions {
  if (r.kind === 'dm' || target.user.id === meId) return NONE;
  if (r.role === 'owner') {
    return {
      roles: (['admin', 'member'] as RoomRole[]).filter((x) => x !== target.role),
      handOver: true,
      remove: true,
      ban: true,
    };
  }
  if (r.role === 'admin' && target.role === 'member') return { ...NONE, remove: true, ban: true };
  return NONE;
}

/** Members in the order a list shows them: owner, admins, then members; online first within each. */
export function sortMembers<T extends Pick<Member, 'role' | 'online' | 'user'>>(members: T[]): T[] {
  const rank: Record<RoomRole, number> = { owner: 0, admin: 1, member: 2 };
  return [...members].sort(
    (a, b) =>
      rank[a.role] - rank[b.role] ||
      Number(b.online) - Number(a.online) ||
      a.user.username.localeCompare(b.user.username),
  );
}

/**
 * A membership entry applied to a members list: added (or back), removed, role changed. Each
 * sets a state, so replaying one changes nothing.
 */
export function applyMemberEntry(members: Member[], e: RoomEvent, now = Date.now()): Member[] {
  if (e.type === 'member_added') {
    const at = members.findIndex((m) => m.user.id === e.user.id);
    if (at >= 0) return members[at].role === e.role ? members : members.map((m, i) => (i === at ? { ...m, role: e.role } : m));
    return [...members, { user: e.user, role: e.role, online: false, joined_at: now }];
  }
  if (e.type === 'member_removed') {
    return members.some((m) => m.user.id === e.user.id) ? members.filter((m) => m.user.id !== e.user.id) : members;
  }
  if (e.type === 'role_changed') {
    const at = members.findIndex((m) => m.user.id === e.user.id);
    if (at < 0 || members[at].role === e.role) return members;
    return members.map((m, i) => (i === at ? { ...m, role: e.role } : m));
  }
  return members;
}
