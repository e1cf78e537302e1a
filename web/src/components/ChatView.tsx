import { useCallback, useEffect, useLayoutEffect, useRef, useState, useSyncExternalStore, type DragEvent } from 'react';
import { Box, Button, CloseButton, Drawer, Flex, Heading, IconButton, Portal, Progress, Spinner, Text, useDisclosure } from '@chakra-ui/react';
import type { Attachment, Me, Member, Room, ServerFrame } from '../generated/protocol';
import { api, ApiError, uploadFile } from '../lib/api';
import type { Connection } from '../lib/connection';
import { MembersList } from './MembersList';
import { MessageItem, PendingItem } from './Message';
import { Composer } from './Composer';
import { UsersIcon } from './icons';
import { toaster } from './ui/toaster';

interface Props {
  conn: Connection;
  room: Room;
  me: Me;
  onLeft: () => void;
}

interface Upload {
  key: number;
  name: string;
  progress: number;
  error?: string;
  abort: () => void;
}

const COMPACT_MS = 5 * 60_000;

export function ChatView({ conn, room, me, onLeft }: Props) {
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

  // ---- members and presence ----
  const loadMembers = useCallback(() => {
    api
      .members(room.id)
      .then(setMembers)
      .catch(() => {});
  }, [room.id]);
  useEffect(loadMembers, [loadMembers]);
  useEffect(
    () =>
      conn.onFrame((f: ServerFrame) => {
        if (!('room' in f) || f.room !== room.id) return;
        if (f.type === 'subscribed') {
          setOnline(new Set(f.online.map((u) => u.id)));
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
    [conn, room.id, loadMembers],
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
  const onScroll = () => {
    const el = scroller.current;
    if (!el) return;
    atBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 80;
    if (el.scrollTop < 120) void loadOlder();
  };
  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
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

  // ---- sending ----
  const send = (body: string, attachment: Attachment | null = null) => {
    atBottom.current = true;
    conn.send(room.id, body, attachment);
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
          send('', attachment);
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
        <Flex align="center" gap={2} px={{ base: 3, md: 4 }} h="48px" flexShrink={0} bg="bg.panel" borderBottomWidth="1px">
          <Heading as="h2" size="md" lineClamp={1} data-testid="room-title">
            # {room.name}
          </Heading>
          <Text fontSize="xs" color="fg.muted" whiteSpace="nowrap">
            {onlineCount} online
          </Text>
          <Box flex={1} />
          <IconButton aria-label="Show members" size="sm" variant="ghost" hideFrom="lg" onClick={membersDrawer.onOpen}>
            <UsersIcon />
          </IconButton>
          <Button size="sm" variant="ghost" onClick={leave}>
            Leave
          </Button>
        </Flex>
        <Box
          ref={scroller}
          flex={1}
          overflowY="auto"
          onScroll={onScroll}
          role="log"
          aria-label={`Messages in #${room.name}`}
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
                  This is the beginning of #{room.name}.
                </Text>
              )}
              {messages.map((m, i) => {
                const prev = messages[i - 1];
                const compact =
                  !!prev && prev.author.id === m.author.id && m.created_at - prev.created_at < COMPACT_MS;
                return (
                  <MessageItem
                    key={m.id}
                    message={m}
                    own={m.author.id === me.id}
                    compact={compact}
                    op={tl.opFor(m.id)}
                    onEdit={onEdit}
                    onDelete={onDelete}
                    onRetryOp={onRetryOp}
                    onDiscardOp={onDiscardOp}
                  />
                );
              })}
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
        <Composer roomName={room.name} onSend={(b) => send(b)} onTyping={() => conn.typing(room.id)} onFiles={startUploads} />
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
              Drop files to share in #{room.name}
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
                <Drawer.Title>#{room.name}</Drawer.Title>
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
    </Flex>
  );
}
