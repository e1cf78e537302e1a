import { memo, useState, type KeyboardEvent } from 'react';
import { Box, Button, Flex, IconButton, Menu, Portal, Text, Textarea } from '@chakra-ui/react';
import type { ChatMessage } from '../generated/protocol';
import type { PendingMessage } from '../lib/timeline';
import { api, ApiError } from '../lib/api';
import { AttachmentView, LinkPreviewCard } from './Attachments';
import { DotsIcon } from './icons';
import { Markdown } from './Markdown';
import { firstUrl } from '../lib/links';
import { UserAvatar } from './UserAvatar';

function time(ms: number): string {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

interface Props {
  message: ChatMessage;
  own: boolean;
  /** Same author as the previous message, shortly after: no header. */
  compact: boolean;
  onEdited: (id: string, body: string, editedAt: number) => void;
  onDeleted: (id: string) => void;
}

export const MessageItem = memo(function MessageItem({ message, own, compact, onEdited, onDeleted }: Props) {
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState(message.body);
  const [error, setError] = useState<string | null>(null);
  const url = firstUrl(message.body);

  const save = async () => {
    const body = draft.trim();
    if (!body || body === message.body) {
      setEditing(false);
      return;
    }
    try {
      const updated = await api.editMessage(message.id, body);
      onEdited(message.id, updated?.body ?? body, updated?.edited_at ?? Date.now());
      setEditing(false);
      setError(null);
    } catch (e) {
      setError(e instanceof ApiError ? e.message : 'Could not save.');
    }
  };
  const remove = async () => {
    if (!window.confirm('Delete this message?')) return;
    try {
      await api.deleteMessage(message.id);
      onDeleted(message.id);
    } catch (e) {
      setError(e instanceof ApiError ? e.message : 'Could not delete.');
    }
  };
  const onKey = (e: KeyboardEvent) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      void save();
    } else if (e.key === 'Escape') {
      setEditing(false);
      setDraft(message.body);
    }
  };

  return (
    <Flex
      as="article"
      className="group"
      gap={3}
      px={{ base: 2, md: 4 }}
      py={compact ? 0.5 : 1.5}
      mt={compact ? 0 : 1}
      _hover={{ bg: 'bg.emphasized/40' }}
      data-testid="message"
      data-seq={message.seq}
      aria-label={`${message.author.username} at ${time(message.created_at)}`}
    >
      <Box w="32px" flexShrink={0}>
        {!compact && <UserAvatar size="xs" name={message.author.username} />}
      </Box>
      <Box flex={1} minW={0}>
        {!compact && (
          <Flex align="baseline" gap={2}>
            <Text fontWeight="bold" fontSize="sm">
              {message.author.username}
            </Text>
            <Text fontSize="xs" color="fg.muted">
              {time(message.created_at)}
            </Text>
          </Flex>
        )}
        {editing ? (
          <Box>
            <Textarea
              aria-label="Edit message"
              value={draft}
              onChange={(e) => setDraft(e.target.value)}
              onKeyDown={onKey}
              size="sm"
              rows={2}
              maxH="200px"
              autoresize
              autoFocus
            />
            <Flex gap={2} mt={1}>
              <Button size="xs" colorPalette="brand" onClick={save}>
                Save
              </Button>
              <Button
                size="xs"
                variant="ghost"
                onClick={() => {
                  setEditing(false);
                  setDraft(message.body);
                }}
              >
                Cancel
              </Button>
            </Flex>
          </Box>
        ) : (
          <Box data-testid="message-body">
            {message.body && <Markdown text={message.body} />}
            {message.edited_at && (
              <Text as="span" fontSize="xs" color="fg.muted">
                {' '}
                (edited)
              </Text>
            )}
          </Box>
        )}
        {error && (
          <Text fontSize="xs" color="fg.error" role="alert">
            {error}
          </Text>
        )}
        {message.attachment && <AttachmentView attachment={message.attachment} />}
        {url && !editing && <LinkPreviewCard url={url} />}
      </Box>
      {own && !editing && (
        <Menu.Root positioning={{ placement: 'bottom-end' }} lazyMount unmountOnExit>
          <Menu.Trigger asChild>
            <IconButton
              aria-label="Message actions"
              size="xs"
              variant="ghost"
              opacity={{ base: 1, md: 0 }}
              _groupHover={{ opacity: 1 }}
              _focusVisible={{ opacity: 1 }}
              _expanded={{ opacity: 1 }}
            >
              <DotsIcon />
            </IconButton>
          </Menu.Trigger>
          <Portal>
            <Menu.Positioner>
              <Menu.Content minW="120px">
                <Menu.Item
                  value="edit"
                  onSelect={() => {
                    setDraft(message.body);
                    setEditing(true);
                  }}
                >
                  Edit
                </Menu.Item>
                <Menu.Item value="delete" color="fg.error" _highlighted={{ bg: 'bg.error' }} onSelect={remove}>
                  Delete
                </Menu.Item>
              </Menu.Content>
            </Menu.Positioner>
          </Portal>
        </Menu.Root>
      )}
    </Flex>
  );
});

export function PendingItem({
  pending,
  onRetry,
  onDiscard,
}: {
  pending: PendingMessage;
  onRetry: () => void;
  onDiscard: () => void;
}) {
  const failed = pending.status === 'failed';
  return (
    <Flex
      gap={3}
      px={{ base: 2, md: 4 }}
      py={1}
      opacity={failed ? 1 : 0.6}
      data-testid="pending-message"
      data-status={pending.status}
      aria-label={failed ? 'Message not sent' : 'Sending message'}
    >
      <Box w="32px" flexShrink={0} />
      <Box flex={1} minW={0}>
        {pending.body && <Markdown text={pending.body} />}
        {pending.attachment && <AttachmentView attachment={pending.attachment} />}
        {failed ? (
          <Flex gap={2} align="center" mt={1}>
            <Text fontSize="xs" color="fg.error">
              Not sent: {pending.error}
            </Text>
            <Button size="xs" variant="subtle" onClick={onRetry}>
              Retry
            </Button>
            <Button size="xs" variant="ghost" onClick={onDiscard}>
              Discard
            </Button>
          </Flex>
        ) : (
          <Text fontSize="xs" color="fg.muted">
            Sending…
          </Text>
        )}
      </Box>
    </Flex>
  );
}
