// One message as DOM: author, time, markdown content, reply preview, attachments,
// reactions, and its action buttons (handled by <miaou-messages> through data-action).

import { reactionKey } from '../actions.js';
import { renderAttachments } from '../attachments.js';
import { h, timeElement } from '../dom.js';
import { plainText, renderMarkdown } from '../markdown.js';
import { toTyped } from '../mentions.js';
import { store } from '../store.js';
import { avatar, icon } from './bits.js';

export const QUICK_REACTIONS = ['👍', '❤️', '😂', '🎉', '😮', '👀'];
const GROUP_MS = 7 * 60 * 1000;

export function markdownContext(guildId) {
  const guild = store.guilds.get(guildId);
  return {
    meId: store.me?.id,
    userName: (id) => store.displayName(id, guildId),
    roleName: (id) => guild?.roles?.find((r) => r.id === id)?.name ?? null,
    channel: (id) => {
      const c = store.channels.get(id);
      return c ? { name: c.name, href: `/channels/${c.guild_id}/${c.id}` } : null;
    },
    myRoles: store.myRoles(guildId),
  };
}

/** Whether a message continues the previous one's group (same author, soon after). */
export function continues(previous, message) {
  return Boolean(
    previous &&
      !message.message_reference &&
      previous.author.id === message.author.id &&
      message.timestamp - previous.timestamp < GROUP_MS,
  );
}

function nameOf(user, guildId) {
  return store.displayName(user.id, guildId) ?? user.username;
}

function replyPreview(message, guildId, references) {
  const id = message.message_reference?.message_id;
  if (!id) return null;
  const original = references(id);
  const body =
    original === undefined
      ? h('span', { class: 'muted', text: 'Loading the original message…' })
      : original === null
        ? h('span', { class: 'muted', text: 'The original message was deleted.' })
        : [
            h('span', { class: 'reply-author', text: `@${nameOf(original.author, guildId)}` }),
            ' ',
            h('span', { class: 'reply-text', text: snippet(original, 100, guildId) }),
          ];
  return h(
    'button',
    {
      type: 'button',
      class: 'reply-preview',
      dataset: { action: 'jump', target: id },
      'aria-label': original ? `Reply to ${nameOf(original.author, guildId)}: ${snippet(original, 100, guildId)}. Show the original` : 'Reply',
    },
    h('span', { class: 'reply-arrow', 'aria-hidden': 'true', text: '↪' }),
    body,
  );
}

export function snippet(message, length = 100, guildId = message.guild_id) {
  const text = plainText(message.content, markdownContext(guildId));
  if (!text) return message.attachments?.length ? `[${message.attachments.length} attachment(s)]` : '';
  return text.length > length ? `${text.slice(0, length)}…` : text;
}

function reactions(message) {
  const list = message.reactions ?? [];
  if (!list.length) return null;
  return h(
    'div',
    { class: 'reactions', role: 'group', 'aria-label': 'Reactions' },
    list.map((r) => {
      const key = reactionKey(r.emoji);
      const label = `${r.emoji.name}: ${r.count} reaction${r.count > 1 ? 's' : ''}${r.me ? ', including yours; press to remove yours' : '; press to add yours'}`;
      return h(
        'button',
        {
          type: 'button',
          class: ['reaction', r.me && 'mine'],
          'aria-pressed': r.me ? 'true' : 'false',
          'aria-label': label,
          dataset: { action: 'react', emoji: key },
        },
        h('span', { class: 'emoji', text: r.emoji.name }),
        h('span', { class: 'count', text: String(r.count) }),
      );
    }),
  );
}

/** The thread started from this message, as the store knows it now (else as read with it). */
export function startedThread(message) {
  return message.thread ? store.channels.get(message.thread.id) ?? message.thread : null;
}

// The thread started from this message: its name and size, a button that opens it.
function threadLink(message) {
  const known = startedThread(message);
  if (!known) return null;
  const count = known.message_count ?? 0;
  const size = count === 1 ? '1 message' : `${count} messages`;
  return h(
    'button',
    { type: 'button', class: 'thread-link', dataset: { action: 'open-thread', thread: known.id }, 'aria-label': `Open the thread ${known.name} (${size})` },
    icon('thread'),
    h('span', { class: 'thread-name', text: known.name }),
    h('span', { class: 'thread-size', text: size }),
  );
}

