import { useEffect, useRef, useState } from 'react';
import { Button, CloseButton, Dialog, Flex, Input, Portal, Spinner, Stack, Text } from '@chakra-ui/react';
import type { Room } from '../generated/protocol';
import { api, ApiError } from '../lib/api';

interface Props {
  open: boolean;
  onClose: () => void;
  onJoined: (room: Room) => void;
}

export function DiscoverDialog({ open, onClose, onJoined }: Props) {
  const [q, setQ] = useState('');
  const [rooms, setRooms] = useState<Room[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [joining, setJoining] = useState<string | null>(null);
  const input = useRef<HTMLInputElement>(null);

  useEffect(() => {
    if (!open) return;
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
  }, [open, q]);

  const more = async () => {
    if (!cursor) return;
    try {
      const page = await api.rooms('discover', q.trim(), cursor, 30);
      setRooms((rs) => [...(rs ?? []), ...page.rooms]);
      setCursor(page.next_cursor);
    } catch (e) {
      setError(e instanceof ApiError ? e.message : 'Could not load more rooms.');
    }
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
    <Dialog.Root
      open={open}
      onOpenChange={(e) => !e.open && onClose()}
      initialFocusEl={() => input.current}
      scrollBehavior="inside"
      lazyMount
      unmountOnExit
    >
      <Portal>
        <Dialog.Backdrop />
        <Dialog.Positioner px={3}>
          <Dialog.Content>
            <Dialog.Header>
              <Dialog.Title>Discover rooms</Dialog.Title>
            </Dialog.Header>
            <Dialog.Body>
              <Input
                ref={input}
                aria-label="Search rooms to join"
                placeholder="Search rooms"
                value={q}
                onChange={(e) => setQ(e.target.value)}
                mb={3}
              />
              {error && (
                <Text color="fg.error" mb={2} role="alert">
                  {error}
                </Text>
              )}
              {rooms === null ? (
                <Spinner color="brand.solid" role="status" aria-label="Searching" />
              ) : rooms.length === 0 ? (
                <Text color="fg.muted">No rooms to join{q ? ' match' : ''}.</Text>
              ) : (
                <Stack gap={2}>
                  <Stack as="ul" listStyleType="none" gap={2} aria-label="Rooms to join">
                    {rooms.map((r) => (
                      <Flex as="li" key={r.id} align="center" gap={3}>
                        <Text flex={1} lineClamp={1} textStyle="md">
                          # {r.name}{' '}
                          <Text as="span" color="fg.muted" textStyle="sm">
                            · {r.member_count} {r.member_count === 1 ? 'member' : 'members'}
                          </Text>
                        </Text>
                        <Button
                          size="sm"
                          colorPalette="brand"
                          aria-label={`Join ${r.name}`}
                          loading={joining === r.id}
                          onClick={() => join(r)}
                        >
                          Join
                        </Button>
                      </Flex>
                    ))}
                  </Stack>
                  {cursor && (
                    <Button size="sm" variant="ghost" onClick={more}>
                      More rooms
                    </Button>
                  )}
                </Stack>
              )}
            </Dialog.Body>
            <Dialog.CloseTrigger asChild>
              <CloseButton size="sm" />
            </Dialog.CloseTrigger>
          </Dialog.Content>
        </Dialog.Positioner>
      </Portal>
    </Dialog.Root>
  );
}
