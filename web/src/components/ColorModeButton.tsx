import { IconButton, useColorMode } from '@chakra-ui/react';
import { MoonIcon, SunIcon } from './icons';

export function ColorModeButton() {
  const { colorMode, toggleColorMode } = useColorMode();
  const dark = colorMode === 'dark';
  return (
    <IconButton
      aria-label={dark ? 'Switch to light mode' : 'Switch to dark mode'}
      title={dark ? 'Light mode' : 'Dark mode'}
      icon={dark ? <SunIcon /> : <MoonIcon />}
      variant="ghost"
      size="sm"
      onClick={toggleColorMode}
    />
  );
}
