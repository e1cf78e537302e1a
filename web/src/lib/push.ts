// Notifications that reach this browser with no tab open: the service worker (public/sw.js),
// this device's Web Push subscription, and the notification settings and levels API.
import { request } from './api';
import type {
  NotificationLevel,
  NotificationSettings,
  PushKey,
  RoomNotificationLevel,
} from '../generated/protocol';

export const notifyApi = {
  settings: () => request<NotificationSettings>('GET', '/api/me/notifications'),
  setLevel: (room: string, level: NotificationLevel) =>
    request<RoomNotificationLevel>('PATCH', `/api/rooms/${encodeURIComponent(room)}/notifications`, { level }),
  key: () => request<PushKey>('GET', '/api/push/key'),
  subscribe: (endpoint: string, p256dh: string, auth: string) =>
    request<void>('POST', '/api/push/subscriptions', { endpoint, keys: { p256dh, auth } }),
  unsubscribe: (endpoint: string) => request<void>('DELETE', '/api/push/subscriptions', { endpoint }),
};

export function pushSupported(): boolean {
  return (
    typeof navigator !== 'undefined' &&
    'serviceWorker' in navigator &&
    typeof window !== 'undefined' &&
    'PushManager' in window &&
    'Notification' in window
  );
}

function keyBytes(b64url: string): Uint8Array<ArrayBuffer> {
  const b64 = b64url.replace(/-/g, '+').replace(/_/g, '/');
  const raw = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  const out = new Uint8Array(new ArrayBuffer(raw.length));
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

/** Registers the service worker (it also shows pushes while tabs are closed). */
export async function registerServiceWorker(): Promise<ServiceWorkerRegistration | null> {
  if (!pushSupported()) return null;
  try {
    return await navigator.serviceWorker.register('/sw.js', { type: 'module', scope: '/' });
  } catch {
    return null;
  }
}

/** This browser's current subscription, if any. */
export async function currentSubscription(): Promise<PushSubscription | null> {
  if (!pushSupported()) return null;
  const reg = await navigator.serviceWorker.getRegistration('/');
  return reg ? reg.pushManager.getSubscription() : null;
}

/** Asks for permission, subscribes this browser and tells the server. */
export async function enablePush(): Promise<void> {
  if (!pushSupported()) throw new Error('This browser cannot receive push notifications.');
  const permission = await Notification.requestPermission();
  if (permission !== 'granted') throw new Error('Notifications are blocked for this site in the browser.');
  const { key } = await notifyApi.key();
  const reg = (await registerServiceWorker()) ?? (await navigator.serviceWorker.ready);
  const sub =
    (await reg.pushManager.getSubscription()) ??
    (await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(key) }));
  const json = sub.toJSON();
  await notifyApi.subscribe(sub.endpoint, json.keys?.p256dh ?? '', json.keys?.auth ?? '');
}

/** Unsubscribes this browser and tells the server. */
export async function disablePush(): Promise<void> {
  const sub = await currentSubscription();
  if (!sub) return;
  await notifyApi.unsubscribe(sub.endpoint).catch(() => {});
  await sub.unsubscribe();
}

/** The favicon with a badge of `count` unread mentions (0: the plain icon). */
export function setFaviconCount(count: number): void {
  if (typeof document === 'undefined') return;
  const link = document.querySelector<HTMLLinkElement>('link[rel="icon"]');
  if (!link) return;
  if (!link.dataset.plain) link.dataset.plain = link.href;
  if (count <= 0) {
    link.href = link.dataset.plain;
    return;
  }
  const label = count > 99 ? '99+' : String(count);
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64">` +
    `<rect width="64" height="64" rx="14" fill="#4f46e5"/>` +
    `<circle cx="44" cy="20" r="20" fill="#e11d48"/>` +
    `<text x="44" y="28" font-size="${label.length > 2 ? 16 : 22}" font-family="sans-serif" font-weight="bold" fill="#fff" text-anchor="middle">${label}</text></svg>`;
  link.href = `data:image/svg+xml,${encodeURIComponent(svg)}`;
}
