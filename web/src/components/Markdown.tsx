// Message bodies as GitHub-flavoured Markdown. Raw HTML is never rendered: HTML in a message
// is turned into plain text before rendering, links open in a new tab without an opener, and
// Markdown images become links (no image is fetched unless someone follows the link).
// `@name` mentions of the people the server says are mentioned are highlighted (the user's own
// name more strongly); other `@words` and mentions in code stay plain.
import { memo, useMemo } from 'react';
import ReactMarkdown, { type Components } from 'react-markdown';
import remarkGfm from 'remark-gfm';
import { Box, Link } from '@chakra-ui/react';
import { splitMentions } from '../lib/mentions';

interface MdNode {
  type: string;
  value?: string;
  children?: MdNode[];
  data?: unknown;
}

function htmlAsText() {
  const walk = (node: MdNode) => {
    if (node.type === 'html') node.type = 'text';
    node.children?.forEach(walk);
  };
  return (tree: MdNode) => walk(tree);
}

/** Turns `@name` in text (outside code and links) into highlighted spans. */
function highlightMentions(names: ReadonlySet<string>, me: string | undefined) {
  const walk = (node: MdNode) => {
    if (!node.children || node.type === 'link' || node.type === 'linkReference') return;
    const next: MdNode[] = [];
    for (const child of node.children) {
      if (child.type !== 'text' || !child.value?.includes('@')) {
        walk(child);
        next.push(child);
        continue;
      }
      for (const part of splitMentions(child.value, names)) {
        if (!part.mention) {
          next.push({ type: 'text', value: part.text });
          continue;
        }
        const mine = part.mention === me;
        next.push({
          type: 'mention',
          children: [{ type: 'text', value: part.text }],
          data: {
            hName: 'span',
            hProperties: { className: mine ? ['mention', 'mention-me'] : ['mention'], 'data-mention': part.mention },
          },
        } as MdNode);
      }
    }
    node.children = next;
  };
  return () => (tree: MdNode) => walk(tree);
}

// Links leave the app: a new tab, no opener, no referrer, no search-engine credit.
const external = { target: '_blank', rel: 'noopener noreferrer nofollow' } as const;

const components: Components = {
  a: ({ href, children }) => (
    <Link href={href} color="brand.fg" textDecoration="underline" {...external}>
      {children}
    </Link>
  ),
  img: ({ src, alt }) => (
    <Link href={typeof src === 'string' ? src : undefined} color="brand.fg" {...external}>
      {alt || 'image'}
    </Link>
  ),
};

interface Props {
  text: string;
  /** The lowercase names mentioned (space-separated, so memo compares a string). */
  mentioned?: string;
  /** The user's own lowercase name, highlighted more. */
  me?: string;
}

export const Markdown = memo(function Markdown({ text, mentioned = '', me }: Props) {
  const plugins = useMemo(() => {
    const names = new Set(mentioned.split(' ').filter(Boolean));
    return names.size ? [remarkGfm, htmlAsText, highlightMentions(names, me)] : [remarkGfm, htmlAsText];
  }, [mentioned, me]);
  return (
    <Box
      className="markdown"
      wordBreak="break-word"
      css={{
        '& :is(p, ul, ol, pre, blockquote, table)': { my: 1 },
        '& p:first-of-type': { mt: 0 },
        '& p:last-of-type': { mb: 0 },
        '& :is(ul, ol)': { ps: 5 },
        '& ul': { listStyleType: 'disc' },
        '& ol': { listStyleType: 'decimal' },
        '& code': { fontFamily: 'mono', fontSize: '0.9em', px: 1, borderRadius: 'sm', bg: 'bg.emphasized' },
        '& pre': { p: 2, borderRadius: 'md', overflowX: 'auto', bg: 'bg.muted' },
        '& pre code': { p: 0, bg: 'transparent' },
        '& blockquote': { borderStartWidth: '3px', borderColor: 'border.emphasized', ps: 3, color: 'fg.muted' },
        '& table': { borderCollapse: 'collapse', display: 'block', overflowX: 'auto' },
        '& :is(th, td)': { borderWidth: '1px', borderColor: 'border.emphasized', px: 2, py: 0.5 },
        '& :is(h1, h2, h3, h4, h5, h6)': { fontWeight: 'bold', my: 1 },
        '& h1': { fontSize: 'xl' },
        '& h2': { fontSize: 'lg' },
        '& input[type=checkbox]': { me: 1 },
        '& li.task-list-item': { listStyleType: 'none', ms: -5 },
        '& hr': { my: 2 },
        '& .mention': { color: 'brand.fg', bg: 'brand.subtle', fontWeight: 'semibold', borderRadius: 'sm', px: 0.5 },
        '& .mention-me': { color: 'brand.contrast', bg: 'brand.solid' },
      }}
    >
      <ReactMarkdown remarkPlugins={plugins} components={components}>
        {text}
      </ReactMarkdown>
    </Box>
  );
});
