// <miaou-settings-invites guild-id="...">: the guild's invites (MANAGE_GUILD): who made
// each, to which channel, uses, expiry; revoke one; make one with a number of uses and an
// expiry. Read again when INVITE_CREATE / INVITE_DELETE arrive.

import { loadMembers } from '../actions.js';
import { h, formatDateTime } from '../dom.js';
import { createInvite, inviteUrl, invites, revokeInvite } from '../guild-admin.js';
import { store } from '../store.js';
import { showLatest } from './bits.js';
import { field } from './forms.js';

const MAX_AGES = [
  [1800, '30 minutes'],
  [3600, '1 hour'],
  [21600, '6 hours'],
  [43200, '12 hours'],
  [86400, '1 day'],
  [604800, '7 days'],
];
const MAX_USES = [
  [0, 'No limit'],
  [1, '1 use'],
  [5, '5 uses'],
  [10, '10 uses'],
  [25, '25 uses'],
  [100, '100 uses'],
];

class MiaouSettingsInvites extends HTMLElement {
  connectedCallback() {
    this.guildId = this.getAttribute('guild-id');
    this.off = store.on('guild-admin', ({ guildId, kind }) => guildId === this.guildId && kind === 'invites' && this.load());
    this.table = h('div', { class: 'settings-table' }, h('p', { class: 'muted', role: 'status', text: 'Loading invites…' }));
    this.made = h('p', { class: 'saved', role: 'status' });
    this.replaceChildren(
      h(
        'section',
        { class: 'settings-section', 'aria-labelledby': 'invites-title' },
        h('h2', { id: 'invites-title', class: 'settings-title', text: 'Invites' }),
        this.form(),
        this.made,
        this.table,
      ),
    );
    this.load();
  }

  disconnectedCallback() {
    this.off();
  }

  form() {
    const texts = [...store.channels.values()].filter((c) => c.guild_id === this.guildId && (c.type === 0 || c.type === 5 || c.type === 15));
    const channel = field({ name: 'channel', label: 'Channel', kind: 'select', value: store.firstChannel(this.guildId)?.id, options: texts.map((c) => [c.id, `#${c.name}`]) });
    const age = field({ name: 'max_age', label: 'Expires after', kind: 'select', value: 86400, options: MAX_AGES });
    const uses = field({ name: 'max_uses', label: 'Uses', kind: 'select', value: 0, options: MAX_USES });
    const submit = h('button', { type: 'submit', class: 'button primary', text: 'Create invite' });
    const form = h('form', { class: 'settings-form inline-form', 'aria-label': 'Create an invite' }, channel.row, age.row, uses.row, h('div', { class: 'form-actions' }, submit));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      submit.disabled = true;
      this.made.textContent = '';
      try {
        const invite = await createInvite(channel.read(), { maxAge: Number(age.read()), maxUses: Number(uses.read()) });
        this.made.textContent = `New invite: ${inviteUrl(invite.code)}`;
        await this.load();
      } catch (error) {
        this.made.textContent = `Could not create an invite: ${error.message}`;
      } finally {
        submit.disabled = false;
      }
    });
    return form;
  }

  load() {
    const read = async () => {
      if (!store.members.has(this.guildId)) await loadMembers(this.guildId).catch(() => {});
      return invites(this.guildId);
    };
    return showLatest(this, this.table, read, (list) => this.show(list));
  }

  show(list) {
    if (!list.length) {
      this.table.replaceChildren(h('p', { class: 'muted', text: 'No invite.' }));
      return;
    }
    const row = (invite) => {
      const channel = store.channels.get(invite.channel_id);
      const inviter = invite.inviter_id ? store.displayName(invite.inviter_id, this.guildId) ?? 'someone' : 'nobody';
      const revoke = h('button', { type: 'button', class: 'button small', text: 'Revoke', 'aria-label': `Revoke the invite ${invite.code}` });
      revoke.addEventListener('click', async () => {
        revoke.disabled = true;
        try {
          await revokeInvite(invite.code);
          await this.load();
        } catch (error) {
          revoke.disabled = false;
          store.toast(`Could not revoke: ${error.message}`);
        }
      });
      return h(
        'tr',
        { dataset: { code: invite.code } },
        h('td', {}, h('code', { text: invite.code })),
        h('td', { text: channel ? `#${channel.name}` : '—' }),
        h('td', { text: inviter }),
        h('td', { text: invite.max_uses ? `${invite.uses} / ${invite.max_uses}` : String(invite.uses) }),
        h('td', { text: invite.expires_at ? formatDateTime(invite.expires_at) : 'never' }),
        h('td', {}, revoke),
      );
    };
    this.table.replaceChildren(
      h(
        'table',
        { class: 'admin-table' },
        h('caption', { class: 'visually-hidden', text: 'Invites' }),
        h('thead', {}, h('tr', {}, ['Code', 'Channel', 'Made by', 'Uses', 'Expires', 'Actions'].map((t) => h('th', { scope: 'col', text: t })))),
        h('tbody', {}, list.map(row)),
      ),
    );
  }
}

customElements.define('miaou-settings-invites', MiaouSettingsInvites);
