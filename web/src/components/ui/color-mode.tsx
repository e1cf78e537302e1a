// Light and dark mode. next-themes keeps the choice (or "system") in localStorage and puts the
// `light` or `dark` class on <html>, which is what Chakra's `_dark` condition and the semantic
// tokens read. index.html applies the stored choice before the first paint; this provider keeps
// it in step afterwards.
import type { ReactNode } from 'react';
import { IconButton, type IconButtonProps } from '@chakra-ui/react';
import { ThemeProvider, useTheme } from 'next-themes';
import { MoonIcon, SunIcon } from '../icons';
import { Tooltip } from './tooltip';

export type ColorMode = 'light' | 'dark';

/** Where the choice is stored; the key Chakra UI v2 used, so nobody's choice is lost. */
export const COLOR_MODE_STORAGE_KEY = 'chakra-ui-color-mode';

export function ColorModeProvider({ children }: { children: ReactNode }) {
  return (
    <ThemeProvider
      attribute="class"
      storageKey={COLOR_MODE_STORAGE_KEY}
      defaultTheme="system"
      enableSystem
      disableTransitionOnChange
      // next-themes renders its pre-paint script as an element, which never runs in a page
      // rendered on the client (index.html does that job); marking it as data keeps React quiet.
      scriptProps={{ type: 'application/json' }}
    >
      {children}
    </ThemeProvider>
  );
}

export function useColorMode(): { colorMode: ColorMode; setColorMode: (m: ColorMode) => void; toggleColorMode: () => void } {
  const { resolvedTheme, setTheme } = useTheme();
  const colorMode: ColorMode = resolvedTheme === 'dark' ? 'dark' : 'light';
  return {
    colorMode,
    setColorMode: setTheme,
    toggleColorMode: () => setTheme(colorMode === 'dark' ? 'light' : 'dark'),
  };
}

export function ColorModeButton(props: Omit<IconButtonProps, 'aria-label'>) {
  const { colorMode, toggleColorMode } = useColorMode();
  const dark = colorMode === 'dark';
  return (
    <Tooltip content={dark ? 'Light mode' : 'Dark mode'}>
      <IconButton
        aria-label={dark ? 'Switch to light mode' : 'Switch to dark mode'}
        variant="ghost"
        size="sm"
        onClick={toggleColorMode}
        {...props}
      >
        {dark ? <SunIcon /> : <MoonIcon />}
      </IconButton>
    </Tooltip>
  );
}
