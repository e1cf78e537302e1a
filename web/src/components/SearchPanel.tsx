import { useEffect, useRef, useState } from 'react';
import {
  Box,
  Button,
  CloseButton,
  Drawer,
  Flex,
  Input,
  Portal,
  SegmentGroup,
  Spinner,
  Stack,
  Text,
} from '@chakra-ui/react';
import type { ExcerptPart, SearchHit } from '../generated/protocol';
import { api, ApiError } from '../lib/api';

export type SearchScope = 'all' | 'room';

interface Props {
  open: boolean;
  onClose: () => void;
  /** The room on screen, for "This room" (null: only all rooms). */
  room: { id: string; label: string } | null;
  /** The scope to open with. */
  initialScope: SearchScope;
  /** A room's name as the sidebar shows it (direct conversations have none of their own). */
  labelOf: (roomId: string, roomName: string) => string;
  onPick: (hit: SearchHit) => void;
}

/** An excerpt with its matches marked: plain text parts, never markup. */
export function Excerpt({ parts }: { parts: ExcerptPart[] }) {
  return (
    <Text fontSize="sm" lineClamp={3} wordBreak="break-word" data-testid="search-excerpt">
      {parts.map((p, i) =>
        p.hit ? (
          <Box as="mark" key={i} bg="yellow.subtle" color="fg" fontWeight="semibold" borderRadius="sm" px={0.5}>
            {p.text}
          </Box>
        ) : (
          <span key={i}>{p.text}</span>
        ),
      )}
    </Text>
  );
}

/** Full-text search of the user's rooms (or the one on screen), ranked; a result jumps there. */
export function SearchPanel({ open, onClose, room, initialScope, labelOf, onPick }: Props) {
  const [q, setQ] = useState('');
  const [scope, setScope] = useState<SearchScope>(initialScope);
  const [hits, setHits] = useState<SearchHit[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  const roomId = scope === 'room' ? room?.id : undefined;

  useEffect(() => {
    if (open) setScope(room ? initialScope : 'all');
  }, [open, initialScope, room]);

  useEffect(() => {
    if (!open) return;
    const query = q.trim();
    if (!query) {
      setHits(null);
      setCursor(null);
      setError(null);
      return;
    }
    let live = true;
    const t = setTimeout(() => {
      setBusy(true);
      api
        .search(query, roomId)
        .then((page) => {
          if (!live) return;
          setHits(page.results);
          setCursor(page.next_cursor);
          setError(null);
        })
        .catch((e: unknown) => live && setError(e instanceof ApiError ? e.message : 'Could not search.'))
        .finally(() => live && setBusy(false));
    }, 250);
    return () => {
      live = false;
      clearTimeout(t);
    };
  }, [open, q, roomId]);

  const more = async () => {
    if (!cursor) return;
    try {
      const page = await api.search(q.trim(), roomId, cursor);
      setHits((h) => [...(h ?? []), ...page.results]);
      setCursor(page.next_cursor);
    } catch (e) {
      setError(e instanceof ApiError ? e.message : 'Could not load more results.');
    }
  };

  return (
    <Drawer.Root
      open={open}
      onOpenChange={(e) => !e.open && onClose()}
      placement="end"
      initialFocusEl={() => input.current}
      lazyMount
      unmountOnExit
    >
      <Portal>
        <Drawer.Backdrop />
        <Drawer.Positioner>
          <Drawer.Content maxW="420px" data-testid="search-panel">
            <Drawer.Header>
              <Drawer.Title>Search messages</Drawer.Title>
            </Drawer.Header>
            <Drawer.Body>
              <Stack gap={3}>
                <form
                  role="search"
                  onSubmit={(e) => {
                    e.preventDefault();
                  }}
                >
                  <Input ref={input} aria-label="Search messages" placeholder="Words to find" value={q} onChange={(e) => setQ(e.target.value)} />
                </form>
                <SegmentGroup.Root
                  size="sm"
                  value={scope}
                  onValueChange={(e) => setScope(e.value as SearchScope)}
                  aria-label="Where to search"
                >
                  <SegmentGroup.Indicator />
                  <SegmentGroup.Items
                    items={[
                      { value: 'all', label: 'All rooms' },
                      { value: 'room', label: room ? `This room (${room.label})` : 'This room', disabled: !room },
                    ]}
                  />
                </SegmentGroup.Root>
                {error && (
                  <Text color="fg.error" role="alert">
                    {error}
                  </Text>
                )}
                {busy && hits === null && <Spinner size="sm" color="brand.solid" role="status" aria-label="Searching" />}
                {hits !== null &&
                  (hits.length === 0 ? (
                    <Text color="fg.muted" role="status">
                      No messages match.
                    </Text>
                  ) : (
                    <Stack as="ul" listStyleType="none" gap={2} aria-label="Search results">
                      {hits.map((h) => {
                        const where = labelOf(h.room, h.room_name);
                        const text = h.excerpt.map((p) => p.text).join('');
                        return (
                          <li key={`${h.room}:${h.id}`}>
                            <Box
                              asChild
                              w="100%"
                              textAlign="start"
                              p={2}
                              borderWidth="1px"
                              borderRadius="md"
                              cursor="pointer"
                              _hover={{ bg: 'bg.muted' }}
                              focusVisibleRing="outside"
                            >
                              <button
                                type="button"
                                data-testid="search-result"
                                data-seq={h.seq}
                                aria-label={`${h.author.username} in ${where}: ${text}`}
                                onClick={() => onPick(h)}
                              >
                                <Flex gap={2} align="baseline" fontSize="xs" color="fg.muted" mb={0.5}>
                                  <Text fontWeight="bold" color="fg">
                                    {h.author.username}
                                  </Text>
                                  <Text lineClamp={1}>{where}</Text>
                                  <Text ms="auto" whiteSpace="nowrap">
                                    {new Date(h.created_at).toLocaleString([], { dateStyle: 'short', timeStyle: 'short' })}
                                  </Text>
                                </Flex>
                                <Excerpt parts={h.excerpt} />
                              </button>
                            </Box>
                          </li>
                        );
                      })}
                    </Stack>
                  ))}
                {cursor && (
                  <Button size="sm" variant="ghost" onClick={more}>
                    More results
                  </Button>
                )}
              </Stack>
            </Drawer.Body>
            <Drawer.CloseTrigger asChild>
              <CloseButton size="sm" aria-label="Close search" />
            </Drawer.CloseTrigger>
          </Drawer.Content>
        </Drawer.Positioner>
      </Portal>
    </Drawer.Root>
  );
}
