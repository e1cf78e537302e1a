import { IconButton, Menu, Portal } from '@chakra-ui/react';
import type { NotificationLevel } from '../generated/protocol';
import { BellIcon } from './icons';

const LABELS: Record<NotificationLevel, string> = {
  all: 'All messages',
  mentions: 'Mentions only',
  none: 'Mute',
};

/** The per-room notification menu: all / mentions / mute. */
export function RoomNotificationMenu({
  level,
  onChange,
}: {
  level: NotificationLevel;
  onChange: (level: NotificationLevel) => void;
}) {
  return (
    <Menu.Root positioning={{ placement: 'bottom-end' }}>
      <Menu.Trigger asChild>
        <IconButton
          aria-label={`Room notifications: ${LABELS[level]}`}
          variant="ghost"
          size="sm"
          opacity={level === 'none' ? 0.5 : 1}
        >
          <BellIcon />
        </IconButton>
      </Menu.Trigger>
      <Portal>
        <Menu.Positioner>
          <Menu.Content>
            <Menu.RadioItemGroup value={level} onValueChange={(e) => onChange(e.value as NotificationLevel)}>
              {(Object.keys(LABELS) as NotificationLevel[]).map((l) => (
                <Menu.RadioItem key={l} value={l}>
                  {LABELS[l]}
                  <Menu.ItemIndicator />
                </Menu.RadioItem>
              ))}
            </Menu.RadioItemGroup>
          </Menu.Content>
        </Menu.Positioner>
      </Portal>
    </Menu.Root>
  );
}
