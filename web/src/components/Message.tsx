import { memo, useState, type KeyboardEvent } from 'react';
import { Box, Button, Flex, IconButton, Menu, Portal, Text, Textarea } from '@chakra-ui/react';
import type { ChatMessage } from '../generated/protocol';
import type { PendingMessage, PendingOp } from '../lib/timeline';
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
  /** The user's newest edit or deletion of this message not acknowledged yet, if any. */
  op: PendingOp | undefined;
  onEdit: (id: string, body: string) => void;
  onDelete: (id: string) => void;
  onRetryOp: (ref: string) => void;
  onDiscardOp: (ref: string) => void;
}

export const MessageItem = memo(function MessageItem({
  message,
  own,
  compact,
  op,
  onEdit,
  onDelete,
  onRetryOp,
  onDiscardOp,
}: Props) {
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState(message.body);
  const savingEdit = op?.kind === 'edit' && op.status === 'sending';
  const deleting = op?.kind === 'delete' && op.status === 'sending';
  const failed = op?.status === 'failed' ? op : undefined;
  // A pending edit shows its new text at once.
  const body = savingEdit && op.body !== undefined ? op.body : message.body;
  const url = firstUrl(body);

  const save = () => {
    const next = draft.trim();
    setEditing(false);
    if (next && next !== body) onEdit(message.id, next);
  };
  const remove = () => {
    if (window.confirm('Delete this message?')) onDelete(message.id);
  };
  const cancel = () => {
    setEditing(false);
    setDraft(body);
  };
  const onKey = (e: KeyboardEvent) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      save();
    } else if (e.key === 'Escape') {
      cancel();
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
      opacity={deleting ? 0.5 : 1}
      _hover={{ bg: 'bg.emphasized/40' }}
      data-testid="message"
      data-seq={message.seq}
      data-pending={op ? `${op.kind}-${op.status}` : undefined}
      aria-busy={savingEdit || deleting || undefined}
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
              <Button size="xs" variant="ghost" onClick={cancel}>
                Cancel
              </Button>
            </Flex>
          </Box>
        ) : (
          <Box data-testid="message-body">
            {body && <Markdown text={body} />}
            {(message.edited_at || savingEdit) && (
              <Text as="span" fontSize="xs" color="fg.muted">
                {' '}
                (edited)
              </Text>
            )}
          </Box>
        )}
        {(savingEdit || deleting) && (
          <Text fontSize="xs" color="fg.muted" role="status" data-testid="op-status">
            {deleting ? 'Deleting…' : 'Saving…'}
          </Text>
        )}
        {failed && (
          <Flex gap={2} align="center" mt={1} wrap="wrap" data-testid="op-failed">
            <Text fontSize="xs" color="fg.error" role="alert">
              {failed.kind === 'edit' ? 'Edit not saved' : 'Not deleted'}: {failed.error}
            </Text>
            <Button
              size="xs"
              variant="subtle"
              aria-label={failed.kind === 'edit' ? 'Retry the edit' : 'Retry deleting'}
              onClick={() => onRetryOp(failed.ref)}
            >
              Retry
            </Button>
            <Button
              size="xs"
              variant="ghost"
              aria-label={failed.kind === 'edit' ? 'Discard the edit' : 'Dismiss'}
              onClick={() => onDiscardOp(failed.ref)}
            >
              {failed.kind === 'edit' ? 'Discard' : 'Dismiss'}
            </Button>
          </Flex>
        )}
        {message.attachment && <AttachmentView attachment={message.attachment} />}
        {url && !editing && <LinkPreviewCard url={url} />}
      </Box>
      {own && !editing && !deleting && (
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
                    setDraft(body);
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
