import { useState } from 'react';
import { Badge, Box, Button, Flex, Input, InputGroup, Stack, Text, useDisclosure } from '@chakra-ui/react';
import type { Room } from '../generated/protocol';
import { CompassIcon, PlusIcon, SearchIcon } from './icons';
import { CreateRoomDialog } from './CreateRoomDialog';
import { DiscoverDialog } from './DiscoverDialog';

interface Props {
  rooms: Room[];
  currentId: string | null;
  onSelect: (id: string) => void;
  onJoined: (room: Room) => void;
}

export function Sidebar({ rooms, currentId, onSelect, onJoined }: Props) {
  const [filter, setFilter] = useState('');
  const create = useDisclosure();
  const discover = useDisclosure();
  const shown = rooms
    .filter((r) => r.name.toLowerCase().includes(filter.trim().toLowerCase()))
    .sort((a, b) => a.name.localeCompare(b.name));

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
        <Text px={2} py={1} fontSize="xs" fontWeight="bold" color="fg.muted" textTransform="uppercase">
          Your rooms
        </Text>
        {shown.length === 0 && (
          <Text px={2} py={2} fontSize="sm" color="fg.muted">
            {rooms.length ? 'No room matches.' : 'You are in no room yet.'}
          </Text>
        )}
        <Stack as="ul" listStyleType="none" gap={0.5} aria-label="Your rooms">
          {shown.map((r) => {
            const isCurrent = r.id === currentId;
            const unread = isCurrent ? 0 : r.unread;
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
                    data-room-name={r.name}
                    onClick={() => onSelect(r.id)}
                  >
                    <Text flex={1} lineClamp={1} fontWeight={unread > 0 ? 'bold' : 'normal'}>
                      # {r.name}
                    </Text>
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
    </Flex>
  );
}
