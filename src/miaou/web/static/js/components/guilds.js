// <miaou-guilds>: the guild rail: home, one button per guild with unread and mention
// badges, and "add a guild" (create one, or join with an invite link).

import { createGuild, inviteCode } from '../actions.js';
import { h, scheduler } from '../dom.js';
import { channelPath, navigate } from '../router.js';
import { store } from '../store.js';
import { badge, icon, initials } from './bits.js';
import { formDialog, openDialog } from './dialogs.js';

class MiaouGuilds extends HTMLElement {
  connectedCallback() {
    this.update = scheduler(() => this.render());
    this.offs = ['guilds', 'channels', 'read', 'route'].map((e) => store.on(e, this.update));
    this.render();
  }

  disconnectedCallback() {
    for (const off of this.offs) off();
  }

  render() {
    const current = store.route.params.guildId ?? null;
    const items = store.sortedGuilds().map((guild) => {
      const { unread, mentions } = store.guildUnread(guild.id);
      const label = [guild.name, mentions ? `${mentions} mention${mentions > 1 ? 's' : ''}` : null, unread && !mentions ? 'unread messages' : null]
        .filter(Boolean)
        .join(', ');
      return h(
        'li',
        { class: ['guild-item', unread && 'unread'] },
        h(
          'a',
          {
            href: `/channels/${guild.id}`,
            'data-route': '',
            class: 'guild-icon',
            'aria-label': label,
            title: guild.name,
            'aria-current': guild.id === current ? 'page' : null,
          },
          h('span', { 'aria-hidden': 'true', text: initials(guild.name) }),
          mentions ? badge(mentions) : null,
        ),
      );
    });
    // Unread direct messages count on the home button, each message, as in Discord.
    const dms = { mentions: 0 };
    for (const c of store.directChannels()) dms.mentions += store.readStates.get(c.id)?.unread_count ?? 0;
    const atHome = store.route.name === 'home' || store.route.params.guildId === '@me';
    const home = h(
      'a',
      {
        href: '/channels/@me',
        'data-route': '',
        class: 'guild-icon home',
        'aria-label': dms.mentions ? `Home, ${dms.mentions} unread direct message${dms.mentions > 1 ? 's' : ''}` : 'Home',
        title: 'Home',
        'aria-current': atHome ? 'page' : null,
      },
      icon('cat'),
      dms.mentions ? badge(dms.mentions) : null,
    );
    this.replaceChildren(
      h(
        'nav',
        { class: 'guild-rail', 'aria-label': 'Guilds' },
        h('ul', {}, h('li', { class: 'guild-item' }, home), h('li', { class: 'separator', role: 'presentation' }), items),
        h('button', { type: 'button', class: 'guild-icon add', 'aria-label': 'Create or join a guild', title: 'Create or join a guild', onclick: () => addGuildDialog() }, h('span', { 'aria-hidden': 'true', text: '+' })),
      ),
    );
  }
}

/** Create a guild, or go to an invite: one dialog with both. */
export function addGuildDialog() {
  const create = h('button', { type: 'button', class: 'button primary wide', text: 'Create a guild' });
  const join = h('button', { type: 'button', class: 'button wide', text: 'Join with an invite' });
  const { dialog } = openDialog({
    title: 'Add a guild',
    body: [h('p', { class: 'intro', text: 'A guild is a place for a community: channels, members, roles.' }), h('div', { class: 'stack' }, create, join)],
  });
  create.addEventListener('click', () => {
    dialog.close('');
    createGuildDialog();
  });
  join.addEventListener('click', () => {
    dialog.close('');
    joinDialog();
  });
  create.focus();
}

async function createGuildDialog() {
  const mine = store.me?.display_name || store.me?.username || 'My';
  const guild = await formDialog({
    title: 'Create a guild',
    fields: [{ name: 'name', label: 'Guild name', value: `${mine}'s guild`, required: true, minlength: 2, maxlength: 100 }],
    submitLabel: 'Create',
    onSubmit: ({ name }) => createGuild(name.trim()),
  });
  if (!guild) return;
  const first = store.firstChannel(guild.id);
  navigate(first ? channelPath(guild.id, first.id) : `/channels/${guild.id}`);
}

async function joinDialog() {
  const code = await formDialog({
    title: 'Join a guild',
    intro: 'Paste an invite link (or just its code).',
    fields: [{ name: 'invite', label: 'Invite link', required: true, maxlength: 300 }],
    submitLabel: 'Continue',
    onSubmit: async ({ invite }) => inviteCode(invite),
  });
  if (code) navigate(`/invite/${encodeURIComponent(code)}`);
}

customElements.define('miaou-guilds', MiaouGuilds);
