import { Flex, Text } from '@chakra-ui/react';
import type { RoomRole, UserPublic } from '../generated/protocol';
import type { RoomNotice } from '../lib/timeline';

const ROLE: Record<RoomRole, string> = { owner: 'the owner', admin: 'an admin', member: 'a member' };

/** What a membership or room change says, from the user's point of view ("you", not their name). */
export function noticeText(n: RoomNotice, meId: string): string {
  const who = (u: UserPublic) => (u.id === meId ? 'you' : u.username);
  const by = who(n.by);
  const By = by === 'you' ? 'You' : by;
  switch (n.type) {
    case 'member_added':
      if (n.user.id === n.by.id) return `${By} joined`;
      return `${By} added ${who(n.user)}${n.role === 'member' ? '' : ` as ${ROLE[n.role]}`}`;
    case 'member_removed':
      if (n.user.id === n.by.id) return `${By} left`;
      return `${By} ${n.banned ? 'banned' : 'removed'} ${who(n.user)}`;
    case 'role_changed':
      return `${By} made ${who(n.user)} ${ROLE[n.role]}`;
    case 'room_updated':
      return n.topic ? `${By} updated the room: #${n.name}, topic “${n.topic}”` : `${By} updated the room: #${n.name}, no topic`;
  }
}

/** A small line between the messages for a change to the room itself. */
export function NoticeLine({ notice, meId }: { notice: RoomNotice; meId: string }) {
  return (
    <Flex justify="center" px={4} py={1} data-testid="notice" data-type={notice.type} data-seq={notice.seq}>
      <Text fontSize="xs" color="fg.muted" textAlign="center">
        {noticeText(notice, meId)}
      </Text>
    </Flex>
  );
}
