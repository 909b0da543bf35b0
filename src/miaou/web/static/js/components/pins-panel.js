// <miaou-pins channel-id="...">: a channel's pinned messages in the side panel, last pinned
// first, read again when CHANNEL_PINS_UPDATE says they changed; jump to one, or unpin it.

import { h, timeElement } from '../dom.js';
import { renderMarkdown } from '../markdown.js';
import { canPin, pins, setPinned } from '../pins.js';
import { navigate, channelPath } from '../router.js';
import { store } from '../store.js';
import { avatar, showLatest } from './bits.js';
import { markdownContext } from './message-view.js';
import { panelHeader } from './panel-header.js';

class MiaouPins extends HTMLElement {
  connectedCallback() {
    this.channelId = this.getAttribute('channel-id');
    this.list = h('div', { class: 'panel-body' }, h('p', { class: 'muted panel-loading', role: 'status', text: 'Loading pinned messages…' }));
    const channel = store.channels.get(this.channelId);
    this.replaceChildren(panelHeader(`Pinned in ${store.channelRef(channel)}`), this.list);
    this.off = store.on('pins', ({ channelId }) => channelId === this.channelId && this.load());
    this.load();
  }

  disconnectedCallback() {
    this.off();
  }

  load() {
    return showLatest(this, this.list, () => pins(this.channelId), (found) => this.show(found));
  }

  show(found) {
    const channel = store.channels.get(this.channelId);
    const guildId = channel?.guild_id ?? null;
    const unpin = canPin(this.channelId);
    this.list.replaceChildren(
      found.length
        ? h('ol', { class: 'pin-list', 'aria-label': 'Pinned messages' }, found.map((m) => this.item(m, guildId, unpin)))
        : h('p', { class: 'muted', text: 'No pinned message yet.' }),
    );
  }

  item(message, guildId, unpin) {
    store.rememberUser(message.author);
    const name = store.displayName(message.author.id, guildId) ?? message.author.username;
    return h(
      'li',
      { class: 'pin-item', dataset: { id: message.id } },
      h('div', { class: 'hit-head' }, avatar(message.author.id, name), h('strong', { text: name }), timeElement(message.timestamp)),
      h('div', { class: 'content' }, renderMarkdown(message.content, markdownContext(guildId))),
      h(
        'div',
        { class: 'hit-actions' },
        h('button', { type: 'button', class: 'button small', text: 'Jump', 'aria-label': `Jump to the message of ${name}`, onclick: () => navigate(channelPath(guildId, message.channel_id, message.id)) }),
        unpin ? h('button', { type: 'button', class: 'button small', text: 'Unpin', 'aria-label': `Unpin the message of ${name}`, onclick: () => setPinned(this.channelId, message.id, false) }) : null,
      ),
    );
  }
}

customElements.define('miaou-pins', MiaouPins);
