import { useRef, useState } from 'react';
import { Button, CloseButton, Dialog, Portal } from '@chakra-ui/react';
import type { Room } from '../generated/protocol';
import { api } from '../lib/api';
import { useSubmit } from '../lib/useSubmit';
import { TextField } from './TextField';

interface Props {
  open: boolean;
  onClose: () => void;
  onCreated: (room: Room) => void;
}

export function CreateRoomDialog({ open, onClose, onCreated }: Props) {
  const [name, setName] = useState('');
  const input = useRef<HTMLInputElement>(null);
  const { submit, busy, error } = useSubmit(async () => {
    const room = await api.createRoom(name.trim());
    setName('');
    onCreated(room);
  }, 'Could not create the room.');
  return (
    <Dialog.Root
      open={open}
      onOpenChange={(e) => !e.open && onClose()}
      initialFocusEl={() => input.current}
      lazyMount
      unmountOnExit
    >
      <Portal>
        <Dialog.Backdrop />
        <Dialog.Positioner px={3}>
          <Dialog.Content asChild>
            <form onSubmit={submit}>
              <Dialog.Header>
                <Dialog.Title>New room</Dialog.Title>
              </Dialog.Header>
              <Dialog.Body>
                <TextField
                  ref={input}
                  label="Room name"
                  value={name}
                  onChange={setName}
                  maxLength={64}
                  errorText={error}
                  helperText="Up to 64 characters; names are unique."
                />
              </Dialog.Body>
              <Dialog.Footer>
                <Dialog.ActionTrigger asChild>
                  <Button variant="ghost">Cancel</Button>
                </Dialog.ActionTrigger>
                <Button type="submit" colorPalette="brand" loading={busy}>
                  Create room
                </Button>
              </Dialog.Footer>
              <Dialog.CloseTrigger asChild>
                <CloseButton size="sm" />
              </Dialog.CloseTrigger>
            </form>
          </Dialog.Content>
        </Dialog.Positioner>
      </Portal>
    </Dialog.Root>
  );
}
