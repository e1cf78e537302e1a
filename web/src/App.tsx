import { useCallback, useEffect, useState } from 'react';
import { Center, Spinner } from '@chakra-ui/react';
import type { Me } from './generated/protocol';
import { api, onSessionLost } from './lib/api';
import { AuthScreen } from './components/AuthScreen';
import { ChatApp } from './components/ChatApp';

type Session = { kind: 'loading' } | { kind: 'anonymous' } | { kind: 'signed-in'; me: Me };

export function App() {
  const [session, setSession] = useState<Session>({ kind: 'loading' });

  useEffect(() => {
    onSessionLost(() => setSession({ kind: 'anonymous' }));
    api
      .me()
      .then((me) => setSession({ kind: 'signed-in', me }))
      // Signed out, or an unreachable server: the login form, which reports errors itself.
      .catch(() => setSession({ kind: 'anonymous' }));
  }, []);

  const signedOut = useCallback(() => setSession({ kind: 'anonymous' }), []);

  if (session.kind === 'loading') {
    return (
      <Center h="100%">
        <Spinner size="lg" color="brand.solid" role="status" aria-label="Loading" />
      </Center>
    );
  }
  if (session.kind === 'anonymous') {
    return <AuthScreen onSignedIn={(me) => setSession({ kind: 'signed-in', me })} />;
  }
  return (
    <ChatApp
      key={session.me.id}
      me={session.me}
      onMeChanged={(me) => setSession({ kind: 'signed-in', me })}
      onSignedOut={signedOut}
    />
  );
}
