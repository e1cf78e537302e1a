// `@username` in message text: finding the one being typed (for the composer's autocomplete),
// completing it, and splitting a text into plain parts and mentions (for highlighting). The
// server decides who is mentioned (`ChatMessage.mentions`, user ids); the view highlights only
// those names.
import type { UserPublic } from '../generated/protocol';

/** A username: 3-32 characters of [A-Za-z0-9_-] (what registration accepts). */
const NAME = '[A-Za-z0-9_-]';

/**
 * The mention being typed before the caret: an `@` at the start or after a character that cannot
 * be part of a name or an email address, then up to 32 name characters.
 */
export function mentionQuery(text: string, caret: number): { start: number; query: string } | null {
  const before = text.slice(0, caret);
  const m = new RegExp(`(^|[^A-Za-z0-9_@.-])@(${NAME}{0,32})$`).exec(before);
  if (!m) return null;
  const start = m.index + m[1].length;
  return { start, query: m[2] };
}

/** Replaces the mention being typed by `@username ` and puts the caret after it. */
export function completeMention(
  text: string,
  at: { start: number; query: string },
  username: string,
): { text: string; caret: number } {
  const end = at.start + 1 + at.query.length;
  const rest = text.slice(end);
  const insert = `@${username}${rest.startsWith(' ') ? '' : ' '}`;
  return { text: text.slice(0, at.start) + insert + rest, caret: at.start + insert.length + (rest.startsWith(' ') ? 1 : 0) };
}

/** The people whose username starts with the query (case-insensitive), shortest names first. */
export function matchPeople(people: UserPublic[], query: string, exceptId?: string, limit = 8): UserPublic[] {
  const q = query.toLowerCase();
  return people
    .filter((u) => u.id !== exceptId && u.username.toLowerCase().startsWith(q))
    .sort((a, b) => a.username.length - b.username.length || a.username.localeCompare(b.username))
    .slice(0, limit);
}

export type TextPart = { text: string; mention?: undefined } | { text: string; mention: string };

/**
 * Splits text into plain parts and `@name` mentions of the given names (lowercase). Other
 * `@words` (and email addresses) stay plain.
 */
export function splitMentions(text: string, names: ReadonlySet<string>): TextPart[] {
  const parts: TextPart[] = [];
  // As the server reads them: not after a name character or `.` (so not in an email address).
  const re = new RegExp(`(^|[^A-Za-z0-9_.-])@(${NAME}{3,32})(?!${NAME})`, 'g');
  let last = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const name = m[2].toLowerCase();
    if (!names.has(name)) continue;
    const start = m.index + m[1].length;
    if (start > last) parts.push({ text: text.slice(last, start) });
    parts.push({ text: `@${m[2]}`, mention: name });
    last = start + 1 + m[2].length;
  }
  if (last < text.length) parts.push({ text: text.slice(last) });
  return parts;
}
