// The owner's settings on a track page, in a disclosure: details (PATCH), visibility with
// the unlisted secret link, downloadable, the cover, shares of a private track
// (track-shares.js), and deletion.

import { player } from '../audio/player.js';
import { deleteTrack, secretLink, setCover, updateTrack } from '../audio/tracks-api.js';
import { h } from '../dom.js';
import { navigate } from '../router.js';
import { store } from '../store.js';
import { confirmDialog, showProblem } from './dialogs.js';
import { VISIBILITY_TEXT } from './track-bits.js';
import { sharesSection } from './track-shares.js';
import { parseTags } from './track-upload.js';

let counter = 0;

function input(name, value, props = {}) {
  const id = `track-edit-${++counter}`;
  return h('input', { id, name, type: 'text', value: value ?? '', autocomplete: 'off', 'aria-describedby': `${id}-problem`, ...props });
}

function row(label, control) {
  return h('div', { class: 'field' }, h('label', { for: control.id, text: label }), control, h('p', { class: 'field-problem', id: `${control.id}-problem` }));
}

const orNull = (text) => (text.trim() ? text.trim() : null);
const numberOrNull = (text) => (text.trim() ? Number(text) : null);

/** The settings section for `track` (mine); onSaved(track) after each change. */
export function trackSettings(track, { open = false, onSaved }) {
  const fields = {
    title: input('title', track.title, { required: true, maxlength: 200 }),
    artist: input('artist', track.artist, { maxlength: 200 }),
    album: input('album', track.album, { maxlength: 200 }),
    genre: input('genre', track.genre, { maxlength: 100 }),
    year: input('year', track.year, { type: 'number', min: 0, max: 9999, inputmode: 'numeric' }),
    track_number: input('track_number', track.track_number, { type: 'number', min: 0, max: 9999, inputmode: 'numeric' }),
    tags: input('tags', track.tags.join(', '), { maxlength: 1500 }),
  };
  const description = h('textarea', { id: `track-edit-${++counter}`, rows: 3, maxlength: 4000, 'aria-describedby': `track-edit-${counter}-problem` });
  description.value = track.description;
  const visibility = h('select', { id: `track-edit-${++counter}` }, Object.entries(VISIBILITY_TEXT).map(([value, text]) => h('option', { value, text, selected: value === track.visibility })));
  const downloadable = h('input', { type: 'checkbox', id: `track-edit-${++counter}`, checked: track.downloadable });
  const error = h('p', { class: 'form-error', role: 'alert' });
  const saved = h('span', { class: 'hint', role: 'status' });
  const save = h('button', { type: 'submit', class: 'button primary', text: 'Save changes' });
  const form = h(
    'form',
    { class: 'track-form', novalidate: true },
    row('Title', fields.title),
    row('Artist', fields.artist),
    h('div', { class: 'field-pair' }, row('Album', fields.album), row('Genre', fields.genre)),
    h('div', { class: 'field-pair' }, row('Year', fields.year), row('Track number', fields.track_number)),
    row('Tags (separated by commas)', fields.tags),
    row('Description', description),
    row('Visibility', visibility),
    h('div', { class: 'field checkbox' }, downloadable, h('label', { for: downloadable.id, text: 'Let listeners download the original' })),
    error,
    h('div', { class: 'form-actions' }, save, saved),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const changes = {
      title: fields.title.value.trim(),
      artist: orNull(fields.artist.value),
      album: orNull(fields.album.value),
      genre: orNull(fields.genre.value),
      year: numberOrNull(fields.year.value),
      track_number: numberOrNull(fields.track_number.value),
      tags: parseTags(fields.tags.value),
      description: description.value.trim(),
      visibility: visibility.value,
      downloadable: downloadable.checked,
    };
    save.disabled = true;
    error.textContent = '';
    saved.textContent = '';
    for (const control of [...Object.values(fields), description]) showProblem(control, []);
    try {
      const fresh = await updateTrack(track.id, changes);
      player.refreshTrack(fresh);
      onSaved(fresh);
      store.toast('Track saved.');
    } catch (failure) {
      error.textContent = failure.message;
      for (const [name, control] of Object.entries(fields)) showProblem(control, failure.field?.(name) ?? []);
      showProblem(description, failure.field?.('description') ?? []);
      save.disabled = false;
    }
  });
  const details = h(
    'details',
    { class: 'track-settings', open },
    h('summary', { text: 'Edit track' }),
    h('div', { class: 'track-settings-body' }, linkSection(track), form, coverSection(track, onSaved), track.visibility === 'private' ? sharesSection(track) : null, dangerSection(track)),
  );
  return details;
}

/** Unlisted: the secret link to hand out, with a Copy button. */
function linkSection(track) {
  const link = secretLink(track);
  if (!link) return null;
  const id = `track-edit-${++counter}`;
  const field = h('input', { id, type: 'text', readonly: true, value: link, class: 'invite-link' });
  const copy = h('button', {
    type: 'button',
    class: 'button small',
    text: 'Copy',
    onclick: async () => {
      field.select();
      try {
        await navigator.clipboard.writeText(link);
        store.toast('Link copied.');
      } catch {
        store.toast('Select the link and copy it.');
      }
    },
  });
  return h('section', { class: 'track-section' }, h('h3', { text: 'Secret link' }), h('p', { class: 'hint', text: 'Anyone with this link can play the track; it is not listed anywhere.' }), h('label', { class: 'visually-hidden', for: id, text: 'Secret link' }), h('div', { class: 'copy-row' }, field, copy));
}

function coverSection(track, onSaved) {
  const id = `track-edit-${++counter}`;
  const file = h('input', { id, type: 'file', accept: 'image/png,image/jpeg,image/gif,image/webp' });
  const bar = h('progress', { class: 'upload-progress', max: 100, value: 0, hidden: true, 'aria-label': 'Uploading the cover' });
  const status = h('p', { class: 'hint', role: 'status' });
  file.addEventListener('change', async () => {
    const image = file.files[0];
    if (!image) return;
    bar.hidden = false;
    status.textContent = '';
    const { promise } = setCover(track.id, image, (loaded, total) => (bar.value = Math.round((loaded / total) * 100)));
    try {
      onSaved(await promise);
      store.toast('Cover changed.');
    } catch (failure) {
      status.textContent = failure.message;
      bar.hidden = true;
    }
  });
  return h('section', { class: 'track-section' }, h('h3', { text: 'Cover' }), h('div', { class: 'field' }, h('label', { for: id, text: 'New cover image (PNG, JPEG, GIF, WEBP)' }), file), bar, status);
}

function dangerSection(track) {
  const remove = h('button', {
    type: 'button',
    class: 'button danger',
    text: 'Delete track',
    onclick: async () => {
      const yes = await confirmDialog({ title: 'Delete track', text: `Delete “${track.title}” and all its files? This cannot be undone.`, confirmLabel: 'Delete', danger: true });
      if (!yes) return;
      try {
        await deleteTrack(track.id);
      } catch (failure) {
        store.toast(failure.message);
        return;
      }
      if (player.track?.id === track.id) player.stop();
      store.toast('Track deleted.');
      navigate('/tracks?mine=1');
    },
  });
  return h('section', { class: 'track-section' }, h('h3', { text: 'Delete' }), remove);
}