function actions(message, { mine, canManage, canThread, canPin }) {
  const button = (action, label, glyph, extra = {}) =>
    h('button', { type: 'button', class: 'icon-button', 'aria-label': label, title: label, dataset: { action }, ...extra }, glyph);
  return h(
    'div',
    { class: 'message-actions', role: 'toolbar', 'aria-label': 'Message actions' },
    button('pick-reaction', 'Add a reaction', icon('smile'), { 'aria-haspopup': 'true' }),
    button('reply', 'Reply', icon('reply')),
    canThread ? button('thread', 'Create a thread', icon('thread')) : null,
    canPin ? (message.pinned ? button('unpin', 'Unpin', icon('pin')) : button('pin', 'Pin', icon('pin'))) : null,
    mine ? button('edit', 'Edit', icon('edit')) : null,
    mine || canManage ? button('delete', 'Delete', icon('trash')) : null,
  );
}

function editor(message) {
  const textarea = h('textarea', {
    class: 'edit-input',
    'aria-label': 'Edit message',
    rows: Math.min(8, message.content.split('\n').length + 1),
    maxlength: 4000,
    value: toTyped(message.content),
  });
  return h(
    'form',
    { class: 'edit-form', dataset: { action: 'save-edit' } },
    textarea,
    h(
      'div',
      { class: 'edit-help' },
      'Enter to save, Escape to cancel · ',
      h('button', { type: 'submit', class: 'link-button', text: 'Save' }),
      ' · ',
      h('button', { type: 'button', class: 'link-button', dataset: { action: 'cancel-edit' }, text: 'Cancel' }),
    ),
  );
}

/** The <li> of a message. options: grouped, guildId, editing, canManage, references(id),
 *  canThread, canPin. */
export function renderMessage(message, { grouped, guildId, editing, canManage, references, canThread = false, canPin = false }) {
  const mine = message.author.id === store.me?.id;
  const name = nameOf(message.author, guildId);
  const mentioned = !mine && store.mentionsMe(message);
  const time = timeElement(message.timestamp);
  const content = editing
    ? editor(message)
    : h(
        'div',
        { class: 'content' },
        renderMarkdown(message.content, markdownContext(guildId)),
        message.edited_timestamp
          ? [' ', h('button', { type: 'button', class: 'edited', dataset: { action: 'history' }, 'aria-label': 'Edited: show the edit history', text: '(edited)' })]
          : null,
      );
  return h(
    'li',
    {
      class: ['message', grouped && 'grouped', mentioned && 'mentioned', mine && 'mine'],
      dataset: { id: message.id },
      tabindex: '-1',
    },
    replyPreview(message, guildId, references),
    h('div', { class: 'gutter' }, grouped ? h('span', { class: 'hover-time' }, timeElement(message.timestamp, 'time short')) : avatar(message.author.id, name)),
    h(
      'div',
      { class: 'message-body' },
      h(
        'div',
        { class: grouped ? 'message-header visually-hidden' : 'message-header' },
        h('span', { class: 'author', text: name }),
        ' ',
        time,
        message.pinned ? h('span', { class: 'pinned-mark', text: 'pinned' }) : null,
      ),
      content,
      renderAttachments(message.attachments, (attachment) => openImage(attachment)),
      threadLink(message),
      reactions(message),
    ),
    actions(message, { mine, canManage, canThread, canPin }),
  );
}

/** A send not yet acknowledged (sending, or failed with Retry / Discard). */
export function renderPending(pending, guildId) {
  const me = store.me;
  const name = store.displayName(me.id, guildId) ?? me.username;
  const failed = pending.state === 'failed';
  return h(
    'li',
    { class: ['message', 'pending', failed && 'failed'], dataset: { nonce: pending.nonce }, tabindex: '-1' },
    h('div', { class: 'gutter' }, avatar(me.id, name)),
    h(
      'div',
      { class: 'message-body' },
      h('div', { class: 'message-header' }, h('span', { class: 'author', text: name })),
      h('div', { class: 'content' }, renderMarkdown(pending.content, markdownContext(guildId))),
      failed
        ? h(
            'p',
            { class: 'send-failed', role: 'alert' },
            `Not sent: ${pending.error} `,
            h('button', { type: 'button', class: 'link-button', dataset: { action: 'retry' }, text: 'Retry' }),
            ' · ',
            h('button', { type: 'button', class: 'link-button', dataset: { action: 'discard' }, text: 'Discard' }),
          )
        : h('p', { class: 'sending', text: 'Sending…' }),
    ),
  );
}

export function reactionPicker() {
  return h(
    'div',
    { class: 'reaction-picker', role: 'group', 'aria-label': 'Pick a reaction' },
    QUICK_REACTIONS.map((emoji) =>
      h('button', { type: 'button', class: 'icon-button', 'aria-label': `React with ${emoji}`, dataset: { action: 'react', emoji }, text: emoji }),
    ),
  );
}

// The image viewer is a dialog; imported lazily to keep this module about messages.
async function openImage(attachment) {
  const { openImageViewer } = await import('./viewer.js');
  openImageViewer(attachment);
}
