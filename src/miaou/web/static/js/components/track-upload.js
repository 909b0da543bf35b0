// <miaou-track-upload>: /tracks/upload. Pick an audio file (and a cover), give details,
// upload with a progress bar (and Cancel), then watch the node process it until it is
// playable or has failed (docs/audio.md).

import { watchProcessing } from '../audio/processing.js';
import { uploadTrack } from '../audio/tracks-api.js';
import { formatBytes, h } from '../dom.js';
import { navigate } from '../router.js';
import { pageHeader, stateText, VISIBILITY_TEXT } from './track-bits.js';

const AUDIO_TYPES = 'audio/*,.mp3,.wav,.flac,.aiff,.aif,.ogg,.oga,.opus,.m4a,.mp4';
const IMAGE_TYPES = 'image/png,image/jpeg,image/gif,image/webp';
let counter = 0;

function field(label, control, hint = null) {
  const id = `track-field-${++counter}`;
  control.id = id;
  return h('div', { class: 'field' }, h('label', { for: id, text: label }), control, hint ? h('p', { class: 'hint', text: hint }) : null);
}

/** "a, B c ,d" -> ["a", "b-c", "d"]: the node's tag rules (lower case, spaces become -). */
export function parseTags(text) {
  return text
    .split(',')
    .map((t) => t.trim().toLowerCase().replace(/\s+/g, '-'))
    .filter(Boolean)
    .slice(0, 30);
}

class TrackUpload extends HTMLElement {
  connectedCallback() {
    this.watch = new AbortController();
    this.build();
  }

  disconnectedCallback() {
    this.watch.abort();
    this.sending?.abort();
  }

  build() {
    this.file = h('input', { type: 'file', class: 'track-file', accept: AUDIO_TYPES, required: true });
    this.cover = h('input', { type: 'file', class: 'track-cover-file', accept: IMAGE_TYPES });
    this.titleInput = h('input', { type: 'text', maxlength: 200, autocomplete: 'off' });
    this.genre = h('input', { type: 'text', maxlength: 100, autocomplete: 'off' });
    this.tags = h('input', { type: 'text', maxlength: 1500, autocomplete: 'off' });
    this.description = h('textarea', { rows: 3, maxlength: 4000 });
    this.visibility = h('select', {}, Object.entries(VISIBILITY_TEXT).map(([value, text]) => h('option', { value, text })));
    this.downloadable = h('input', { type: 'checkbox', id: `track-field-${++counter}` });
    this.file.addEventListener('change', () => {
      const chosen = this.file.files[0];
      if (chosen && !this.titleInput.value.trim()) this.titleInput.value = chosen.name.replace(/\.[^.]+$/, '');
    });
    this.error = h('p', { class: 'form-error', role: 'alert' });
    this.submit = h('button', { type: 'submit', class: 'button primary', text: 'Upload' });
    this.form = h(
      'form',
      { class: 'track-form', novalidate: true },
      field('Audio file', this.file, 'MP3, WAV, FLAC, AIFF, Ogg Vorbis or Opus, M4A; up to 500 MB and 3 hours.'),
      field('Title', this.titleInput),
      field('Cover image (optional)', this.cover, 'PNG, JPEG, GIF or WEBP; else the picture in the file, if any.'),
      field('Genre', this.genre),
      field('Tags', this.tags, 'Separated by commas.'),
      field('Description', this.description),
      field('Visibility', this.visibility),
      h('div', { class: 'field checkbox' }, this.downloadable, h('label', { for: this.downloadable.id, text: 'Let listeners download the original' })),
      this.error,
      h('div', { class: 'form-actions' }, this.submit),
    );
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.send();
    });
    this.progress = h('section', { class: 'track-progress', 'aria-label': 'Upload', hidden: true });
    this.replaceChildren(pageHeader('Upload a track'), h('div', { class: 'track-scroller' }, h('div', { class: 'track-upload-body' }, this.form, this.progress)));
  }

  details() {
    const details = { visibility: this.visibility.value, downloadable: this.downloadable.checked };
    const title = this.titleInput.value.trim();
    if (title) details.title = title;
    if (this.genre.value.trim()) details.genre = this.genre.value.trim();
    const tags = parseTags(this.tags.value);
    if (tags.length) details.tags = tags;
    if (this.description.value.trim()) details.description = this.description.value.trim();
    return details;
  }

  async send() {
    const file = this.file.files[0];
    this.error.textContent = '';
    if (!file) {
      this.error.textContent = 'Choose an audio file first.';
      this.file.focus();
      return;
    }
    const bar = h('progress', { class: 'upload-progress', max: 100, value: 0, 'aria-label': `Uploading ${file.name}` });
    const text = h('span', { class: 'progress-text', text: `0 of ${formatBytes(file.size)}` });
    const cancel = h('button', { type: 'button', class: 'button small', text: 'Cancel' });
    this.progress.replaceChildren(h('h2', { text: `Uploading ${file.name}` }), h('div', { class: 'progress-row' }, bar, text, cancel));
    // The form steps aside (it is long: the bar would be out of sight below it).
    this.progress.hidden = false;
    this.form.hidden = true;
    cancel.focus();
    const sending = uploadTrack({ file, cover: this.cover.files[0] ?? null, details: this.details() }, (loaded, total) => {
      bar.value = Math.round((loaded / total) * 100);
      text.textContent = `${formatBytes(loaded)} of ${formatBytes(total)}`;
    });
    this.sending = sending;
    cancel.addEventListener('click', () => sending.abort());
    let track;
    try {
      track = await sending.promise;
    } catch (error) {
      this.sending = null;
      this.form.hidden = false;
      this.progress.hidden = true;
      this.error.textContent = error.code === 'aborted' ? 'Upload cancelled.' : error.message;
      this.submit.focus();
      return;
    }
    this.sending = null;
    bar.value = 100;
    this.processing(track);
  }

  /** The second half: the node decodes, analyses and transcodes; show how far it is. */
  async processing(track) {
    const bar = h('progress', { class: 'processing-progress', max: 100, value: 0, 'aria-label': `Processing ${track.title}` });
    const text = h('p', { class: 'processing-text', role: 'status', text: stateText(track) ?? 'Ready' });
    const actions = h('div', { class: 'form-actions' });
    this.progress.replaceChildren(h('h2', { text: track.title }), h('div', { class: 'progress-row' }, bar), text, actions);
    const show = (current) => {
      bar.value = current.state === 'ready' ? 100 : Math.round((current.processing?.progress ?? 0) * 100);
      text.textContent = current.state === 'ready' ? 'Ready: the track is playable.' : stateText(current);
      text.classList.toggle('failed', current.state === 'failed');
    };
    show(track);
    let done;
    try {
      done = await watchProcessing(track.id, { onUpdate: show, signal: this.watch.signal });
    } catch (error) {
      text.textContent = error.message;
      text.classList.add('failed');
    }
    if (!done && !text.classList.contains('failed')) return; // left the page
    const path = `/tracks/${encodeURIComponent(track.id)}`;
    actions.replaceChildren(
      h('a', { class: 'button primary', href: path, 'data-route': '', text: done?.state === 'ready' ? 'Open the track' : 'See the track' }),
      h('button', { type: 'button', class: 'button', text: 'Upload another', onclick: () => this.reset() }),
    );
    actions.firstElementChild.focus();
  }

  reset() {
    this.watch.abort();
    this.watch = new AbortController();
    navigate('/tracks/upload', { replace: true });
    this.build();
    this.file.focus();
  }
}

customElements.define('miaou-track-upload', TrackUpload);
