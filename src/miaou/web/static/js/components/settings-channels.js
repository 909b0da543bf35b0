// <miaou-settings-channels guild-id="...">: create, edit (name, topic, slow mode, NSFW,
// category, forum tags), reorder, delete channels and categories (MANAGE_CHANNELS); their
// permission overwrites (MANAGE_ROLES) open in a dialog.

import { createChannel, deleteChannel, moveChannels, updateChannel } from '../guild-admin.js';
import { h, scheduler } from '../dom.js';
import { CATEGORY, FORUM, Permission, store } from '../store.js';
import { confirmWithReason } from './dialogs.js';
import { richFormDialog } from './forms.js';
import { overwritesDialog } from './settings-overwrites.js';

const TYPES = [
  [0, 'Text'],
  [5, 'Announcement'],
  [FORUM, 'Forum'],
  [CATEGORY, 'Category'],
];
const TYPE_NAME = Object.fromEntries(TYPES);
const SLOW_MODES = [
  [0, 'Off'],
  [5, '5 seconds'],
  [10, '10 seconds'],
  [30, '30 seconds'],
  [60, '1 minute'],
  [300, '5 minutes'],
  [900, '15 minutes'],
  [3600, '1 hour'],
  [21600, '6 hours'],
];

function categories(guildId) {
  return [...store.channels.values()].filter((c) => c.guild_id === guildId && c.type === CATEGORY).sort((a, b) => a.position - b.position);
}

function parentField(guildId, value) {
  return { name: 'parent', label: 'Category', kind: 'select', value: value ?? '', options: [['', 'No category'], ...categories(guildId).map((c) => [c.id, c.name])] };
}

async function createDialog(guildId) {
  return richFormDialog({
    title: 'Create a channel',
    fields: [
      { name: 'name', label: 'Name', required: true, maxlength: 100 },
      { name: 'type', label: 'Type', kind: 'select', value: 0, options: TYPES },
      parentField(guildId, categories(guildId)[0]?.id ?? null),
    ],
    submitLabel: 'Create',
    onSubmit: ({ name, type, parent }) => {
      const kind = Number(type);
      return createChannel(guildId, { name: name.trim(), type: kind, parent_id: kind === CATEGORY ? null : parent || null });
    },
  });
}

async function editDialog(channel) {
  const isCategory = channel.type === CATEGORY;
  const fields = [{ name: 'name', label: 'Name', value: channel.name, required: true, maxlength: 100 }];
  if (!isCategory) {
    fields.push(
      { name: 'topic', label: channel.type === FORUM ? 'Guidelines' : 'Topic', kind: 'textarea', value: channel.topic ?? '', maxlength: channel.type === FORUM ? 4096 : 1024 },
      { name: 'slow', label: 'Slow mode', kind: 'select', value: channel.rate_limit_per_user ?? 0, options: SLOW_MODES, hint: 'How long each member waits between messages.' },
      { name: 'nsfw', label: 'Age-restricted (NSFW)', kind: 'checkbox', value: channel.nsfw },
      parentField(channel.guild_id, channel.parent_id),
    );
  }
  if (channel.type === FORUM) {
    const tags = (channel.available_tags ?? []).map((t) => t.name).join('\n');
    fields.push({ name: 'tags', label: 'Tags, one a line (up to 20)', kind: 'textarea', value: tags, rows: 4 });
  }
  return richFormDialog({
    title: `Edit ${isCategory ? 'category' : '#'}${isCategory ? ` ${channel.name}` : channel.name}`,
    fields,
    submitLabel: 'Save',
    onSubmit: async (values) => {
      const changes = {};
      if (values.name.trim() !== channel.name) changes.name = values.name.trim();
      if (!isCategory) {
        const topic = values.topic.trim() || null;
        if (topic !== (channel.topic ?? null)) changes.topic = topic;
        if (Number(values.slow) !== (channel.rate_limit_per_user ?? 0)) changes.rate_limit_per_user = Number(values.slow);
        if (values.nsfw !== Boolean(channel.nsfw)) changes.nsfw = values.nsfw;
        if ((values.parent || null) !== (channel.parent_id ?? null)) changes.parent_id = values.parent || null;
      }
      if (channel.type === FORUM) {
        const known = new Map((channel.available_tags ?? []).map((t) => [t.name, t]));
        const names = [...new Set(values.tags.split('\n').map((t) => t.trim()).filter(Boolean))];
        const tags = names.map((name) => (known.has(name) ? { id: known.get(name).id, name, emoji: known.get(name).emoji ?? null } : { name }));
        if (names.join('\n') !== (channel.available_tags ?? []).map((t) => t.name).join('\n')) changes.available_tags = tags;
      }
      return Object.keys(changes).length ? updateChannel(channel.id, changes) : channel;
    },
  });
}

