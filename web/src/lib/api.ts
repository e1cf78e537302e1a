// The HTTP API, same-origin with cookie sessions. A 401 triggers one `POST /api/auth/refresh`
// and one retry; if that fails too, `onSessionLost` tells the app to show the login screen.
import type {
  Attachment,
  Ban,
  ChangeAck,
  ChangePasswordRequest,
  CreateRoomRequest,
  ErrorBody,
  ErrorCode,
  EventPage,
  LinkPreview,
  LoginRequest,
  Me,
  Member,
  MessagePage,
  Pin,
  Receipt,
  RegisterRequest,
  RegistrationPending,
  Room,
  RoomPage,
  RoomRole,
  RoomScope,
  SearchPage,
  UpdateMeRequest,
  UpdateRoomRequest,
  UserPage,
} from '../generated/protocol';

/** An error answered by the server (or a network failure, with code `network`). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode | 'network',
    message: string,
  ) {
    super(message);
  }
}

let sessionLost: () => void = () => {};

/** Registers what to do when the session cannot be refreshed. */
export function onSessionLost(handler: () => void): void {
  sessionLost = handler;
}

let refreshing: Promise<RefreshResult> | null = null;

/** `ok`: new cookies; `denied`: the session is over; `error`: server unreachable, try later. */
export type RefreshResult = 'ok' | 'denied' | 'error';

// A password change ends every session and answers with new cookies; the server may close
// this tab's socket before that answer arrives. Refreshing with the old token meanwhile would be
// refused (it was revoked), so a refresh waits for a session change in flight.
let sessionChange: Promise<unknown> | null = null;

// Refresh tokens are single-use and a reused one ends the whole session, so two tabs (which
// share cookies) must never refresh at the same moment: a Web Lock serializes them.
function withRefreshLock<T>(f: () => Promise<T>): Promise<T> {
  const locks = typeof navigator !== 'undefined' ? navigator.locks : undefined;
  return locks ? (locks.request('confab-refresh', f) as Promise<T>) : f();
}

/** Refreshes the session once, sharing one request between concurrent callers. */
export function refreshSession(): Promise<RefreshResult> {
  if (!refreshing) {
    refreshing = Promise.resolve(sessionChange)
      .catch(() => {})
      .then(() => withRefreshLock(() => fetch('/api/auth/refresh', { method: 'POST', credentials: 'same-origin' })))
      .then((r): RefreshResult => (r.ok ? 'ok' : r.status === 401 || r.status === 403 ? 'denied' : 'error'))
      .catch((): RefreshResult => 'error')
      .finally(() => {
        refreshing = null;
      });
  }
  return refreshing;
}

async function toError(res: Response): Promise<ApiError> {
  try {
    const body = (await res.json()) as ErrorBody;
    return new ApiError(res.status, body.error.code, body.error.message);
  } catch {
    return new ApiError(res.status, 'internal', `${res.status} ${res.statusText}`);
  }
}

export async function request<T>(method: string, path: string, body?: unknown, retry = true): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      credentials: 'same-origin',
      headers: body === undefined ? undefined : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'network', 'The server cannot be reached.');
  }
  if (res.status === 401 && retry && !path.startsWith('/api/auth/')) {
    const refreshed = await refreshSession();
    if (refreshed === 'ok') return request<T>(method, path, body, false);
    if (refreshed === 'denied') sessionLost();
  }
  if (!res.ok) throw await toError(res);
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

function qs(params: Record<string, string | number | undefined>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
}

