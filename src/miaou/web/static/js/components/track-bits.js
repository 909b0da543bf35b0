// Small pieces the audio screens share: times, covers, bylines, page headers.

import { h } from '../dom.js';
import { coverSource, userName } from '../audio/tracks-api.js';
import { store } from '../store.js';
import { icon } from './bits.js';

/** 83.4 -> "1:23"; an hour or more -> "1:02:03". */
export function formatTime(seconds) {
  const total = Math.max(0, Math.floor(Number.isFinite(seconds) ? seconds : 0));
  const s = String(total % 60).padStart(2, '0');
  const m = Math.floor(total / 60) % 60;
  const hours = Math.floor(total / 3600);
  return hours ? `${hours}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

/** "1 minute 23 seconds", for screen readers. */
export function spokenTime(seconds) {
  const total = Math.max(0, Math.floor(Number.isFinite(seconds) ? seconds : 0));
  const m = Math.floor(total / 60);
  const s = total % 60;
  const part = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;
  return m ? `${part(m, 'minute')} ${part(s, 'second')}` : part(s, 'second');
}

export const VISIBILITY_TEXT = {
  public: 'Public: anyone can find and play it',
  unlisted: 'Unlisted: anyone with the secret link',
  private: 'Private: you and the people you share it with',
};

/** Who made it: the artist tag, else the uploader's name if this client knows it. */
export function byline(track) {
  if (track.artist) return track.artist;
  if (track.owner) return track.owner.display_name || track.owner.username;
  if (track.owner_id === store.me?.id) return store.me.display_name || store.me.username;
  const user = store.users.get(track.owner_id);
  return user ? user.display_name || user.username : null;
}

/** A <span> with the byline; an uploader this client has not met is asked for by id. */
export function bylineElement(track, className) {
  const known = byline(track);
  const span = h('span', { class: className, text: known ?? '…' });
  if (known == null) {
    userName(track.owner_id)
      .then((name) => (span.textContent = name))
      .catch(() => (span.textContent = 'Unknown artist'));
  }
  return span;
}

export function isMine(track) {
  return Boolean(store.me && track.owner_id === store.me.id);
}

/** A square cover image (or a placeholder) that fills itself in when its source is known. */
export function coverImage(track, size, { secret = null, className = 'cover' } = {}) {
  const box = h('span', { class: [className, 'cover-empty'], 'aria-hidden': 'true' }, icon('music'));
  coverSource(track, size, secret)
    .then((src) => {
      if (!src) return;
      const img = h('img', { src, alt: '', width: size, height: size, loading: 'lazy', decoding: 'async' });
      box.classList.remove('cover-empty');
      box.replaceChildren(img);
    })
    .catch(() => {}); // the placeholder stays
  return box;
}

/** A page header: the phone's menu button, a title, actions on the right. */
export function pageHeader(title, ...actions) {
  const toggle = h('button', {
    type: 'button',
    class: 'icon-button nav-toggle',
    'aria-label': 'Open the guild and channel list',
    'aria-expanded': 'false',
    'data-toggles': 'nav',
  }, icon('menu'));
  toggle.addEventListener('click', () => {
    toggle.dispatchEvent(new CustomEvent('miaou-toggle', { bubbles: true, detail: { panel: 'nav' } }));
  });
  return h('header', { class: 'channel-header track-header' }, toggle, h('h1', { class: 'channel-title', text: title }), h('div', { class: 'header-actions' }, actions));
}

/** What a track's state says to its owner: "Processing 42 %", "Failed: …", or null. */
export function stateText(track) {
  if (track.state === 'ready') return null;
  if (track.state === 'failed') return `Processing failed${track.error ? `: ${track.error}` : ''}`;
  const progress = track.processing?.progress;
  return progress != null ? `Processing… ${Math.round(progress * 100)} %` : 'Processing…';
}

/** The audio screens by route name: the element <miaou-app> puts in its main pane. */
export const TRACK_VIEWS = { tracks: 'miaou-tracks', 'track-upload': 'miaou-track-upload', track: 'miaou-track-page' };

/** The Tracks entry under the guild rail. */
export function tracksNav() {
  const link = h('a', { href: '/tracks', 'data-route': '', class: 'guild-icon tracks-link', 'aria-label': 'Tracks', title: 'Tracks' }, icon('music'));
  const mark = () => {
    const here = Boolean(TRACK_VIEWS[store.route.name]);
    if (here) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  };
  // The rail lives as long as the shell (until a log out): then this stops listening.
  const off = store.on('route', () => (link.isConnected ? mark() : off()));
  mark();
  return h('nav', { class: 'rail-audio', 'aria-label': 'Audio' }, link);
}
