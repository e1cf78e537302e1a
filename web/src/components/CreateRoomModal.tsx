import { useState } from 'react';
import {
  Button,
  FormControl,
  FormErrorMessage,
  FormHelperText,
  FormLabel,
  Input,
  Modal,
  ModalBody,
  ModalCloseButton,
  ModalContent,
  ModalFooter,
  ModalHeader,
  ModalOverlay,
} from '@chakra-ui/react';
import type { Room } from '../generated/protocol';
import { api } from '../lib/api';
import { useSubmit } from '../lib/useSubmit';

interface Props {
  isOpen: boolean;
  onClose: () => void;
  onCreated: (room: Room) => void;
}

export function CreateRoomModal({ isOpen, onClose, onCreated }: Props) {
  const [name, setName] = useState('');
  const { submit, busy, error } = useSubmit(async () => {
    const room = await api.createRoom(name.trim());
    setName('');
    onCreated(room);
  }, 'Could not create the room.');
  return (
    <Modal isOpen={isOpen} onClose={onClose}>
      <ModalOverlay />
      <ModalContent as="form" onSubmit={submit} mx={3}>
        <ModalHeader>New room</ModalHeader>
        <ModalCloseButton />
        <ModalBody>
          <FormControl isRequired isInvalid={!!error}>
            <FormLabel>Room name</FormLabel>
            <Input value={name} onChange={(e) => setName(e.target.value)} maxLength={64} autoFocus />
            {error ? <FormErrorMessage>{error}</FormErrorMessage> : <FormHelperText>Up to 64 characters; names are unique.</FormHelperText>}
          </FormControl>
        </ModalBody>
        <ModalFooter gap={2}>
          <Button variant="ghost" onClick={onClose}>
            Cancel
          </Button>
          <Button type="submit" colorScheme="brand" isLoading={busy}>
            Create room
          </Button>
        </ModalFooter>
      </ModalContent>
    </Modal>
  );
}
