import { useCallback, useEffect, useState } from 'react';
import { Button, Checkbox, CloseButton, Code, Dialog, Flex, Heading, Input, Portal, Stack, Text } from '@chakra-ui/react';
import type { Bot, TokenInfo, TokenScope } from '../generated/protocol';
import { ApiError } from '../lib/api';
import { adminApi } from '../lib/adminApi';
import { StatusAlert } from './StatusAlert';

interface Props {
  open: boolean;
  onClose: () => void;
}

const message = (e: unknown) => (e instanceof ApiError ? e.message : 'Something went wrong.');

/** Personal API tokens and bot accounts (tokens are shown once, when made). */
export function IntegrationsDialog({ open, onClose }: Props) {
  const [tokens, setTokens] = useState<TokenInfo[]>([]);
  const [bots, setBots] = useState<Bot[]>([]);
  const [name, setName] = useState('');
  const [post, setPost] = useState(false);
  const [botName, setBotName] = useState('');
  const [secret, setSecret] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = useCallback(async () => {
    const [t, b] = await Promise.all([adminApi.tokens(), adminApi.bots()]);
    setTokens(t);
    setBots(b);
  }, []);
  useEffect(() => {
    if (open) load().catch((e) => setError(message(e)));
  }, [open, load]);
  const act = async (what: () => Promise<unknown>) => {
    setError(null);
    try {
      await what();
      await load();
    } catch (e) {
      setError(message(e));
    }
  };
  const scopes: TokenScope[] = post ? ['read', 'post'] : ['read'];
  return (
    <Dialog.Root open={open} onOpenChange={(e) => !e.open && onClose()} scrollBehavior="inside" size="md" lazyMount unmountOnExit>
      <Portal>
        <Dialog.Backdrop />
        <Dialog.Positioner px={3}>
          <Dialog.Content aria-label="API tokens and bots">
            <Dialog.Header>
              <Dialog.Title>API tokens and bots</Dialog.Title>
            </Dialog.Header>
            <Dialog.Body>
              <Stack gap={3}>
                {error && <StatusAlert status="error">{error}</StatusAlert>}
                {secret && (
                  <StatusAlert status="success">
                    Copy it now, it is not shown again: <Code data-testid="new-token">{secret}</Code>
                  </StatusAlert>
                )}
                <Text fontSize="sm" color="fg.muted">
                  Send a token as <Code>Authorization: Bearer TOKEN</Code> to the API (<a href="/api/docs">reference</a>) or the
                  WebSocket.
                </Text>
                <Heading as="h3" size="md">
                  Your tokens
                </Heading>
                <Flex gap={2} align="center" wrap="wrap">
                  <Input aria-label="Token name" placeholder="Name" value={name} onChange={(e) => setName(e.target.value)} w="12rem" />
                  <Checkbox.Root checked={post} onCheckedChange={(e) => setPost(!!e.checked)}>
                    <Checkbox.HiddenInput />
                    <Checkbox.Control />
                    <Checkbox.Label>may post</Checkbox.Label>
                  </Checkbox.Root>
                  <Button size="sm" colorPalette="brand" onClick={() => void act(async () => setSecret((await adminApi.createToken(name, scopes)).token))}>
                    Create token
                  </Button>
                </Flex>
                <Stack as="ul" listStyleType="none" gap={1}>
                  {tokens.map((t) => (
                    <Flex as="li" key={t.id} gap={2} align="center" data-testid="token">
                      <Text>{t.name}</Text>
                      <Text color="fg.muted" fontSize="sm">
                        {t.scopes.join(', ')}
                      </Text>
                      <Button size="xs" variant="outline" ms="auto" onClick={() => void act(() => adminApi.revokeToken(t.id))}>
                        Revoke
                      </Button>
                    </Flex>
                  ))}
                </Stack>
                <Heading as="h3" size="md">
                  Bots
                </Heading>
                <Text fontSize="sm" color="fg.muted">
                  Add a bot to a room from the room's members, like anyone; it acts only there.
                </Text>
                <Flex gap={2}>
                  <Input aria-label="Bot name" placeholder="bot-name" value={botName} onChange={(e) => setBotName(e.target.value)} w="12rem" />
                  <Button size="sm" colorPalette="brand" onClick={() => void act(() => adminApi.createBot(botName))}>
                    Create bot
                  </Button>
                </Flex>
                <Stack as="ul" listStyleType="none" gap={1}>
                  {bots.map((b) => (
                    <Flex as="li" key={b.id} gap={2} align="center" data-testid="bot">
                      <Text fontWeight="semibold">{b.username}</Text>
                      <Button
                        size="xs"
                        variant="outline"
                        ms="auto"
                        onClick={() => void act(async () => setSecret((await adminApi.createBotToken(b.id, 'token', ['read', 'post'])).token))}
                      >
                        New token
                      </Button>
                      <Button size="xs" variant="outline" colorPalette="red" onClick={() => void act(() => adminApi.deleteBot(b.id))}>
                        Delete
                      </Button>
                    </Flex>
                  ))}
                </Stack>
              </Stack>
            </Dialog.Body>
            <Dialog.CloseTrigger asChild>
              <CloseButton size="sm" aria-label="Close API tokens and bots" />
            </Dialog.CloseTrigger>
          </Dialog.Content>
        </Dialog.Positioner>
      </Portal>
    </Dialog.Root>
  );
}
