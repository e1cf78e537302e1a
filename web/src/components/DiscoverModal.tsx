import { useEffect, useState } from 'react';
import {
  Button,
  Flex,
  Input,
  Modal,
  ModalBody,
  ModalCloseButton,
  ModalContent,
  ModalHeader,
  ModalOverlay,
  Spinner,
  Stack,
  Text,
} from '@chakra-ui/react';
import type { Room } from '../generated/protocol';
import { api, ApiError } from '../lib/api';

interface Props {
  isOpen: boolean;
  onClose: () => void;
  onJoined: (room: Room) => void;
}

export function DiscoverModal({ isOpen, onClose, onJoined }: Props) {
  const [q, setQ] = useState('');
  const [rooms, setRooms] = useState<Room[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [joining, setJoining] = useState<string | null>(null);

  useEffect(() => {
    if (!isOpen) return;
    let cancelled = false;
    const t = setTimeout(() => {
      api
        .rooms('discover', q.trim(), undefined, 30)
        .then((page) => {
          if (cancelled) return;
          setRooms(page.rooms);
          setCursor(page.next_cursor);
          setError(null);
        })
        .catch((e) => !cancelled && setError(e instanceof ApiError ? e.message : 'Could not search rooms.'));
    }, 200);
    return () => {
      cancelled = true;
      clearTimeout(t);
    };
  }, [isOpen, q]);

  const more = async () => {
    if (!cursor) return;
    const page = await api.rooms('discover', q.trim(), cursor, 30);
    setRooms((rs) => [...(rs ?? []), ...page.rooms]);
    setCursor(page.next_cursor);
  };

  const join = async (room: Room) => {
    setJoining(room.id);
    try {
      onJoined(await api.joinRoom(room.id));
    } catch (e) {
      setError(e instanceof ApiError ? e.message : 'Could not join.');
    } finally {
      setJoining(null);
    }
  };

  return (
    <Modal isOpen={isOpen} onClose={onClose} scrollBehavior="inside">
      <ModalOverlay />
      <ModalContent mx={3}>
        <ModalHeader>Discover rooms</ModalHeader>
        <ModalCloseButton />
        <ModalBody pb={5}>
          <Input aria-label="Search rooms to join" placeholder="Search rooms" value={q} onChange={(e) => setQ(e.target.value)} mb={3} autoFocus />
          {error && (
            <Text color="red.500" mb={2}>
              {error}
            </Text>
          )}
          {rooms === null ? (
            <Spinner label="Searching" />
          ) : rooms.length === 0 ? (
            <Text color="gray.500">No rooms to join{q ? ' match' : ''}.</Text>
          ) : (
            <Stack as="ul" listStyleType="none" spacing={2} aria-label="Rooms to join">
              {rooms.map((r) => (
                <Flex as="li" key={r.id} align="center" gap={3}>
                  <Text flex={1} noOfLines={1}>
                    # {r.name}{' '}
                    <Text as="span" color="gray.500" fontSize="sm">
                      · {r.member_count} {r.member_count === 1 ? 'member' : 'members'}
                    </Text>
                  </Text>
                  <Button size="sm" colorScheme="brand" aria-label={`Join ${r.name}`} isLoading={joining === r.id} onClick={() => join(r)}>
                    Join
                  </Button>
                </Flex>
              ))}
              {cursor && (
                <Button size="sm" variant="ghost" onClick={more}>
                  More rooms
                </Button>
              )}
            </Stack>
          )}
        </ModalBody>
      </ModalContent>
    </Modal>
  );
}
