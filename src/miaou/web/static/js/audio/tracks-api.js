// The tracks API (docs/audio.md) as the web client uses it: listing, reading, uploading
// with progress, editing, covers, shares, deletion, play reports; and covers as image
// sources (a public track's cover is a plain URL; others need the token, so a blob: URL).

import { api } from '../api.js';

const enc = encodeURIComponent;
const MAX_COVER_URLS = 200;
const coverUrls = new Map(); // API URL -> Promise of a blob: URL (oldest first)

export function listTracks({ q, owner, before, limit = 50 } = {}) {
  return api.get('/tracks', { q: q || null, owner, before, limit });
}

export function getTrack(trackId, secret = null) {
  return api.get(`/tracks/${enc(trackId)}`, { secret });
}

/** Upload: file (required), cover (optional), details {title, description, genre, tags,
 *  visibility, downloadable}. Returns {promise, abort}; onProgress(loaded, total). */
export function uploadTrack({ file, cover = null, details = {} }, onProgress) {
  const form = new FormData();
  form.append('payload_json', JSON.stringify(details));
  form.append('file', file, file.name);
  if (cover) form.append('cover', cover, cover.name);
  return api.sendBody('POST', '/tracks', form, onProgress);
}

export function updateTrack(trackId, changes) {
  return api.patch(`/tracks/${enc(trackId)}`, changes);
}

/** A new cover (the image as the body). Returns {promise, abort}. */
export function setCover(trackId, image, onProgress) {
  return api.sendBody('PUT', `/tracks/${enc(trackId)}/cover`, image, onProgress);
}

export function deleteTrack(trackId) {
  return api.del(`/tracks/${enc(trackId)}`);
}

export function shares(trackId) {
  return api.get(`/tracks/${enc(trackId)}/shares`);
}

export function share(trackId, userId) {
  return api.put(`/tracks/${enc(trackId)}/shares/${enc(userId)}`);
}

export function unshare(trackId, userId) {
  return api.del(`/tracks/${enc(trackId)}/shares/${enc(userId)}`);
}

export function user(userId) {
  return api.get(`/users/${enc(userId)}`);
}

/** The user of this exact username (case-insensitive); ApiError unknown_user if none. */
export function userNamed(username) {
  return api.get(`/users?username=${enc(username)}`);
}

const names = new Map(); // user id -> Promise of a display name (for bylines)

/** A user's display name, read once per page load. */
export function userName(userId) {
  if (!names.has(userId)) {
    const found = user(userId).then((u) => u.display_name || u.username);
    found.catch(() => names.delete(userId));
    names.set(userId, found);
  }
  return names.get(userId);
}

/** "I have played this much of it": the node counts a play past 30 s (docs/audio.md). */
export function reportPlay(trackId, listenedSeconds, secret = null) {
  const body = { listened_seconds: Math.round(listenedSeconds * 10) / 10 };
  if (secret) body.secret = secret;
  return api.post(`/tracks/${enc(trackId)}/plays`, body);
}

/** The unlisted track's link in this client (the node hands out an API URL). */
export function secretLink(track) {
  if (!track.secret_url) return null;
  const secret = new URL(track.secret_url, location.origin).searchParams.get('secret');
  return secret ? `${location.origin}/tracks/${enc(track.id)}?secret=${enc(secret)}` : null;
}

/** An image source for a track's cover at `size` (80, 300, 1000), or null if it has none.
 *  Public covers load as they are; others go through fetch() with the token (or the
 *  unlisted secret) and show from a blob: URL, kept for the page's lifetime. */
export async function coverSource(track, size, secret = null) {
  const raw = track.cover?.[String(size)];
  if (!raw) return null;
  if (track.visibility === 'public') return raw;
  const url = secret ? `${raw}&secret=${enc(secret)}` : raw;
  if (!coverUrls.has(url)) {
    if (coverUrls.size >= MAX_COVER_URLS) {
      const [oldest, made] = coverUrls.entries().next().value;
      coverUrls.delete(oldest);
      made.then((blobUrl) => URL.revokeObjectURL(blobUrl)).catch(() => {});
    }
    const made = api.blob(url).then((blob) => URL.createObjectURL(blob));
    made.catch(() => coverUrls.delete(url));
    coverUrls.set(url, made);
  }
  return coverUrls.get(url);
}
