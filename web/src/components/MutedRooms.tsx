import { createContext, useContext } from 'react';
import { Box } from '@chakra-ui/react';
import { BellIcon } from './icons';

/** The rooms whose notification level is `none`, for the room list to show them as muted. */
export const MutedRooms = createContext<ReadonlySet<string>>(new Set());

/** The "muted" mark of a room in the list (nothing when the room is not muted). */
export function MutedMark({ room }: { room: string }) {
  const muted = useContext(MutedRooms);
  if (!muted.has(room)) return null;
  return (
    <Box as="span" role="img" aria-label="muted" data-testid="muted-mark" display="inline-flex" opacity={0.5}>
      <BellIcon boxSize={3} color="fg.subtle" />
    </Box>
  );
}
