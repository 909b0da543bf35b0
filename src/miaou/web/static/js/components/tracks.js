// <miaou-tracks>: the tracks feed at /tracks: public tracks and mine (and those shared with
// me), newest first, searchable (?q=), "Mine" only (?mine=1), older pages on demand. A
// track's play button plays the list from there (the list is the queue).

import { player } from '../audio/player.js';
import { listTracks } from '../audio/tracks-api.js';
import { h } from '../dom.js';
import { navigate } from '../router.js';
import { store } from '../store.js';
import { icon } from './bits.js';
import { bylineElement, coverImage, formatTime, isMine, pageHeader, stateText } from './track-bits.js';

const PAGE = 50;

class TracksList extends HTMLElement {
  connectedCallback() {
    this.items = [];
    this.offs = [
      player.on('change', () => this.markPlaying()),
      store.on('route', () => this.routeChanged()),
    ];
    this.build();
    this.load();
  }

  disconnectedCallback() {
    for (const off of this.offs) off();
    this.loading = null;
  }

  get filters() {
    const params = new URLSearchParams(location.search);
    return { q: params.get('q') ?? '', mine: params.get('mine') === '1' };
  }

  build() {
    const { q, mine } = this.filters;
    this.search = h('input', { type: 'search', name: 'q', value: q, maxlength: 200, placeholder: 'Title, artist, genre, tag', 'aria-label': 'Search tracks' });
    const form = h('form', { class: 'track-search', role: 'search' }, this.search, h('button', { type: 'submit', class: 'button', text: 'Search' }));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.go({ q: this.search.value.trim(), mine: this.filters.mine });
    });
    this.allTab = h('button', { type: 'button', class: 'button small', 'aria-pressed': String(!mine), text: 'All tracks', onclick: () => this.go({ ...this.filters, mine: false }) });
    this.mineTab = h('button', { type: 'button', class: 'button small', 'aria-pressed': String(mine), text: 'My tracks', onclick: () => this.go({ ...this.filters, mine: true }) });
    this.list = h('ol', { class: 'track-list', 'aria-label': 'Tracks' });
    this.status = h('p', { class: 'track-list-status', role: 'status' });
    this.more = h('button', { type: 'button', class: 'button', text: 'Load more', hidden: true, onclick: () => this.load(true) });
    const upload = h('a', { class: 'button primary small', href: '/tracks/upload', 'data-route': '' }, icon('upload'), 'Upload');
    this.replaceChildren(
      pageHeader('Tracks', upload),
      h('div', { class: 'track-scroller' }, h('div', { class: 'track-toolbar' }, form, h('div', { class: 'track-tabs', role: 'group', 'aria-label': 'Show' }, this.allTab, this.mineTab)), this.status, this.list, this.more),
    );
  }

  /** New filters: in the address (so Back and reload keep them), then a fresh list. */
  go({ q, mine }) {
    const params = new URLSearchParams();
    if (q) params.set('q', q);
    if (mine) params.set('mine', '1');
    const query = params.toString();
    navigate(`/tracks${query ? `?${query}` : ''}`);
  }

  routeChanged() {
    if (store.route.name !== 'tracks') return;
    const { q, mine } = this.filters;
    if (q === this.shown?.q && mine === this.shown?.mine) return;
    this.search.value = q;
    this.allTab.setAttribute('aria-pressed', String(!mine));
    this.mineTab.setAttribute('aria-pressed', String(mine));
    this.load();
  }

  async load(more = false) {
    const filters = this.filters;
    const query = { q: filters.q, owner: filters.mine ? store.me?.id : null, limit: PAGE };
    if (more) query.before = this.items[this.items.length - 1]?.id;
    else this.items = [];
    this.shown = filters;
    const request = listTracks(query);
    this.loading = request;
    this.status.textContent = 'Loading…';
    this.more.hidden = true;
    let page;
    try {
      page = await request;
    } catch (error) {
      if (this.loading === request) this.status.textContent = error.message;
      return;
    }
    if (this.loading !== request) return; // a newer search answered first, or we left
    this.items = more ? [...this.items, ...page] : page;
    this.status.textContent = this.items.length ? '' : filters.q ? `No track matches “${filters.q}”.` : filters.mine ? 'You have not uploaded a track yet.' : 'No tracks yet: upload the first one.';
    this.more.hidden = page.length < PAGE;
    this.render();
  }

  render() {
    this.list.replaceChildren(...this.items.map((track) => this.item(track)));
    this.markPlaying();
  }

  item(track) {
    const ready = track.state === 'ready';
    const badge = track.visibility !== 'public' ? h('span', { class: 'track-badge', text: track.visibility }) : null;
    const state = isMine(track) ? stateText(track) : null;
    const link = `/tracks/${encodeURIComponent(track.id)}`;
    return h(
      'li',
      { class: 'track-item', dataset: { id: track.id } },
      h(
        'button',
        { type: 'button', class: 'icon-button track-play', 'aria-label': `Play ${track.title}`, disabled: !ready, onclick: () => this.play(track) },
        icon('play'),
      ),
      coverImage(track, 80, { className: 'cover cover-small' }),
      h(
        'div',
        { class: 'track-text' },
        h('a', { class: 'track-title', href: link, 'data-route': '', text: track.title }),
        bylineElement(track, 'track-artist'),
        state ? h('span', { class: ['track-state', track.state], text: state }) : null,
      ),
      badge,
      h('span', { class: 'track-duration', text: formatTime(track.duration_ms / 1000) }),
    );
  }

  play(track) {
    if (player.track?.id === track.id) {
      player.toggle();
      return;
    }
    const ready = this.items.filter((t) => t.state === 'ready');
    player.playList(ready, ready.indexOf(track));
  }

  /** The playing track's row: marked, and its button says Pause. */
  markPlaying() {
    const id = player.track?.id;
    for (const row of this.list.children) {
      const current = row.dataset.id === id;
      row.classList.toggle('current', current);
      const button = row.querySelector('.track-play');
      const title = row.querySelector('.track-title')?.textContent ?? '';
      const pausing = current && player.playing;
      button.setAttribute('aria-label', `${pausing ? 'Pause' : 'Play'} ${title}`);
      button.firstElementChild.className = `icon icon-${pausing ? 'pause' : 'play'}`;
    }
  }
}

customElements.define('miaou-tracks', TracksList);
