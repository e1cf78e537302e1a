import { useState, type FormEvent } from 'react';
import { ApiError } from './api';

/**
 * A form's submit handler with its busy flag and error text. `action` runs on each submit; an
 * `ApiError` shows the server's message, anything else shows `fallback`.
 */
export function useSubmit(action: () => Promise<void>, fallback = 'Something went wrong.') {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await action();
    } catch (err) {
      setError(err instanceof ApiError ? err.message : fallback);
    } finally {
      setBusy(false);
    }
  };
  return { submit, busy, error };
}
