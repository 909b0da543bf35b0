// <miaou-messages>: the open channel: its header, and its messages, loaded newest first and
// further back as the list is scrolled up (`before`); live through the gateway. Messages
// are kept as elements keyed by id and patched in place, so focus and scroll survive
// updates. Arrow keys move between messages; each message's actions follow it in Tab order.

import {
  ackChannel,
  deleteMessage,
  discardPending,
  editMessage,
  loadHistory,
  loadMessage,
  loadOlder,
  retryPending,
  toggleReaction,
} from '../actions.js';
import { h, scheduler } from '../dom.js';
import { jumpToPresent, loadAround, loadNewer } from '../jump.js';
import { toStored } from '../mentions.js';
import { canPin, setPinned } from '../pins.js';
import { Permission, THREAD_TYPES, store } from '../store.js';
import { icon } from './bits.js';
import { confirmDeletion, showEditHistory } from './message-dialogs.js';
import { continues, reactionPicker, renderMessage, renderPending, startedThread } from './message-view.js';
import { openThread } from '../thread-actions.js';
import { startThreadDialog } from './thread-dialogs.js';

const LOAD_OLDER_PX = 300;
const BOTTOM_SLACK_PX = 48;

function replySig(message, references) {
  const id = message.message_reference?.message_id;
  if (!id) return null;
  const original = references(id);
  return original === undefined ? 'loading' : original === null ? 'gone' : [original.content, original.author.id];
}

// <miaou-messages channel-id="..."> shows that channel (a thread in the side panel) without
// a header of its own; without the attribute, the routed channel.
class MiaouMessages extends HTMLElement {
  connectedCallback() {
    this.fixedChannel = this.getAttribute('channel-id');
    this.elements = new Map(); // key -> {el, sig}
    this.references = new Map(); // message id -> message | null (deleted), for reply previews
    this.channelId = null;
    this.editing = null;
    this.stick = true;
    this.focusKey = null;
    this.build();
    this.update = scheduler(() => this.render());
    this.offs = [
      store.on('route', () => this.open()),
      // A new READY (after INVALID_SESSION) dropped every loaded history: read it again.
      store.on('session', () => {
        if (!store.ready) return; // logged out: the app removes this element
        this.channelId = null;
        this.open();
      }),
      store.on('messages', ({ channelId, kind }) => {
        if (channelId !== this.channelId) return;
        if (kind === 'older') this.keepPosition = true;
        if (kind === 'sent' || kind === 'pending') this.stick = true;
        if (kind === 'reset') this.resetElements();
        this.update();
      }),
      store.on('members', this.update),
      // A thread of this channel changed (a message in it): the link under its starter.
      store.on('threads', ({ parentId }) => {
        if (parentId === this.channelId) this.update();
      }),
      store.on('channels', () => {
        this.renderHeader();
        this.update();
      }),
    ];
    this.onVisible = () => {
      if (document.visibilityState === 'visible' && this.channelId) ackChannel(this.channelId);
    };
    document.addEventListener('visibilitychange', this.onVisible);
    this.resizer = new ResizeObserver(() => {
      if (this.stick) this.scrollToBottom();
    });
    this.resizer.observe(this.list);
    this.open();
  }

  disconnectedCallback() {
    for (const off of this.offs) off();
    document.removeEventListener('visibilitychange', this.onVisible);
    this.resizer.disconnect();
  }

  build() {
    this.heading = h('h1', { class: 'channel-title' });
    this.topic = h('p', { class: 'channel-topic' });
    this.membersButton = h('button', {
      type: 'button',
      class: 'icon-button members-toggle',
      'aria-label': 'Member list',
      'aria-expanded': 'false',
      'data-toggles': 'members',
      onclick: () => this.toggle('members'),
    }, icon('members'));
    this.status = h('div', { class: 'history-status' });
    this.list = h('ol', { class: 'message-list', 'aria-label': 'Messages' });
    this.present = h(
      'div',
      { class: 'history-present', hidden: true },
      h('span', { class: 'muted', text: 'You are viewing older messages.' }),
      h('button', { type: 'button', class: 'button small', text: 'Jump to present', onclick: () => jumpToPresent(this.channelId) }),
    );
    this.scroller = h('div', { class: 'scroller' }, this.status, this.list, this.present);
    this.scroller.addEventListener('scroll', () => this.onScroll(), { passive: true });
    this.list.addEventListener('click', (event) => this.onClick(event));
    this.list.addEventListener('keydown', (event) => this.onKey(event));
    this.list.addEventListener('submit', (event) => {
      event.preventDefault();
      this.saveEdit();
    });
    this.list.addEventListener('focusin', (event) => {
      const item = event.target.closest('li.message');
      if (item) this.setFocusable(item);
    });
    const header = h(
      'header',
      { class: 'channel-header' },
      h('button', { type: 'button', class: 'icon-button nav-toggle', 'aria-label': 'Open the guild and channel list', 'aria-expanded': 'false', 'data-toggles': 'nav', onclick: () => this.toggle('nav') }, icon('menu')),
      h('div', { class: 'channel-heading' }, this.heading, this.topic),
      h('miaou-channel-tools'),
      this.membersButton,
    );
    this.replaceChildren(...(this.fixedChannel ? [] : [header]), this.scroller);
  }

