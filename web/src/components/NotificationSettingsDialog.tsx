import { useEffect, useState } from 'react';
import { CloseButton, Dialog, Portal, Stack, Switch, Text } from '@chakra-ui/react';
import type { Me, NotificationSettings } from '../generated/protocol';
import { api, ApiError } from '../lib/api';
import { currentSubscription, disablePush, enablePush, notifyApi, pushSupported } from '../lib/push';
import { StatusAlert } from './StatusAlert';

interface Props {
  me: Me;
  open: boolean;
  onClose: () => void;
  onMeChanged: (me: Me) => void;
}

/** Notifications: browser push on this device, e-mail for what was missed, previews. */
export function NotificationSettingsDialog({ me, open, onClose, onMeChanged }: Props) {
  const [settings, setSettings] = useState<NotificationSettings | null>(null);
  const [devicePush, setDevicePush] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    if (!open) return;
    notifyApi.settings().then(setSettings, () => setSettings(null));
    currentSubscription().then((s) => setDevicePush(s != null), () => setDevicePush(false));
  }, [open]);

  const run = async (what: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await what();
    } catch (e) {
      setError(e instanceof ApiError || e instanceof Error ? e.message : 'Could not change the setting.');
    } finally {
      setBusy(false);
    }
  };
  const setPush = (on: boolean) =>
    run(async () => {
      if (on) await enablePush();
      else await disablePush();
      setDevicePush(on);
    });
  const setMe = (req: { push_previews?: boolean; email_notifications?: boolean }) =>
    run(async () => onMeChanged(await api.updateMe(req)));

  const pushAvailable = pushSupported() && (settings?.push_enabled ?? false);
  return (
    <Dialog.Root open={open} onOpenChange={(e) => !e.open && onClose()} lazyMount unmountOnExit>
      <Portal>
        <Dialog.Backdrop />
        <Dialog.Positioner px={3}>
          <Dialog.Content>
            <Dialog.Header>
              <Dialog.Title>Notifications</Dialog.Title>
            </Dialog.Header>
            <Dialog.Body>
              <Stack gap={5}>
                {error && <StatusAlert status="error">{error}</StatusAlert>}
                <Stack gap={1}>
                  <Switch.Root
                    checked={devicePush}
                    disabled={busy || !pushAvailable}
                    onCheckedChange={(e) => void setPush(e.checked)}
                    colorPalette="brand"
                  >
                    <Switch.HiddenInput />
                    <Switch.Control />
                    <Switch.Label>Browser notifications on this device</Switch.Label>
                  </Switch.Root>
                  <Text fontSize="xs" color="fg.muted">
                    {pushAvailable
                      ? 'Direct messages and mentions reach this browser even with no Confab tab open — never for a room you are looking at.'
                      : 'This browser or this server does not offer push notifications.'}
                  </Text>
                </Stack>
                <Stack gap={1}>
                  <Switch.Root
                    checked={me.push_previews}
                    disabled={busy}
                    onCheckedChange={(e) => void setMe({ push_previews: e.checked })}
                    colorPalette="brand"
                  >
                    <Switch.HiddenInput />
                    <Switch.Control />
                    <Switch.Label>Show message text in notifications</Switch.Label>
                  </Switch.Root>
                  <Text fontSize="xs" color="fg.muted">
                    When off, a notification names only the room and the author.
                  </Text>
                </Stack>
                <Stack gap={1}>
                  <Switch.Root
                    checked={(settings?.email_available ?? false) && me.email_notifications}
                    disabled={busy || !(settings?.email_available ?? false)}
                    onCheckedChange={(e) => void setMe({ email_notifications: e.checked })}
                    colorPalette="brand"
                  >
                    <Switch.HiddenInput />
                    <Switch.Control />
                    <Switch.Label>E-mail me what I missed</Switch.Label>
                  </Switch.Root>
                  <Text fontSize="xs" color="fg.muted">
                    {settings?.email_available
                      ? 'Mentions and direct messages still unread after a while come as one e-mail.'
                      : 'This server does not send e-mail.'}
                  </Text>
                </Stack>
              </Stack>
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
