import { useEffect, useState } from 'react';
import { Box, Button, CloseButton, Drawer, Flex, Portal, Spinner, Stack, Text } from '@chakra-ui/react';
import type { Pin, Room } from '../generated/protocol';
import { api, ApiError } from '../lib/api';
import { roomTitle } from '../lib/rooms';
import { excerptOf } from '../lib/timeline';

interface Props {
  open: boolean;
  onClose: () => void;
  room: Room;
  /** Changes with every pin or unpin entry of the room: the list is read again. */
  version: number;
  canPin: boolean;
  onJump: (seq: number) => void;
  onUnpin: (id: string) => void;
}

/** The room's pinned messages, newest pin first, each with a jump to it. */
export function PinsPanel({ open, onClose, room, version, canPin, onJump, onUnpin }: Props) {
  const [pins, setPins] = useState<Pin[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    if (!open) return;
    let live = true;
    api
      .pins(room.id)
      .then((p) => {
        if (!live) return;
        setPins(p);
        setError(null);
      })
      .catch((e: unknown) => live && setError(e instanceof ApiError ? e.message : 'Could not load the pins.'));
    return () => {
      live = false;
    };
  }, [open, room.id, version]);

  return (
    <Drawer.Root open={open} onOpenChange={(e) => !e.open && onClose()} placement="end" lazyMount unmountOnExit>
      <Portal>
        <Drawer.Backdrop />
        <Drawer.Positioner>
          <Drawer.Content maxW="380px" data-testid="pins-panel">
            <Drawer.Header>
              <Drawer.Title>Pinned in {roomTitle(room)}</Drawer.Title>
            </Drawer.Header>
            <Drawer.Body>
              {error && (
                <Text color="fg.error" role="alert" mb={2}>
                  {error}
                </Text>
              )}
              {pins === null ? (
                !error && <Spinner color="brand.solid" role="status" aria-label="Loading pins" />
              ) : pins.length === 0 ? (
                <Text color="fg.muted">Nothing is pinned yet. Pin a message from its menu.</Text>
              ) : (
                <Stack as="ul" listStyleType="none" gap={3} aria-label="Pinned messages">
                  {pins.map((p) => (
                    <Box as="li" key={p.message.id} borderWidth="1px" borderRadius="md" p={3} data-testid="pin">
                      <Flex align="baseline" gap={2}>
                        <Text fontWeight="bold" fontSize="sm">
                          {p.message.author.username}
                        </Text>
                        <Text fontSize="xs" color="fg.muted">
                          {new Date(p.message.created_at).toLocaleString([], { dateStyle: 'short', timeStyle: 'short' })}
                        </Text>
                      </Flex>
                      <Text fontSize="sm" lineClamp={3} data-testid="pin-text">
                        {excerptOf(p.message.body) || p.message.attachment?.name || ''}
                      </Text>
                      <Text fontSize="xs" color="fg.muted" mt={1}>
                        Pinned by {p.by.username}
                      </Text>
                      <Flex gap={2} mt={2}>
                        <Button size="xs" variant="subtle" onClick={() => onJump(p.message.seq)}>
                          Jump to message
                        </Button>
                        {canPin && (
                          <Button
                            size="xs"
                            variant="ghost"
                            aria-label={`Unpin the message by ${p.message.author.username}`}
                            onClick={() => onUnpin(p.message.id)}
                          >
                            Unpin
                          </Button>
                        )}
                      </Flex>
                    </Box>
                  ))}
                </Stack>
              )}
            </Drawer.Body>
            <Drawer.CloseTrigger asChild>
              <CloseButton size="sm" aria-label="Close pins" />
            </Drawer.CloseTrigger>
          </Drawer.Content>
        </Drawer.Positioner>
      </Portal>
    </Drawer.Root>
  );
}
