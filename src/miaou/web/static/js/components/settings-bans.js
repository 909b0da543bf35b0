// <miaou-settings-bans guild-id="...">: the guild's bans with their reasons (BAN_MEMBERS);
// unban. Banning is done from a member's card (member-card.js). Read again when
// GUILD_BAN_ADD / GUILD_BAN_REMOVE arrive.

import { h } from '../dom.js';
import { bans, unban } from '../guild-admin.js';
import { store } from '../store.js';
import { avatar, showLatest } from './bits.js';

class MiaouSettingsBans extends HTMLElement {
  connectedCallback() {
    this.guildId = this.getAttribute('guild-id');
    this.off = store.on('guild-admin', ({ guildId, kind }) => guildId === this.guildId && kind === 'bans' && this.load());
    this.list = h('div', {}, h('p', { class: 'muted', role: 'status', text: 'Loading bans…' }));
    this.replaceChildren(
      h(
        'section',
        { class: 'settings-section', 'aria-labelledby': 'bans-title' },
        h('h2', { id: 'bans-title', class: 'settings-title', text: 'Bans' }),
        h('p', { class: 'hint', text: 'To ban someone, choose them in the member list.' }),
        this.list,
      ),
    );
    this.load();
  }

  disconnectedCallback() {
    this.off();
  }

  load() {
    return showLatest(this, this.list, () => bans(this.guildId), (found) =>
      this.list.replaceChildren(
        found.length
          ? h('ul', { class: 'settings-list', 'aria-label': 'Banned people' }, found.map((ban) => this.item(ban)))
          : h('p', { class: 'muted', text: 'Nobody is banned.' }),
      ),
    );
  }

  item(ban) {
    const name = ban.user.display_name || ban.user.username;
    const button = h('button', { type: 'button', class: 'button small', text: 'Unban', 'aria-label': `Unban ${name}` });
    button.addEventListener('click', async () => {
      button.disabled = true;
      try {
        await unban(this.guildId, ban.user.id);
        await this.load();
      } catch (error) {
        button.disabled = false;
        store.toast(`Could not unban: ${error.message}`);
      }
    });
    return h(
      'li',
      { class: 'admin-row', dataset: { userId: ban.user.id } },
      h('span', { class: 'admin-name' }, avatar(ban.user.id, name), h('strong', { text: name }), h('span', { class: 'muted', text: ` @${ban.user.username}` }), h('span', { class: 'hint admin-topic', text: ban.reason ? `Reason: ${ban.reason}` : 'No reason given.' })),
      h('span', { class: 'admin-actions' }, button),
    );
  }
}

customElements.define('miaou-settings-bans', MiaouSettingsBans);
