import { useEffect, useState } from 'react';
import { Box, CloseButton, Dialog, Flex, Image, Link, Portal, Text, useDisclosure } from '@chakra-ui/react';
import type { Attachment, LinkPreview } from '../generated/protocol';
import { api } from '../lib/api';
import { FileIcon } from './icons';

export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

export function AttachmentView({ attachment }: { attachment: Attachment }) {
  const viewer = useDisclosure();
  if (attachment.inline) {
    return (
      <>
        <Box
          asChild
          mt={1}
          display="block"
          cursor="zoom-in"
          borderRadius="md"
          focusVisibleRing="outside"
        >
          <button type="button" aria-label={`View image ${attachment.name}`} onClick={viewer.onOpen}>
            <Image
              src={attachment.url}
              alt={attachment.name}
              maxH="260px"
              maxW="min(100%, 360px)"
              borderRadius="md"
              borderWidth="1px"
              data-testid="inline-image"
              loading="lazy"
            />
          </button>
        </Box>
        <Dialog.Root
          open={viewer.open}
          onOpenChange={(e) => viewer.setOpen(e.open)}
          placement="center"
          lazyMount
          unmountOnExit
        >
          <Portal>
            <Dialog.Backdrop bg="blackAlpha.800" />
            <Dialog.Positioner p={2}>
              <Dialog.Content
                w="auto"
                maxW="100%"
                bg="transparent"
                boxShadow="none"
                alignItems="center"
                aria-label={attachment.name}
              >
                <Image src={attachment.url} alt={attachment.name} maxW="100%" maxH="85vh" objectFit="contain" data-testid="image-viewer" />
                <Link href={attachment.url} download={attachment.name} color="white" mt={2}>
                  Download {attachment.name}
                </Link>
                <Dialog.CloseTrigger asChild>
                  <CloseButton size="sm" color="white" bg="blackAlpha.600" _hover={{ bg: "blackAlpha.800" }} aria-label="Close image" />
                </Dialog.CloseTrigger>
              </Dialog.Content>
            </Dialog.Positioner>
          </Portal>
        </Dialog.Root>
      </>
    );
  }
  return (
    <Flex
      mt={1}
      align="center"
      gap={3}
      p={3}
      borderWidth="1px"
      borderRadius="md"
      bg="bg.panel"
      maxW="360px"
      data-testid="file-card"
    >
      <FileIcon boxSize={6} color="brand.fg" />
      <Box flex={1} minW={0}>
        <Text lineClamp={1} fontWeight="medium">
          {attachment.name}
        </Text>
        <Text fontSize="xs" color="fg.muted">
          {formatSize(attachment.size)} · {attachment.content_type}
        </Text>
      </Box>
      <Link href={attachment.url} download={attachment.name} color="brand.fg" fontSize="sm" aria-label={`Download ${attachment.name}`}>
        Download
      </Link>
    </Flex>
  );
}

// One request per URL per page load; failures (including a server without previews) cache null.
const previews = new Map<string, Promise<LinkPreview | null>>();

function loadPreview(url: string): Promise<LinkPreview | null> {
  let p = previews.get(url);
  if (!p) {
    p = api.preview(url).catch(() => null);
    previews.set(url, p);
  }
  return p;
}

export function LinkPreviewCard({ url }: { url: string }) {
  const [preview, setPreview] = useState<LinkPreview | null>(null);
  useEffect(() => {
    let live = true;
    void loadPreview(url).then((p) => live && setPreview(p));
    return () => {
      live = false;
    };
  }, [url]);
  if (!preview || (!preview.title && !preview.description)) return null;
  return (
    <Flex
      mt={2}
      gap={3}
      p={3}
      borderStartWidth="4px"
      borderColor="brand.border"
      borderRadius="md"
      bg="bg.panel"
      maxW="480px"
      data-testid="link-preview"
    >
      <Box flex={1} minW={0}>
        {preview.site_name && (
          <Text fontSize="xs" color="fg.muted" lineClamp={1}>
            {preview.site_name}
          </Text>
        )}
        {preview.title && (
          <Link
            href={preview.url}
            target="_blank"
            rel="noopener noreferrer nofollow"
            fontWeight="semibold"
            lineClamp={2}
          >
            {preview.title}
          </Link>
        )}
        {preview.description && (
          <Text fontSize="sm" lineClamp={3} color="fg.muted">
            {preview.description}
          </Text>
        )}
      </Box>
      {preview.image && (
        <Image src={preview.image} alt="" boxSize="72px" objectFit="cover" borderRadius="md" flexShrink={0} />
      )}
    </Flex>
  );
}
