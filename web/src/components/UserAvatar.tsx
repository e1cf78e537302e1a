import { Avatar, Circle, Float } from '@chakra-ui/react';

// Each name always gets the same colour, so people are easy to tell apart at a glance.
const PALETTES = ['red', 'orange', 'yellow', 'green', 'teal', 'cyan', 'blue', 'purple', 'pink'] as const;

function paletteOf(name: string): (typeof PALETTES)[number] {
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.codePointAt(0)!) >>> 0;
  return PALETTES[h % PALETTES.length];
}

interface Props {
  name: string;
  size?: Avatar.RootProps['size'];
  /** Shows a presence dot: green online, gray offline. */
  online?: boolean;
}

/** Initials in a coloured circle. Decorative: the name is always written next to it. */
export function UserAvatar({ name, size = 'xs', online }: Props) {
  return (
    <Avatar.Root size={size} variant="solid" colorPalette={paletteOf(name)} aria-hidden flexShrink={0}>
      <Avatar.Fallback name={name} />
      {online !== undefined && (
        <Float placement="bottom-end" offsetX="1" offsetY="1">
          <Circle size="8px" bg={online ? 'green.500' : 'gray.400'} outline="2px solid" outlineColor="bg.panel" />
        </Float>
      )}
    </Avatar.Root>
  );
}