  toggle(panel) {
    this.dispatchEvent(new CustomEvent('miaou-toggle', { bubbles: true, detail: { panel } }));
  }

  get channel() {
    return store.channels.get(this.channelId) ?? null;
  }

  get guildId() {
    return this.channel?.guild_id ?? null;
  }

  open() {
    const { name, params } = store.route;
    const routed = name === 'channel' ? params.channelId : null;
    const channelId = this.fixedChannel ?? routed;
    const messageId = this.fixedChannel ? null : params.messageId;
    if (!channelId) return;
    if (channelId === this.channelId) {
      if (messageId) this.jumpTo(messageId);
      return;
    }
    this.channelId = channelId;
    this.editing = null;
    this.stick = true;
    this.focusKey = null;
    this.highlight = messageId ?? null; // read around it, not the newest page
    this.resetElements();
    this.renderHeader();
    this.render();
    if (messageId) {
      this.jumpTo(messageId);
    } else {
      loadHistory(this.channelId).then(() => this.viewed());
      this.viewed();
    }
  }

  resetElements() {
    this.elements.clear();
    this.list.replaceChildren();
  }

  viewed() {
    if (store.history(this.channelId).loaded && document.visibilityState === 'visible') {
      ackChannel(this.channelId);
    }
  }

  renderHeader() {
    const channel = this.channel;
    this.heading.textContent = store.channelTitle(channel);
    this.topic.textContent = channel?.topic ?? '';
    this.topic.hidden = !channel?.topic;
    this.list.setAttribute('aria-label', channel ? `Messages in ${store.channelRef(channel)}` : 'Messages');
  }

  // -- rendering ----------------------------------------------------------------------------
  render() {
    // No channel: it went (deleted, or hidden from me); the app replaces this view.
    if (!this.channelId || !store.ready || !this.channel) return;
    const history = store.history(this.channelId);
    if (!history.loaded && !history.loading && !this.highlight) {
      // Forgotten since it was shown (a stream that may have missed events): read again.
      loadHistory(this.channelId).then(() => this.viewed());
    }
    const before = { height: this.scroller.scrollHeight, top: this.scroller.scrollTop };
    this.renderStatus(history);
    const guildId = this.guildId;
    const canManage = guildId ? store.can(guildId, Permission.MANAGE_MESSAGES) : false;
    const inThread = THREAD_TYPES.has(this.channel?.type);
    const canThread = Boolean(guildId) && !inThread && store.canIn(this.channelId, Permission.CREATE_PUBLIC_THREADS);
    const pinnable = canPin(this.channelId);
    const references = (id) => this.reference(id);
    const desired = [];
    let previous = null;
    for (const message of history.items) {
      // The node sends a reply's quote with it (null once deleted): no fetch needed.
      const quotedId = message.message_reference?.message_id;
      if (quotedId && message.referenced_message !== undefined && !this.references.has(quotedId)) {
        this.references.set(quotedId, message.referenced_message);
      }
      const grouped = continues(previous, message);
      previous = message;
      const editing = this.editing === message.id;
      const sig = JSON.stringify([
        message.content,
        message.edited_timestamp,
        message.reactions,
        message.attachments?.length,
        grouped,
        editing,
        canManage,
        store.displayName(message.author.id, guildId),
        replySig(message, references),
        message.pinned,
        canThread,
        pinnable,
        threadSig(message),
      ]);
      desired.push(this.element(message.id, sig, () => renderMessage(message, { grouped, guildId, editing, canManage, references, canThread, canPin: pinnable })));
    }
    for (const pending of history.pending) {
      const sig = `${pending.state}:${pending.error}`;
      desired.push(this.element(`nonce:${pending.nonce}`, sig, () => renderPending(pending, guildId)));
    }
    this.patch(desired);
    this.rove();
    this.present.hidden = !history.detached;
    if (this.highlight && this.elements.has(this.highlight)) {
      this.showJumped(this.highlight);
      this.highlight = null;
    } else if (this.keepPosition) {
      this.keepPosition = false;
      this.scroller.scrollTop = before.top + (this.scroller.scrollHeight - before.height);
    } else if (this.stick) {
      this.scrollToBottom();
    }
    if (history.loaded && !history.loading && history.hasMore && this.scroller.scrollHeight <= this.scroller.clientHeight) {
      loadOlder(this.channelId); // the page does not fill the view yet
    }
  }

