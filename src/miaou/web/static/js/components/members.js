// <miaou-members>: the guild's members, online first (presence from PRESENCE_UPDATE; see
// docs/web.md for what the node does not tell yet).

import { loadMembers } from '../actions.js';
import { h, scheduler } from '../dom.js';
import { store } from '../store.js';
import { avatar } from './bits.js';

const SHOWN_ONLINE = new Set(['online', 'idle', 'dnd']);
const STATUS_TEXT = { online: 'online', idle: 'idle', dnd: 'do not disturb', offline: 'offline' };

class MiaouMembers extends HTMLElement {
  connectedCallback() {
    this.requested = new Set();
    this.update = scheduler(() => this.render());
    this.offs = ['members', 'route', 'guilds'].map((e) => store.on(e, this.update));
    this.offs.push(
      store.on('session', () => {
        this.requested.clear(); // a new READY: member lists are read again
        this.update();
      }),
    );
    this.render();
  }

  disconnectedCallback() {
    for (const off of this.offs) off();
  }

  render() {
    const guildId = store.route.params.guildId;
    const guild = guildId ? store.guilds.get(guildId) : null;
    if (!guild) {
      this.replaceChildren();
      return;
    }
    const members = store.members.get(guildId);
    if (!members) {
      if (!this.requested.has(guildId)) {
        this.requested.add(guildId);
        loadMembers(guildId).catch(() => this.requested.delete(guildId));
      }
      this.replaceChildren(h('aside', { class: 'members', 'aria-label': 'Members' }, h('p', { class: 'muted', text: 'Loading members…' })));
      return;
    }
    const status = (id) => (id === store.me?.id ? 'online' : store.presence.get(id) ?? 'offline');
    const name = (m) => m.nick || m.user.display_name || m.user.username;
    const sorted = [...members.values()].sort((a, b) => name(a).localeCompare(name(b)));
    const online = sorted.filter((m) => SHOWN_ONLINE.has(status(m.user.id)));
    const offline = sorted.filter((m) => !SHOWN_ONLINE.has(status(m.user.id)));
    const item = (member) => {
      const shown = status(member.user.id);
      return h(
        'li',
        { class: ['member', shown === 'offline' && 'offline'], dataset: { userId: member.user.id } },
        avatar(member.user.id, name(member), shown),
        h('span', { class: 'member-name', text: name(member) }),
        member.user.id === guild.owner_id ? h('span', { class: 'owner', title: 'Guild owner', 'aria-label': 'owner', text: '♛' }) : null,
        h('span', { class: 'visually-hidden', text: `, ${STATUS_TEXT[shown] ?? shown}` }),
      );
    };
    const group = (title, list) =>
      list.length ? [h('h2', { class: 'member-group', text: `${title} — ${list.length}` }), h('ul', { class: 'member-list' }, list.map(item))] : [];
    this.replaceChildren(
      h('aside', { class: 'members', 'aria-label': 'Members' }, group('Online', online), group('Offline', offline)),
    );
  }
}

customElements.define('miaou-members', MiaouMembers);
