// <miaou-side-panel>: the pane beside the channel (docs/web.md): a thread, a channel's
// threads, its pins, or search results, as store.sidePanel says. It closes when the route
// leaves what it belongs to (another channel for threads and pins, another guild for
// search). On phones it covers the messages.

import { h } from '../dom.js';
import { closePanel, closePanelAndReturn } from '../side-panel.js';
import { store } from '../store.js';
import './pins-panel.js';
import './search-results.js';
import './thread-list.js';
import './thread-view.js';

class MiaouSidePanel extends HTMLElement {
  connectedCallback() {
    this.shown = null;
    this.offs = [
      store.on('side-panel', () => this.render()),
      store.on('route', () => this.follow()),
      store.on('session', () => {
        this.shown = null; // a new READY: what the panel shows is read again
        this.render();
      }),
    ];
    this.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && !event.defaultPrevented && !event.target.closest('textarea, input, dialog')) {
        event.preventDefault();
        this.closeAndReturn();
      }
    });
    this.render();
  }

  disconnectedCallback() {
    for (const off of this.offs) off();
  }

  /** Close the panel when the route moves away from what it shows. */
  follow() {
    const panel = store.sidePanel;
    if (!panel) return;
    const { name, params } = store.route;
    let keep = name === 'channel';
    if (keep && panel.kind === 'search') keep = params.guildId === panel.guildId;
    else if (keep && panel.kind === 'thread') {
      const thread = store.channels.get(panel.threadId);
      keep = params.channelId === thread?.parent_id || params.channelId === panel.channelId;
    } else if (keep) keep = params.channelId === panel.channelId;
    if (!keep) closePanel();
  }

  closeAndReturn() {
    closePanelAndReturn();
  }

  render() {
    const panel = store.ready ? store.sidePanel : null;
    const key = panel ? JSON.stringify(panel) : null;
    if (key === this.shown) return;
    this.shown = key;
    // Something in the panel had the keyboard (a thread chosen in the list): it goes with
    // the old content, so the new content takes it.
    const lost = this.contains(document.activeElement);
    this.closest('miaou-app')?.classList.toggle('side-open', Boolean(panel));
    if (!panel) {
      this.replaceChildren();
      return;
    }
    let body;
    if (panel.kind === 'thread') body = h('miaou-thread-view', { 'thread-id': panel.threadId });
    else if (panel.kind === 'threads') body = h('miaou-thread-list', { 'channel-id': panel.channelId });
    else if (panel.kind === 'pins') body = h('miaou-pins', { 'channel-id': panel.channelId });
    else body = h('miaou-search-results');
    this.replaceChildren(h('aside', { class: 'side-panel', 'aria-label': panelName(panel) }, body));
    if (lost) {
      requestAnimationFrame(() => (this.querySelector('miaou-composer textarea:not(:disabled)') ?? this.querySelector('.panel-close'))?.focus());
    }
  }
}

function panelName(panel) {
  return { thread: 'Thread', threads: 'Threads', pins: 'Pinned messages', search: 'Search results' }[panel.kind];
}

customElements.define('miaou-side-panel', MiaouSidePanel);
