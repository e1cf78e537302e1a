import { useCallback, useEffect, useState } from 'react';
import { Badge, Button, CloseButton, Code, Dialog, Flex, Input, Portal, Stack, Table, Tabs, Text } from '@chakra-ui/react';
import type { AdminUser, AuditEntry, Invite } from '../generated/protocol';
import { ApiError } from '../lib/api';
import { adminApi } from '../lib/adminApi';
import { StatusAlert } from './StatusAlert';

interface Props {
  open: boolean;
  onClose: () => void;
}

/** Site administration: accounts, invites and the audit log (site administrators only). */
export function AdminDialog({ open, onClose }: Props) {
  return (
    <Dialog.Root open={open} onOpenChange={(e) => !e.open && onClose()} scrollBehavior="inside" size="lg" lazyMount unmountOnExit>
      <Portal>
        <Dialog.Backdrop />
        <Dialog.Positioner px={3}>
          <Dialog.Content aria-label="Site administration">
            <Dialog.Header>
              <Dialog.Title>Site administration</Dialog.Title>
            </Dialog.Header>
            <Dialog.Body>
              <Tabs.Root defaultValue="users" variant="line" colorPalette="brand" lazyMount unmountOnExit>
                <Tabs.List mb={3}>
                  <Tabs.Trigger value="users">Users</Tabs.Trigger>
                  <Tabs.Trigger value="invites">Invites</Tabs.Trigger>
                  <Tabs.Trigger value="audit">Audit log</Tabs.Trigger>
                </Tabs.List>
                <Tabs.Content value="users" p={0}>
                  <UsersTab />
                </Tabs.Content>
                <Tabs.Content value="invites" p={0}>
                  <InvitesTab />
                </Tabs.Content>
                <Tabs.Content value="audit" p={0}>
                  <AuditTab />
                </Tabs.Content>
              </Tabs.Root>
            </Dialog.Body>
            <Dialog.CloseTrigger asChild>
              <CloseButton size="sm" aria-label="Close site administration" />
            </Dialog.CloseTrigger>
          </Dialog.Content>
        </Dialog.Positioner>
      </Portal>
    </Dialog.Root>
  );
}

const message = (e: unknown) => (e instanceof ApiError ? e.message : 'Something went wrong.');

