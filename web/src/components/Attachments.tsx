import { useEffect, useState } from 'react';
import {
  Box,
  Flex,
  Image,
  Link,
  Modal,
  ModalBody,
  ModalCloseButton,
  ModalContent,
  ModalOverlay,
  Text,
  useColorModeValue,
  useDisclosure,
} from '@chakra-ui/react';
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
  const border = useColorModeValue('gray.200', 'gray.600');
  const cardBg = useColorModeValue('white', 'gray.700');
  if (attachment.inline) {
    return (
      <>
        <Box
          as="button"
          type="button"
          mt={1}
          display="block"
          aria-label={`View image ${attachment.name}`}
          onClick={viewer.onOpen}
          cursor="zoom-in"
        >
          <Image
            src={attachment.url}
            alt={attachment.name}
            maxH="260px"
            maxW="min(100%, 360px)"
            borderRadius="md"
            border="1px"
            borderColor={border}
            data-testid="inline-image"
            loading="lazy"
          />
        </Box>
        <Modal isOpen={viewer.isOpen} onClose={viewer.onClose} size="6xl" isCentered>
          <ModalOverlay bg="blackAlpha.800" />
          <ModalContent bg="transparent" boxShadow="none" m={2}>
            <ModalCloseButton color="white" aria-label="Close image" />
            <ModalBody p={0} textAlign="center">
              <Image src={attachment.url} alt={attachment.name} maxH="85vh" mx="auto" data-testid="image-viewer" />
              <Link href={attachment.url} download={attachment.name} color="white" mt={2} display="inline-block">
                Download {attachment.name}
              </Link>
            </ModalBody>
          </ModalContent>
        </Modal>
      </>
    );
  }
  return (
    <Flex
      mt={1}
      align="center"
      gap={3}
      p={3}
      border="1px"
      borderColor={border}
      borderRadius="md"
      bg={cardBg}
      maxW="360px"
      data-testid="file-card"
    >
      <FileIcon boxSize={6} color="brand.400" />
      <Box flex={1} minW={0}>
        <Text noOfLines={1} fontWeight="medium">
          {attachment.name}
        </Text>
        <Text fontSize="xs" color="gray.500">
          {formatSize(attachment.size)} · {attachment.content_type}
        </Text>
      </Box>
      <Link href={attachment.url} download={attachment.name} color="brand.400" fontSize="sm" aria-label={`Download ${attachment.name}`}>
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
  const border = useColorModeValue('brand.300', 'brand.500');
  const cardBg = useColorModeValue('white', 'gray.700');
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
      borderLeft="4px solid"
      borderColor={border}
      borderRadius="md"
      bg={cardBg}
      maxW="480px"
      data-testid="link-preview"
    >
      <Box flex={1} minW={0}>
        {preview.site_name && (
          <Text fontSize="xs" color="gray.500" noOfLines={1}>
            {preview.site_name}
          </Text>
        )}
        {preview.title && (
          <Link href={preview.url} isExternal rel="noopener noreferrer nofollow" fontWeight="semibold" noOfLines={2}>
            {preview.title}
          </Link>
        )}
        {preview.description && (
          <Text fontSize="sm" noOfLines={3} color="gray.500">
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
