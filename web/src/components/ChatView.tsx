import {
  Fragment,
  useCallback,
  useEffect,
  useLayoutEffect,
  useMemo,
  useRef,
  useState,
  useSyncExternalStore,
  type DragEvent,
} from 'react';
import { Box, Button, CloseButton, Drawer, Flex, Heading, IconButton, Menu, Portal, Progress, Spinner, Text, useDisclosure } from '@chakra-ui/react';
import type { Attachment, ChatMessage, Me, Member, Room, ServerFrame } from '../generated/protocol';
import { api, ApiError, uploadFile } from '../lib/api';
import type { Connection } from '../lib/connection';
import { moveReceipt, receiptsFrom, seenBy, type Receipts } from '../lib/receipts';
import { applyMemberEntry, canLeave, canPin, roomLabel, roomTitle } from '../lib/rooms';
import { excerptOf, type RoomNotice } from '../lib/timeline';
import { MembersList } from './MembersList';
import { MessageItem, PendingItem } from './Message';
import { Composer } from './Composer';
import { ArrowDownIcon, DotsIcon, LockIcon, PinIcon, SearchIcon, SettingsIcon, UsersIcon } from './icons';
import { NoticeLine } from './NoticeLine';
import { PinsPanel } from './PinsPanel';
import { RoomSettingsDialog } from './RoomSettingsDialog';
import { Tooltip } from './ui/tooltip';
import { toaster } from './ui/toaster';

/** A message to show (a search hit): its seq; `key` changes on every request. */
export interface JumpRequest {
  room: string;
  seq: number;
  key: number;
}

interface Props {
  conn: Connection;
  room: Room;
  me: Me;
  jump: JumpRequest | null;
  onLeft: () => void;
  /** The room's settings changed (from this view's dialog). */
  onRoomChanged: (room: Room) => void;
  /** Open the search panel scoped to this room. */
  onSearch: () => void;
}

interface Upload {
  key: number;
  name: string;
  progress: number;
  error?: string;
  abort: () => void;
}

const COMPACT_MS = 5 * 60_000;

