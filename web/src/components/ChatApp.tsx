import { useCallback, useEffect, useMemo, useRef, useState, useSyncExternalStore } from 'react';
import {
  Badge,
  Box,
  Button,
  Center,
  CloseButton,
  Drawer,
  Flex,
  Heading,
  IconButton,
  Menu,
  Portal,
  Stack,
  Text,
  useDisclosure,
} from '@chakra-ui/react';
import type { Me, NotificationLevel, Room, SearchHit, ServerFrame } from '../generated/protocol';
import { api, ApiError } from '../lib/api';
import { Connection, type ConnectionState, type SessionCheck } from '../lib/connection';
import { applyActivity, applyRoomEntry, markRoomRead, roomLabel, roomTitle, withoutRoom } from '../lib/rooms';
import { ColorModeButton } from './ui/color-mode';
import { Tooltip } from './ui/tooltip';
import { BellIcon, MenuIcon, SearchIcon } from './icons';
import { Sidebar } from './Sidebar';
import { ChatView, type JumpRequest } from './ChatView';
import { SearchPanel, type SearchScope } from './SearchPanel';
import { ProfileDialog } from './ProfileDialog';
import { AdminDialog } from './AdminDialog';
import { IntegrationsDialog } from './IntegrationsDialog';
import { UserAvatar } from './UserAvatar';
import { notify, notificationsSupported } from '../lib/notify';
import { notifyApi, registerServiceWorker, setFaviconCount } from '../lib/push';
import { NotificationSettingsDialog } from './NotificationSettingsDialog';
import { RoomNotificationMenu } from './RoomNotificationMenu';
import { MutedRooms } from './MutedRooms';

function wsUrl(): string {
  const proto = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${window.location.host}/ws`;
}

async function checkSession(): Promise<SessionCheck> {
  try {
    await api.me();
    return 'ok';
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return 'denied';
    return 'error';
  }
}

function roomFromHash(): string | null {
  const m = /^#\/rooms\/([^/?#]+)/.exec(window.location.hash);
  return m ? decodeURIComponent(m[1]) : null;
}

export function goToRoom(id: string | null): void {
  window.location.hash = id ? `#/rooms/${encodeURIComponent(id)}` : '#/';
}