  renderStatus(history) {
    const channel = this.channel;
    if (history.loading || !history.loaded) {
      this.status.replaceChildren(h('p', { class: 'muted', role: 'status', text: 'Loading messages…' }));
    } else if (!history.hasMore) {
      const title = store.channelRef(channel);
      const what = THREAD_TYPES.has(channel?.type) ? 'thread' : channel?.guild_id ? 'channel' : 'conversation';
      this.status.replaceChildren(
        h('div', { class: 'channel-start' }, h('h2', { text: `Welcome to ${title}` }), h('p', { class: 'muted', text: `This is the beginning of the ${what}.` })),
      );
    } else {
      this.status.replaceChildren(h('button', { type: 'button', class: 'button small', text: 'Load older messages', onclick: () => loadOlder(this.channelId) }));
    }
  }

  /** The cached element for key, rebuilt (and swapped in place) when its signature moved. */
  element(key, sig, build) {
    const known = this.elements.get(key);
    if (known && known.sig === sig) return known.el;
    const el = build();
    el.dataset.key = key;
    if (known) {
      const hadFocus = known.el.contains(document.activeElement) && !this.editing;
      known.el.replaceWith(el);
      if (hadFocus) el.focus({ preventScroll: true });
    }
    this.elements.set(key, { el, sig });
    if (this.editing && key === this.editing) {
      queueMicrotask(() => {
        const input = el.querySelector('.edit-input');
        input?.focus();
        input?.setSelectionRange(input.value.length, input.value.length);
      });
    }
    return el;
  }

  /** Make the list's children these nodes, moving as few as possible. */
  patch(desired) {
    const wanted = new Set(desired);
    for (const [key, { el }] of this.elements) {
      if (!wanted.has(el)) {
        el.remove();
        this.elements.delete(key);
      }
    }
    let cursor = this.list.firstChild;
    for (const node of desired) {
      if (node === cursor) {
        cursor = cursor.nextSibling;
      } else {
        this.list.insertBefore(node, cursor);
      }
    }
    while (cursor) {
      const next = cursor.nextSibling;
      cursor.remove();
      cursor = next;
    }
  }

  /** Reply previews: the original from history, else the quote sent with the reply, else
   *  fetched once. */
  reference(id) {
    const loaded = store.history(this.channelId).byId.get(id);
    if (loaded) return loaded;
    if (this.references.has(id)) return this.references.get(id);
    const channelId = this.channelId;
    this.references.set(id, undefined);
    loadMessage(channelId, id).then(
      (message) => this.references.set(id, message),
      () => this.references.set(id, null),
    ).finally(() => channelId === this.channelId && this.update());
    return undefined;
  }

