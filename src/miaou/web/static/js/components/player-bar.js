// <miaou-player-bar>: the player at the bottom of the shell, there on every screen once
// something plays: what is playing, play/pause, previous/next, shuffle, repeat, the seek
// bar with times, volume, loudness normalisation, quality (Auto or a variant), and the
// queue. It shows audio/player.js (which owns the <audio> element it holds); it is built
// once and patched, so focus stays where it is while the music plays.

import { player } from '../audio/player.js';
import { h } from '../dom.js';
import { icon } from './bits.js';
import { bylineElement, coverImage, formatTime, spokenTime } from './track-bits.js';

const REPEAT_TEXT = { off: 'Repeat: off', all: 'Repeat: all', one: 'Repeat: this track' };

class PlayerBar extends HTMLElement {
  connectedCallback() {
    if (!this.built) this.build();
    this.offs = [player.on('change', () => this.render()), player.on('time', () => this.renderTime()), player.on('quality', () => this.renderQuality())];
    this.render();
  }

  disconnectedCallback() {
    for (const off of this.offs ?? []) off();
  }

  button(label, name, onclick, extra = {}) {
    return h('button', { type: 'button', class: `icon-button control-${name}`, 'aria-label': label, title: label, onclick, ...extra }, icon(name));
  }

  build() {
    this.built = true;
    this.setAttribute('role', 'region');
    this.setAttribute('aria-label', 'Player');
    this.cover = h('span', { class: 'player-cover' });
    this.titleLink = h('a', { class: 'player-title', href: '/tracks', 'data-route': '' });
    this.artist = h('span', { class: 'player-artist' });
    this.status = h('span', { class: 'player-status', role: 'status' });
    this.shuffle = this.button('Shuffle', 'shuffle', () => player.setShuffle(!player.prefs.shuffle), { 'aria-pressed': 'false' });
    this.previous = this.button('Previous track', 'previous', () => player.previous());
    this.play = this.button('Play', 'play', () => player.toggle());
    this.play.classList.add('player-main');
    this.next = this.button('Next track', 'next', () => player.next());
    this.repeat = this.button('Repeat: off', 'repeat', () => player.cycleRepeat(), { 'aria-pressed': 'false' });
    this.current = h('span', { class: 'player-time', text: '0:00' });
    this.total = h('span', { class: 'player-time', text: '0:00' });
    this.seek = h('input', { type: 'range', class: 'player-seek', min: '0', max: '0', step: 'any', value: '0', 'aria-label': 'Seek' });
    this.seek.addEventListener('input', () => {
      this.dragging = true;
      this.current.textContent = formatTime(Number(this.seek.value));
    });
    this.seek.addEventListener('change', () => {
      this.dragging = false;
      player.seek(Number(this.seek.value));
    });
    this.seek.addEventListener('blur', () => (this.dragging = false));
    this.mute = this.button('Mute', 'volume', () => player.toggleMute(), { 'aria-pressed': 'false' });
    this.volume = h('input', { type: 'range', class: 'player-volume', min: '0', max: '100', step: '1', 'aria-label': 'Volume' });
    this.volume.addEventListener('input', () => player.setVolume(Number(this.volume.value) / 100));
    this.normalise = h('button', { type: 'button', class: 'button small player-normalise', 'aria-pressed': 'true', title: 'Play every track at the same loudness (ReplayGain)', onclick: () => player.setNormalise(!player.prefs.normalise) }, 'Normalise');
    this.quality = h('select', { class: 'player-quality', 'aria-label': 'Quality' });
    this.quality.addEventListener('change', () => player.setQuality(this.quality.value));
    this.queueButton = this.button('Queue', 'queue', () => this.toggleQueue(), { 'aria-expanded': 'false', 'aria-controls': 'player-queue' });
    this.queueList = h('ol', { class: 'queue-list' });
    this.queuePanel = h('section', { id: 'player-queue', class: 'queue-panel', 'aria-label': 'Queue', hidden: true }, h('h2', { class: 'queue-heading', text: 'Queue' }), this.queueList);
    this.queuePanel.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') {
        event.preventDefault();
        this.toggleQueue(false);
      }
    });
    this.replaceChildren(
      this.queuePanel,
      h('div', { class: 'player-now' }, this.cover, h('div', { class: 'player-text' }, this.titleLink, this.artist, this.status)),
      h(
        'div',
        { class: 'player-center' },
        h('div', { class: 'player-buttons' }, this.shuffle, this.previous, this.play, this.next, this.repeat),
        h('div', { class: 'player-progress' }, this.current, this.seek, this.total),
      ),
      h('div', { class: 'player-extra' }, this.quality, this.normalise, h('span', { class: 'player-volume-box' }, this.mute, this.volume), this.queueButton),
      player.audio,
    );
  }

  toggleQueue(open = this.queuePanel.hidden) {
    this.queuePanel.hidden = !open;
    this.queueButton.setAttribute('aria-expanded', String(open));
    if (open) (this.queueList.querySelector('[aria-current] button') ?? this.queueList.querySelector('button'))?.focus();
    else this.queueButton.focus();
  }

  render() {
    const track = player.track;
    this.hidden = !track;
    document.body.classList.toggle('has-player', Boolean(track));
    if (!track) return;
    if (this.shownTrack !== track) {
      this.shownTrack = track;
      this.cover.replaceChildren(coverImage(track, 80, { secret: track.linkSecret }));
      this.titleLink.textContent = track.title;
      const query = track.linkSecret ? `?secret=${encodeURIComponent(track.linkSecret)}` : '';
      this.titleLink.href = `/tracks/${encodeURIComponent(track.id)}${query}`;
      this.artist.replaceChildren(bylineElement(track));
    }
    this.status.textContent = player.error ?? (player.loading ? 'Loading…' : player.buffering ? 'Buffering…' : '');
    const playing = player.playing;
    this.play.setAttribute('aria-label', playing ? 'Pause' : 'Play');
    this.play.title = playing ? 'Pause' : 'Play';
    this.play.firstElementChild.className = `icon icon-${playing ? 'pause' : 'play'}`;
    this.shuffle.setAttribute('aria-pressed', String(player.prefs.shuffle));
    const repeat = player.prefs.repeat;
    this.repeat.setAttribute('aria-label', REPEAT_TEXT[repeat]);
    this.repeat.title = REPEAT_TEXT[repeat];
    this.repeat.setAttribute('aria-pressed', String(repeat !== 'off'));
    this.repeat.firstElementChild.className = `icon icon-${repeat === 'one' ? 'repeat-one' : 'repeat'}`;
    const muted = player.prefs.muted || player.prefs.volume === 0;
    this.mute.setAttribute('aria-pressed', String(player.prefs.muted));
    this.mute.setAttribute('aria-label', player.prefs.muted ? 'Unmute' : 'Mute');
    this.mute.firstElementChild.className = `icon icon-${muted ? 'mute' : 'volume'}`;
    this.volume.value = String(Math.round(player.prefs.volume * 100));
    this.volume.setAttribute('aria-valuetext', `${Math.round(player.prefs.volume * 100)} %`);
    const gain = player.normalisation;
    this.normalise.setAttribute('aria-pressed', String(player.prefs.normalise));
    this.normalise.setAttribute('aria-label', `Normalise loudness${player.prefs.normalise && gain !== 1 ? ` (${(20 * Math.log10(gain)).toFixed(1)} dB)` : ''}`);
    const queue = player.queue;
    this.previous.disabled = queue.previousPosition() < 0;
    this.next.disabled = queue.nextPosition() < 0;
    this.renderQueue();
    this.renderTime();
  }

  renderTime() {
    if (!player.track) return;
    this.renderQuality(); // what plays changes with the position (segments of each variant)
    const duration = player.duration;
    const now = player.currentTime;
    this.total.textContent = formatTime(duration);
    this.seek.max = String(duration);
    if (!this.dragging) {
      this.current.textContent = formatTime(now);
      this.seek.value = String(now);
      this.seek.setAttribute('aria-valuetext', `${spokenTime(now)} of ${spokenTime(duration)}`);
    }
  }

  renderQuality() {
    const quality = player.quality;
    const options = [['auto', quality.selected === 'auto' && quality.playingLabel ? `Auto (${quality.playingLabel})` : 'Auto'], ...quality.choices.map((c) => [c.name, c.label])];
    const key = options.map((o) => o.join('=')).join('|');
    if (key !== this.qualityKey) {
      this.qualityKey = key;
      this.quality.replaceChildren(...options.map(([value, text]) => h('option', { value, text })));
    }
    this.quality.value = options.some(([value]) => value === quality.selected) ? quality.selected : 'auto';
    this.quality.disabled = quality.mode !== 'hls';
    this.quality.title = quality.playingLabel ? `Playing ${quality.playingLabel}` : 'Quality';
    this.quality.dataset.playing = quality.playing ?? '';
  }

  /** The queue in play order. Rebuilt only when its tracks change (a new list, shuffle);
   *  moving through it just moves the mark, so a focused entry keeps its focus. */
  renderQueue() {
    const queue = player.queue;
    const key = queue.upcoming.map((t) => `${t.id}:${t.title}`).join(',');
    if (key !== this.queueKey) {
      this.queueKey = key;
      const focused = [...this.queueList.children].findIndex((li) => li.contains(document.activeElement));
      this.queueList.replaceChildren(
        ...queue.upcoming.map((track, position) =>
          h(
            'li',
            { class: 'queue-item' },
            h('button', { type: 'button', class: 'queue-play', onclick: () => player.jump(position) }, h('span', { class: 'queue-title', text: track.title }), bylineElement(track, 'queue-artist')),
          ),
        ),
      );
      if (focused >= 0) this.queueList.children[Math.min(focused, this.queueList.children.length - 1)]?.querySelector('button')?.focus();
    }
    [...this.queueList.children].forEach((li, position) => {
      if (position === queue.position) li.setAttribute('aria-current', 'true');
      else li.removeAttribute('aria-current');
    });
  }
}

customElements.define('miaou-player-bar', PlayerBar);
