/** The first http(s) URL in a message, for its preview card. */
export function firstUrl(text: string): string | null {
  const m = /https?:\/\/[^\s<>()"'`\]]+/i.exec(text);
  if (!m) return null;
  return m[0].replace(/[.,;:!?*_~]+$/, '');
}
