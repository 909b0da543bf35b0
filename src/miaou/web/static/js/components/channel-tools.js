// <miaou-channel-tools>: the channel header's tools: threads and pinned messages (each opens
// the side panel), and the guild's search box with its filters.

import { h, scheduler } from '../dom.js';
import { FILTERS } from '../search.js';
import { openPanel, togglePanel } from '../side-panel.js';
import { DM_TYPES, FORUM, THREAD_TYPES, store } from '../store.js';
import { icon } from './bits.js';

class MiaouChannelTools extends HTMLElement {
  connectedCallback() {
    this.update = scheduler(() => this.render());
    this.offs = [store.on('route', this.update), store.on('side-panel', () => this.pressed())];
    if (!this.input) this.build(); // moved by a re-render of its header: keep what is typed
    this.render();
  }

  disconnectedCallback() {
    for (const off of this.offs) off();
  }

  build() {
    this.threads = h('button', { type: 'button', class: 'icon-button', 'aria-label': 'Threads', title: 'Threads', 'aria-pressed': 'false' }, icon('thread'));
    this.pins = h('button', { type: 'button', class: 'icon-button', 'aria-label': 'Pinned messages', title: 'Pinned messages', 'aria-pressed': 'false' }, icon('pin'));
    this.threads.addEventListener('click', () => togglePanel({ kind: 'threads', channelId: this.channelId }));
    this.pins.addEventListener('click', () => togglePanel({ kind: 'pins', channelId: this.channelId }));
    this.input = h('input', {
      type: 'search',
      class: 'search-input',
      'aria-label': 'Search messages',
      placeholder: 'Search',
      maxlength: 1024,
      autocomplete: 'off',
      enterkeyhint: 'search',
    });
    const help = h(
      'div',
      { class: 'search-help' },
      h('p', { class: 'hint', text: 'Words to find, and filters:' }),
      h(
        'ul',
        {},
        FILTERS.map(([prefix, what, example]) =>
          h(
            'li',
            {},
            h('button', { type: 'button', class: 'link-button filter-chip', text: prefix, 'aria-label': `Add the filter ${prefix} (${what}), like ${example}`, onmousedown: (e) => e.preventDefault(), onclick: () => this.addFilter(prefix) }),
            h('span', { class: 'hint', text: ` ${what}` }),
          ),
        ),
      ),
    );
    this.search = h('form', { class: 'search-box', role: 'search', 'aria-label': 'Search this guild' }, h('span', { class: 'icon icon-search', 'aria-hidden': 'true' }), this.input, help);
    this.search.addEventListener('submit', (event) => {
      event.preventDefault();
      const query = this.input.value.trim();
      if (query) openPanel({ kind: 'search', guildId: store.route.params.guildId, query });
    });
    this.input.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && this.input.value) {
        event.preventDefault();
        this.input.value = '';
      }
    });
    this.replaceChildren(this.threads, this.pins, this.search);
  }

  addFilter(prefix) {
    const value = this.input.value;
    this.input.value = `${value}${value && !value.endsWith(' ') ? ' ' : ''}${prefix}`;
    this.input.focus();
  }

  render() {
    const { name, params } = store.route;
    const channel = name === 'channel' ? store.channels.get(params.channelId) : null;
    this.channelId = channel?.id ?? null;
    const dm = !channel || DM_TYPES.has(channel.type);
    this.threads.hidden = !channel || dm || THREAD_TYPES.has(channel.type) || channel.type === FORUM;
    this.pins.hidden = !channel || channel.type === FORUM;
    this.search.hidden = dm;
    this.pressed();
  }

  pressed() {
    const panel = store.sidePanel;
    const threads = panel?.kind === 'threads' && panel.channelId === this.channelId;
    this.threads.setAttribute('aria-pressed', String(threads));
    this.pins.setAttribute('aria-pressed', String(panel?.kind === 'pins' && panel.channelId === this.channelId));
  }
}

customElements.define('miaou-channel-tools', MiaouChannelTools);