class MiaouSettingsChannels extends HTMLElement {
  connectedCallback() {
    this.guildId = this.getAttribute('guild-id');
    this.update = scheduler(() => this.render());
    this.off = store.on('channels', ({ guildId }) => (!guildId || guildId === this.guildId) && this.update());
    this.render();
  }

  disconnectedCallback() {
    this.off();
  }

  render() {
    const focused = document.activeElement;
    const refocus = this.contains(focused) && focused.dataset.key ? focused.dataset.key : null;
    const groups = store.channelTree(this.guildId);
    const canOverwrite = store.can(this.guildId, Permission.MANAGE_ROLES);
    const rows = [];
    for (const { category, channels } of groups) {
      if (category) rows.push(this.row(category, categories(this.guildId), canOverwrite));
      for (const channel of channels) rows.push(this.row(channel, channels, canOverwrite));
    }
    this.replaceChildren(
      h(
        'section',
        { class: 'settings-section', 'aria-labelledby': 'channels-title' },
        h('div', { class: 'settings-head' }, h('h2', { id: 'channels-title', class: 'settings-title', text: 'Channels' }), h('button', { type: 'button', class: 'button primary', text: 'Create a channel', onclick: () => createDialog(this.guildId) })),
        h('ul', { class: 'settings-list channel-admin', 'aria-label': 'Channels and categories' }, rows),
      ),
    );
    if (refocus) this.querySelector(`[data-key="${refocus}"]`)?.focus();
  }

  row(channel, siblings, canOverwrite) {
    const at = siblings.indexOf(channel);
    const label = channel.type === CATEGORY ? channel.name : `#${channel.name}`;
    const button = (text, action, aria, disabled = false) =>
      h('button', { type: 'button', class: 'button small', text, 'aria-label': `${aria} ${label}`, disabled, dataset: { key: `${text}:${channel.id}` }, onclick: action });
    return h(
      'li',
      { class: ['admin-row', channel.type === CATEGORY ? 'is-category' : 'is-channel'], dataset: { channelId: channel.id } },
      h('span', { class: 'admin-name' }, h('strong', { text: label }), h('span', { class: 'muted', text: ` ${TYPE_NAME[channel.type] ?? 'Channel'}` }), channel.topic ? h('span', { class: 'hint admin-topic', text: channel.topic }) : null),
      h(
        'span',
        { class: 'admin-actions' },
        button('Up', () => this.move(channel, siblings, -1), 'Move up', at <= 0),
        button('Down', () => this.move(channel, siblings, 1), 'Move down', at >= siblings.length - 1),
        button('Edit', () => editDialog(channel), 'Edit'),
        canOverwrite ? button('Permissions', () => overwritesDialog(channel), 'Permissions of') : null,
        button('Delete', () => this.remove(channel), 'Delete'),
      ),
    );
  }

  async move(channel, siblings, step) {
    const order = [...siblings];
    const at = order.indexOf(channel);
    [order[at], order[at + step]] = [order[at + step], order[at]];
    try {
      await moveChannels(this.guildId, order.map((c, position) => ({ id: c.id, position })));
    } catch (error) {
      store.toast(`Could not move: ${error.message}`);
    }
  }

  async remove(channel) {
    const reason = await confirmWithReason({
      title: 'Delete channel',
      text: `Delete ${channel.type === CATEGORY ? 'the category' : '#'}${channel.type === CATEGORY ? ` ${channel.name}` : channel.name}? Its messages go with it.`,
      confirmLabel: 'Delete',
      danger: true,
    });
    if (reason === null) return;
    try {
      await deleteChannel(channel.id, reason);
    } catch (error) {
      store.toast(`Could not delete: ${error.message}`);
    }
  }
}

customElements.define('miaou-settings-channels', MiaouSettingsChannels);
