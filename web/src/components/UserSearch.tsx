import { useEffect, useState, type ReactNode } from 'react';
import { Button, Flex, Input, Spinner, Stack, Text } from '@chakra-ui/react';
import type { UserPublic } from '../generated/protocol';
import { api, ApiError } from '../lib/api';
import { UserAvatar } from './UserAvatar';

interface Props {
  /** The search input's label. */
  label: string;
  /** Left out of the results (the user, for example). */
  exceptId?: string;
  /** What each result offers (a checkbox, an Add button). */
  action: (u: UserPublic) => ReactNode;
  autoFocus?: boolean;
}

/** People by username prefix (`GET /api/users?q=`), a page at a time. */
export function UserSearch({ label, exceptId, action, autoFocus }: Props) {
  const [q, setQ] = useState('');
  const [users, setUsers] = useState<UserPublic[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let live = true;
    const t = setTimeout(() => {
      api
        .users(q.trim(), undefined, 20)
        .then((page) => {
          if (!live) return;
          setUsers(page.users);
          setCursor(page.next_cursor);
          setError(null);
        })
        .catch((e: unknown) => live && setError(e instanceof ApiError ? e.message : 'Could not search people.'));
    }, 200);
    return () => {
      live = false;
      clearTimeout(t);
    };
  }, [q]);

  const more = async () => {
    if (!cursor) return;
    try {
      const page = await api.users(q.trim(), cursor, 20);
      setUsers((us) => [...(us ?? []), ...page.users]);
      setCursor(page.next_cursor);
    } catch (e) {
      setError(e instanceof ApiError ? e.message : 'Could not load more people.');
    }
  };

  const shown = (users ?? []).filter((u) => u.id !== exceptId);
  return (
    <Stack gap={2}>
      <Input aria-label={label} placeholder="Search people by username" value={q} onChange={(e) => setQ(e.target.value)} autoFocus={autoFocus} />
      {error && (
        <Text color="fg.error" role="alert" fontSize="sm">
          {error}
        </Text>
      )}
      {users === null ? (
        !error && <Spinner size="sm" color="brand.solid" role="status" aria-label="Searching people" />
      ) : shown.length === 0 ? (
        <Text color="fg.muted" fontSize="sm">
          Nobody{q.trim() ? ` called “${q.trim()}…”` : ''}.
        </Text>
      ) : (
        <Stack as="ul" listStyleType="none" gap={1} aria-label="People found" maxH="260px" overflowY="auto">
          {shown.map((u) => (
            <Flex as="li" key={u.id} align="center" gap={2} py={1} data-testid="person" data-username={u.username}>
              <UserAvatar size="2xs" name={u.username} />
              <Text flex={1} fontSize="sm" lineClamp={1}>
                {u.username}
              </Text>
              {action(u)}
            </Flex>
          ))}
        </Stack>
      )}
      {cursor && (
        <Button size="xs" variant="ghost" onClick={more}>
          More people
        </Button>
      )}
    </Stack>
  );
}