export const api = {
  // `Me` (signed in), or `RegistrationPending` on a server that confirms addresses by e-mail.
  register: (req: RegisterRequest) => request<Me | RegistrationPending>('POST', '/api/auth/register', req),
  login: (req: LoginRequest) => request<Me>('POST', '/api/auth/login', req),
  logout: () => request<void>('POST', '/api/auth/logout'),
  me: () => request<Me>('GET', '/api/me'),
  changePassword: (req: ChangePasswordRequest): Promise<Me> => {
    const p = request<Me>('POST', '/api/me/password', req);
    sessionChange = p;
    const clear = () => {
      if (sessionChange === p) sessionChange = null;
    };
    p.then(clear, clear);
    return p;
  },
  rooms: (scope: RoomScope, q = '', cursor?: string, limit = 50) =>
    request<RoomPage>('GET', `/api/rooms${qs({ scope, q, cursor, limit })}`),
  updateMe: (req: UpdateMeRequest) => request<Me>('PATCH', '/api/me', req),
  room: (id: string) => request<Room>('GET', `/api/rooms/${id}`),
  createRoom: (req: CreateRoomRequest) => request<Room>('POST', '/api/rooms', req),
  updateRoom: (id: string, req: UpdateRoomRequest) => request<Room>('PATCH', `/api/rooms/${id}`, req),
  joinRoom: (id: string) => request<Room>('POST', `/api/rooms/${id}/join`),
  leaveRoom: (id: string) => request<void>('POST', `/api/rooms/${id}/leave`),
  members: (id: string) => request<Member[]>('GET', `/api/rooms/${id}/members`),
  addMember: (id: string, user: string) => request<Member>('POST', `/api/rooms/${id}/members`, { user }),
  removeMember: (id: string, user: string) =>
    request<void>('DELETE', `/api/rooms/${id}/members/${encodeURIComponent(user)}`),
  setRole: (id: string, user: string, role: RoomRole) =>
    request<Member>('PATCH', `/api/rooms/${id}/members/${encodeURIComponent(user)}`, { role }),
  bans: (id: string) => request<Ban[]>('GET', `/api/rooms/${id}/bans`),
  ban: (id: string, user: string) => request<void>('POST', `/api/rooms/${id}/bans`, { user }),
  unban: (id: string, user: string) => request<void>('DELETE', `/api/rooms/${id}/bans/${encodeURIComponent(user)}`),
  createDm: (users: string[]) => request<Room>('POST', '/api/dms', { users }),
  users: (q: string, cursor?: string, limit = 20) => request<UserPage>('GET', `/api/users${qs({ q, cursor, limit })}`),
  messages: (id: string, beforeSeq?: number, limit = 50) =>
    request<MessagePage>('GET', `/api/rooms/${id}/messages${qs({ before_seq: beforeSeq, limit })}`),
  messagesAround: (id: string, seq: number, limit = 50) =>
    request<MessagePage>('GET', `/api/rooms/${id}/messages${qs({ around_seq: seq, limit })}`),
  events: (id: string, afterSeq: number, limit = 500) =>
    request<EventPage>('GET', `/api/rooms/${id}/events${qs({ after_seq: afterSeq, limit })}`),
  markRead: (id: string, seq: number) => request<void>('POST', `/api/rooms/${id}/read`, { seq }),
  receipts: (id: string) => request<Receipt[]>('GET', `/api/rooms/${id}/receipts`),
  pins: (id: string) => request<Pin[]>('GET', `/api/rooms/${id}/pins`),
  setPinned: (message: string, pinned: boolean) =>
    request<ChangeAck>(pinned ? 'PUT' : 'DELETE', `/api/messages/${message}/pin`),
  search: (q: string, room?: string, cursor?: string, limit = 20) =>
    request<SearchPage>('GET', `/api/search${qs({ q, room, cursor, limit })}`),
  preview: (url: string) => request<LinkPreview>('GET', `/api/preview${qs({ url })}`),
};

/** Uploads a file into a room with progress (fetch has no upload progress; XHR does). */
export function uploadFile(
  roomId: string,
  file: File,
  onProgress: (fraction: number) => void,
  retry = true,
): { promise: Promise<Attachment>; abort: () => void } {
  const xhr = new XMLHttpRequest();
  const promise = new Promise<Attachment>((resolve, reject) => {
    xhr.open('POST', '/api/uploads');
    xhr.withCredentials = true;
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    };
    xhr.onerror = () => reject(new ApiError(0, 'network', 'The upload failed.'));
    xhr.onabort = () => reject(new ApiError(0, 'network', 'The upload was cancelled.'));
    xhr.onload = () => {
      if (xhr.status === 401 && retry) {
        void refreshSession().then((r) => {
          if (r === 'ok') uploadFile(roomId, file, onProgress, false).promise.then(resolve, reject);
          else reject(new ApiError(401, 'unauthorized', 'Your session has ended.'));
        });
        return;
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(JSON.parse(xhr.responseText) as Attachment);
        return;
      }
      if (xhr.status === 404 || xhr.status === 405) {
        reject(new ApiError(xhr.status, 'not_found', 'This server does not accept uploads yet.'));
        return;
      }
      try {
        const body = JSON.parse(xhr.responseText) as ErrorBody;
        reject(new ApiError(xhr.status, body.error.code, body.error.message));
      } catch {
        reject(new ApiError(xhr.status, 'internal', `Upload failed (${xhr.status}).`));
      }
    };
    const form = new FormData();
    form.append('room_id', roomId);
    form.append('file', file, file.name);
    xhr.send(form);
  });
  return { promise, abort: () => xhr.abort() };
}