  // -- scrolling ----------------------------------------------------------------------------
  scrollToBottom() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
  }

  onScroll() {
    const { scrollTop, scrollHeight, clientHeight } = this.scroller;
    const history = store.histories.get(this.channelId);
    this.stick = scrollHeight - scrollTop - clientHeight < BOTTOM_SLACK_PX && !history?.detached;
    if (scrollTop < LOAD_OLDER_PX) loadOlder(this.channelId);
    if (history?.detached && scrollHeight - scrollTop - clientHeight < LOAD_OLDER_PX) loadNewer(this.channelId);
  }

  // -- keyboard -----------------------------------------------------------------------------
  items() {
    return [...this.list.children];
  }

  /** One message is in the Tab order (roving tabindex): the last focused, else the newest. */
  rove() {
    const items = this.items();
    const current = items.find((el) => el.dataset.key === this.focusKey) ?? items[items.length - 1];
    for (const el of items) el.tabIndex = el === current ? 0 : -1;
  }

  setFocusable(item) {
    this.focusKey = item.dataset.key;
    this.rove();
  }

  onKey(event) {
    const item = event.target;
    if (!(item instanceof HTMLLIElement)) {
      if (event.key === 'Escape' && this.editing && event.target.closest('.edit-form')) {
        event.preventDefault();
        this.cancelEdit();
      } else if (event.key === 'Enter' && !event.shiftKey && event.target.matches('.edit-input')) {
        event.preventDefault();
        this.saveEdit();
      } else if (event.key === 'Escape' && event.target.closest('.reaction-picker')) {
        this.closePicker(true);
      }
      return;
    }
    const items = this.items();
    const at = items.indexOf(item);
    const moves = { ArrowUp: at - 1, ArrowDown: at + 1, Home: 0, End: items.length - 1 };
    if (event.key in moves) {
      event.preventDefault();
      const target = items[Math.max(0, Math.min(items.length - 1, moves[event.key]))];
      target?.focus();
      if (event.key === 'ArrowUp' && at <= 1) loadOlder(this.channelId);
    }
  }

  // -- actions ------------------------------------------------------------------------------
  messageOf(target) {
    const item = target.closest('li.message');
    return item ? store.history(this.channelId).byId.get(item.dataset.id) ?? null : null;
  }

  onClick(event) {
    const button = event.target.closest('[data-action]');
    if (!button || button.tagName === 'FORM') return;
    const item = button.closest('li.message');
    const message = this.messageOf(button);
    const action = button.dataset.action;
    if (action === 'retry' || action === 'discard') {
      const nonce = item.dataset.nonce;
      (action === 'retry' ? retryPending : discardPending)(this.channelId, nonce);
      return;
    }
    if (!message) return;
    switch (action) {
      case 'react':
        this.closePicker(false);
        toggleReaction(this.channelId, message, button.dataset.emoji);
        break;
      case 'pick-reaction':
        this.openPicker(item, button);
        break;
      case 'reply':
        store.emit('reply', { channelId: this.channelId, message });
        break;
      case 'edit':
        this.startEdit(message.id);
        break;
      case 'cancel-edit':
        this.cancelEdit();
        break;
      case 'delete':
        this.confirmDelete(message);
        break;
      case 'history':
        this.showHistory(message);
        break;
      case 'jump':
        this.jumpTo(button.dataset.target);
        break;
      case 'thread':
        startThreadDialog(this.channelId, message);
        break;
      case 'open-thread':
        openThread(button.dataset.thread);
        break;
      case 'pin':
      case 'unpin':
        setPinned(this.channelId, message.id, action === 'pin');
        break;
      default:
        break;
    }
  }

  openPicker(item, button) {
    this.closePicker(false);
    const picker = reactionPicker();
    this.picker = { el: picker, button };
    item.classList.add('picking');
    item.append(picker);
    picker.querySelector('button').focus();
    picker.addEventListener('focusout', (event) => {
      if (!picker.contains(event.relatedTarget)) this.closePicker(false);
    });
  }

  closePicker(refocus) {
    if (!this.picker) return;
    const { el, button } = this.picker;
    this.picker = null;
    el.closest('li')?.classList.remove('picking');
    el.remove();
    if (refocus && button.isConnected) button.focus();
  }

  /** Edit my newest message (ArrowUp in an empty composer). */
  editLast() {
    const mine = store.history(this.channelId).items.filter((m) => m.author.id === store.me?.id);
    if (mine.length) this.startEdit(mine[mine.length - 1].id);
  }

  startEdit(id) {
    this.editing = id;
    this.update();
  }

  cancelEdit() {
    const id = this.editing;
    this.editing = null;
    this.render();
    this.elements.get(id)?.el.focus();
  }

  async saveEdit() {
    const id = this.editing;
    const el = this.elements.get(id)?.el;
    const input = el?.querySelector('.edit-input');
    if (!id || !input) return;
    const content = toStored(input.value.trim(), this.guildId);
    const message = store.history(this.channelId).byId.get(id);
    if (!content && !message?.attachments?.length) {
      this.confirmDelete(message);
      return;
    }
    input.disabled = true;
    try {
      if (content !== message.content) await editMessage(this.channelId, id, content);
      this.editing = null;
      this.render();
      this.elements.get(id)?.el.focus();
    } catch (error) {
      input.disabled = false;
      store.toast(`Could not edit: ${error.message}`);
    }
  }

  async confirmDelete(message) {
    if (!message || !(await confirmDeletion(message, this.guildId))) return;
    try {
      if (this.editing === message.id) this.editing = null;
      await deleteMessage(this.channelId, message.id);
    } catch (error) {
      store.toast(`Could not delete: ${error.message}`);
    }
  }

  showHistory(message) {
    showEditHistory(this.channelId, this.guildId, message);
  }

  /** Show a message, highlighted: loaded, or read `around` it (a search hit, a link). */
  async jumpTo(id) {
    this.stick = false;
    if (this.elements.has(id)) {
      this.showJumped(id);
      return;
    }
    const channelId = this.channelId;
    this.highlight = id;
    try {
      const found = await loadAround(channelId, id);
      if (!found && channelId === this.channelId) {
        this.highlight = null;
        store.toast('That message is gone.');
      }
    } catch (error) {
      store.toast(`Could not show that message: ${error.message}`);
    }
    if (channelId === this.channelId) {
      this.update();
      this.viewed();
    }
  }

  showJumped(id) {
    const el = this.elements.get(id)?.el;
    if (!el) return;
    this.stick = false;
    el.scrollIntoView({ block: 'center' });
    el.focus({ preventScroll: true });
    el.classList.add('flash', 'jumped');
    setTimeout(() => el.classList.remove('flash'), 2400);
  }
}

// What the thread link under a message shows.
function threadSig(message) {
  const known = startedThread(message);
  return known ? [known.id, known.name, known.message_count] : null;
}

customElements.define('miaou-messages', MiaouMessages);
