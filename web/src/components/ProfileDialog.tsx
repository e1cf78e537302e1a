import { useState, type FormEvent } from 'react';
import { Button, CloseButton, DataList, Dialog, Heading, Portal, Stack, Switch, Text } from '@chakra-ui/react';
import type { Me } from '../generated/protocol';
import { api, ApiError } from '../lib/api';
import { StatusAlert } from './StatusAlert';
import { TextField } from './TextField';

interface Props {
  me: Me;
  open: boolean;
  onClose: () => void;
  onMeChanged: (me: Me) => void;
}

export function ProfileDialog({ me, open, onClose, onMeChanged }: Props) {
  return (
    <Dialog.Root open={open} onOpenChange={(e) => !e.open && onClose()} lazyMount unmountOnExit>
      <Portal>
        <Dialog.Backdrop />
        <Dialog.Positioner px={3}>
          <Dialog.Content>
            <Dialog.Header>
              <Dialog.Title>Profile</Dialog.Title>
            </Dialog.Header>
            <Dialog.Body>
              <DataList.Root orientation="horizontal" gap={1} mb={6}>
                <DataList.Item>
                  <DataList.ItemLabel>Username</DataList.ItemLabel>
                  <DataList.ItemValue>{me.username}</DataList.ItemValue>
                </DataList.Item>
                <DataList.Item>
                  <DataList.ItemLabel>Email</DataList.ItemLabel>
                  <DataList.ItemValue>{me.email}</DataList.ItemValue>
                </DataList.Item>
                <DataList.Item>
                  <DataList.ItemLabel>Member since</DataList.ItemLabel>
                  <DataList.ItemValue>{new Date(me.created_at).toLocaleDateString()}</DataList.ItemValue>
                </DataList.Item>
              </DataList.Root>
              <Heading as="h3" size="md" mb={3}>
                Privacy
              </Heading>
              <ReceiptsSwitch me={me} onMeChanged={onMeChanged} />
              <Heading as="h3" size="md" mb={3} mt={6}>
                Change password
              </Heading>
              <PasswordForm username={me.username} />
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

/** Whether the other members see how far the user has read ("Seen by"). */
function ReceiptsSwitch({ me, onMeChanged }: { me: Me; onMeChanged: (me: Me) => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const change = async (on: boolean) => {
    setBusy(true);
    setError(null);
    try {
      onMeChanged(await api.updateMe({ share_read_receipts: on }));
    } catch (e) {
      setError(e instanceof ApiError ? e.message : 'Could not change the setting.');
    } finally {
      setBusy(false);
    }
  };
  return (
    <Stack gap={1}>
      <Switch.Root
        checked={me.share_read_receipts}
        disabled={busy}
        onCheckedChange={(e) => void change(e.checked)}
        colorPalette="brand"
      >
        <Switch.HiddenInput />
        <Switch.Control />
        <Switch.Label>Share read receipts</Switch.Label>
      </Switch.Root>
      <Text fontSize="xs" color="fg.muted">
        When on, the people in your rooms see which messages you have read (“Seen by”).
      </Text>
      {error && <StatusAlert status="error">{error}</StatusAlert>}
    </Stack>
  );
}

function PasswordForm({ username }: { username: string }) {
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
    <form onSubmit={submit} aria-label="Change password">
      {/* Tells password managers whose password this is, so they update the right entry. */}
      <input type="text" name="username" autoComplete="username" value={username} readOnly hidden />
      <Stack gap={3}>
        {result && <StatusAlert status={result.ok ? 'success' : 'error'}>{result.text}</StatusAlert>}
        <TextField label="Current password" type="password" autoComplete="current-password" value={current} onChange={setCurrent} />
        <TextField label="New password" type="password" autoComplete="new-password" minLength={8} value={next} onChange={setNext} />
        <TextField
          label="Repeat new password"
          type="password"
          autoComplete="new-password"
          minLength={8}
          value={confirm}
          onChange={setConfirm}
        />
        <Button type="submit" colorPalette="brand" loading={busy}>
          Change password
        </Button>
      </Stack>
    </form>
  );
}
