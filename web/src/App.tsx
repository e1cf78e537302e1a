import { useCallback, useEffect, useState } from 'react';
import { Center, Spinner } from '@chakra-ui/react';
import type { Me } from './generated/protocol';
import { api, ApiError, onSessionLost } from './lib/api';
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
      .catch((e: unknown) => {
        // Unreachable server: still show the login form; it reports errors itself.
        if (e instanceof ApiError) setSession({ kind: 'anonymous' });
        else setSession({ kind: 'anonymous' });
      });
  }, []);

  const signedOut = useCallback(() => setSession({ kind: 'anonymous' }), []);

  if (session.kind === 'loading') {
    return (
      <Center h="100%">
        <Spinner label="Loading" />
      </Center>
    );
  }
  if (session.kind === 'anonymous') {
    return <AuthScreen onSignedIn={(me) => setSession({ kind: 'signed-in', me })} />;
  }
  return <ChatApp key={session.me.id} me={session.me} onSignedOut={signedOut} />;
}
