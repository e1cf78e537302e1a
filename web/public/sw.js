// Confab's service worker: shows and closes the notifications Web Push brings (when no tab of
// ours is looking at the room) and opens the room on click. The decisions are in sw-logic.js.
import { handlePush, handleClick } from './sw-logic.js';

const seen = [];

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('push', (event) => {
  let payload = null;
  try {
    payload = event.data ? event.data.json() : null;
  } catch {
    payload = null;
  }
  event.waitUntil(handlePush(self.registration, payload, seen));
});

self.addEventListener('notificationclick', (event) => {
  event.waitUntil(handleClick(self.clients, event.notification, self.location.origin));
});
