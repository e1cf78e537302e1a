import { Badge, Box, Flex, Stack, Text } from '@chakra-ui/react';
import type { Member } from '../generated/protocol';
import { sortMembers } from '../lib/rooms';
import { UserAvatar } from './UserAvatar';

export function MembersList({ members, meId }: { members: Member[]; meId: string }) {
  const online = members.filter((m) => m.online).length;
  return (
    <Box p={3}>
      <Text fontSize="xs" fontWeight="bold" color="fg.muted" textTransform="uppercase" mb={2}>
        Members · {online} online
      </Text>
      <Stack as="ul" listStyleType="none" gap={2} aria-label="Members">
        {sortMembers(members).map((m) => (
          <Flex
            as="li"
            key={m.user.id}
            align="center"
            gap={2}
            opacity={m.online ? 1 : 0.6}
            data-testid="member"
            data-online={m.online}
            data-role={m.role}
            aria-label={`${m.user.username}${m.role === 'member' ? '' : `, ${m.role}`}, ${m.online ? 'online' : 'offline'}`}
          >
            <UserAvatar size="2xs" name={m.user.username} online={m.online} />
            <Text fontSize="sm" lineClamp={1} flex={1}>
              {m.user.username}
              {m.user.id === meId ? ' (you)' : ''}
            </Text>
            {m.role !== 'member' && (
              <Badge size="xs" variant="subtle" colorPalette={m.role === 'owner' ? 'orange' : 'purple'} aria-hidden>
                {m.role}
              </Badge>
            )}
          </Flex>
        ))}
      </Stack>
    </Box>
  );
}
