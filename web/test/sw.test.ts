import { describe, expect, it } from 'vitest';
// @ts-expect-error: plain JavaScript served as is to the service worker.
import { handleClick, handlePush, notificationFor } from '../public/sw-logic.js';

type Shown = { title: string; options: { tag: string; body: string; data: { id: string; room: string } }; closed: boolean };

function fakeRegistration() {
  const shown: Shown[] = [];
  return {
    shown,
    async showNotification(title: string, options: Shown['options']) {
      // Like a browser: a notification with the same tag replaces the shown one.
      for (const n of shown) if (n.options.tag === options.tag) n.closed = true;
      shown.push({ title, options, closed: false });
    },
    async getNotifications({ tag }: { tag: string }) {
      return shown
        .filter((n) => !n.closed && n.options.tag === tag)
        .map((n) => ({ data: n.options.data, close: () => (n.closed = true) }));
    },
  };
}

const message = (id: string, count = 1, excerpt: string | undefined = 'hello there') => ({
  type: 'message',
  id,
  tag: 'room:r1',
  room: 'r1',
  room_name: 'general',
  author: 'ann',
  excerpt,
  message: id,
  seq: 7,
  count,
  mention: true,
});

describe('service worker', () => {
  it('shows a message, one notification per room, replaced by the next', async () => {
    const reg = fakeRegistration();
    const seen: string[] = [];
    expect(await handlePush(reg, message('a'), seen)).toBe('shown');
    expect(await handlePush(reg, message('b', 3), seen)).toBe('shown');
    const open = reg.shown.filter((n) => !n.closed);
    expect(open).toHaveLength(1);
    expect(open[0].title).toBe('general (3 new)');
    expect(open[0].options.body).toBe('ann: hello there');
  });

  it('ignores a repeated push by its id', async () => {
    const reg = fakeRegistration();
    const seen: string[] = [];
    await handlePush(reg, message('a'), seen);
    expect(await handlePush(reg, message('a'), seen)).toBe('repeat');
    // Even after the worker restarted (memory lost): the shown notification carries the id.
    expect(await handlePush(reg, message('a'), [])).toBe('repeat');
    expect(reg.shown).toHaveLength(1);
  });

  it('says nothing of the text when previews are off', () => {
    const n = notificationFor({ ...message('a'), excerpt: undefined });
    expect(n.options.body).toBe('New message from ann');
  });

  it('closes the room’s notification when the room was read elsewhere', async () => {
    const reg = fakeRegistration();
    await handlePush(reg, message('a'), []);
    expect(await handlePush(reg, { type: 'close', id: 'c', tag: 'room:r1', room: 'r1' }, [])).toBe('closed');
    expect(reg.shown.every((n) => n.closed)).toBe(true);
  });

  it('opens the room on click, in an open tab when there is one', async () => {
    let closed = false;
    const notification = { data: { room: 'r 1' }, close: () => (closed = true) };
    const visits: string[] = [];
    let focused = false;
    const tab = {
      url: 'https://chat.example/#/',
      focus: async () => {
        focused = true;
      },
      navigate: async (u: string) => visits.push(u),
    };
    const opened: string[] = [];
    const clients = {
      matchAll: async () => [tab],
      openWindow: async (u: string) => opened.push(u),
    };
    const url = await handleClick(clients, notification, 'https://chat.example');
    expect(url).toBe('https://chat.example/#/rooms/r%201');
    expect(closed && focused).toBe(true);
    expect(visits).toEqual([url]);
    expect(opened).toEqual([]);
    const none = { matchAll: async () => [], openWindow: async (u: string) => opened.push(u) };
    await handleClick(none, { data: { room: 'r2' }, close: () => {} }, 'https://chat.example');
    expect(opened).toEqual(['https://chat.example/#/rooms/r2']);
  });
});
