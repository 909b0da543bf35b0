// <miaou-search-results>: the side panel's search results for store.sidePanel
// {guildId, query}: a page of 25 hits with their channel, author and time, ordered newest,
// oldest or by relevance, paged; choosing a hit jumps to it in its channel.

import { h, timeElement } from '../dom.js';
import { renderMarkdown } from '../markdown.js';
import { channelPath, navigate } from '../router.js';
import { MAX_OFFSET, SEARCH_PAGE, SearchError, search } from '../search.js';
import { store } from '../store.js';
import { avatar } from './bits.js';
import { field } from './forms.js';
import { markdownContext } from './message-view.js';
import { panelHeader } from './panel-header.js';

class MiaouSearchResults extends HTMLElement {
  connectedCallback() {
    const { guildId, query } = store.sidePanel;
    this.guildId = guildId;
    this.query = query;
    this.page = 0;
    this.sort = 'newest';
    const order = field({
      name: 'sort',
      label: 'Order',
      kind: 'select',
      value: this.sort,
      options: [
        ['newest', 'Newest first'],
        ['oldest', 'Oldest first'],
        ['relevance', 'Most relevant'],
      ],
    });
    order.input.addEventListener('change', () => {
      this.sort = order.input.value;
      this.page = 0;
      this.load();
    });
    this.summary = h('p', { class: 'search-summary', role: 'status' });
    this.results = h('div', { class: 'panel-body' });
    this.pager = h('nav', { class: 'pager', 'aria-label': 'Result pages' });
    this.replaceChildren(
      panelHeader('Search'),
      h('div', { class: 'search-controls' }, h('p', { class: 'search-query', text: query }), order.row),
      this.summary,
      this.results,
      this.pager,
    );
    this.load();
  }

  async load() {
    const serial = (this.serial = (this.serial ?? 0) + 1);
    this.summary.textContent = 'Searching…';
    this.setAttribute('aria-busy', 'true');
    let found;
    try {
      found = await search(this.guildId, this.query, { sort: this.sort, page: this.page });
    } catch (error) {
      if (serial !== this.serial) return;
      this.removeAttribute('aria-busy');
      this.summary.textContent = '';
      this.results.replaceChildren(h('p', { class: 'form-error', role: 'alert', text: error instanceof SearchError ? error.message : `Search failed: ${error.message}` }));
      this.pager.replaceChildren();
      return;
    }
    if (serial !== this.serial) return;
    this.removeAttribute('aria-busy');
    const { total, hits } = found;
    const first = this.page * SEARCH_PAGE + 1;
    this.summary.textContent = total
      ? `${total >= 5000 ? '5,000+' : total} result${total === 1 ? '' : 's'} · ${first}–${first + hits.length - 1}`
      : 'No results.';
    this.results.replaceChildren(h('ol', { class: 'search-hits', 'aria-label': 'Results' }, hits.map((m) => this.hit(m))));
    this.renderPager(total);
  }

  renderPager(total) {
    const pages = Math.ceil(Math.min(total, MAX_OFFSET + SEARCH_PAGE) / SEARCH_PAGE);
    const go = (page) => {
      this.page = page;
      this.load();
    };
    if (pages <= 1) {
      this.pager.replaceChildren();
      return;
    }
    this.pager.replaceChildren(
      h('button', { type: 'button', class: 'button small', text: 'Previous', disabled: this.page === 0, onclick: () => go(this.page - 1) }),
      h('span', { class: 'muted', text: `Page ${this.page + 1} of ${pages}` }),
      h('button', { type: 'button', class: 'button small', text: 'Next', disabled: this.page + 1 >= pages, onclick: () => go(this.page + 1) }),
    );
  }

  hit(message) {
    const guildId = this.guildId;
    const channel = store.channels.get(message.channel_id);
    const name = store.displayName(message.author.id, guildId) ?? message.author.username;
    const where = channel ? (channel.type >= 10 && channel.type <= 12 ? channel.name : `#${channel.name}`) : 'a thread';
    const open = () => navigate(channelPath(guildId, message.channel_id, message.id));
    return h(
      'li',
      { class: 'search-hit', dataset: { id: message.id } },
      h('p', { class: 'hit-where muted', text: where }),
      h('div', { class: 'hit-head' }, avatar(message.author.id, name), h('strong', { text: name }), timeElement(message.timestamp)),
      h('div', { class: 'content' }, renderMarkdown(message.content, markdownContext(guildId))),
      message.attachments?.length ? h('p', { class: 'muted', text: `${message.attachments.length} attachment(s)` }) : null,
      h('div', { class: 'hit-actions' }, h('button', { type: 'button', class: 'button small', text: 'Jump', 'aria-label': `Jump to the message of ${name} in ${where}`, onclick: open })),
    );
  }
}

customElements.define('miaou-search-results', MiaouSearchResults);
