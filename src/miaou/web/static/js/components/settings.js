// <miaou-guild-settings>: /channels/{guild}/settings/{section}: the sections the user may
// open (settings-sections.js) and the one chosen. Each section is its own component, given
// the guild id; it reads the store and the node, and listens for live changes.

import { h, scheduler } from '../dom.js';
import { channelPath, navigate, settingsPath } from '../router.js';
import { store } from '../store.js';
import { icon } from './bits.js';
import './settings-audit.js';
import './settings-bans.js';
import './settings-channels.js';
import './settings-invites.js';
import './settings-overview.js';
import './settings-roles.js';
import { settingsSections } from './settings-sections.js';

const TAGS = {
  overview: 'miaou-settings-overview',
  channels: 'miaou-settings-channels',
  roles: 'miaou-settings-roles',
  invites: 'miaou-settings-invites',
  bans: 'miaou-settings-bans',
  'audit-log': 'miaou-settings-audit',
};

class MiaouGuildSettings extends HTMLElement {
  connectedCallback() {
    this.shown = null;
    this.update = scheduler(() => this.render());
    this.offs = [store.on('route', this.update), store.on('guilds', this.update), store.on('channels', this.update)];
    this.render();
  }

  disconnectedCallback() {
    for (const off of this.offs) off();
  }

  render() {
    const { name, params } = store.route;
    if (name !== 'settings') return;
    const guild = store.guilds.get(params.guildId);
    const sections = guild ? settingsSections(guild.id) : [];
    const section = sections.find((s) => s.id === params.section) ?? null;
    const key = `${params.guildId}/${section?.id}/${sections.map((s) => s.id).join()}`;
    if (key === this.shown) return;
    this.shown = key;
    if (!guild || !sections.length) {
      this.replaceChildren(
        this.header('Settings'),
        h('section', { class: 'empty-state' }, h('h1', { text: 'No settings here' }), h('p', { text: 'This guild does not exist, or you may not manage it.' })),
      );
      return;
    }
    if (!section) {
      navigate(settingsPath(guild.id, sections[0].id), { replace: true });
      return;
    }
    const back = store.firstChannel(guild.id);
    const nav = h(
      'nav',
      { class: 'settings-nav', 'aria-label': 'Settings sections' },
      h(
        'ul',
        {},
        sections.map((s) =>
          h('li', {}, h('a', { href: settingsPath(guild.id, s.id), 'data-route': '', class: 'settings-link', 'aria-current': s.id === section.id ? 'page' : null, text: s.title })),
        ),
      ),
      back ? h('a', { href: channelPath(guild.id, back.id), 'data-route': '', class: 'button small settings-back', text: 'Back to the channels' }) : null,
    );
    const focusNav = this.contains(document.activeElement) && document.activeElement.matches('.settings-link');
    this.replaceChildren(
      this.header(`${guild.name}: settings`),
      h('div', { class: 'settings' }, nav, h('div', { class: 'settings-body' }, h(TAGS[section.id], { 'guild-id': guild.id }))),
    );
    if (focusNav) this.querySelector('.settings-link[aria-current="page"]')?.focus();
  }

  header(title) {
    return h(
      'header',
      { class: 'channel-header' },
      h('button', { type: 'button', class: 'icon-button nav-toggle', 'aria-label': 'Open the guild and channel list', 'aria-expanded': 'false', 'data-toggles': 'nav', onclick: () => this.dispatchEvent(new CustomEvent('miaou-toggle', { bubbles: true, detail: { panel: 'nav' } })) }, icon('menu')),
      h('h1', { class: 'channel-title', text: title }),
    );
  }
}

customElements.define('miaou-guild-settings', MiaouGuildSettings);
