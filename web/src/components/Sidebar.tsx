import { useState } from 'react';
import { Badge, Box, Button, Flex, IconButton, Input, InputGroup, Stack, Text, useDisclosure } from '@chakra-ui/react';
import type { Me, Room } from '../generated/protocol';
import { roomLabel, splitRooms } from '../lib/rooms';
import { CompassIcon, LockIcon, PlusIcon, SearchIcon } from './icons';
import { CreateRoomDialog } from './CreateRoomDialog';
import { DiscoverDialog } from './DiscoverDialog';
import { NewConversationDialog } from './NewConversationDialog';
import { MutedMark } from './MutedRooms';
import { Tooltip } from './ui/tooltip';

interface Props {
  me: Me;
  rooms: Room[];
  currentId: string | null;
  onSelect: (id: string) => void;
  onJoined: (room: Room) => void;
}

export function Sidebar({ me, rooms, currentId, onSelect, onJoined }: Props) {
  const [filter, setFilter] = useState('');
  const create = useDisclosure();
  const discover = useDisclosure();
  const converse = useDisclosure();
  const f = filter.trim().toLowerCase();
  const split = splitRooms(rooms.filter((r) => roomLabel(r).toLowerCase().includes(f)));
  const all = splitRooms(rooms);

  return (
    <Flex direction="column" w="100%" minH={0}>
      <Stack p={3} gap={2}>
        <InputGroup startElement={<SearchIcon color="fg.subtle" boxSize={4} />}>
          <Input
            size="sm"
            aria-label="Search your rooms"
            placeholder="Search your rooms"
            value={filter}
            onChange={(e) => setFilter(e.target.value)}
          />
        </InputGroup>
        <Flex gap={2}>
          <Button size="sm" variant="subtle" flex={1} onClick={create.onOpen}>
            <PlusIcon /> New room
          </Button>
          <Button size="sm" variant="subtle" flex={1} onClick={discover.onOpen}>
            <CompassIcon /> Discover
          </Button>
        </Flex>
      </Stack>
      <Box flex={1} overflowY="auto" px={2} pb={3}>
        <SectionHeading>Your rooms</SectionHeading>
        {split.rooms.length === 0 && (
          <Text px={2} py={2} fontSize="sm" color="fg.muted">
            {all.rooms.length ? 'No room matches.' : 'You are in no room yet.'}
          </Text>
        )}
        <RoomList label="Your rooms" rooms={split.rooms} currentId={currentId} onSelect={onSelect} />
        <Flex align="center" mt={3} pe={1}>
          <SectionHeading>Direct messages</SectionHeading>
          <Box flex={1} />
          <Tooltip content="New conversation">
            <IconButton aria-label="New conversation" size="2xs" variant="ghost" onClick={converse.onOpen}>
              <PlusIcon />
            </IconButton>
          </Tooltip>
        </Flex>
        {split.dms.length === 0 && (
          <Text px={2} py={2} fontSize="sm" color="fg.muted">
            {all.dms.length ? 'No conversation matches.' : 'No conversations yet.'}
          </Text>
        )}
        <RoomList label="Direct messages" rooms={split.dms} currentId={currentId} onSelect={onSelect} />
      </Box>
      <CreateRoomDialog
        open={create.open}
        onClose={create.onClose}
        onCreated={(room) => {
          create.onClose();
          onJoined(room);
        }}
      />
      <DiscoverDialog
        open={discover.open}
        onClose={discover.onClose}
        onJoined={(room) => {
          discover.onClose();
          onJoined(room);
        }}
      />
      <NewConversationDialog
        me={me}
        open={converse.open}
        onClose={converse.onClose}
        onCreated={(room) => {
          converse.onClose();
          onJoined(room);
        }}
      />
    </Flex>
  );
}

function SectionHeading({ children }: { children: string }) {
  return (
    <Text px={2} py={1} fontSize="xs" fontWeight="bold" color="fg.muted" textTransform="uppercase">
      {children}
    </Text>
  );
}

function RoomList({
  label,
  rooms,
  currentId,
  onSelect,
}: {
  label: string;
  rooms: Room[];
  currentId: string | null;
  onSelect: (id: string) => void;
}) {
  return (
    <Stack as="ul" listStyleType="none" gap={0.5} aria-label={label}>
      {rooms.map((r) => {
        const isCurrent = r.id === currentId;
        const unread = isCurrent ? 0 : r.unread;
        const mentions = isCurrent ? 0 : r.mentions;
        const name = roomLabel(r);
        return (
          <li key={r.id}>
            <Flex
              asChild
              w="100%"
              align="center"
              gap={2}
              px={3}
              py={2}
              borderRadius="md"
              textAlign="start"
              cursor="pointer"
              colorPalette="brand"
              bg={isCurrent ? 'colorPalette.subtle' : undefined}
              _hover={{ bg: isCurrent ? 'colorPalette.subtle' : 'bg.muted' }}
              focusVisibleRing="inside"
            >
              <button
                type="button"
                aria-current={isCurrent ? 'page' : undefined}
                data-testid="room-link"
                data-room-name={name}
                data-kind={r.kind}
                onClick={() => onSelect(r.id)}
              >
                <Text flex={1} lineClamp={1} fontWeight={unread > 0 ? 'bold' : 'normal'}>
                  {r.kind === 'dm' ? name : `# ${name}`}
                </Text>
                {r.kind !== 'dm' && r.visibility === 'private' && (
                  <Box as="span" role="img" aria-label="private" display="inline-flex">
                    <LockIcon boxSize={3} color="fg.subtle" />
                  </Box>
                )}
                <MutedMark room={r.id} />
                {mentions > 0 && (
                  <Badge
                    colorPalette="orange"
                    variant="solid"
                    borderRadius="full"
                    px={1.5}
                    data-testid="mention-badge"
                    aria-label={`${mentions} ${mentions === 1 ? 'mention' : 'mentions'}`}
                  >
                    @{mentions > 99 ? '99+' : mentions}
                  </Badge>
                )}
                {unread > 0 && (
                  <Badge
                    colorPalette="red"
                    variant="solid"
                    borderRadius="full"
                    px={2}
                    data-testid="unread-badge"
                    aria-label={`${unread} unread`}
                  >
                    {unread > 99 ? '99+' : unread}
                  </Badge>
                )}
              </button>
            </Flex>
          </li>
        );
      })}
    </Stack>
  );
}
