// The colour mode before the first paint, as src/components/ui/color-mode.tsx keeps it (same
// storage key; "system" or nothing follows the OS), so a dark page never flashes white. A file
// of its own, not an inline script: the server's Content-Security-Policy allows scripts from
// this origin only.
try {
  var mode = localStorage.getItem('chakra-ui-color-mode');
  if (mode !== 'light' && mode !== 'dark') {
    mode = matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
  }
  document.documentElement.classList.add(mode);
  document.documentElement.style.colorScheme = mode;
} catch (e) {}
