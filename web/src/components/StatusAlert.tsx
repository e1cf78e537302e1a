import type { ReactNode } from 'react';
import { Alert } from '@chakra-ui/react';

/** The outcome of a form, announced to screen readers as it appears. */
export function StatusAlert({ status, children }: { status: 'error' | 'success'; children: ReactNode }) {
  return (
    <Alert.Root status={status} role="alert" borderRadius="md">
      <Alert.Indicator />
      <Alert.Title fontWeight="normal">{children}</Alert.Title>
    </Alert.Root>
  );
}
