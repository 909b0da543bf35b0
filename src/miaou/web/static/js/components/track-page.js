// <miaou-track-page>: /tracks/{id}[?secret=...]: the cover, title and artist, play, the
// waveform (click or arrow keys to seek), details; for the owner, processing progress and
// the settings (track-edit.js).

import { player } from '../audio/player.js';
import { watchProcessing } from '../audio/processing.js';
import { getTrack } from '../audio/tracks-api.js';
import { parseWaveform } from '../audio/waveform.js';
import { formatDateTime, h } from '../dom.js';
import { store } from '../store.js';
import { icon } from './bits.js';
import { trackSettings } from './track-edit.js';
import { bylineElement, coverImage, formatTime, isMine, pageHeader, stateText } from './track-bits.js';
import './track-waveform.js';

class TrackPage extends HTMLElement {
  connectedCallback() {
    this.offs = [
      store.on('route', () => this.routeChanged()),
      player.on('change', () => this.renderPlayer()),
      player.on('time', () => this.renderProgress()),
    ];
    this.open();
  }

  disconnectedCallback() {
    for (const off of this.offs) off();
    this.watch?.abort();
    cancelAnimationFrame(this.frame);
    this.trackId = null;
  }

  routeChanged() {
    if (store.route.name === 'track' && store.route.params.trackId !== this.trackId) this.open();
  }

  async open() {
    this.watch?.abort();
    this.watch = new AbortController();
    this.trackId = store.route.params.trackId;
    this.secret = new URLSearchParams(location.search).get('secret');
    this.track = null;
    this.replaceChildren(pageHeader('Track'), h('p', { class: 'track-list-status', role: 'status', text: 'Loading…' }));
    const id = this.trackId;
    let track;
    try {
      track = await getTrack(id, this.secret);
    } catch (error) {
      if (id !== this.trackId) return;
      const text = error.code === 'unknown_track' ? 'This track does not exist, or you cannot see it.' : error.message;
      this.replaceChildren(pageHeader('Track'), h('section', { class: 'empty-state' }, h('h1', { text: 'Nothing here' }), h('p', { text }), h('a', { href: '/tracks', 'data-route': '', class: 'button', text: 'All tracks' })));
      return;
    }
    if (id !== this.trackId) return;
    this.show(track);
    if (track.state === 'processing' && isMine(track)) this.follow(track);
  }

  /** The owner waits for processing here too: the page fills in when it is done. */
  async follow(track) {
    const signal = this.watch.signal;
    try {
      const done = await watchProcessing(track.id, { signal, onUpdate: (t) => (this.state.textContent = stateText(t) ?? '') });
      if (done && !signal.aborted) this.show(done);
    } catch (error) {
      if (!signal.aborted) this.state.textContent = error.message;
    }
  }

  show(track) {
    const settings = this.querySelector('details.track-settings');
    const editing = settings?.open ?? false; // a saved edit leaves it open...
    const focused = Boolean(settings?.contains(document.activeElement)); // ...and focus in it
    this.track = { ...track, linkSecret: this.secret };
    document.title = `${track.title} · Miaou`;
    const ready = track.state === 'ready' && track.media;
    this.playButton = h('button', { type: 'button', class: 'button primary track-big-play', disabled: !ready, onclick: () => this.play() }, icon('play'), h('span', { text: 'Play' }));
    this.wave = h('miaou-track-waveform', { class: 'track-waveform', duration: String(track.duration_ms / 1000), 'aria-label': `Seek in ${track.title}` });
    this.wave.addEventListener('seek', (event) => this.seek(event.detail.time));
    this.state = h('p', { class: ['track-state', track.state], role: 'status', text: stateText(track) ?? '' });
    const facts = [
      formatTime(track.duration_ms / 1000),
      track.genre,
      track.year ? String(track.year) : null,
      `${track.plays} play${track.plays === 1 ? '' : 's'}`,
      track.visibility !== 'public' ? track.visibility : null,
      track.bpm ? `${Math.round(track.bpm)} BPM` : null,
    ].filter(Boolean);
    this.replaceChildren(
      pageHeader(track.title),
      h(
        'div',
        { class: 'track-scroller' },
        h(
          'article',
          { class: 'track-page' },
          h(
            'div',
            { class: 'track-hero' },
            coverImage(track, 300, { secret: this.secret, className: 'cover cover-large' }),
            h(
              'div',
              { class: 'track-hero-text' },
              h('h2', { class: 'track-page-title', text: track.title }),
              h('p', { class: 'track-page-artist' }, bylineElement(track)),
              h('p', { class: 'track-facts', text: facts.join(' · ') }),
              h('p', { class: 'hint', text: `Uploaded ${formatDateTime(track.created_at)}${track.album ? ` · ${track.album}` : ''}` }),
              this.state,
              h('div', { class: 'track-actions' }, this.playButton),
            ),
          ),
          this.wave,
          track.description ? h('p', { class: 'track-description', text: track.description }) : null,
          track.tags.length ? h('ul', { class: 'track-tags', 'aria-label': 'Tags' }, track.tags.map((tag) => h('li', {}, h('a', { href: `/tracks?q=${encodeURIComponent(tag)}`, 'data-route': '', text: `#${tag}` })))) : null,
          isMine(track) ? trackSettings(track, { open: editing, onSaved: (fresh) => this.show(fresh) }) : null,
        ),
      ),
    );
    if (ready) this.loadWaveform(track);
    if (focused) this.querySelector('details.track-settings summary')?.focus();
    this.renderPlayer();
  }

  async loadWaveform(track) {
    try {
      const response = await fetch(track.media.waveform_json, { credentials: 'omit' });
      if (!response.ok) throw new Error(`waveform: HTTP ${response.status}`);
      const waveform = parseWaveform(await response.json());
      if (this.track?.id === track.id) this.wave.setData(waveform, track.duration_ms / 1000);
    } catch {
      this.wave.classList.add('waveform-missing'); // the track still plays; the bar seeks
    }
  }

  get current() {
    return Boolean(this.track && player.track?.id === this.track.id);
  }

  play() {
    if (this.current) player.toggle();
    else player.playList([this.track], 0);
  }

  seek(time) {
    if (this.current) player.seek(time);
    else if (this.track?.media) player.playList([this.track], 0, { startAt: time });
  }

  renderPlayer() {
    if (!this.playButton) return;
    const pausing = this.current && player.playing;
    this.playButton.firstElementChild.className = `icon icon-${pausing ? 'pause' : 'play'}`;
    this.playButton.lastElementChild.textContent = pausing ? 'Pause' : 'Play';
    this.renderProgress();
    // Between timeupdates (4 a second) the played part moves on every frame.
    cancelAnimationFrame(this.frame);
    if (pausing) {
      const step = () => {
        this.renderProgress();
        this.frame = requestAnimationFrame(step);
      };
      this.frame = requestAnimationFrame(step);
    }
  }

  renderProgress() {
    if (!this.wave) return;
    const duration = this.track.duration_ms / 1000;
    this.wave.setProgress(this.current && duration ? player.currentTime / duration : 0);
  }
}

customElements.define('miaou-track-page', TrackPage);
