import { useEffect, useState } from 'react';
import {
  Badge,
  Button,
  CloseButton,
  Dialog,
  Field,
  Flex,
  IconButton,
  Input,
  Menu,
  Portal,
  Spinner,
  Stack,
  Tabs,
  Text,
} from '@chakra-ui/react';
import type { Ban, Me, Member, Room, RoomRole } from '../generated/protocol';
import { api, ApiError } from '../lib/api';
import { WebhooksTab } from './WebhooksTab';
import { canEditRoom, canManageMembers, memberActions, sortMembers } from '../lib/rooms';
import { useSubmit } from '../lib/useSubmit';
import { DotsIcon } from './icons';
import { StatusAlert } from './StatusAlert';
import { TextField } from './TextField';
import { UserAvatar } from './UserAvatar';
import { UserSearch } from './UserSearch';
import { toaster } from './ui/toaster';

interface Props {
  open: boolean;
  onClose: () => void;
  room: Room;
  me: Me;
  members: Member[];
  onRoomChanged: (room: Room) => void;
  /** Members were changed here: read them again (the log's entries follow too). */
  onMembersChanged: () => void;
}

const ROLE_LABEL: Record<RoomRole, string> = { owner: 'Owner', admin: 'Admin', member: 'Member' };

function failed(title: string, e: unknown) {
  toaster.create({ type: 'error', title, description: e instanceof ApiError ? e.message : 'The server did not answer; try again.' });
}

/** A room's name and topic, members and bans; what can be changed depends on the user's role. */
export function RoomSettingsDialog({ open, onClose, room, me, members, onRoomChanged, onMembersChanged }: Props) {
  const manage = canManageMembers(room);
  return (
    <Dialog.Root open={open} onOpenChange={(e) => !e.open && onClose()} scrollBehavior="inside" size="md" lazyMount unmountOnExit>
      <Portal>
        <Dialog.Backdrop />
        <Dialog.Positioner px={3}>
          <Dialog.Content>
            <Dialog.Header>
              <Dialog.Title>#{room.name}</Dialog.Title>
            </Dialog.Header>
            <Dialog.Body>
              <Tabs.Root defaultValue="members" variant="line" colorPalette="brand" lazyMount>
                <Tabs.List mb={3}>
                  <Tabs.Trigger value="about">About</Tabs.Trigger>
                  <Tabs.Trigger value="members">Members</Tabs.Trigger>
                  {manage && <Tabs.Trigger value="bans">Banned</Tabs.Trigger>}
                  {manage && room.kind === 'room' && <Tabs.Trigger value="webhooks">Webhooks</Tabs.Trigger>}
                </Tabs.List>
                <Tabs.Content value="about" p={0}>
                  <AboutTab room={room} onRoomChanged={onRoomChanged} />
                </Tabs.Content>
                <Tabs.Content value="members" p={0}>
                  <MembersTab room={room} me={me} members={members} onMembersChanged={onMembersChanged} />
                </Tabs.Content>
                {manage && (
                  <Tabs.Content value="bans" p={0}>
                    <BansTab room={room} />
                  </Tabs.Content>
                )}
                {manage && room.kind === 'room' && (
                  <Tabs.Content value="webhooks" p={0}>
                    <WebhooksTab room={room} />
                  </Tabs.Content>
                )}
              </Tabs.Root>
            </Dialog.Body>
            <Dialog.CloseTrigger asChild>
              <CloseButton size="sm" aria-label="Close room settings" />
            </Dialog.CloseTrigger>
          </Dialog.Content>
        </Dialog.Positioner>
      </Portal>
    </Dialog.Root>
  );
}

function AboutTab({ room, onRoomChanged }: { room: Room; onRoomChanged: (room: Room) => void }) {
  const [name, setName] = useState(room.name);
  const [topic, setTopic] = useState(room.topic ?? '');
  const [saved, setSaved] = useState(false);
  const { submit, busy, error } = useSubmit(async () => {
    setSaved(false);
    const next = await api.updateRoom(room.id, { name: name.trim(), topic: topic.trim() });
    onRoomChanged(next);
    setSaved(true);
  }, 'Could not save the room.');
  const visibility = room.visibility === 'private' ? 'Private: people are added by its owner and admins.' : 'Public: listed in Discover, anyone can join.';
  if (!canEditRoom(room)) {
    return (
      <Stack gap={2}>
        <Text>
          <b>Topic:</b> {room.topic || 'none'}
        </Text>
        <Text color="fg.muted" fontSize="sm">
          {visibility} Only its owner and admins change its name and topic.
        </Text>
      </Stack>
    );
  }
  return (
    <form onSubmit={submit} aria-label="Room name and topic">
      <Stack gap={3}>
        {saved && <StatusAlert status="success">Saved.</StatusAlert>}
        <TextField label="Room name" value={name} onChange={setName} maxLength={64} errorText={error} />
        <Field.Root>
          <Field.Label>Topic</Field.Label>
          <Input value={topic} onChange={(e) => setTopic(e.target.value)} maxLength={250} placeholder="What is it about?" />
        </Field.Root>
        <Text color="fg.muted" fontSize="sm">
          {visibility}
        </Text>
        <Button type="submit" colorPalette="brand" loading={busy} alignSelf="flex-start">
          Save
        </Button>
      </Stack>
    </form>
  );
}