export function ChatApp({ me, onMeChanged, onSignedOut }: { me: Me; onMeChanged: (me: Me) => void; onSignedOut: () => void }) {
  const conn = useMemo(
    () =>
      new Connection({
        url: wsUrl(),
        loadHistory: (room, beforeSeq) => api.messages(room, beforeSeq, 50),
        loadAround: (room, seq) => api.messagesAround(room, seq, 50),
        loadEvents: (room, afterSeq) => api.events(room, afterSeq, 500),
        checkSession,
        onSessionEnded: onSignedOut,
      }),
    [onSignedOut],
  );
  useEffect(() => {
    conn.start();
    return () => conn.stop();
  }, [conn]);
  const connState = useSyncExternalStore(
    (cb) => conn.onState(cb),
    () => conn.state,
  );

  const [rooms, setRooms] = useState<Room[]>([]);
  const [currentId, setCurrentId] = useState<string | null>(roomFromHash);
  const currentRef = useRef(currentId);
  currentRef.current = currentId;
  const roomsRef = useRef(rooms);
  roomsRef.current = rooms;
  const drawer = useDisclosure();
  const profile = useDisclosure();
  const notifySettings = useDisclosure();
  // Each room's notification level (the server's defaults filled in), and the muted ones.
  const [levels, setLevels] = useState<Map<string, NotificationLevel>>(new Map());
  const muted = useMemo(() => new Set([...levels].filter(([, l]) => l === 'none').map(([r]) => r)), [levels]);
  const admin = useDisclosure();
  const integrations = useDisclosure();
  const search = useDisclosure();
  const [searchScope, setSearchScope] = useState<SearchScope>('all');
  const [jump, setJump] = useState<JumpRequest | null>(null);
  const [permission, setPermission] = useState<NotificationPermission | 'unsupported'>(
    notificationsSupported() ? Notification.permission : 'unsupported',
  );

  const loadRooms = useCallback(async () => {
    try {
      const page = await api.rooms('joined', '', undefined, 100);
      setRooms(page.rooms);
    } catch {
      // Shown as an empty list; the next event retries.
    }
  }, []);

  useEffect(() => {
    void loadRooms();
    const onHash = () => setCurrentId(roomFromHash());
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, [loadRooms]);

  // Reload the room list whenever the connection comes back (counts may have moved).
  useEffect(() => {
    if (connState === 'live') void loadRooms();
  }, [connState, loadRooms]);

  // Notifications with no tab open: the service worker, the levels, and telling the server
  // whether this tab is visible (a hidden tab's rooms are pushed).
  useEffect(() => {
    void registerServiceWorker();
    const onVisibility = () => conn.setVisible(document.visibilityState === 'visible');
    onVisibility();
    document.addEventListener('visibilitychange', onVisibility);
    return () => document.removeEventListener('visibilitychange', onVisibility);
  }, [conn]);
  useEffect(() => {
    if (connState !== 'live') return;
    notifyApi
      .settings()
      .then((s) => setLevels(new Map(s.levels.map((l) => [l.room, l.level]))))
      .catch(() => {});
  }, [connState, rooms.length]);
  const setRoomLevel = (room: string, level: NotificationLevel) => {
    notifyApi
      .setLevel(room, level)
      .then((r) => setLevels((m) => new Map(m).set(r.room, r.level)))
      .catch(() => {});
  };

  // Open the room on screen (load history, subscribe) once it is known to be one of ours, and
  // close it when leaving it.
  const currentJoined = rooms.some((r) => r.id === currentId);
  useEffect(() => {
    if (!currentId || !currentJoined) return;
    void conn.openRoom(currentId);
    setRooms((rs) => markRoomRead(rs, currentId));
    // The list may be older than the room's settings and the user's role in it: read them again.
    api
      .room(currentId)
      .then((r) =>
        setRooms((rs) =>
          rs.map((x) =>
            x.id === r.id ? { ...x, name: r.name, topic: r.topic, role: r.role, visibility: r.visibility, dm_with: r.dm_with } : x,
          ),
        ),
      )
      .catch(() => {});
    return () => conn.closeRoom(currentId);
  }, [conn, currentId, currentJoined]);

  // The tab title counts unread messages in other rooms (and says when some mention the user).
  const totalUnread = rooms.reduce((n, r) => n + (r.id === currentId ? 0 : r.unread), 0);
  const totalMentions = rooms.reduce((n, r) => n + (r.id === currentId ? 0 : r.mentions), 0);
  useEffect(() => {
    const count = totalUnread > 0 ? `(${totalUnread}${totalMentions > 0 ? ' @' : ''}) ` : '';
    document.title = `${count}Confab`;
    setFaviconCount(totalMentions);
  }, [totalUnread, totalMentions]);

  // Read markers: the room on screen is read up to its newest message while the tab is visible.
  const readSent = useRef(new Map<string, number>());
  const markRead = useCallback(() => {
    const room = currentRef.current;
    if (!room || document.visibilityState !== 'visible') return;
    const tl = conn.timeline(room);
    // A window far back (after a jump) is not where the room is read up to.
    if (tl.hasNewer) return;
    const seq = tl.lastSeq;
    if (seq > (readSent.current.get(room) ?? 0)) {
      readSent.current.set(room, seq);
      conn.markRead(room, seq);
      setRooms((rs) => markRoomRead(rs, room, seq));
    }
  }, [conn]);
  useEffect(() => {
    const offTimeline = conn.onTimeline((room) => {
      if (room === currentRef.current) markRead();
    });
    document.addEventListener('visibilitychange', markRead);
    return () => {
      offTimeline();
      document.removeEventListener('visibilitychange', markRead);
    };
  }, [conn, markRead]);
  useEffect(() => {
    if (connState === 'live') readSent.current.clear();
  }, [connState]);

  // Events for rooms not on screen: unread counters and notifications.
  useEffect(
    () =>
      conn.onFrame((f: ServerFrame) => {
        switch (f.type) {
          case 'activity': {
            const known = roomsRef.current.find((r) => r.id === f.room);
            const reading = f.room === currentRef.current && document.visibilityState === 'visible';
            if (!known) {
              void loadRooms();
            } else {
              setRooms((rs) => applyActivity(rs, f, reading) ?? rs);
            }
            if (f.author.id !== me.id && (f.room !== currentRef.current || document.hidden)) {
              const where = known ? (known.kind === 'dm' ? 'a direct message' : `#${known.name}`) : 'a room';
              notify(
                f.mention ? `${f.author.username} mentioned you in ${where}` : `${f.author.username} in ${known ? roomLabel(known) : 'a room'}`,
                `${f.unread} unread`,
                f.room,
                () => goToRoom(f.room),
              );
            }
            break;
          }
          case 'room_updated':
          case 'role_changed':
            setRooms((rs) => applyRoomEntry(rs, f, me.id));
            break;
          case 'member_removed':
            // Removed or banned: the room goes at once (the membership frame says so too).
            if (f.user.id === me.id) {
              setRooms((rs) => withoutRoom(rs, f.room));
              if (f.room === currentRef.current) goToRoom(null);
            }
            break;
          case 'message': {
            // Not for a deleted message's tombstone (replayed after a reconnect).
            if (f.deleted_at == null && f.room === currentRef.current && document.hidden && f.author.id !== me.id) {
              const known = roomsRef.current.find((r) => r.id === f.room);
              const name = known ? roomLabel(known) : 'a room';
              notify(`${f.author.username} in ${name}`, f.body || (f.attachment ? f.attachment.name : ''), f.room, () =>
                goToRoom(f.room),
              );
            }
            break;
          }
          case 'membership': {
            if (!f.member) {
              setRooms((rs) => withoutRoom(rs, f.room));
              if (f.room === currentRef.current) goToRoom(null);
            }
            void loadRooms();
            break;
          }
          default:
            break;
        }
      }),
    [conn, loadRooms, me.id],
  );

  const current = rooms.find((r) => r.id === currentId) ?? null;

  const selectRoom = (id: string) => {
    goToRoom(id);
    drawer.onClose();
  };
  const logout = async () => {
    conn.stop();
    try {
      await api.logout();
    } finally {
      goToRoom(null);
      onSignedOut();
    }
  };
  const askPermission = async () => {
    if (!notificationsSupported()) return;
    setPermission(await Notification.requestPermission());
  };
  const openSearch = (scope: SearchScope) => {
    setSearchScope(scope);
    search.onOpen();
  };
  const pickHit = (hit: SearchHit) => {
    search.onClose();
    setJump({ room: hit.room, seq: hit.seq, key: Date.now() });
    goToRoom(hit.room);
  };
  const labelOf = (id: string, name: string) => {
    const r = rooms.find((x) => x.id === id);
    return r ? roomTitle(r) : name ? `# ${name}` : 'a direct conversation';
  };
  const sidebar = (
    <Sidebar
      me={me}
      rooms={rooms}
      currentId={currentId}
      onSelect={selectRoom}
      onJoined={(room) => {
        void loadRooms().then(() => selectRoom(room.id));
      }}
    />
  );

  return (
    <MutedRooms.Provider value={muted}>
    <Flex direction="column" h="100%">
      <Flex
        as="header"
        align="center"
        gap={2}
        px={3}
        h="52px"
        flexShrink={0}
        bg="bg.panel"
        borderBottomWidth="1px"
      >
        <IconButton
          aria-label="Open rooms"
          variant="ghost"
          size="sm"
          hideFrom="md"
          onClick={drawer.onOpen}
        >
          <MenuIcon />
        </IconButton>
        <Heading as="h1" size="xl" color="brand.fg">
          Confab
        </Heading>
        <ConnectionBadge state={connState} />
        <Box flex={1} />
        <Tooltip content="Search messages">
          <IconButton aria-label="Search messages" variant="ghost" size="sm" onClick={() => openSearch('all')}>
            <SearchIcon />
          </IconButton>
        </Tooltip>
        {permission === 'default' && (
          <Tooltip content="Get notified about new messages in other rooms">
            <IconButton aria-label="Enable notifications" variant="ghost" size="sm" onClick={askPermission}>
              <BellIcon />
            </IconButton>
          </Tooltip>
        )}
        {current && (
          <RoomNotificationMenu
            level={levels.get(current.id) ?? (current.kind === 'dm' ? 'all' : 'mentions')}
            onChange={(l) => setRoomLevel(current.id, l)}
          />
        )}
        <ColorModeButton />
        <Menu.Root positioning={{ placement: 'bottom-end' }}>
          <Menu.Trigger asChild>
            <Button variant="ghost" size="sm" aria-label="Account menu" px={1}>
              <UserAvatar size="2xs" name={me.username} />
              <Text hideBelow="sm">{me.username}</Text>
            </Button>
          </Menu.Trigger>
          <Portal>
            <Menu.Positioner>
              <Menu.Content>
                <Menu.Item value="profile" onSelect={profile.onOpen}>
                  Profile and password
                </Menu.Item>
                <Menu.Item value="notifications" onSelect={notifySettings.onOpen}>
                  Notifications
                </Menu.Item>
                <Menu.Item value="integrations" onSelect={integrations.onOpen}>
                  API tokens and bots
                </Menu.Item>
                {me.role === 'admin' && (
                  <Menu.Item value="admin" onSelect={admin.onOpen}>
                    Site administration
                  </Menu.Item>
                )}
                <Menu.Item value="sign-out" onSelect={logout}>
                  Sign out
                </Menu.Item>
              </Menu.Content>
            </Menu.Positioner>
          </Portal>
        </Menu.Root>
      </Flex>
      <Flex flex={1} minH={0}>
        <Flex
          as="nav"
          aria-label="Rooms"
          hideBelow="md"
          w="280px"
          flexShrink={0}
          borderRightWidth="1px"
          bg="bg.panel"
        >
          {sidebar}
        </Flex>
        <Drawer.Root open={drawer.open} onOpenChange={(e) => drawer.setOpen(e.open)} placement="start" lazyMount unmountOnExit>
          <Portal>
            <Drawer.Backdrop />
            <Drawer.Positioner>
              <Drawer.Content maxW="300px">
                <Drawer.Header>
                  <Drawer.Title>Rooms</Drawer.Title>
                </Drawer.Header>
                <Drawer.Body p={0} display="flex" asChild>
                  <nav aria-label="Rooms">{sidebar}</nav>
                </Drawer.Body>
                <Drawer.CloseTrigger asChild>
                  <CloseButton size="sm" aria-label="Close rooms" />
                </Drawer.CloseTrigger>
              </Drawer.Content>
            </Drawer.Positioner>
          </Portal>
        </Drawer.Root>
        <Box as="main" flex={1} minW={0} bg="bg.canvas">
          {current ? (
            <ChatView
              key={current.id}
              conn={conn}
              room={current}
              me={me}
              jump={jump}
              onLeft={() => {
                goToRoom(null);
                setRooms((rs) => withoutRoom(rs, current.id));
                void loadRooms();
              }}
              onRoomChanged={(room) => setRooms((rs) => rs.map((r) => (r.id === room.id ? { ...r, ...room, unread: r.unread, mentions: r.mentions } : r)))}
              onSearch={() => openSearch('room')}
            />
          ) : (
            <Center h="100%" p={6}>
              <Stack textAlign="center" gap={3} maxW="sm" align="center">
                <Heading size="xl">{rooms.length ? 'Pick a room' : 'Welcome to Confab'}</Heading>
                <Text color="fg.muted">
                  {rooms.length
                    ? 'Choose a room on the left, or discover new ones.'
                    : 'Create a room or discover one to join, then start talking.'}
                </Text>
                <Button variant="subtle" hideFrom="md" onClick={drawer.onOpen}>
                  Show rooms
                </Button>
              </Stack>
            </Center>
          )}
        </Box>
      </Flex>
      <ProfileDialog me={me} open={profile.open} onClose={profile.onClose} onMeChanged={onMeChanged} />
      <NotificationSettingsDialog
        me={me}
        open={notifySettings.open}
        onClose={notifySettings.onClose}
        onMeChanged={onMeChanged}
      />
      <IntegrationsDialog open={integrations.open} onClose={integrations.onClose} />
      {me.role === 'admin' && <AdminDialog open={admin.open} onClose={admin.onClose} />}
      <SearchPanel
        open={search.open}
        onClose={search.onClose}
        room={current ? { id: current.id, label: roomTitle(current) } : null}
        initialScope={searchScope}
        labelOf={labelOf}
        onPick={pickHit}
      />
    </Flex>
    </MutedRooms.Provider>
  );
}

const STATE_LABEL: Record<ConnectionState, [string, string]> = {
  connecting: ['Connecting…', 'yellow'],
  live: ['Live', 'green'],
  reconnecting: ['Reconnecting…', 'orange'],
  closed: ['Offline', 'red'],
};

function ConnectionBadge({ state }: { state: ConnectionState }) {
  const [label, color] = STATE_LABEL[state];
  return (
    <Badge colorPalette={color} variant="subtle" role="status" aria-live="polite" data-testid="connection-state" data-state={state}>
      {label}
    </Badge>
  );
}
