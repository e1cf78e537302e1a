import { useRef, useState } from 'react';
import { Button, CloseButton, Dialog, Field, Input, Portal, RadioGroup, Stack, Text } from '@chakra-ui/react';
import type { Room, Visibility } from '../generated/protocol';
import { api } from '../lib/api';
import { useSubmit } from '../lib/useSubmit';
import { TextField } from './TextField';

interface Props {
  open: boolean;
  onClose: () => void;
  onCreated: (room: Room) => void;
}

const VISIBILITY: { value: Visibility; label: string; help: string }[] = [
  { value: 'public', label: 'Public', help: 'Listed in Discover; anyone can join.' },
  { value: 'private', label: 'Private', help: 'Not listed; owners and admins add people.' },
];

export function CreateRoomDialog({ open, onClose, onCreated }: Props) {
  const [name, setName] = useState('');
  const [topic, setTopic] = useState('');
  const [visibility, setVisibility] = useState<Visibility>('public');
  const input = useRef<HTMLInputElement>(null);
  const { submit, busy, error } = useSubmit(async () => {
    const room = await api.createRoom({ name: name.trim(), visibility, ...(topic.trim() ? { topic: topic.trim() } : {}) });
    setName('');
    setTopic('');
    setVisibility('public');
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
                <Stack gap={4}>
                  <TextField
                    ref={input}
                    label="Room name"
                    value={name}
                    onChange={setName}
                    maxLength={64}
                    errorText={error}
                    helperText="Up to 64 characters; names are unique."
                  />
                  <Field.Root>
                    <Field.Label>Topic</Field.Label>
                    <Input value={topic} onChange={(e) => setTopic(e.target.value)} maxLength={250} placeholder="What is it about? (optional)" />
                  </Field.Root>
                  <RadioGroup.Root
                    value={visibility}
                    onValueChange={(e) => setVisibility(e.value as Visibility)}
                    aria-label="Who can join"
                    colorPalette="brand"
                  >
                    <Stack gap={2}>
                      {VISIBILITY.map((v) => (
                        <RadioGroup.Item key={v.value} value={v.value} alignItems="flex-start">
                          <RadioGroup.ItemHiddenInput />
                          <RadioGroup.ItemIndicator />
                          <RadioGroup.ItemText>
                            {v.label}
                            <Text as="span" display="block" fontSize="xs" color="fg.muted" fontWeight="normal">
                              {v.help}
                            </Text>
                          </RadioGroup.ItemText>
                        </RadioGroup.Item>
                      ))}
                    </Stack>
                  </RadioGroup.Root>
                </Stack>
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
