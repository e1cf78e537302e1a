import { useState } from 'react';
import {
  Badge,
  Box,
  Button,
  Flex,
  Input,
  InputGroup,
  InputLeftElement,
  Stack,
  Text,
  useColorModeValue,
  useDisclosure,
} from '@chakra-ui/react';
import type { Room } from '../generated/protocol';
import { CompassIcon, PlusIcon, SearchIcon } from './icons';
import { CreateRoomModal } from './CreateRoomModal';
import { DiscoverModal } from './DiscoverModal';

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
  const active = useColorModeValue('brand.50', 'whiteAlpha.200');
  const hover = useColorModeValue('gray.100', 'whiteAlpha.100');
  const shown = rooms
    .filter((r) => r.name.toLowerCase().includes(filter.trim().toLowerCase()))
    .sort((a, b) => a.name.localeCompare(b.name));

  return (
    <Flex direction="column" w="100%" minH={0}>
      <Stack p={3} spacing={2}>
        <InputGroup size="sm">
          <InputLeftElement pointerEvents="none">
            <SearchIcon color="gray.400" />
          </InputLeftElement>
          <Input
            aria-label="Search your rooms"
            placeholder="Search your rooms"
            value={filter}
            onChange={(e) => setFilter(e.target.value)}
            borderRadius="md"
          />
        </InputGroup>
        <Flex gap={2}>
          <Button size="sm" flex={1} leftIcon={<PlusIcon />} onClick={create.onOpen}>
            New room
          </Button>
          <Button size="sm" flex={1} leftIcon={<CompassIcon />} onClick={discover.onOpen}>
            Discover
          </Button>
        </Flex>
      </Stack>
      <Box flex={1} overflowY="auto" px={2} pb={3}>
        <Text px={2} py={1} fontSize="xs" fontWeight="bold" color="gray.500" textTransform="uppercase">
          Your rooms
        </Text>
        {shown.length === 0 && (
          <Text px={2} py={2} fontSize="sm" color="gray.500">
            {rooms.length ? 'No room matches.' : 'You are in no room yet.'}
          </Text>
        )}
        <Stack as="ul" listStyleType="none" spacing={0.5} aria-label="Your rooms">
          {shown.map((r) => {
            const isCurrent = r.id === currentId;
            const unread = isCurrent ? 0 : r.unread;
            return (
              <Box as="li" key={r.id}>
                <Flex
                  as="button"
                  type="button"
                  w="100%"
                  align="center"
                  px={3}
                  py={2}
                  borderRadius="md"
                  textAlign="left"
                  bg={isCurrent ? active : undefined}
                  _hover={{ bg: isCurrent ? active : hover }}
                  aria-current={isCurrent ? 'page' : undefined}
                  data-testid="room-link"
                  data-room-name={r.name}
                  onClick={() => onSelect(r.id)}
                >
                  <Text flex={1} noOfLines={1} fontWeight={unread > 0 ? 'bold' : 'normal'}>
                    # {r.name}
                  </Text>
                  {unread > 0 && (
                    <Badge
                      colorScheme="red"
                      variant="solid"
                      borderRadius="full"
                      px={2}
                      data-testid="unread-badge"
                      aria-label={`${unread} unread`}
                    >
                      {unread > 99 ? '99+' : unread}
                    </Badge>
                  )}
                </Flex>
              </Box>
            );
          })}
        </Stack>
      </Box>
      <CreateRoomModal
        isOpen={create.isOpen}
        onClose={create.onClose}
        onCreated={(room) => {
          create.onClose();
          onJoined(room);
        }}
      />
      <DiscoverModal
        isOpen={discover.isOpen}
        onClose={discover.onClose}
        onJoined={(room) => {
          discover.onClose();
          onJoined(room);
        }}
      />
    </Flex>
  );
}
