// A history-API router: the node serves index.html at /, /login, /register,
// /channels/..., /invite/{code} and /tracks[/upload | /{id}]; the path says what to show.

import { store } from './store.js';

/** The route a path names: {name, params}. */
export function parseRoute(pathname) {
  const parts = pathname.split('/').filter(Boolean).map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  const [head, a, b, c] = parts;
  if (head === 'login' || head === 'register') return { name: head, params: {} };
  if (head === 'invite' && a) return { name: 'invite', params: { code: a } };
  if (head === 'channels' && a === '@me' && b) {
    return { name: 'channel', params: { guildId: '@me', channelId: b, messageId: c ?? null } };
  }
  if (head === 'channels' && a && a !== '@me') {
    if (!b) return { name: 'guild', params: { guildId: a } };
    if (b === 'settings') return { name: 'settings', params: { guildId: a, section: c ?? 'overview' } };
    return { name: 'channel', params: { guildId: a, channelId: b, messageId: c ?? null } };
  }
  if (head === 'tracks' && !a) return { name: 'tracks', params: {} };
  if (head === 'tracks' && a === 'upload' && !b) return { name: 'track-upload', params: {} };
  if (head === 'tracks' && a && !b) return { name: 'track', params: { trackId: a } };
  return { name: 'home', params: {} };
}

/** A channel's path; a DM's guild is '@me' (null from the node). A message id makes it a
 *  jump link. */
export function channelPath(guildId, channelId, messageId = null) {
  const path = `/channels/${guildId ?? '@me'}/${channelId}`;
  return messageId ? `${path}/${messageId}` : path;
}

export function settingsPath(guildId, section = 'overview') {
  return `/channels/${guildId}/settings/${section}`;
}

function update() {
  store.route = parseRoute(location.pathname);
  store.emit('route', store.route);
}

export function navigate(path, { replace = false } = {}) {
  if (path !== location.pathname + location.search) {
    history[replace ? 'replaceState' : 'pushState'](null, '', path);
  }
  update();
}

export function startRouter() {
  addEventListener('popstate', update);
  // Links marked data-route stay in the page.
  document.addEventListener('click', (event) => {
    const link = event.target.closest?.('a[data-route]');
    if (!link || event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const url = new URL(link.href);
    if (url.origin !== location.origin) return;
    event.preventDefault();
    navigate(url.pathname + url.search);
  });
  update();
}
