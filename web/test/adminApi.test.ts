import { describe, expect, it } from 'vitest';
import { inviteFromLocation } from '../src/lib/adminApi';

describe('inviteFromLocation', () => {
  it('reads the code of a sign-up link', () => {
    expect(inviteFromLocation('/invite/cfi_AbC-12_x')).toBe('cfi_AbC-12_x');
  });

  it('ignores every other path', () => {
    for (const path of ['/', '/invite/', '/invite/a/b', '/rooms/1', '/invite/<script>', '/xinvite/cfi_a']) {
      expect(inviteFromLocation(path)).toBeNull();
    }
  });
});
