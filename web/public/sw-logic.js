// The service worker's decisions, kept apart from the worker's event wiring (sw.js) so the
// unit tests can drive them with fakes. Payloads are `PushPayload` (src/generated/protocol.ts).

/** How many push ids are remembered to recognise a repeat (pushes come at least once). */
const REMEMBERED = 200;

/** The notification a message push shows: title, body and options. */
export function notificationFor(p) {
  const more = p.count > 1 ? ` (${p.count} new)` : '';
  const title = p.room_name ? `${p.room_name}${more}` : `${p.author}${more}`;
  const body = p.excerpt != null ? `${p.author}: ${p.excerpt}` : `New message from ${p.author}`;
  return {
    title,
    options: {
      body,
      tag: p.tag,
      renotify: true,
      data: { id: p.id, room: p.room, seq: p.seq },
    },
  };
}

/**
 * Handles one push: shows (replacing the room's notification, one tag per room) or closes.
 * `seen` is the worker's memory of push ids; a repeat is ignored. Returns what was done.
 */
export async function handlePush(registration, payload, seen) {
  if (!payload || typeof payload !== 'object') return 'ignored';
  if (payload.type === 'close') {
    const shown = await registration.getNotifications({ tag: payload.tag });
    for (const n of shown) n.close();
    return 'closed';
  }
  if (payload.type !== 'message') return 'ignored';
  if (seen.includes(payload.id)) return 'repeat';
  const shown = await registration.getNotifications({ tag: payload.tag });
  if (shown.some((n) => n.data && n.data.id === payload.id)) return 'repeat';
  seen.push(payload.id);
  if (seen.length > REMEMBERED) seen.splice(0, seen.length - REMEMBERED);
  const { title, options } = notificationFor(payload);
  await registration.showNotification(title, options);
  return 'shown';
}

/** The client route of a room. */
export function roomUrl(origin, room) {
  return `${origin}/#/rooms/${encodeURIComponent(room)}`;
}

/**
 * A click: close the notification and open its room, in a tab of ours if one is open
 * (focused and navigated), else in a new window. Returns the URL opened.
 */
export async function handleClick(clients, notification, origin) {
  notification.close();
  const room = notification.data && notification.data.room;
  const url = room ? roomUrl(origin, room) : `${origin}/`;
  const windows = await clients.matchAll({ type: 'window', includeUncontrolled: true });
  const ours = windows.find((w) => w.url.startsWith(origin));
  if (ours) {
    await ours.focus();
    if ('navigate' in ours) await ours.navigate(url);
    return url;
  }
  await clients.openWindow(url);
  return url;
}
