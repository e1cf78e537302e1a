import { useState, type FormEvent } from 'react';
import {
  Alert,
  AlertIcon,
  Button,
  FormControl,
  FormLabel,
  Heading,
  Input,
  Modal,
  ModalBody,
  ModalCloseButton,
  ModalContent,
  ModalHeader,
  ModalOverlay,
  Stack,
  Text,
} from '@chakra-ui/react';
import type { Me } from '../generated/protocol';
import { api, ApiError } from '../lib/api';

interface Props {
  me: Me;
  isOpen: boolean;
  onClose: () => void;
  onSignedOut: () => void;
}

export function ProfileModal({ me, isOpen, onClose }: Props) {
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [confirm, setConfirm] = useState('');
  const [result, setResult] = useState<{ ok: boolean; text: string } | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (next !== confirm) {
      setResult({ ok: false, text: 'The new passwords do not match.' });
      return;
    }
    setBusy(true);
    setResult(null);
    try {
      await api.changePassword({ current_password: current, new_password: next });
      setCurrent('');
      setNext('');
      setConfirm('');
      setResult({ ok: true, text: 'Password changed. Your other devices were signed out.' });
    } catch (err) {
      setResult({ ok: false, text: err instanceof ApiError ? err.message : 'Could not change the password.' });
    } finally {
      setBusy(false);
    }
  };

  return (
    <Modal isOpen={isOpen} onClose={onClose}>
      <ModalOverlay />
      <ModalContent mx={3}>
        <ModalHeader>Profile</ModalHeader>
        <ModalCloseButton />
        <ModalBody pb={6}>
          <Stack spacing={1} mb={6}>
            <Text>
              <b>Username:</b> {me.username}
            </Text>
            <Text>
              <b>Email:</b> {me.email}
            </Text>
            <Text>
              <b>Member since:</b> {new Date(me.created_at).toLocaleDateString()}
            </Text>
          </Stack>
          <Heading as="h3" size="sm" mb={3}>
            Change password
          </Heading>
          <form onSubmit={submit} aria-label="Change password">
            <Stack spacing={3}>
              {result && (
                <Alert status={result.ok ? 'success' : 'error'} borderRadius="md">
                  <AlertIcon />
                  {result.text}
                </Alert>
              )}
              <FormControl isRequired>
                <FormLabel>Current password</FormLabel>
                <Input type="password" autoComplete="current-password" value={current} onChange={(e) => setCurrent(e.target.value)} />
              </FormControl>
              <FormControl isRequired>
                <FormLabel>New password</FormLabel>
                <Input type="password" autoComplete="new-password" minLength={8} value={next} onChange={(e) => setNext(e.target.value)} />
              </FormControl>
              <FormControl isRequired>
                <FormLabel>Repeat new password</FormLabel>
                <Input type="password" autoComplete="new-password" minLength={8} value={confirm} onChange={(e) => setConfirm(e.target.value)} />
              </FormControl>
              <Button type="submit" colorScheme="brand" isLoading={busy}>
                Change password
              </Button>
            </Stack>
          </form>
        </ModalBody>
      </ModalContent>
    </Modal>
  );
}
