// <miaou-thread-list channel-id="...">: a channel's threads in the side panel, active then
// archived (more archived ones on request), live through THREAD_* events; a button to start
// one. Choosing a thread opens it in the panel.

import { fill, h, scheduler, timeElement } from '../dom.js';
import { idTime } from '../ids.js';
import { openThread, loadMoreArchived, loadThreads } from '../thread-actions.js';
import { store } from '../store.js';
import { panelHeader } from './panel-header.js';
import { newThreadDialog, threadCreateAllowed } from './thread-dialogs.js';

export function threadItem(thread, { tags = null } = {}) {
  const meta = thread.thread_metadata ?? {};
  const count = thread.message_count ?? 0;
  const owner = thread.owner_id ? store.displayName(thread.owner_id, thread.guild_id) : null;
  const state = meta.locked ? 'locked' : meta.archived ? 'archived' : null;
  return h(
    'li',
    { class: 'thread-item' },
    h(
      'button',
      { type: 'button', class: 'thread-open', dataset: { threadId: thread.id }, onclick: () => openThread(thread.id) },
      h('span', { class: 'icon icon-thread', 'aria-hidden': 'true' }),
      h(
        'span',
        { class: 'thread-text' },
        h('span', { class: 'thread-name', text: thread.name }),
        h(
          'span',
          { class: 'thread-meta muted' },
          `${count} message${count === 1 ? '' : 's'}`,
          owner ? ` · started by ${owner}` : '',
          ' · ',
          timeElement(idTime(thread.last_message_id ?? thread.id)),
          state ? ` · ${state}` : '',
        ),
        tags?.length ? h('span', { class: 'tag-list' }, tags.map((t) => h('span', { class: 'tag', text: t.name }))) : null,
      ),
    ),
  );
}

class MiaouThreadList extends HTMLElement {
  connectedCallback() {
    this.channelId = this.getAttribute('channel-id');
    this.update = scheduler(() => this.render());
    this.offs = [store.on('threads', ({ parentId }) => (!parentId || parentId === this.channelId) && this.update())];
    this.render();
    loadThreads(this.channelId).catch((error) => {
      this.failed = error.message;
      this.update();
    });
  }

  disconnectedCallback() {
    for (const off of this.offs) off();
  }

  render() {
    const channel = store.channels.get(this.channelId);
    const listed = store.threadLists.get(this.channelId);
    const { active, archived } = store.threadsOf(this.channelId);
    const create = threadCreateAllowed(this.channelId)
      ? h('button', { type: 'button', class: 'button small primary', text: 'New thread', onclick: () => newThreadDialog(this.channelId) })
      : null;
    const section = (title, threads, empty) =>
      h(
        'section',
        { class: 'thread-section', 'aria-label': title },
        h('h3', { class: 'panel-section-title', text: `${title} — ${threads.length}` }),
        threads.length ? h('ul', { class: 'thread-items' }, threads.map((t) => threadItem(t))) : h('p', { class: 'muted', text: empty }),
      );
    const focusedId = document.activeElement?.dataset?.threadId;
    fill(this,
      panelHeader(`Threads of #${channel?.name ?? ''}`, create),
      this.failed ? h('p', { class: 'form-error', role: 'alert', text: this.failed }) : null,
      !listed?.loaded && !this.failed
        ? h('p', { class: 'muted panel-loading', role: 'status', text: 'Loading threads…' })
        : h(
            'div',
            { class: 'panel-body' },
            section('Active', active, 'No active thread.'),
            section('Archived', archived, 'No archived thread.'),
            listed?.moreArchived
              ? h('button', { type: 'button', class: 'button small', text: 'More archived threads', onclick: () => loadMoreArchived(this.channelId) })
              : null,
          ),
    );
    if (focusedId) this.querySelector(`[data-thread-id="${focusedId}"]`)?.focus();
  }
}

customElements.define('miaou-thread-list', MiaouThreadList);
