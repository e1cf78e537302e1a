// A tooltip around one focusable child: `<Tooltip content="…"><IconButton …/></Tooltip>`.
// It adds a visual hint only; the child keeps its own accessible name.
import type { ReactElement, ReactNode } from 'react';
import { Portal, Tooltip as ChakraTooltip } from '@chakra-ui/react';

interface Props extends Omit<ChakraTooltip.RootProps, 'children'> {
  content: ReactNode;
  children: ReactElement;
}

export function Tooltip({ content, children, ...rest }: Props) {
  return (
    <ChakraTooltip.Root openDelay={400} closeDelay={100} {...rest}>
      <ChakraTooltip.Trigger asChild>{children}</ChakraTooltip.Trigger>
      <Portal>
        <ChakraTooltip.Positioner>
          <ChakraTooltip.Content>{content}</ChakraTooltip.Content>
        </ChakraTooltip.Positioner>
      </Portal>
    </ChakraTooltip.Root>
  );
}
