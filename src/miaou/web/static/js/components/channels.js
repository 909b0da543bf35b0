// <miaou-channels>: the current guild's channels by category, with unread marks and
// mention counts; invite and new-channel buttons; the user panel (log out).

import { createChannel, createInvite } from '../actions.js';
import { h, reconcile, scheduler } from '../dom.js';
import { channelPath, navigate, settingsPath } from '../router.js';
import { logout } from '../session.js';
import { FORUM, Permission, store } from '../store.js';
import { avatar, badge, icon } from './bits.js';
import { formDialog, openDialog } from './dialogs.js';
import { settingsSections } from './settings-sections.js';

class MiaouChannels extends HTMLElement {
  connectedCallback() {
    this.update = scheduler(() => this.render());
    this.offs = ['guilds', 'channels', 'read', 'route', 'members'].map((e) => store.on(e, this.update));
    this.render();
  }

  disconnectedCallback() {
    for (const off of this.offs) off();
  }

  render() {
    const guildId = store.route.params.guildId;
    const guild = guildId ? store.guilds.get(guildId) : null;
    const body = guild ? this.guildPanel(guild) : [h('miaou-dm-list', { dataset: { key: 'dms' } })];
    // Patched in place, keyed by guild, category and channel: a link whose channel did not
    // change is the same element after an update (a click landing meanwhile is not lost,
    // focus and hover stay), and a changed one is updated where it is.
    reconcile(this, [h('div', { class: 'sidebar', dataset: { key: guild ? `guild-${guild.id}` : 'home' } }, body, this.userPanel())]);
  }

  guildPanel(guild) {
    const currentId = store.route.params.channelId;
    const canInvite = store.can(guild.id, Permission.CREATE_INSTANT_INVITE);
    const canManage = store.can(guild.id, Permission.MANAGE_CHANNELS);
    const groups = store.channelTree(guild.id).map(({ category, channels }) => {
      const headingId = category ? `category-${category.id}` : null;
      return h(
        'section',
        { class: 'channel-group', 'aria-labelledby': headingId, dataset: { key: category?.id ?? 'top' } },
        category
          ? h(
              'div',
              { class: 'category' },
              h('h3', { id: headingId, text: category.name }),
              canManage
                ? h('button', { type: 'button', class: 'icon-button small', 'aria-label': `Create a channel in ${category.name}`, title: 'Create a channel', onclick: () => this.newChannel(guild.id, category.id) }, '+')
                : null,
            )
          : null,
        h('ul', { class: 'channel-list', dataset: { key: 'list' } }, channels.map((channel) => this.channelItem(guild, channel, currentId))),
      );
    });
    return [
      h(
        'header',
        { class: 'sidebar-header' },
        h('h2', { text: guild.name }),
        settingsSections(guild.id).length
          ? h('a', { href: settingsPath(guild.id), 'data-route': '', class: 'icon-button', 'aria-label': `Settings of ${guild.name}`, title: 'Guild settings', 'aria-current': store.route.name === 'settings' ? 'page' : null }, icon('settings'))
          : null,
        canInvite
          ? h('button', { type: 'button', class: 'button small', text: 'Invite', 'aria-label': `Invite people to ${guild.name}`, onclick: () => this.invite(guild) })
          : null,
      ),
      h('nav', { class: 'channels', 'aria-label': `Channels of ${guild.name}`, dataset: { key: 'channels' } }, groups),
    ];
  }

  channelItem(guild, channel, currentId) {
    const state = store.readStates.get(channel.id);
    const unread = (state?.unread_count ?? 0) > 0;
    const mentions = state?.mention_count ?? 0;
    const extra = mentions ? `, ${mentions} mention${mentions > 1 ? 's' : ''}` : unread ? ', unread' : '';
    return h(
      'li',
      { dataset: { key: channel.id } },
      h(
        'a',
        {
          href: channelPath(guild.id, channel.id),
          'data-route': '',
          class: ['channel-link', unread && 'unread'],
          'aria-current': channel.id === currentId ? 'page' : null,
          'aria-label': `${channel.name}${extra}`,
          dataset: { key: channel.id, channelId: channel.id },
        },
        h('span', { class: 'hash', 'aria-hidden': 'true', text: channel.type === 5 ? '!' : channel.type === FORUM ? '≡' : '#' }),
        h('span', { class: 'name', text: channel.name }),
        mentions ? badge(mentions) : null,
      ),
    );
  }

  userPanel() {
    const me = store.me;
    if (!me) return null;
    const name = me.display_name || me.username;
    return h(
      'footer',
      { class: 'user-panel' },
      avatar(me.id, name, 'online'),
      h('span', { class: 'who' }, h('strong', { text: name }), h('span', { class: 'username', text: `@${me.username}` })),
      h('button', { type: 'button', class: 'button small', text: 'Log out', onclick: () => logout() }),
    );
  }

  async newChannel(guildId, parentId) {
    const channel = await formDialog({
      title: 'Create a channel',
      fields: [{ name: 'name', label: 'Channel name', required: true, maxlength: 100 }],
      submitLabel: 'Create',
      onSubmit: ({ name }) => createChannel(guildId, name.trim(), parentId),
    });
    if (channel) navigate(channelPath(guildId, channel.id));
  }

  async invite(guild) {
    const channelId = store.route.params.channelId ?? store.firstChannel(guild.id)?.id;
    const output = h('input', { id: 'invite-link', class: 'invite-link', readonly: true, value: 'Making an invite…', 'aria-describedby': 'invite-note' });
    const copy = h('button', { type: 'button', class: 'button primary', text: 'Copy', disabled: true });
    const note = h('p', { id: 'invite-note', class: 'hint', text: 'Anyone with this link can join for 7 days.' });
    openDialog({
      title: `Invite people to ${guild.name}`,
      body: [h('label', { for: 'invite-link', text: 'Invite link' }), h('div', { class: 'copy-row' }, output, copy), note],
      className: 'invite-dialog',
    });
    try {
      const invite = await createInvite(channelId);
      output.value = invite.url;
      copy.disabled = false;
      output.select();
      copy.addEventListener('click', async () => {
        output.select();
        try {
          await navigator.clipboard.writeText(invite.url);
          copy.textContent = 'Copied';
        } catch {
          note.textContent = 'Select the link and copy it.';
        }
      });
    } catch (error) {
      output.value = '';
      note.textContent = `Could not make an invite: ${error.message}`;
    }
  }
}

customElements.define('miaou-channels', MiaouChannels);
