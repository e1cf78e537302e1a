import { useState } from 'react';
import {
  Alert,
  AlertIcon,
  Box,
  Button,
  Flex,
  FormControl,
  FormLabel,
  Heading,
  Input,
  Stack,
  Tab,
  TabList,
  TabPanel,
  TabPanels,
  Tabs,
  Text,
  useColorModeValue,
} from '@chakra-ui/react';
import type { Me } from '../generated/protocol';
import { api } from '../lib/api';
import { useSubmit } from '../lib/useSubmit';
import { ColorModeButton } from './ColorModeButton';

export function AuthScreen({ onSignedIn }: { onSignedIn: (me: Me) => void }) {
  const bg = useColorModeValue('gray.50', 'gray.900');
  const card = useColorModeValue('white', 'gray.800');
  return (
    <Flex minH="100%" align="center" justify="center" bg={bg} p={4} direction="column">
      <Box position="absolute" top={3} right={3}>
        <ColorModeButton />
      </Box>
      <Heading as="h1" size="xl" mb={2} color="brand.500">
        Confab
      </Heading>
      <Text mb={6} color="gray.500">
        Real-time chat for your team
      </Text>
      <Box bg={card} w="100%" maxW="420px" borderRadius="lg" boxShadow="md" p={{ base: 3, sm: 6 }}>
        <Tabs isFitted variant="soft-rounded" colorScheme="brand">
          <TabList mb={4}>
            <Tab>Sign in</Tab>
            <Tab>Create account</Tab>
          </TabList>
          <TabPanels>
            <TabPanel p={0}>
              <LoginForm onSignedIn={onSignedIn} />
            </TabPanel>
            <TabPanel p={0}>
              <RegisterForm onSignedIn={onSignedIn} />
            </TabPanel>
          </TabPanels>
        </Tabs>
      </Box>
    </Flex>
  );
}

function ErrorAlert({ error }: { error: string | null }) {
  return error ? (
    <Alert status="error" borderRadius="md">
      <AlertIcon />
      {error}
    </Alert>
  ) : null;
}

function LoginForm({ onSignedIn }: { onSignedIn: (me: Me) => void }) {
  const [login, setLogin] = useState('');
  const [password, setPassword] = useState('');
  const { submit, busy, error } = useSubmit(async () => onSignedIn(await api.login({ login, password })));
  return (
    <form onSubmit={submit} aria-label="Sign in">
      <Stack spacing={4}>
        <ErrorAlert error={error} />
        <FormControl isRequired>
          <FormLabel>Username or email</FormLabel>
          <Input autoComplete="username" value={login} onChange={(e) => setLogin(e.target.value)} />
        </FormControl>
        <FormControl isRequired>
          <FormLabel>Password</FormLabel>
          <Input
            type="password"
            autoComplete="current-password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </FormControl>
        <Button type="submit" colorScheme="brand" isLoading={busy}>
          Sign in
        </Button>
      </Stack>
    </form>
  );
}

function RegisterForm({ onSignedIn }: { onSignedIn: (me: Me) => void }) {
  const [username, setUsername] = useState('');
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [pending, setPending] = useState<string | null>(null);
  const { submit, busy, error } = useSubmit(async () => {
    const answer = await api.register({ username, email, password });
    if ('id' in answer) onSignedIn(answer);
    else setPending(answer.message);
  });
  return (
    <form onSubmit={submit} aria-label="Create account">
      <Stack spacing={4}>
        <ErrorAlert error={error} />
        {pending && (
          <Alert status="info" borderRadius="md">
            <AlertIcon />
            {pending}
          </Alert>
        )}
        <FormControl isRequired>
          <FormLabel>Username</FormLabel>
          <Input autoComplete="username" value={username} onChange={(e) => setUsername(e.target.value)} />
        </FormControl>
        <FormControl isRequired>
          <FormLabel>Email</FormLabel>
          <Input type="email" autoComplete="email" value={email} onChange={(e) => setEmail(e.target.value)} />
        </FormControl>
        <FormControl isRequired>
          <FormLabel>Password</FormLabel>
          <Input
            type="password"
            autoComplete="new-password"
            minLength={8}
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </FormControl>
        <Button type="submit" colorScheme="brand" isLoading={busy}>
          Create account
        </Button>
      </Stack>
    </form>
  );
}
