// The HTTP calls of site administration, invites, API tokens, bots and webhooks (issue 17).
import type {
  AdminUser,
  AdminUserPage,
  AuditPage,
  Bot,
  Invite,
  PasswordReset,
  SiteRole,
  TokenCreated,
  TokenInfo,
  TokenScope,
  Webhook,
} from '../generated/protocol';
import { request } from './api';

const q = (params: Record<string, string | number | undefined>) => {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
};

export const adminApi = {
  users: (query: string, after?: string) => request<AdminUserPage>('GET', `/api/admin/users${q({ q: query, after, limit: 50 })}`),
  setRole: (id: string, role: SiteRole) => request<AdminUser>('PATCH', `/api/admin/users/${id}`, { role }),
  deactivate: (id: string) => request<AdminUser>('POST', `/api/admin/users/${id}/deactivate`, {}),
  reactivate: (id: string) => request<AdminUser>('POST', `/api/admin/users/${id}/reactivate`, {}),
  resetPassword: (id: string) => request<PasswordReset>('POST', `/api/admin/users/${id}/reset-password`, {}),
  audit: (before?: number) => request<AuditPage>('GET', `/api/admin/audit${q({ before, limit: 50 })}`),
  deleteRoom: (id: string) => request<void>('DELETE', `/api/admin/rooms/${id}`),
  invites: () => request<Invite[]>('GET', '/api/invites'),
  createInvite: (uses: number, expires_in_secs: number) => request<Invite>('POST', '/api/invites', { uses, expires_in_secs }),
  revokeInvite: (id: string) => request<void>('DELETE', `/api/invites/${id}`),
  tokens: () => request<TokenInfo[]>('GET', '/api/me/tokens'),
  createToken: (name: string, scopes: TokenScope[]) => request<TokenCreated>('POST', '/api/me/tokens', { name, scopes }),
  revokeToken: (id: string) => request<void>('DELETE', `/api/me/tokens/${id}`),
  bots: () => request<Bot[]>('GET', '/api/me/bots'),
  createBot: (name: string) => request<Bot>('POST', '/api/me/bots', { name }),
  deleteBot: (id: string) => request<void>('DELETE', `/api/me/bots/${id}`),
  createBotToken: (bot: string, name: string, scopes: TokenScope[]) =>
    request<TokenCreated>('POST', `/api/me/bots/${bot}/tokens`, { name, scopes }),
  webhooks: (room: string) => request<Webhook[]>('GET', `/api/rooms/${room}/webhooks`),
  createWebhook: (room: string, name: string) => request<Webhook>('POST', `/api/rooms/${room}/webhooks`, { name }),
  revokeWebhook: (room: string, id: string) => request<void>('DELETE', `/api/rooms/${room}/webhooks/${id}`),
};

/** The invite code of a sign-up link (`/invite/CODE`), if this page is one. */
export function inviteFromLocation(path = window.location.pathname): string | null {
  const m = /^\/invite\/([A-Za-z0-9_-]+)$/.exec(path);
  return m ? m[1] : null;
}
