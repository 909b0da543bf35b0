// <miaou-members>: the guild's members: online ones under their highest hoisted role (or
// "Online"), then offline ones (presence from PRESENCE_UPDATE; see docs/web.md for what
// the node does not tell yet). Choosing a member opens their card (DM, roles, kick, ban).

import { loadMembers } from '../actions.js';
import { h, scheduler } from '../dom.js';
import { rolesByRank } from '../guild-admin.js';
import { store } from '../store.js';
import { avatar } from './bits.js';
import { memberCard } from './member-card.js';

const SHOWN_ONLINE = new Set(['online', 'idle', 'dnd']);
const STATUS_TEXT = { online: 'online', idle: 'idle', dnd: 'do not disturb', offline: 'offline' };

class MiaouMembers extends HTMLElement {
  connectedCallback() {
    this.requested = new Set();
    this.update = scheduler(() => this.render());
    this.offs = ['members', 'route', 'guilds', 'channels'].map((e) => store.on(e, this.update));
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
      this.renderGroup();
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
    const ranked = rolesByRank(guildId).filter((r) => r.id !== guildId);
    const colorOf = (member) => ranked.find((r) => r.color && member.roles.includes(r.id))?.color ?? 0;
    const item = (member) => {
      const shown = status(member.user.id);
      const label = h('span', { class: 'member-name', text: name(member) });
      const color = colorOf(member);
      if (color) {
        // The role's colour, through CSSOM (the CSP allows no style attribute).
        label.classList.add('colored');
        label.style.setProperty('--role-color', `#${color.toString(16).padStart(6, '0')}`);
      }
      return h(
        'li',
        { class: ['member', shown === 'offline' && 'offline'], dataset: { userId: member.user.id } },
        h(
          'button',
          { type: 'button', class: 'member-button', 'aria-haspopup': 'dialog', onclick: () => memberCard(guildId, store.member(guildId, member.user.id) ?? member) },
          avatar(member.user.id, name(member), shown),
          label,
          member.user.id === guild.owner_id ? h('span', { class: 'owner', title: 'Guild owner', 'aria-label': 'owner', text: '♛' }) : null,
          h('span', { class: 'visually-hidden', text: `, ${STATUS_TEXT[shown] ?? shown}` }),
        ),
      );
    };
    const group = (title, list) =>
      list.length ? [h('h2', { class: 'member-group', text: `${title} — ${list.length}` }), h('ul', { class: 'member-list' }, list.map(item))] : [];
    // Online members go under their highest hoisted role, as in Discord.
    const hoisted = ranked.filter((r) => r.hoist);
    const byRole = new Map(hoisted.map((r) => [r.id, []]));
    const plain = [];
    for (const member of online) {
      const top = hoisted.find((r) => member.roles.includes(r.id));
      (top ? byRole.get(top.id) : plain).push(member);
    }
    const focused = this.contains(document.activeElement) ? document.activeElement.closest('li')?.dataset.userId : null;
    this.replaceChildren(
      h(
        'aside',
        { class: 'members', 'aria-label': 'Members' },
        hoisted.map((r) => group(r.name, byRole.get(r.id))),
        group('Online', plain),
        group('Offline', offline),
      ),
    );
    if (focused) this.querySelector(`li[data-user-id="${focused}"] button`)?.focus();
  }

  /** A group DM's people (a DM shows none: there are two of you). */
  renderGroup() {
    const { name, params } = store.route;
    const channel = name === 'channel' ? store.channels.get(params.channelId) : null;
    if (channel?.type !== 3) {
      this.replaceChildren();
      return;
    }
    const people = channel.recipients ?? [];
    const status = (id) => (id === store.me?.id ? 'online' : store.presence.get(id) ?? 'offline');
    this.replaceChildren(
      h(
        'aside',
        { class: 'members', 'aria-label': 'Members' },
        h('h2', { class: 'member-group', text: `Members — ${people.length}` }),
        h(
          'ul',
          { class: 'member-list' },
          people.map((user) =>
            h(
              'li',
              { class: ['member', status(user.id) === 'offline' && 'offline'], dataset: { userId: user.id } },
              h('span', { class: 'member-button' }, avatar(user.id, user.display_name || user.username, status(user.id)), h('span', { class: 'member-name', text: user.display_name || user.username })),
            ),
          ),
        ),
      ),
    );
  }
}

customElements.define('miaou-members', MiaouMembers);
