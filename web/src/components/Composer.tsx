import { useRef, useState, type ClipboardEvent, type KeyboardEvent } from 'react';
import { Box, Flex, IconButton, Text, Textarea, VisuallyHidden } from '@chakra-ui/react';
import { MAX_BODY_CHARS } from '../lib/connection';
import { PaperclipIcon, SendIcon } from './icons';

interface Props {
  roomName: string;
  onSend: (body: string) => void;
  onTyping: () => void;
  onFiles: (files: File[]) => void;
}

export function Composer({ roomName, onSend, onTyping, onFiles }: Props) {
  const [text, setText] = useState('');
  const fileInput = useRef<HTMLInputElement>(null);
  const lastTyping = useRef(0);
  const length = [...text.trim()].length;

  const submit = () => {
    const body = text.trim();
    if (!body || [...body].length > MAX_BODY_CHARS) return;
    onSend(body);
    setText('');
  };
  const onKey = (e: KeyboardEvent<HTMLTextAreaElement>) => {
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
    <Flex gap={2} align="flex-end" p={{ base: 2, md: 3 }} bg="bg.panel" borderTopWidth="1px">
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
      <Box flex={1}>
        <Textarea
          aria-label={`Message #${roomName}`}
          placeholder={`Message #${roomName}`}
          value={text}
          onChange={(e) => {
            setText(e.target.value);
            const now = Date.now();
            if (e.target.value && now - lastTyping.current > 2_000) {
              lastTyping.current = now;
              onTyping();
            }
          }}
          onKeyDown={onKey}
          onPaste={onPaste}
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
  );
}
