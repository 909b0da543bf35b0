// <miaou-forum>: a forum channel: its posts (threads, each started with a message) with
// their tags, filtered by tag, newest first; a button for a new post. A post opens in the
// side panel.

import { h, scheduler } from '../dom.js';
import { loadMoreArchived, loadThreads } from '../thread-actions.js';
import { Permission, store } from '../store.js';
import { icon } from './bits.js';
import { newPostDialog } from './thread-dialogs.js';
import { threadItem } from './thread-list.js';

class MiaouForum extends HTMLElement {
  connectedCallback() {
    this.tag = null;
    this.tools = h('miaou-channel-tools'); // kept across renders: its search box keeps its text
    this.update = scheduler(() => this.render());
    this.offs = [
      store.on('route', () => this.open()),
      store.on('session', () => {
        if (!store.ready) return;
        this.channelId = null; // a new READY forgot the threads: read them again
        this.open();
      }),
      store.on('threads', ({ parentId }) => (!parentId || parentId === this.channelId) && this.update()),
      store.on('channels', this.update),
    ];
    this.open();
  }

  disconnectedCallback() {
    for (const off of this.offs) off();
  }

  open() {
    const { name, params } = store.route;
    if (name !== 'channel' || params.channelId === this.channelId) return;
    this.channelId = params.channelId;
    this.tag = null;
    this.failed = null;
    this.render();
    loadThreads(this.channelId).catch((error) => {
      this.failed = error.message;
      this.update();
    });
  }

  toggle(panel) {
    this.dispatchEvent(new CustomEvent('miaou-toggle', { bubbles: true, detail: { panel } }));
  }

  render() {
    const forum = store.channels.get(this.channelId);
    if (!forum) return;
    const tags = forum.available_tags ?? [];
    const byId = new Map(tags.map((t) => [t.id, t]));
    const { active, archived } = store.threadsOf(forum.id);
    const posts = [...active, ...archived].filter((p) => !this.tag || (p.applied_tags ?? []).includes(this.tag));
    const listed = store.threadLists.get(forum.id);
    const canPost = store.canIn(forum.id, Permission.SEND_MESSAGES);
    const focused = document.activeElement?.dataset?.threadId ?? document.activeElement?.dataset?.tag;
    this.replaceChildren(
      h(
        'header',
        { class: 'channel-header' },
        h('button', { type: 'button', class: 'icon-button nav-toggle', 'aria-label': 'Open the guild and channel list', 'aria-expanded': 'false', 'data-toggles': 'nav', onclick: () => this.toggle('nav') }, icon('menu')),
        h('div', { class: 'channel-heading' }, h('h1', { class: 'channel-title', text: `# ${forum.name}` }), forum.topic ? h('p', { class: 'channel-topic', text: forum.topic }) : null),
        this.tools,
        h('button', { type: 'button', class: 'icon-button members-toggle', 'aria-label': 'Member list', 'aria-expanded': 'false', 'data-toggles': 'members', onclick: () => this.toggle('members') }, icon('members')),
      ),
      h(
        'div',
        { class: 'forum' },
        h(
          'div',
          { class: 'forum-bar' },
          canPost ? h('button', { type: 'button', class: 'button primary', text: 'New post', onclick: () => newPostDialog(forum) }) : null,
          tags.length
            ? h(
                'div',
                { class: 'tag-filter', role: 'group', 'aria-label': 'Show posts with the tag' },
                tags.map((t) =>
                  h('button', {
                    type: 'button',
                    class: 'tag',
                    text: t.emoji ? `${t.emoji} ${t.name}` : t.name,
                    'aria-pressed': String(this.tag === t.id),
                    dataset: { tag: t.id },
                    onclick: () => {
                      this.tag = this.tag === t.id ? null : t.id;
                      this.render();
                    },
                  }),
                ),
              )
            : null,
        ),
        this.failed ? h('p', { class: 'form-error', role: 'alert', text: this.failed }) : null,
        !listed?.loaded && !this.failed
          ? h('p', { class: 'muted', role: 'status', text: 'Loading posts…' })
          : posts.length
            ? h('ul', { class: 'thread-items forum-posts', 'aria-label': `Posts in ${forum.name}` }, posts.map((p) => threadItem(p, { tags: (p.applied_tags ?? []).map((id) => byId.get(id)).filter(Boolean) })))
            : h('p', { class: 'muted', text: this.tag ? 'No post has this tag.' : 'No post yet: start the first one.' }),
        listed?.moreArchived ? h('button', { type: 'button', class: 'button small', text: 'Older posts', onclick: () => loadMoreArchived(forum.id) }) : null,
      ),
    );
    if (focused) this.querySelector(`[data-thread-id="${focused}"], [data-tag="${focused}"]`)?.focus();
  }
}

customElements.define('miaou-forum', MiaouForum);
