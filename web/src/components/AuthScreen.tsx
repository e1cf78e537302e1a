import { useState } from 'react';
import { Box, Button, Flex, Heading, Stack, Tabs, Text } from '@chakra-ui/react';
import type { Me } from '../generated/protocol';
import { api, ApiError } from '../lib/api';
import { inviteFromLocation } from '../lib/adminApi';
import { useSubmit } from '../lib/useSubmit';
import { ColorModeButton } from './ui/color-mode';
import { StatusAlert } from './StatusAlert';
import { TextField } from './TextField';

export function AuthScreen({ onSignedIn }: { onSignedIn: (me: Me) => void }) {
  // A sign-up link (`/invite/CODE`) opens on the registration form, carrying the code.
  const [invite] = useState(() => inviteFromLocation());
  const signedIn = (me: Me) => {
    if (invite) window.history.replaceState(null, '', '/');
    onSignedIn(me);
  };
  return (
    <Flex minH="100%" align="center" justify="center" bg="bg.canvas" p={4} direction="column">
      <Box position="absolute" top={3} right={3}>
        <ColorModeButton />
      </Box>
      <Heading as="h1" size="4xl" mb={2} color="brand.fg">
        Confab
      </Heading>
      <Text mb={6} color="fg.muted">
        Real-time chat for your team
      </Text>
      <Box bg="bg.panel" w="100%" maxW="420px" borderRadius="lg" boxShadow="md" p={{ base: 3, sm: 6 }}>
        <Tabs.Root defaultValue={invite ? 'register' : 'sign-in'} fitted variant="subtle" colorPalette="brand">
          <Tabs.List mb={4}>
            <Tabs.Trigger value="sign-in" borderRadius="full" fontWeight="semibold">
              Sign in
            </Tabs.Trigger>
            <Tabs.Trigger value="register" borderRadius="full" fontWeight="semibold">
              Create account
            </Tabs.Trigger>
          </Tabs.List>
          <Tabs.Content value="sign-in" p={0}>
            <LoginForm onSignedIn={signedIn} />
          </Tabs.Content>
          <Tabs.Content value="register" p={0}>
            <RegisterForm onSignedIn={signedIn} invite={invite} />
          </Tabs.Content>
        </Tabs.Root>
      </Box>
    </Flex>
  );
}

function LoginForm({ onSignedIn }: { onSignedIn: (me: Me) => void }) {
  const [login, setLogin] = useState('');
  const [password, setPassword] = useState('');
  // After an administrator's reset, the sign-in must choose a new password.
  const [mustChange, setMustChange] = useState(false);
  const [newPassword, setNewPassword] = useState('');
  const { submit, busy, error } = useSubmit(async () => {
    try {
      onSignedIn(await api.login({ login, password, ...(mustChange ? { new_password: newPassword } : {}) }));
    } catch (e) {
      if (e instanceof ApiError && e.code === 'password_change_required') {
        setMustChange(true);
        return;
      }
      throw e;
    }
  });
  return (
    <form onSubmit={submit} aria-label="Sign in">
      <Stack gap={4}>
        {error && <StatusAlert status="error">{error}</StatusAlert>}
        <TextField label="Username or email" autoComplete="username" value={login} onChange={setLogin} />
        <TextField label="Password" type="password" autoComplete="current-password" value={password} onChange={setPassword} />
        {mustChange && (
          <>
            <StatusAlert status="error">An administrator reset your password: choose a new one.</StatusAlert>
            <TextField label="New password" type="password" autoComplete="new-password" minLength={8} value={newPassword} onChange={setNewPassword} />
          </>
        )}
        <Button type="submit" colorPalette="brand" loading={busy}>
          Sign in
        </Button>
      </Stack>
    </form>
  );
}

function RegisterForm({ onSignedIn, invite }: { onSignedIn: (me: Me) => void; invite: string | null }) {
  const [username, setUsername] = useState('');
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [pending, setPending] = useState<string | null>(null);
  const { submit, busy, error } = useSubmit(async () => {
    const answer = await api.register({ username, email, password, ...(invite ? { invite } : {}) });
    if ('id' in answer) onSignedIn(answer);
    else setPending(answer.message);
  });
  return (
    <form onSubmit={submit} aria-label="Create account">
      <Stack gap={4}>
        {error && <StatusAlert status="error">{error}</StatusAlert>}
        {pending && <StatusAlert status="success">{pending}</StatusAlert>}
        {invite && <StatusAlert status="success">You were invited: create your account.</StatusAlert>}
        <TextField label="Username" autoComplete="username" value={username} onChange={setUsername} />
        <TextField label="Email" type="email" autoComplete="email" value={email} onChange={setEmail} />
        <TextField
          label="Password"
          type="password"
          autoComplete="new-password"
          minLength={8}
          value={password}
          onChange={setPassword}
        />
        <Button type="submit" colorPalette="brand" loading={busy}>
          Create account
        </Button>
      </Stack>
    </form>
  );
}
