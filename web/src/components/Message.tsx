import { memo, useState, type FormEvent, type KeyboardEvent } from 'react';
import { Badge, Box, Button, Flex, IconButton, Input, Menu, Popover, Portal, SimpleGrid, Text, Textarea } from '@chakra-ui/react';
import type { ChatMessage, ReactionCount, ReplyTo, UserPublic } from '../generated/protocol';
import type { PendingMessage, PendingOp } from '../lib/timeline';
import { AttachmentView, LinkPreviewCard } from './Attachments';
import { DotsIcon, PinIcon, ReplyIcon, SmileIcon } from './icons';
import { Markdown } from './Markdown';
import { firstUrl } from '../lib/links';
import { UserAvatar } from './UserAvatar';
import { Tooltip } from './ui/tooltip';

function time(ms: number): string {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

/** The emoji the picker offers first; any other can be typed. */
export const COMMON_EMOJI = ['👍', '❤️', '😂', '🎉', '😮', '😢', '👀', '🙏'];

/** "alice", "alice and you", "alice, bob and 3 others". */
export function nameList(names: string[], max = 5): string {
  if (names.length <= 1) return names[0] ?? '';
  const shown = names.length > max ? [...names.slice(0, max), `${names.length - max} others`] : names;
  return `${shown.slice(0, -1).join(', ')} and ${shown[shown.length - 1]}`;
}

interface Props {
  message: ChatMessage;
  own: boolean;
  /** Same author as the previous message, shortly after: no header. */
  compact: boolean;
  /** The user's newest edit or deletion of this message not acknowledged yet, if any. */
  op: PendingOp | undefined;
  /** Its reactions as shown (the user's pending ones included). */
  reactions: ReactionCount[];
  /** The lowercase names of the people it mentions, space-separated. */
  mentioned: string;
  /** The user's lowercase name. */
  meName: string;
  /** Who has read up to here (and no further), for "Seen by". */
  seenBy: UserPublic[] | undefined;
  /** The message a jump went to: shown highlighted for a moment. */
  highlighted: boolean;
  canPin: boolean;
  /** A user's name by id (for who reacted). */
  nameOf: (id: string) => string;
  onEdit: (id: string, body: string) => void;
  onDelete: (id: string) => void;
  onRetryOp: (ref: string) => void;
  onDiscardOp: (ref: string) => void;
  onReply: (m: ChatMessage) => void;
  onReact: (id: string, emoji: string, on: boolean) => void;
  onPin: (id: string, pinned: boolean) => void;
  /** The reply quote was clicked: show the message it quotes. */
  onShowParent: (id: string) => void;
}

/** The quoted message above a reply: a button that jumps there, or a note that it is gone. */
export function ReplyQuote({ reply, onShow }: { reply: ReplyTo; onShow?: (id: string) => void }) {
  const style = {
    display: 'flex',
    gap: 1.5,
    alignItems: 'center',
    maxW: '100%',
    mb: 0.5,
    ps: 2,
    borderStartWidth: '3px',
    borderColor: 'border.emphasized',
    fontSize: 'xs',
    color: 'fg.muted',
    textAlign: 'start',
  } as const;
  if (reply.deleted) {
    return (
      <Box {...style} data-testid="reply-quote" data-deleted="true">
        <ReplyIcon boxSize={3} />
        <Text fontStyle="italic">Replying to a deleted message</Text>
      </Box>
    );
  }
  return (
    <Box asChild {...style} cursor="pointer" _hover={{ color: 'fg' }} focusVisibleRing="outside" borderRadius="none">
      <button
        type="button"
        data-testid="reply-quote"
        data-deleted="false"
        aria-label={`Reply to ${reply.author.username}: ${reply.excerpt}. Show the original message`}
        onClick={() => onShow?.(reply.id)}
      >
        <ReplyIcon boxSize={3} flexShrink={0} />
        <Text as="span" fontWeight="semibold" flexShrink={0}>
          {reply.author.username}
        </Text>
        <Text as="span" lineClamp={1}>
          {reply.excerpt}
        </Text>
      </button>
    </Box>
  );
}

/** The emoji picker: a few common emoji and a field for any other. */
function ReactionPicker({ onPick }: { onPick: (emoji: string) => void }) {
  const [open, setOpen] = useState(false);
  const [custom, setCustom] = useState('');
  const pick = (emoji: string) => {
    setOpen(false);
    setCustom('');
    onPick(emoji);
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const emoji = custom.trim();
    if (emoji) pick(emoji);
  };
  return (
    <Popover.Root open={open} onOpenChange={(e) => setOpen(e.open)} positioning={{ placement: 'bottom-end' }} lazyMount unmountOnExit>
      <Popover.Trigger asChild>
        <IconButton
          aria-label="Add reaction"
          size="xs"
          variant="ghost"
          opacity={{ base: 1, md: 0 }}
          _groupHover={{ opacity: 1 }}
          _groupFocusWithin={{ opacity: 1 }}
          _focusVisible={{ opacity: 1 }}
          _expanded={{ opacity: 1 }}
        >
          <SmileIcon />
        </IconButton>
      </Popover.Trigger>
      <Portal>
        <Popover.Positioner>
          <Popover.Content w="220px" aria-label="Pick a reaction">
            <Popover.Body p={2}>
              <SimpleGrid columns={4} gap={1} role="group" aria-label="Common reactions">
                {COMMON_EMOJI.map((e) => (
                  <Button key={e} size="sm" variant="ghost" fontSize="lg" aria-label={`React with ${e}`} onClick={() => pick(e)}>
                    {e}
                  </Button>
                ))}
              </SimpleGrid>
              <form onSubmit={submit}>
                <Flex gap={1} mt={2}>
                  <Input
                    size="sm"
                    aria-label="Any emoji"
                    placeholder="Any emoji"
                    value={custom}
                    onChange={(e) => setCustom(e.target.value)}
                    maxLength={32}
                  />
                  <Button size="sm" type="submit" colorPalette="brand" disabled={!custom.trim()}>
                    React
                  </Button>
                </Flex>
              </form>
            </Popover.Body>
          </Popover.Content>
        </Popover.Positioner>
      </Portal>
    </Popover.Root>
  );
}

/** The reactions under a message: one chip per emoji, toggling the user's own. */
function ReactionChips({
  reactions,
  nameOf,
  onToggle,
}: {
  reactions: ReactionCount[];
  nameOf: (id: string) => string;
  onToggle: (emoji: string, on: boolean) => void;
}) {
  if (!reactions.length) return null;
  return (
    <Flex gap={1} mt={1} wrap="wrap" role="group" aria-label="Reactions">
      {reactions.map((r) => {
        const names = r.users.map((u) => nameOf(u));
        const who = nameList(names);
        const label = `${r.emoji} ${r.count}: ${who}${r.me ? '. Click to take yours back' : '. Click to add yours'}`;
        return (
          <Tooltip key={r.emoji} content={who}>
            <Button
              size="2xs"
              px={1.5}
              borderRadius="full"
              variant={r.me ? 'subtle' : 'outline'}
              colorPalette={r.me ? 'brand' : 'gray'}
              borderWidth="1px"
              borderColor={r.me ? 'brand.border' : undefined}
              aria-pressed={r.me}
              aria-label={label}
              data-testid="reaction"
              data-emoji={r.emoji}
              data-count={r.count}
              data-me={r.me}
              onClick={() => onToggle(r.emoji, !r.me)}
            >
              <span aria-hidden>{r.emoji}</span>
              <Text as="span" fontSize="xs" aria-hidden>
                {r.count}
              </Text>
            </Button>
          </Tooltip>
        );
      })}
    </Flex>
  );
}

export const MessageItem = memo(function MessageItem({
  message,
  own,
  compact,
  op,
  reactions,
  mentioned,
  meName,
  seenBy,
  highlighted,
  canPin,
  nameOf,
  onEdit,
  onDelete,
  onRetryOp,
  onDiscardOp,
  onReply,
  onReact,
  onPin,
  onShowParent,
}: Props) {
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState(message.body);
  const savingEdit = op?.kind === 'edit' && op.status === 'sending';
  const deleting = op?.kind === 'delete' && op.status === 'sending';
  const failed = op?.status === 'failed' ? op : undefined;
  // A pending edit shows its new text at once.
  const body = savingEdit && op.body !== undefined ? op.body : message.body;
  const url = firstUrl(body);
  const mentionsMe = !own && mentioned.split(' ').includes(meName);

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
  const react = (emoji: string) => onReact(message.id, emoji, !reactions.some((r) => r.emoji === emoji && r.me));

  return (
    <Flex
      as="article"
      className="group"
      gap={3}
      px={{ base: 2, md: 4 }}
      py={compact && !message.reply_to ? 0.5 : 1.5}
      mt={compact ? 0 : 1}
      opacity={deleting ? 0.5 : 1}
      bg={highlighted ? 'yellow.subtle' : mentionsMe ? 'brand.subtle' : undefined}
      borderStartWidth="3px"
      borderColor={mentionsMe ? 'brand.solid' : 'transparent'}
      transition="background-color 0.6s"
      _hover={{ bg: highlighted ? 'yellow.subtle' : mentionsMe ? 'brand.muted' : 'bg.emphasized/40' }}
      data-testid="message"
      data-seq={message.seq}
      data-id={message.id}
      data-pending={op ? `${op.kind}-${op.status}` : undefined}
      data-mentions-me={mentionsMe || undefined}
      data-highlighted={highlighted || undefined}
      data-pinned={message.pinned || undefined}
      aria-busy={savingEdit || deleting || undefined}
      aria-label={`${message.author.username} at ${time(message.created_at)}${mentionsMe ? ', mentions you' : ''}${message.pinned ? ', pinned' : ''}`}
    >
      <Box w="32px" flexShrink={0}>
        {!compact && <UserAvatar size="xs" name={message.author.username} />}
      </Box>
      <Box flex={1} minW={0}>
        {message.reply_to && <ReplyQuote reply={message.reply_to} onShow={onShowParent} />}
        {!compact && (
          <Flex align="baseline" gap={2}>
            <Text fontWeight="bold" fontSize="sm">
              {message.author.username}
            </Text>
            {message.bot && (
              <Badge size="xs" variant="subtle" data-testid="bot-badge">
                BOT
              </Badge>
            )}
            <Text fontSize="xs" color="fg.muted">
              {time(message.created_at)}
            </Text>
            {message.pinned && <PinnedMark />}
          </Flex>
        )}
        {compact && message.pinned && <PinnedMark />}
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
            {body && <Markdown text={body} mentioned={mentioned} me={meName} />}
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
        <ReactionChips reactions={reactions} nameOf={nameOf} onToggle={(emoji, on) => onReact(message.id, emoji, on)} />
        {seenBy && seenBy.length > 0 && (
          <Flex
            align="center"
            justify="flex-end"
            gap={1}
            mt={0.5}
            fontSize="xs"
            color="fg.muted"
            data-testid="seen-by"
            aria-label={`Seen by ${nameList(seenBy.map((u) => u.username))}`}
          >
            <Text as="span" aria-hidden>
              Seen by {nameList(seenBy.map((u) => u.username))}
            </Text>
          </Flex>
        )}
      </Box>
      {!editing && !deleting && (
        <Flex gap={0.5} align="flex-start">
          <ReactionPicker onPick={react} />
          <Menu.Root positioning={{ placement: 'bottom-end' }} lazyMount unmountOnExit>
            <Menu.Trigger asChild>
              <IconButton
                aria-label="Message actions"
                size="xs"
                variant="ghost"
                opacity={{ base: 1, md: 0 }}
                _groupHover={{ opacity: 1 }}
                _groupFocusWithin={{ opacity: 1 }}
                _focusVisible={{ opacity: 1 }}
                _expanded={{ opacity: 1 }}
              >
                <DotsIcon />
              </IconButton>
            </Menu.Trigger>
            <Portal>
              <Menu.Positioner>
                <Menu.Content minW="140px">
                  <Menu.Item value="reply" onSelect={() => onReply(message)}>
                    Reply
                  </Menu.Item>
                  {canPin && (
                    <Menu.Item value="pin" onSelect={() => onPin(message.id, !message.pinned)}>
                      {message.pinned ? 'Unpin' : 'Pin'}
                    </Menu.Item>
                  )}
                  {own && (
                    <Menu.Item
                      value="edit"
                      onSelect={() => {
                        setDraft(body);
                        setEditing(true);
                      }}
                    >
                      Edit
                    </Menu.Item>
                  )}
                  {own && (
                    <Menu.Item value="delete" color="fg.error" _highlighted={{ bg: 'bg.error' }} onSelect={remove}>
                      Delete
                    </Menu.Item>
                  )}
                </Menu.Content>
              </Menu.Positioner>
            </Portal>
          </Menu.Root>
        </Flex>
      )}
    </Flex>
  );
});

function PinnedMark() {
  return (
    <Flex as="span" align="center" gap={0.5} fontSize="xs" color="orange.fg" data-testid="pinned-mark">
      <PinIcon boxSize={3} /> Pinned
    </Flex>
  );
}

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
        {pending.reply_to && <ReplyQuote reply={pending.reply_to} />}
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