export function ChatView({ conn, room, me, jump, onLeft, onRoomChanged, onSearch }: Props) {
  const tl = conn.timeline(room.id);
  useSyncExternalStore(
    (cb) => conn.onTimeline((r) => r === room.id && cb()),
    () => tl.version,
  );
  const [members, setMembers] = useState<Member[]>([]);
  const membersRef = useRef(members);
  membersRef.current = members;
  // Who is in the room now, from `subscribed` and `presence` (null until subscribed: then the
  // members list's own flags are used). This client counts as present while it is connected.
  const [online, setOnline] = useState<Set<string> | null>(null);
  const connState = useSyncExternalStore(
    (cb) => conn.onState(cb),
    () => conn.state,
  );
  const shownMembers = members.map((m) => ({
    ...m,
    online: m.user.id === me.id ? connState === 'live' : online ? online.has(m.user.id) : m.online,
  }));
  const [typing, setTyping] = useState<Map<string, { name: string; until: number }>>(new Map());
  const [uploads, setUploads] = useState<Upload[]>([]);
  const [dragging, setDragging] = useState(false);
  const membersDrawer = useDisclosure();
  const pinsDrawer = useDisclosure();
  const settings = useDisclosure();
  const [replyTo, setReplyTo] = useState<ChatMessage | null>(null);
  const [receipts, setReceipts] = useState<Receipts>(new Map());
  // The message a jump went to, highlighted for a moment.
  const [highlight, setHighlight] = useState<string | null>(null);
  const label = roomLabel(room);
  const title = roomTitle(room);

  // ---- members and presence ----
  const loadMembers = useCallback(() => {
    api
      .members(room.id)
      .then(setMembers)
      .catch(() => {});
  }, [room.id]);
  useEffect(loadMembers, [loadMembers]);
  const loadReceipts = useCallback(() => {
    api
      .receipts(room.id)
      .then((list) => setReceipts(receiptsFrom(list)))
      .catch(() => {});
  }, [room.id]);
  useEffect(loadReceipts, [loadReceipts]);
  useEffect(
    () =>
      conn.onFrame((f: ServerFrame) => {
        if (!('room' in f) || f.room !== room.id) return;
        if (f.type === 'subscribed') {
          setOnline(new Set(f.online.map((u) => u.id)));
          // Back after a reconnect: who is a member and how far they read may have moved.
          if (membersRef.current.length) {
            loadMembers();
            loadReceipts();
          }
        } else if (f.type === 'member_added' || f.type === 'member_removed' || f.type === 'role_changed') {
          setMembers((ms) => applyMemberEntry(ms, f));
        } else if (f.type === 'read') {
          setReceipts((r) => moveReceipt(r, f.user, f.seq));
        } else if (f.type === 'presence') {
          setOnline((cur) => {
            const n = new Set(cur ?? []);
            if (f.online) n.add(f.user.id);
            else n.delete(f.user.id);
            return n;
          });
          if (!membersRef.current.some((m) => m.user.id === f.user.id)) loadMembers();
        } else if (f.type === 'typing') {
          setTyping((t) => new Map(t).set(f.user.id, { name: f.user.username, until: Date.now() + 4_000 }));
        } else if (f.type === 'message') {
          setTyping((t) => {
            if (!t.has(f.author.id)) return t;
            const n = new Map(t);
            n.delete(f.author.id);
            return n;
          });
        }
      }),
    [conn, room.id, loadMembers, loadReceipts],
  );
  useEffect(
    () =>
      conn.onRequestFailed((f) => {
        if (f.room !== room.id) return;
        toaster.create({ type: 'error', title: 'Reaction not added', description: f.message });
      }),
    [conn, room.id],
  );
  useEffect(() => {
    if (typing.size === 0) return;
    const t = setInterval(() => {
      const now = Date.now();
      setTyping((cur) => {
        const n = new Map([...cur].filter(([, v]) => v.until > now));
        return n.size === cur.size ? cur : n;
      });
    }, 1_000);
    return () => clearInterval(t);
  }, [typing.size]);

  // ---- scrolling: stick to the bottom, load older pages near the top ----
  const scroller = useRef<HTMLDivElement>(null);
  const atBottom = useRef(true);
  // Set while an older page loads: where the view was, so it stays put when the page lands.
  const anchor = useRef<{ height: number; top: number; firstSeq: number | undefined } | null>(null);
  const [loadingOlder, setLoadingOlder] = useState(false);
  const loadOlder = useCallback(async () => {
    const el = scroller.current;
    if (!el || !tl.hasMore || loadingOlder) return;
    anchor.current = { height: el.scrollHeight, top: el.scrollTop, firstSeq: tl.firstSeq };
    setLoadingOlder(true);
    try {
      await conn.loadOlder(room.id);
    } finally {
      setLoadingOlder(false);
      // Nothing older arrived: forget the anchor.
      if (anchor.current && anchor.current.firstSeq === tl.firstSeq) anchor.current = null;
    }
  }, [conn, room.id, tl, loadingOlder]);
  const [loadingNewer, setLoadingNewer] = useState(false);
  const loadNewer = useCallback(async () => {
    if (!tl.hasNewer || loadingNewer) return;
    setLoadingNewer(true);
    try {
      await conn.loadNewer(room.id);
    } finally {
      setLoadingNewer(false);
    }
  }, [conn, room.id, tl, loadingNewer]);
  const onScroll = () => {
    const el = scroller.current;
    if (!el) return;
    const nearBottom = el.scrollHeight - el.scrollTop - el.clientHeight < 80;
    // Away from the live end (after a jump), the bottom is not where new messages arrive.
    atBottom.current = nearBottom && !tl.hasNewer;
    if (el.scrollTop < 120) void loadOlder();
    if (nearBottom && tl.hasNewer) void loadNewer();
  };
  /** Scrolls a message into the middle of the view and highlights it for a moment. */
  const reveal = useCallback((id: string) => {
    const el = scroller.current?.querySelector<HTMLElement>(`[data-testid=message][data-id="${CSS.escape(id)}"]`);
    if (!el) return false;
    atBottom.current = false;
    anchor.current = null;
    el.scrollIntoView({ block: 'center' });
    setHighlight(id);
    return true;
  }, []);
  useEffect(() => {
    if (!highlight) return;
    const t = setTimeout(() => setHighlight(null), 2_500);
    return () => clearTimeout(t);
  }, [highlight]);
  // A search hit: show the page around it, then the message.
  const jumpKey = jump?.room === room.id ? jump.key : null;
  useEffect(() => {
    if (jumpKey === null || !jump) return;
    let live = true;
    void conn.jumpTo(room.id, jump.seq).then(
      (found) => {
        if (!live || !found) return;
        const m = conn.timeline(room.id).messages.find((x) => x.seq === jump.seq);
        if (m) requestAnimationFrame(() => live && reveal(m.id));
      },
      () => toaster.create({ type: 'error', title: 'Could not show that message' }),
    );
    return () => {
      live = false;
    };
    // Only a new request jumps (not a re-render with the same one).
  }, [jumpKey]);
  // A reply's quote: the message it answers, loading older pages until it is there.
  const showParent = useCallback(
    async (id: string) => {
      for (let pages = 0; pages < 20; pages++) {
        if (conn.timeline(room.id).find(id)) {
          requestAnimationFrame(() => reveal(id));
          return;
        }
        if (!(await conn.loadOlder(room.id))) break;
      }
      toaster.create({ type: 'info', title: 'The original message is not in the history any more' });
    },
    [conn, room.id, reveal],
  );
  const showLatest = async () => {
    await conn.showLatest(room.id);
    atBottom.current = true;
    const el = scroller.current;
    if (el) el.scrollTop = el.scrollHeight;
  };
  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    // A window far back (after a jump): the view stays where the jump put it.
    if (tl.hasNewer) atBottom.current = false;
    if (anchor.current && anchor.current.firstSeq !== tl.firstSeq) {
      el.scrollTop = anchor.current.top + (el.scrollHeight - anchor.current.height);
      anchor.current = null;
    } else if (atBottom.current) {
      el.scrollTop = el.scrollHeight;
    }
  }, [tl.version, typing.size, uploads.length]);
  // Content that grows by itself (images loading, preview cards arriving) keeps the view at the
  // bottom when it was there.
  const content = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = scroller.current;
    const inner = content.current;
    if (!el || !inner || typeof ResizeObserver === 'undefined') return;
    const ro = new ResizeObserver(() => {
      if (atBottom.current && !anchor.current) el.scrollTop = el.scrollHeight;
    });
    ro.observe(inner);
    return () => ro.disconnect();
  }, []);
  useEffect(() => {
    // A short first page that does not fill the view: keep loading until it scrolls.
    const el = scroller.current;
    if (el && tl.loaded && tl.hasMore && el.scrollHeight <= el.clientHeight && !loadingOlder) void loadOlder();
  }, [tl.version, tl.loaded, tl.hasMore, loadOlder, loadingOlder]);

  // Edits and deletions go over the socket and show as pending until acked.
  const onEdit = useCallback((id: string, body: string) => void conn.edit(room.id, id, body), [conn, room.id]);
  const onDelete = useCallback((id: string) => void conn.delete(room.id, id), [conn, room.id]);
  const onRetryOp = useCallback((ref: string) => conn.retryOp(room.id, ref), [conn, room.id]);
  const onDiscardOp = useCallback((ref: string) => conn.discardOp(room.id, ref), [conn, room.id]);

  const onReply = useCallback((m: ChatMessage) => setReplyTo(m), []);
  const onReact = useCallback(
    (id: string, emoji: string, on: boolean) => void conn.react(room.id, id, emoji, on),
    [conn, room.id],
  );
  const onPin = useCallback(
    (id: string, pinned: boolean) => {
      api.setPinned(id, pinned).catch((e: unknown) =>
        toaster.create({
          type: 'error',
          title: pinned ? 'Could not pin the message' : 'Could not unpin the message',
          description: e instanceof ApiError ? e.message : undefined,
        }),
      );
    },
    [],
  );

  // Names by id, for who reacted and who is mentioned: members, then anyone the timeline saw.
  const names = useMemo(() => new Map(members.map((m) => [m.user.id, m.user.username])), [members]);
  const usernameOf = useCallback(
    (id: string) => (id === me.id ? me.username : names.get(id) ?? tl.users.get(id)?.username ?? 'someone'),
    [names, tl, me.id, me.username],
  );
  const nameOf = useCallback((id: string) => (id === me.id ? 'you' : usernameOf(id)), [usernameOf, me.id]);
  const people = useMemo(() => members.map((m) => m.user), [members]);
  const pinAllowed = canPin(room);

  // ---- sending ----
  const send = async (body: string, attachment: Attachment | null = null) => {
    // Away from the live end (after a jump): back there first, where the message will show.
    if (tl.hasNewer) await conn.showLatest(room.id);
    atBottom.current = true;
    const reply = attachment ? null : replyTo;
    conn.send(
      room.id,
      body,
      attachment,
      reply
        ? { id: reply.id, author: reply.author, excerpt: excerptOf(reply.body), deleted: false }
        : undefined,
    );
    if (reply) setReplyTo(null);
  };
  const uploadKey = useRef(0);
  const startUploads = (files: File[]) => {
    for (const file of files) {
      const key = ++uploadKey.current;
      const { promise, abort } = uploadFile(room.id, file, (progress) =>
        setUploads((us) => us.map((u) => (u.key === key ? { ...u, progress } : u))),
      );
      setUploads((us) => [...us, { key, name: file.name, progress: 0, abort }]);
      promise.then(
        (attachment) => {
          setUploads((us) => us.filter((u) => u.key !== key));
          void send('', attachment);
        },
        (e: unknown) => {
          const error = e instanceof ApiError ? e.message : 'Upload failed.';
          setUploads((us) => us.map((u) => (u.key === key ? { ...u, error } : u)));
        },
      );
    }
  };
  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    setDragging(false);
    const files = Array.from(e.dataTransfer.files);
    if (files.length) startUploads(files);
  };

  const leave = async () => {
    if (!window.confirm(`Leave #${room.name}?`)) return;
    try {
      await api.leaveRoom(room.id);
      onLeft();
    } catch (e) {
      toaster.create({
        type: 'error',
        title: `Could not leave #${room.name}`,
        description: e instanceof ApiError ? e.message : 'The server did not answer; try again.',
      });
    }
  };

  const onlineCount = shownMembers.filter((m) => m.online).length;
  const typingNames = [...typing.values()].map((t) => t.name);
  const messages = tl.messages;
  const seen = useMemo(() => seenBy(messages, receipts, me.id), [messages, receipts, me.id, tl.version]);
  // Messages and notices in log order.
  const notices = tl.notices;
  const noticesBefore = (seq: number, from: number): [RoomNotice[], number] => {
    let i = from;
    while (i < notices.length && notices[i].seq < seq) i++;
    return [notices.slice(from, i), i];
  };
  let noticeAt = 0;

  return (
    <Flex h="100%" minH={0}>
      <Flex
        direction="column"
        flex={1}
        minW={0}
        position="relative"
        onDragOver={(e) => {
          if (e.dataTransfer.types.includes('Files')) {
            e.preventDefault();
            setDragging(true);
          }
        }}
        onDragLeave={(e) => {
          if (e.currentTarget === e.target) setDragging(false);
        }}
        onDrop={onDrop}
      >
        <Flex align="center" gap={2} px={{ base: 3, md: 4 }} minH="48px" py={1} flexShrink={0} bg="bg.panel" borderBottomWidth="1px">
          <Box minW={0} flex={1}>
            <Flex align="center" gap={2} minW={0}>
              {room.visibility === 'private' && room.kind !== 'dm' && (
                <Box as="span" role="img" aria-label="Private room" display="inline-flex">
                  <LockIcon boxSize={4} color="fg.muted" />
                </Box>
              )}
              <Heading as="h2" size="md" lineClamp={1} data-testid="room-title">
                {title}
              </Heading>
              <Text fontSize="xs" color="fg.muted" whiteSpace="nowrap" flexShrink={0}>
                {onlineCount} online
              </Text>
            </Flex>
            {room.topic && (
              <Text fontSize="xs" color="fg.muted" lineClamp={1} data-testid="room-topic">
                {room.topic}
              </Text>
            )}
          </Box>
          {/* Wide screens: a button each. Narrow ones: one menu, so the title keeps its room. */}
          <Flex gap={2} align="center" hideBelow="md">
            <Tooltip content="Pinned messages">
              <IconButton aria-label="Pinned messages" size="sm" variant="ghost" onClick={pinsDrawer.onOpen}>
                <PinIcon />
              </IconButton>
            </Tooltip>
            <Tooltip content="Search this conversation">
              <IconButton aria-label="Search this conversation" size="sm" variant="ghost" onClick={onSearch}>
                <SearchIcon />
              </IconButton>
            </Tooltip>
            {room.kind !== 'dm' && (
              <Tooltip content="Room settings and members">
                <IconButton aria-label="Room settings" size="sm" variant="ghost" onClick={settings.onOpen}>
                  <SettingsIcon />
                </IconButton>
              </Tooltip>
            )}
            <IconButton aria-label="Show members" size="sm" variant="ghost" hideFrom="lg" onClick={membersDrawer.onOpen}>
              <UsersIcon />
            </IconButton>
            {canLeave(room) && (
              <Button size="sm" variant="ghost" onClick={leave}>
                Leave
              </Button>
            )}
          </Flex>
          <Menu.Root positioning={{ placement: 'bottom-end' }} lazyMount unmountOnExit>
            <Menu.Trigger asChild>
              <IconButton aria-label="Room menu" size="sm" variant="ghost" hideFrom="md">
                <DotsIcon />
              </IconButton>
            </Menu.Trigger>
            <Portal>
              <Menu.Positioner>
                <Menu.Content minW="180px">
                  <Menu.Item value="pins" onSelect={pinsDrawer.onOpen}>
                    Pinned messages
                  </Menu.Item>
                  <Menu.Item value="search" onSelect={onSearch}>
                    Search this conversation
                  </Menu.Item>
                  <Menu.Item value="members" onSelect={membersDrawer.onOpen}>
                    Members
                  </Menu.Item>
                  {room.kind !== 'dm' && (
                    <Menu.Item value="settings" onSelect={settings.onOpen}>
                      Room settings
                    </Menu.Item>
                  )}
                  {canLeave(room) && (
                    <Menu.Item value="leave" onSelect={leave}>
                      Leave
                    </Menu.Item>
                  )}
                </Menu.Content>
              </Menu.Positioner>
            </Portal>
          </Menu.Root>
        </Flex>
        <Box
          ref={scroller}
          flex={1}
          overflowY="auto"
          onScroll={onScroll}
          role="log"
          aria-label={`Messages in ${room.kind === 'dm' ? `the conversation with ${label}` : `#${room.name}`}`}
          aria-live="polite"
          pb={2}
          data-testid="message-list"
        >
          <Box ref={content}>
          {!tl.loaded ? (
            <Flex justify="center" p={6}>
              <Spinner color="brand.solid" role="status" aria-label="Loading messages" />
            </Flex>
          ) : (
            <>
              {tl.hasMore ? (
                <Flex justify="center" p={2}>
                  <Button size="xs" variant="ghost" onClick={loadOlder} loading={loadingOlder}>
                    Load older messages
                  </Button>
                </Flex>
              ) : (
                <Text textAlign="center" fontSize="sm" color="fg.muted" py={4}>
                  {room.kind === 'dm' ? `This is the beginning of your conversation with ${label}.` : `This is the beginning of #${room.name}.`}
                </Text>
              )}
              {messages.map((m, i) => {
                const prev = messages[i - 1];
                const [before, next] = noticesBefore(m.seq, noticeAt);
                noticeAt = next;
                const compact =
                  !before.length &&
                  !!prev &&
                  prev.author.id === m.author.id &&
                  m.created_at - prev.created_at < COMPACT_MS;
                return (
                  <Fragment key={m.id}>
                    {before.map((n) => (
                      <NoticeLine key={`n${n.seq}`} notice={n} meId={me.id} />
                    ))}
                    <MessageItem
                      message={m}
                      own={m.author.id === me.id}
                      compact={compact}
                      op={tl.opFor(m.id)}
                      reactions={tl.reactionsOf(m)}
                      mentioned={(m.mentions ?? []).map((id) => usernameOf(id).toLowerCase()).join(' ')}
                      meName={me.username.toLowerCase()}
                      seenBy={seen.get(m.id)}
                      highlighted={highlight === m.id}
                      canPin={pinAllowed}
                      nameOf={nameOf}
                      onEdit={onEdit}
                      onDelete={onDelete}
                      onRetryOp={onRetryOp}
                      onDiscardOp={onDiscardOp}
                      onReply={onReply}
                      onReact={onReact}
                      onPin={onPin}
                      onShowParent={showParent}
                    />
                  </Fragment>
                );
              })}
              {notices.slice(noticeAt).map((n) =>
                tl.hasNewer ? null : <NoticeLine key={`n${n.seq}`} notice={n} meId={me.id} />,
              )}
              {tl.hasNewer && (
                <Flex justify="center" p={2}>
                  <Button size="xs" variant="ghost" onClick={loadNewer} loading={loadingNewer}>
                    Load newer messages
                  </Button>
                </Flex>
              )}
              {tl.pending.map((p) => (
                <PendingItem
                  key={p.client_msg_id}
                  pending={p}
                  onRetry={() => conn.retry(room.id, p.client_msg_id)}
                  onDiscard={() => conn.discard(room.id, p.client_msg_id)}
                />
              ))}
            </>
          )}
          </Box>
        </Box>
        {tl.hasNewer && (
          <Flex justify="center" position="relative" h={0}>
            <Button
              size="xs"
              colorPalette="brand"
              borderRadius="full"
              position="absolute"
              bottom={2}
              zIndex={1}
              boxShadow="md"
              onClick={showLatest}
            >
              <ArrowDownIcon /> Jump to latest
            </Button>
          </Flex>
        )}
        <Box px={{ base: 2, md: 4 }} minH="20px" fontSize="xs" color="fg.muted" aria-live="polite" data-testid="typing">
          {typingNames.length === 1 && `${typingNames[0]} is typing…`}
          {typingNames.length === 2 && `${typingNames[0]} and ${typingNames[1]} are typing…`}
          {typingNames.length > 2 && 'Several people are typing…'}
        </Box>
        {uploads.map((u) => (
          <Flex key={u.key} align="center" gap={2} px={{ base: 2, md: 4 }} py={1} data-testid="upload">
            <Text fontSize="xs" lineClamp={1} maxW="40%">
              {u.name}
            </Text>
            {u.error ? (
              <Text fontSize="xs" color="fg.error" flex={1} role="alert">
                {u.error}
              </Text>
            ) : (
              <Progress.Root value={u.progress * 100} size="sm" flex={1} colorPalette="brand">
                <Progress.Track borderRadius="full" aria-label={`Uploading ${u.name}`}>
                  <Progress.Range />
                </Progress.Track>
              </Progress.Root>
            )}
            <CloseButton
              size="sm"
              aria-label={u.error ? 'Dismiss' : `Cancel upload of ${u.name}`}
              onClick={() => {
                u.abort();
                setUploads((us) => us.filter((x) => x.key !== u.key));
              }}
            />
          </Flex>
        ))}
        <Composer
          label={room.kind === 'dm' ? `Message ${label}` : `Message #${room.name}`}
          people={people}
          meId={me.id}
          replyTo={replyTo}
          onCancelReply={() => setReplyTo(null)}
          onSend={(b) => void send(b)}
          onTyping={() => conn.typing(room.id)}
          onFiles={startUploads}
        />
        {dragging && (
          <Flex
            position="absolute"
            inset={0}
            bg="blackAlpha.500"
            align="center"
            justify="center"
            pointerEvents="none"
            zIndex={2}
          >
            <Text color="white" fontSize="xl" fontWeight="bold">
              Drop files to share in {room.kind === 'dm' ? label : `#${room.name}`}
            </Text>
          </Flex>
        )}
      </Flex>
      <Box as="aside" aria-label="Room members" hideBelow="lg" w="220px" flexShrink={0} borderStartWidth="1px" bg="bg.panel" overflowY="auto">
        <MembersList members={shownMembers} meId={me.id} />
      </Box>
      <Drawer.Root
        open={membersDrawer.open}
        onOpenChange={(e) => membersDrawer.setOpen(e.open)}
        placement="end"
        lazyMount
        unmountOnExit
      >
        <Portal>
          <Drawer.Backdrop />
          <Drawer.Positioner>
            <Drawer.Content maxW="260px">
              <Drawer.Header>
                <Drawer.Title>{title}</Drawer.Title>
              </Drawer.Header>
              <Drawer.Body p={0}>
                <MembersList members={shownMembers} meId={me.id} />
              </Drawer.Body>
              <Drawer.CloseTrigger asChild>
                <CloseButton size="sm" aria-label="Close members" />
              </Drawer.CloseTrigger>
            </Drawer.Content>
          </Drawer.Positioner>
        </Portal>
      </Drawer.Root>
      <PinsPanel
        open={pinsDrawer.open}
        onClose={pinsDrawer.onClose}
        room={room}
        version={tl.pinsVersion}
        canPin={pinAllowed}
        onJump={(seq) => {
          pinsDrawer.onClose();
          void conn.jumpTo(room.id, seq).then((found) => {
            const m = found ? conn.timeline(room.id).messages.find((x) => x.seq === seq) : undefined;
            if (m) requestAnimationFrame(() => reveal(m.id));
          });
        }}
        onUnpin={(id) => onPin(id, false)}
      />
      {room.kind !== 'dm' && (
        <RoomSettingsDialog
          open={settings.open}
          onClose={settings.onClose}
          room={room}
          me={me}
          members={shownMembers}
          onRoomChanged={onRoomChanged}
          onMembersChanged={loadMembers}
        />
      )}
    </Flex>
  );
}
