import { useState } from 'react';
import { Button, Checkbox, CloseButton, Dialog, Flex, Portal, Stack, Tag, Text } from '@chakra-ui/react';
import type { Me, Room, UserPublic } from '../generated/protocol';
import { api, ApiError } from '../lib/api';
import { UserSearch } from './UserSearch';

/** How many other people a direct conversation can have. */
export const MAX_DM_PEOPLE = 8;

interface Props {
  me: Me;
  open: boolean;
  onClose: () => void;
  onCreated: (room: Room) => void;
}

/** Picks 1 to 8 people and opens the conversation with them (the same one for the same people). */
export function NewConversationDialog({ me, open, onClose, onCreated }: Props) {
  const [picked, setPicked] = useState<UserPublic[]>([]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const has = (u: UserPublic) => picked.some((p) => p.id === u.id);
  const toggle = (u: UserPublic, on: boolean) =>
    setPicked((ps) => (on ? (ps.length < MAX_DM_PEOPLE && !ps.some((p) => p.id === u.id) ? [...ps, u] : ps) : ps.filter((p) => p.id !== u.id)));
  const full = picked.length >= MAX_DM_PEOPLE;

  const start = async () => {
    setBusy(true);
    setError(null);
    try {
      const room = await api.createDm(picked.map((p) => p.id));
      setPicked([]);
      onCreated(room);
    } catch (e) {
      setError(e instanceof ApiError ? e.message : 'Could not start the conversation.');
    } finally {
      setBusy(false);
    }
  };

  return (
    <Dialog.Root open={open} onOpenChange={(e) => !e.open && onClose()} scrollBehavior="inside" lazyMount unmountOnExit>
      <Portal>
        <Dialog.Backdrop />
        <Dialog.Positioner px={3}>
          <Dialog.Content>
            <Dialog.Header>
              <Dialog.Title>New conversation</Dialog.Title>
            </Dialog.Header>
            <Dialog.Body>
              <Stack gap={3}>
                <Text fontSize="sm" color="fg.muted">
                  Pick up to {MAX_DM_PEOPLE} people.
                </Text>
                <Flex gap={1} wrap="wrap" minH="24px" aria-label="People picked" role="group" aria-live="polite">
                  {picked.map((u) => (
                    <Tag.Root key={u.id} colorPalette="brand" data-testid="picked">
                      <Tag.Label>{u.username}</Tag.Label>
                      <Tag.EndElement>
                        <Tag.CloseTrigger aria-label={`Remove ${u.username}`} onClick={() => toggle(u, false)} />
                      </Tag.EndElement>
                    </Tag.Root>
                  ))}
                  {picked.length === 0 && (
                    <Text fontSize="sm" color="fg.subtle">
                      Nobody picked yet.
                    </Text>
                  )}
                </Flex>
                <UserSearch
                  label="Search people to message"
                  exceptId={me.id}
                  autoFocus
                  action={(u) => (
                    <Checkbox.Root
                      checked={has(u)}
                      disabled={!has(u) && full}
                      onCheckedChange={(e) => toggle(u, e.checked === true)}
                      colorPalette="brand"
                    >
                      <Checkbox.HiddenInput aria-label={`Pick ${u.username}`} />
                      <Checkbox.Control />
                    </Checkbox.Root>
                  )}
                />
                {full && (
                  <Text fontSize="xs" color="fg.muted" role="status">
                    That is the most a conversation can have.
                  </Text>
                )}
                {error && (
                  <Text color="fg.error" role="alert">
                    {error}
                  </Text>
                )}
              </Stack>
            </Dialog.Body>
            <Dialog.Footer>
              <Dialog.ActionTrigger asChild>
                <Button variant="ghost">Cancel</Button>
              </Dialog.ActionTrigger>
              <Button colorPalette="brand" disabled={picked.length === 0} loading={busy} onClick={start}>
                Start conversation
              </Button>
            </Dialog.Footer>
            <Dialog.CloseTrigger asChild>
              <CloseButton size="sm" />
            </Dialog.CloseTrigger>
          </Dialog.Content>
        </Dialog.Positioner>
      </Portal>
    </Dialog.Root>
  );
}
