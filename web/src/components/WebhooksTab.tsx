import { useCallback, useEffect, useState } from 'react';
import { Button, Code, Flex, Input, Stack, Text } from '@chakra-ui/react';
import type { Room, Webhook } from '../generated/protocol';
import { ApiError } from '../lib/api';
import { adminApi } from '../lib/adminApi';
import { StatusAlert } from './StatusAlert';

/** A room's incoming webhooks (its owner and admins): create, copy the URL once, revoke. */
export function WebhooksTab({ room }: { room: Room }) {
  const [hooks, setHooks] = useState<Webhook[]>([]);
  const [name, setName] = useState('');
  const [url, setUrl] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = useCallback(async () => setHooks(await adminApi.webhooks(room.id)), [room.id]);
  useEffect(() => {
    load().catch((e) => setError(e instanceof ApiError ? e.message : 'Something went wrong.'));
  }, [load]);
  const act = async (what: () => Promise<unknown>) => {
    setError(null);
    try {
      await what();
      await load();
    } catch (e) {
      setError(e instanceof ApiError ? e.message : 'Something went wrong.');
    }
  };
  return (
    <Stack gap={3}>
      {error && <StatusAlert status="error">{error}</StatusAlert>}
      <Text fontSize="sm" color="fg.muted">
        POST JSON <Code>{'{"text": "..."}'}</Code> to a webhook's URL to post here as its bot.
      </Text>
      <Flex gap={2}>
        <Input aria-label="Webhook name" placeholder="Name" value={name} onChange={(e) => setName(e.target.value)} />
        <Button colorPalette="brand" onClick={() => void act(async () => setUrl((await adminApi.createWebhook(room.id, name)).url ?? null))}>
          Create webhook
        </Button>
      </Flex>
      {url && (
        <StatusAlert status="success">
          Its URL (shown once): <Code data-testid="webhook-url">{url}</Code>
        </StatusAlert>
      )}
      <Stack as="ul" listStyleType="none" gap={1}>
        {hooks.map((h) => (
          <Flex as="li" key={h.id} gap={2} align="center" data-testid="webhook">
            <Text>{h.name}</Text>
            <Button size="xs" variant="outline" ms="auto" onClick={() => void act(() => adminApi.revokeWebhook(room.id, h.id))}>
              Revoke
            </Button>
          </Flex>
        ))}
      </Stack>
    </Stack>
  );
}
