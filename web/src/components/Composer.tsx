import { useEffect, useId, useLayoutEffect, useRef, useState, type ClipboardEvent, type KeyboardEvent } from 'react';
import { Box, CloseButton, Flex, IconButton, Stack, Text, Textarea, VisuallyHidden } from '@chakra-ui/react';
import type { ChatMessage, UserPublic } from '../generated/protocol';
import { MAX_BODY_CHARS } from '../lib/connection';
import { completeMention, matchPeople, mentionQuery } from '../lib/mentions';
import { excerptOf } from '../lib/timeline';
import { PaperclipIcon, ReplyIcon, SendIcon } from './icons';
import { UserAvatar } from './UserAvatar';

interface Props {
  /** What the input is labelled with: "Message #general", "Message bob". */
  label: string;
  /** The room's members, for `@` completion. */
  people: UserPublic[];
  meId: string;
  /** The message being answered, quoted above the input. */
  replyTo: ChatMessage | null;
  onCancelReply: () => void;
  onSend: (body: string) => void;
  onTyping: () => void;
  onFiles: (files: File[]) => void;
}

export function Composer({ label, people, meId, replyTo, onCancelReply, onSend, onTyping, onFiles }: Props) {
  const [text, setText] = useState('');
  const [caret, setCaret] = useState(0);
  const [active, setActive] = useState(0);
  // Closed by Escape until the mention being typed changes.
  const [dismissed, setDismissed] = useState<number | null>(null);
  const fileInput = useRef<HTMLInputElement>(null);
  const box = useRef<HTMLTextAreaElement>(null);
  const lastTyping = useRef(0);
  // Where a completion puts the caret, once its text is in the textbox.
  const caretAfterRender = useRef<number | null>(null);
  const listId = useId();
  const length = [...text.trim()].length;

  const query = mentionQuery(text, caret);
  const suggestions = query && dismissed !== query.start ? matchPeople(people, query.query, meId) : [];
  const open = suggestions.length > 0;
  const activeIndex = Math.min(active, suggestions.length - 1);

  // Set as the completed text is committed, before the browser handles the next key: a
  // caret set later (in an animation frame) could land among keys typed meanwhile.
  useLayoutEffect(() => {
    const at = caretAfterRender.current;
    const el = box.current;
    if (at === null || !el) return;
    caretAfterRender.current = null;
    el.focus();
    el.setSelectionRange(at, at);
  });

  // Starting a reply puts the cursor in the input.
  useEffect(() => {
    if (replyTo) box.current?.focus();
  }, [replyTo]);

  const submit = () => {
    const body = text.trim();
    if (!body || [...body].length > MAX_BODY_CHARS) return;
    onSend(body);
    setText('');
    setCaret(0);
  };
  const complete = (u: UserPublic) => {
    if (!query) return;
    const next = completeMention(text, query, u.username);
    caretAfterRender.current = next.caret;
    setText(next.text);
    setCaret(next.caret);
    setActive(0);
  };
  const onKey = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (open) {
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault();
        const n = suggestions.length;
        setActive((activeIndex + (e.key === 'ArrowDown' ? 1 : n - 1)) % n);
        return;
      }
      if ((e.key === 'Enter' || e.key === 'Tab') && !e.shiftKey && !e.nativeEvent.isComposing) {
        e.preventDefault();
        complete(suggestions[activeIndex]);
        return;
      }
      if (e.key === 'Escape') {
        e.preventDefault();
        setDismissed(query!.start);
        return;
      }
    }
    if (e.key === 'Escape' && replyTo) {
      e.preventDefault();
      onCancelReply();
      return;
    }
    // Enter sends; Shift+Enter (and Enter while an IME is composing) adds a line.
    if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      submit();
    }
  };
  const onPaste = (e: ClipboardEvent<HTMLTextAreaElement>) => {
    const files = Array.from(e.clipboardData.files);
    if (files.length) {
      e.preventDefault();
      onFiles(files);
    }
  };

  return (
    <Box bg="bg.panel" borderTopWidth="1px">
      {replyTo && (
        <Flex
          align="center"
          gap={2}
          px={{ base: 2, md: 3 }}
          pt={2}
          fontSize="sm"
          data-testid="replying-to"
          role="status"
          aria-label={`Replying to ${replyTo.author.username}`}
        >
          <ReplyIcon boxSize={4} color="fg.muted" flexShrink={0} />
          <Box flex={1} minW={0} ps={2} borderStartWidth="3px" borderColor="brand.solid">
            <Text fontSize="xs" color="fg.muted">
              Replying to <b>{replyTo.author.username}</b>
            </Text>
            <Text fontSize="sm" lineClamp={1}>
              {excerptOf(replyTo.body) || replyTo.attachment?.name}
            </Text>
          </Box>
          <CloseButton size="xs" aria-label="Cancel reply" onClick={onCancelReply} />
        </Flex>
      )}
      <Flex gap={2} align="flex-end" p={{ base: 2, md: 3 }} position="relative">
        <VisuallyHidden>
          <input
            ref={fileInput}
            type="file"
            multiple
            aria-label="Choose files to attach"
            tabIndex={-1}
            onChange={(e) => {
              const files = Array.from(e.target.files ?? []);
              e.target.value = '';
              if (files.length) onFiles(files);
            }}
          />
        </VisuallyHidden>
        <IconButton aria-label="Attach a file" variant="ghost" onClick={() => fileInput.current?.click()}>
          <PaperclipIcon />
        </IconButton>
        <Box flex={1} position="relative">
          {open && (
            <Stack
              as="ul"
              id={listId}
              role="listbox"
              aria-label="People to mention"
              position="absolute"
              bottom="calc(100% + 6px)"
              left={0}
              minW="220px"
              maxH="240px"
              overflowY="auto"
              gap={0}
              p={1}
              bg="bg.panel"
              borderWidth="1px"
              borderRadius="md"
              boxShadow="md"
              zIndex={3}
              listStyleType="none"
              data-testid="mention-suggestions"
            >
              {suggestions.map((u, i) => (
                <Flex
                  as="li"
                  key={u.id}
                  id={`${listId}-${i}`}
                  role="option"
                  aria-selected={i === activeIndex}
                  align="center"
                  gap={2}
                  px={2}
                  py={1.5}
                  borderRadius="sm"
                  cursor="pointer"
                  bg={i === activeIndex ? 'brand.subtle' : undefined}
                  onMouseDown={(e) => {
                    e.preventDefault(); // keep the focus in the input
                    complete(u);
                  }}
                  onMouseEnter={() => setActive(i)}
                >
                  <UserAvatar size="2xs" name={u.username} />
                  <Text fontSize="sm">{u.username}</Text>
                </Flex>
              ))}
            </Stack>
          )}
          <Textarea
            ref={box}
            aria-label={label}
            placeholder={label}
            value={text}
            // A textbox that suggests (not a combobox role: it stays the message input).
            aria-autocomplete="list"
            aria-controls={open ? listId : undefined}
            aria-activedescendant={open ? `${listId}-${activeIndex}` : undefined}
            onChange={(e) => {
              setText(e.target.value);
              setCaret(e.target.selectionStart ?? e.target.value.length);
              setDismissed(null);
              const now = Date.now();
              if (e.target.value && now - lastTyping.current > 2_000) {
                lastTyping.current = now;
                onTyping();
              }
            }}
            onSelect={(e) => setCaret(e.currentTarget.selectionStart ?? 0)}
            onKeyDown={onKey}
            onPaste={onPaste}
            onBlur={() => setDismissed(query?.start ?? null)}
            onFocus={() => setDismissed(null)}
            rows={1}
            minH="40px"
            maxH="200px"
            autoresize
          />
          {length > MAX_BODY_CHARS - 200 && (
            <Text fontSize="xs" color={length > MAX_BODY_CHARS ? 'fg.error' : 'fg.muted'} textAlign="right" aria-live="polite">
              {length}/{MAX_BODY_CHARS}
            </Text>
          )}
        </Box>
        <IconButton
          aria-label="Send message"
          colorPalette="brand"
          onClick={submit}
          disabled={!text.trim() || length > MAX_BODY_CHARS}
        >
          <SendIcon />
        </IconButton>
      </Flex>
    </Box>
  );
}
