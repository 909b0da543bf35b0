// <miaou-thread-view thread-id="...">: a thread in the side panel: its name, join / leave,
// archive / unarchive (its creator, or MANAGE_THREADS), and the same message list and
// composer as a channel, bound to the thread.

import { fill, h, scheduler } from '../dom.js';
import { Permission, store } from '../store.js';
import {
  ensureChannel,
  isThreadMember,
  joinThread,
  leaveThread,
  loadThreadMembers,
  setArchived,
} from '../thread-actions.js';
import { openPanel } from '../side-panel.js';
import { panelHeader } from './panel-header.js';

class MiaouThreadView extends HTMLElement {
  connectedCallback() {
    this.threadId = this.getAttribute('thread-id');
    this.update = scheduler(() => this.renderHeader());
    this.offs = [
      store.on('threads', ({ threadId }) => (!threadId || threadId === this.threadId) && this.update()),
      store.on('thread-members', ({ threadId }) => threadId === this.threadId && this.update()),
      store.on('channels', this.update),
    ];
    this.head = h('div', { class: 'thread-head' });
    this.notice = h('p', { class: 'thread-notice', role: 'status', hidden: true });
    this.replaceChildren(this.head, h('p', { class: 'muted panel-loading', text: 'Loading the thread…' }));
    this.open();
  }

  disconnectedCallback() {
    for (const off of this.offs) off();
  }

  async open() {
    try {
      await ensureChannel(this.threadId);
    } catch (error) {
      this.replaceChildren(this.head, h('p', { class: 'form-error', role: 'alert', text: `Could not open the thread: ${error.message}` }));
      this.renderHeader();
      return;
    }
    if (!this.isConnected) return;
    this.replaceChildren(
      this.head,
      this.notice,
      h('miaou-messages', { 'channel-id': this.threadId }),
      h('miaou-composer', { 'channel-id': this.threadId }),
    );
    this.renderHeader();
    loadThreadMembers(this.threadId).catch(() => {});
  }

  get thread() {
    return store.channels.get(this.threadId) ?? null;
  }

  renderHeader() {
    const thread = this.thread;
    const meta = thread?.thread_metadata ?? {};
    const parent = store.channels.get(thread?.parent_id);
    const tools = [];
    if (thread) {
      const moderator = store.canIn(thread.id, Permission.MANAGE_THREADS);
      const owner = thread.owner_id === store.me?.id;
      if (store.threadMembers.has(thread.id) && !meta.archived) {
        tools.push(
          isThreadMember(thread.id)
            ? this.button('Leave', 'Leave the thread', () => leaveThread(thread.id))
            : this.button('Join', 'Join the thread', () => joinThread(thread.id)),
        );
      }
      if ((owner || moderator) && !(meta.locked && !moderator)) {
        tools.push(
          meta.archived
            ? this.button('Unarchive', 'Unarchive the thread', () => setArchived(thread.id, false))
            : this.button('Archive', 'Archive the thread', () => setArchived(thread.id, true)),
        );
      }
      if (parent) {
        tools.push(this.button('All threads', `Threads of #${parent.name}`, () => openPanel({ kind: 'threads', channelId: parent.id })));
      }
    }
    // Join becomes Leave (and so on) under the keyboard: keep the focus on that button.
    const focused = [...this.head.querySelectorAll('.panel-tools button')].indexOf(document.activeElement);
    fill(this.head,
      panelHeader(thread?.name ?? 'Thread', tools),
      parent ? h('p', { class: 'panel-sub muted', text: `in #${parent.name}` }) : null,
    );
    if (focused >= 0) this.head.querySelectorAll('.panel-tools button')[focused]?.focus();
    if (meta.archived) {
      this.notice.hidden = false;
      this.notice.textContent = meta.locked
        ? 'This thread is archived and locked.'
        : 'This thread is archived: sending a message reopens it.';
    } else {
      this.notice.hidden = true;
    }
  }

  button(text, label, action) {
    const button = h('button', { type: 'button', class: 'button small', text, 'aria-label': label });
    button.addEventListener('click', async () => {
      button.disabled = true;
      try {
        await action();
      } catch (error) {
        store.toast(`${text}: ${error.message}`);
      } finally {
        button.disabled = false;
      }
    });
    return button;
  }
}

customElements.define('miaou-thread-view', MiaouThreadView);