function UsersTab() {
  const [query, setQuery] = useState('');
  const [users, setUsers] = useState<AdminUser[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const load = useCallback(async (q: string) => {
    try {
      setUsers((await adminApi.users(q)).users);
    } catch (e) {
      setError(message(e));
    }
  }, []);
  useEffect(() => {
    const t = setTimeout(() => void load(query), 200);
    return () => clearTimeout(t);
  }, [query, load]);
  const act = async (what: () => Promise<unknown>, done?: (r: unknown) => void) => {
    setError(null);
    setNotice(null);
    try {
      const r = await what();
      done?.(r);
      await load(query);
    } catch (e) {
      setError(message(e));
    }
  };
  return (
    <Stack gap={3}>
      <Input placeholder="Search by username or e-mail" aria-label="Search users" value={query} onChange={(e) => setQuery(e.target.value)} />
      {error && <StatusAlert status="error">{error}</StatusAlert>}
      {notice && <StatusAlert status="success">{notice}</StatusAlert>}
      <Stack as="ul" gap={2} listStyleType="none">
        {users?.map((u) => (
          <Flex as="li" key={u.id} gap={2} align="center" wrap="wrap" data-testid="admin-user" data-username={u.username}>
            <Text fontWeight="semibold">{u.username}</Text>
            <Text color="fg.muted" fontSize="sm">
              {u.email}
            </Text>
            {u.role === 'admin' && <Badge colorPalette="purple">admin</Badge>}
            {u.bot && <Badge>bot</Badge>}
            {u.deactivated_at !== null && <Badge colorPalette="red">deactivated</Badge>}
            <Flex gap={1} ms="auto">
              {u.deactivated_at === null ? (
                <Button size="xs" variant="outline" colorPalette="red" onClick={() => void act(() => adminApi.deactivate(u.id))}>
                  Deactivate
                </Button>
              ) : (
                <Button size="xs" variant="outline" onClick={() => void act(() => adminApi.reactivate(u.id))}>
                  Reactivate
                </Button>
              )}
              {!u.bot && (
                <Button
                  size="xs"
                  variant="outline"
                  onClick={() =>
                    void act(
                      () => adminApi.resetPassword(u.id),
                      (r) => setNotice(`Temporary password for ${u.username}: ${(r as { temporary_password: string }).temporary_password}`),
                    )
                  }
                >
                  Reset password
                </Button>
              )}
              {!u.bot && (
                <Button
                  size="xs"
                  variant="outline"
                  onClick={() => void act(() => adminApi.setRole(u.id, u.role === 'admin' ? 'user' : 'admin'))}
                >
                  {u.role === 'admin' ? 'Make user' : 'Make admin'}
                </Button>
              )}
            </Flex>
          </Flex>
        ))}
      </Stack>
    </Stack>
  );
}

function InvitesTab() {
  const [invites, setInvites] = useState<Invite[] | null>(null);
  const [created, setCreated] = useState<Invite | null>(null);
  const [uses, setUses] = useState('1');
  const [days, setDays] = useState('7');
  const [error, setError] = useState<string | null>(null);
  const load = useCallback(async () => setInvites(await adminApi.invites()), []);
  useEffect(() => {
    load().catch((e) => setError(message(e)));
  }, [load]);
  const create = async () => {
    setError(null);
    try {
      setCreated(await adminApi.createInvite(Number(uses), Math.round(Number(days) * 86400)));
      await load();
    } catch (e) {
      setError(message(e));
    }
  };
  return (
    <Stack gap={3}>
      {error && <StatusAlert status="error">{error}</StatusAlert>}
      <Flex gap={2} align="end" wrap="wrap">
        <label>
          <Text fontSize="sm">Uses</Text>
          <Input aria-label="Invite uses" type="number" min={1} max={1000} value={uses} onChange={(e) => setUses(e.target.value)} w="6rem" />
        </label>
        <label>
          <Text fontSize="sm">Days valid</Text>
          <Input aria-label="Invite days" type="number" min={1} max={90} value={days} onChange={(e) => setDays(e.target.value)} w="6rem" />
        </label>
        <Button colorPalette="brand" onClick={() => void create()}>
          Create invite
        </Button>
      </Flex>
      {created?.url && (
        <StatusAlert status="success">
          Send this link (shown once): <Code data-testid="invite-url">{created.url}</Code>
        </StatusAlert>
      )}
      <Table.Root size="sm">
        <Table.Header>
          <Table.Row>
            <Table.ColumnHeader>Created</Table.ColumnHeader>
            <Table.ColumnHeader>Used</Table.ColumnHeader>
            <Table.ColumnHeader>Expires</Table.ColumnHeader>
            <Table.ColumnHeader />
          </Table.Row>
        </Table.Header>
        <Table.Body>
          {invites?.map((i) => (
            <Table.Row key={i.id}>
              <Table.Cell>{new Date(i.created_at).toLocaleString()}</Table.Cell>
              <Table.Cell>
                {i.used} / {i.uses}
              </Table.Cell>
              <Table.Cell>{i.revoked_at ? 'revoked' : new Date(i.expires_at).toLocaleString()}</Table.Cell>
              <Table.Cell>
                {!i.revoked_at && (
                  <Button size="xs" variant="outline" onClick={() => void adminApi.revokeInvite(i.id).then(load, (e) => setError(message(e)))}>
                    Revoke
                  </Button>
                )}
              </Table.Cell>
            </Table.Row>
          ))}
        </Table.Body>
      </Table.Root>
    </Stack>
  );
}

function AuditTab() {
  const [entries, setEntries] = useState<AuditEntry[]>([]);
  const [next, setNext] = useState<number | null | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  const more = useCallback(async (before?: number) => {
    try {
      const page = await adminApi.audit(before);
      setEntries((e) => (before === undefined ? page.entries : [...e, ...page.entries]));
      setNext(page.next_before);
    } catch (e) {
      setError(message(e));
    }
  }, []);
  useEffect(() => {
    void more();
  }, [more]);
  return (
    <Stack gap={2}>
      {error && <StatusAlert status="error">{error}</StatusAlert>}
      <Stack as="ol" gap={1} listStyleType="none" aria-label="Audit log">
        {entries.map((e) => (
          <Flex as="li" key={e.id} gap={2} fontSize="sm" data-testid="audit-entry" data-action={e.action}>
            <Text color="fg.muted">{new Date(e.at).toLocaleString()}</Text>
            <Text fontWeight="semibold">{e.actor_name}</Text>
            <Code>{e.action}</Code>
            {e.detail && <Text>{e.detail}</Text>}
          </Flex>
        ))}
      </Stack>
      {typeof next === 'number' && (
        <Button size="sm" variant="outline" onClick={() => void more(next)}>
          Older
        </Button>
      )}
    </Stack>
  );
}
