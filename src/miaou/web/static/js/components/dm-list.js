// <miaou-dm-list>: the home sidebar: direct messages and group DMs, the most recently active
// first, with unread marks and mention counts; a button to start a group (up to 10 people).

import { loadMembers } from '../actions.js';
import { MAX_GROUP, createGroupDM, knownPeople } from '../dm-actions.js';
import { h, reconcile, scheduler } from '../dom.js';
import { channelPath } from '../router.js';
import { store } from '../store.js';
import { avatar, badge } from './bits.js';
import { richFormDialog } from './forms.js';

class MiaouDmList extends HTMLElement {
  connectedCallback() {
    this.update = scheduler(() => this.render());
    this.offs = ['channels', 'read', 'route', 'session'].map((e) => store.on(e, this.update));
    this.render();
  }

  disconnectedCallback() {
    for (const off of this.offs) off();
  }

  render() {
    const current = store.route.params.channelId;
    const items = store.directChannels().map((channel) => {
      const state = store.readStates.get(channel.id);
      const unread = (state?.unread_count ?? 0) > 0;
      const mentions = state?.mention_count ?? 0;
      const label = store.channelLabel(channel);
      const others = (channel.recipients ?? []).filter((u) => u.id !== store.me?.id);
      const extra = mentions ? `, ${mentions} mention${mentions > 1 ? 's' : ''}` : unread ? ', unread' : '';
      return h(
        'li',
        { dataset: { key: channel.id } },
        h(
          'a',
          {
            href: channelPath(null, channel.id),
            'data-route': '',
            class: ['channel-link', 'dm-link', unread && 'unread'],
            'aria-current': channel.id === current ? 'page' : null,
            'aria-label': `${label}${channel.type === 3 ? `, group of ${others.length + 1}` : ''}${extra}`,
            dataset: { key: channel.id, channelId: channel.id },
          },
          avatar(others[0]?.id ?? channel.id, label),
          h('span', { class: 'name', text: label }),
          mentions ? badge(mentions) : null,
        ),
      );
    });
    // Patched in place, keyed by conversation (dom.reconcile): a new message elsewhere
    // keeps every other link the element it was (focus, hover, a click landing meanwhile).
    reconcile(this, [
      h(
        'header',
        { class: 'sidebar-header' },
        h('h2', { text: 'Direct messages' }),
        h('button', { type: 'button', class: 'icon-button small', 'aria-label': 'New group message', title: 'New group message', onclick: () => newGroupDialog() }, '+'),
      ),
      h(
        'nav',
        { class: 'channels', 'aria-label': 'Direct messages', dataset: { key: 'dms' } },
        items.length ? h('ul', { class: 'channel-list', dataset: { key: 'list' } }, items) : h('p', { class: 'muted dm-empty', text: 'No conversation yet.' }),
      ),
    ]);
  }
}

/** Pick people (those I share a guild or a DM with) and start a group DM. */
export async function newGroupDialog() {
  await Promise.all([...store.guilds.keys()].slice(0, 20).map((id) => loadMembers(id).catch(() => {})));
  const people = knownPeople();
  if (!people.length) {
    store.toast('Join a guild first: you can write to the people you share one with.');
    return;
  }
  await richFormDialog({
    title: 'New group message',
    intro: `Choose up to ${MAX_GROUP - 1} people.`,
    fields: [
      {
        name: 'people',
        label: 'People',
        kind: 'checkboxes',
        choices: people.map((u) => ({ value: u.id, label: u.display_name || u.username, hint: `@${u.username}` })),
      },
      { name: 'name', label: 'Group name (optional)', maxlength: 100 },
    ],
    submitLabel: 'Create group',
    className: 'group-dialog',
    onSubmit: ({ people: chosen, name }) => {
      if (!chosen.length) throw new Error('Choose at least one person.');
      if (chosen.length > MAX_GROUP - 1) throw new Error(`A group holds at most ${MAX_GROUP} people, you included.`);
      return createGroupDM(chosen, name.trim() || null);
    },
  });
}

customElements.define('miaou-dm-list', MiaouDmList);