function MembersTab({
  room,
  me,
  members,
  onMembersChanged,
}: {
  room: Room;
  me: Me;
  members: Member[];
  onMembersChanged: () => void;
}) {
  const [adding, setAdding] = useState<string | null>(null);
  const ids = new Set(members.map((m) => m.user.id));
  const act = async (what: string, f: () => Promise<unknown>) => {
    try {
      await f();
      onMembersChanged();
    } catch (e) {
      failed(`Could not ${what}`, e);
    }
  };
  const setRole = (m: Member, role: RoomRole) => {
    if (role === 'owner' && !window.confirm(`Make ${m.user.username} the owner? You will become an admin.`)) return;
    void act(`change ${m.user.username}'s role`, () => api.setRole(room.id, m.user.id, role));
  };
  const remove = (m: Member) => {
    if (!window.confirm(`Remove ${m.user.username} from #${room.name}?`)) return;
    void act(`remove ${m.user.username}`, () => api.removeMember(room.id, m.user.id));
  };
  const ban = (m: Member) => {
    if (!window.confirm(`Ban ${m.user.username} from #${room.name}? They cannot come back until unbanned.`)) return;
    void act(`ban ${m.user.username}`, () => api.ban(room.id, m.user.id));
  };
  const add = async (userId: string, username: string) => {
    setAdding(userId);
    await act(`add ${username}`, () => api.addMember(room.id, userId));
    setAdding(null);
  };

  return (
    <Stack gap={4}>
      <Stack as="ul" listStyleType="none" gap={1} aria-label="Members of the room">
        {sortMembers(members).map((m) => {
          const can = memberActions(room, m, me.id);
          const any = can.roles.length > 0 || can.handOver || can.remove || can.ban;
          return (
            <Flex as="li" key={m.user.id} align="center" gap={2} py={1} data-testid="settings-member" data-username={m.user.username} data-role={m.role}>
              <UserAvatar size="2xs" name={m.user.username} online={m.online} />
              <Text flex={1} fontSize="sm" lineClamp={1}>
                {m.user.username}
                {m.user.id === me.id ? ' (you)' : ''}
              </Text>
              {m.role !== 'member' && (
                <Badge size="sm" colorPalette={m.role === 'owner' ? 'orange' : 'purple'} variant="subtle">
                  {ROLE_LABEL[m.role]}
                </Badge>
              )}
              {any && (
                <Menu.Root positioning={{ placement: 'bottom-end' }} lazyMount unmountOnExit>
                  <Menu.Trigger asChild>
                    <IconButton aria-label={`Actions for ${m.user.username}`} size="xs" variant="ghost">
                      <DotsIcon />
                    </IconButton>
                  </Menu.Trigger>
                  <Portal>
                    <Menu.Positioner>
                      <Menu.Content minW="180px">
                        {can.roles.map((role) => (
                          <Menu.Item key={role} value={`role-${role}`} onSelect={() => setRole(m, role)}>
                            Make {role === 'admin' ? 'admin' : 'member'}
                          </Menu.Item>
                        ))}
                        {can.handOver && (
                          <Menu.Item value="owner" onSelect={() => setRole(m, 'owner')}>
                            Hand over ownership
                          </Menu.Item>
                        )}
                        {can.remove && (
                          <Menu.Item value="remove" onSelect={() => remove(m)}>
                            Remove from room
                          </Menu.Item>
                        )}
                        {can.ban && (
                          <Menu.Item value="ban" color="fg.error" _highlighted={{ bg: 'bg.error' }} onSelect={() => ban(m)}>
                            Ban from room
                          </Menu.Item>
                        )}
                      </Menu.Content>
                    </Menu.Positioner>
                  </Portal>
                </Menu.Root>
              )}
            </Flex>
          );
        })}
      </Stack>
      {canManageMembers(room) && (
        <Stack gap={2}>
          <Text fontWeight="semibold" fontSize="sm">
            Add people
          </Text>
          <UserSearch
            label="Search people to add"
            exceptId={me.id}
            action={(u) =>
              ids.has(u.id) ? (
                <Text fontSize="xs" color="fg.muted">
                  Member
                </Text>
              ) : (
                <Button size="xs" variant="subtle" aria-label={`Add ${u.username}`} loading={adding === u.id} onClick={() => add(u.id, u.username)}>
                  Add
                </Button>
              )
            }
          />
        </Stack>
      )}
    </Stack>
  );
}

function BansTab({ room }: { room: Room }) {
  const [bans, setBans] = useState<Ban[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = () => {
    api
      .bans(room.id)
      .then((b) => {
        setBans(b);
        setError(null);
      })
      .catch((e: unknown) => setError(e instanceof ApiError ? e.message : 'Could not load the bans.'));
  };
  useEffect(load, [room.id]);
  const unban = async (b: Ban) => {
    try {
      await api.unban(room.id, b.user.id);
      load();
    } catch (e) {
      failed(`Could not unban ${b.user.username}`, e);
    }
  };
  if (error) return <StatusAlert status="error">{error}</StatusAlert>;
  if (bans === null) return <Spinner size="sm" color="brand.solid" role="status" aria-label="Loading bans" />;
  if (bans.length === 0) return <Text color="fg.muted">Nobody is banned.</Text>;
  return (
    <Stack as="ul" listStyleType="none" gap={2} aria-label="Banned people">
      {bans.map((b) => (
        <Flex as="li" key={b.user.id} align="center" gap={2} data-testid="ban" data-username={b.user.username}>
          <UserAvatar size="2xs" name={b.user.username} />
          <Stack gap={0} flex={1}>
            <Text fontSize="sm">{b.user.username}</Text>
            <Text fontSize="xs" color="fg.muted">
              by {b.by.username}, {new Date(b.at).toLocaleDateString()}
            </Text>
          </Stack>
          <Button size="xs" variant="subtle" aria-label={`Unban ${b.user.username}`} onClick={() => unban(b)}>
            Unban
          </Button>
        </Flex>
      ))}
    </Stack>
  );
}
