// Message bodies as GitHub-flavoured Markdown. Raw HTML is never rendered: HTML in a message
// is turned into plain text before rendering, links open in a new tab without an opener, and
// Markdown images become links (no image is fetched unless someone follows the link).
import { memo } from 'react';
import ReactMarkdown, { type Components } from 'react-markdown';
import remarkGfm from 'remark-gfm';
import { Box, Link } from '@chakra-ui/react';

interface MdNode {
  type: string;
  value?: string;
  children?: MdNode[];
}

function htmlAsText() {
  const walk = (node: MdNode) => {
    if (node.type === 'html') node.type = 'text';
    node.children?.forEach(walk);
  };
  return (tree: MdNode) => walk(tree);
}

const components: Components = {
  a: ({ href, children }) => (
    <Link href={href} color="brand.400" textDecoration="underline" isExternal rel="noopener noreferrer nofollow">
      {children}
    </Link>
  ),
  img: ({ src, alt }) => (
    <Link href={typeof src === 'string' ? src : undefined} color="brand.400" isExternal rel="noopener noreferrer nofollow">
      {alt || 'image'}
    </Link>
  ),
};

export const Markdown = memo(function Markdown({ text }: { text: string }) {
  return (
    <Box
      className="markdown"
      wordBreak="break-word"
      sx={{
        'p, ul, ol, pre, blockquote, table': { my: 1 },
        'p:first-of-type': { mt: 0 },
        'p:last-of-type': { mb: 0 },
        'ul, ol': { pl: 5 },
        code: { fontFamily: 'mono', fontSize: '0.9em', px: 1, borderRadius: 'sm', bg: 'blackAlpha.100', _dark: { bg: 'whiteAlpha.200' } },
        pre: { p: 2, borderRadius: 'md', overflowX: 'auto', bg: 'blackAlpha.100', _dark: { bg: 'whiteAlpha.100' } },
        'pre code': { p: 0, bg: 'transparent' },
        blockquote: { borderLeft: '3px solid', borderColor: 'gray.300', pl: 3, color: 'gray.500' },
        table: { borderCollapse: 'collapse', display: 'block', overflowX: 'auto' },
        'th, td': { border: '1px solid', borderColor: 'gray.300', px: 2, py: 0.5 },
        'h1, h2, h3, h4, h5, h6': { fontWeight: 'bold', my: 1 },
        h1: { fontSize: 'xl' },
        h2: { fontSize: 'lg' },
        'input[type=checkbox]': { mr: 1 },
        hr: { my: 2 },
      }}
    >
      <ReactMarkdown remarkPlugins={[remarkGfm, htmlAsText]} components={components}>
        {text}
      </ReactMarkdown>
    </Box>
  );
});
