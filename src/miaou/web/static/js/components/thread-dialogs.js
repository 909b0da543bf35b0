// Starting threads: from a message, on their own in a channel, and forum posts (a title, a
// first message, some of the forum's tags). Each opens the new thread in the side panel.

import { Permission, store } from '../store.js';
import { ARCHIVE_AFTER, createPost, openThread, startThread } from '../thread-actions.js';
import { toStored } from '../mentions.js';
import { richFormDialog } from './forms.js';
import { snippet } from './message-view.js';

const archiveField = {
  name: 'archive',
  label: 'Archive after inactivity',
  kind: 'select',
  value: 1440,
  options: ARCHIVE_AFTER,
};

export function threadCreateAllowed(channelId) {
  return store.canIn(channelId, Permission.CREATE_PUBLIC_THREADS) || store.canIn(channelId, Permission.CREATE_PRIVATE_THREADS);
}

export async function startThreadDialog(channelId, message) {
  const guessed = snippet(message, 60).trim() || 'New thread';
  const thread = await richFormDialog({
    title: 'Create a thread',
    intro: `From the message: "${snippet(message, 80)}"`,
    fields: [{ name: 'name', label: 'Thread name', value: guessed.slice(0, 100), required: true, maxlength: 100 }, archiveField],
    submitLabel: 'Create thread',
    onSubmit: ({ name, archive }) =>
      startThread(channelId, { name: name.trim(), messageId: message.id, archiveAfter: Number(archive) }),
  });
  if (thread) openThread(thread.id);
}

export async function newThreadDialog(channelId) {
  const canPrivate = store.canIn(channelId, Permission.CREATE_PRIVATE_THREADS);
  const fields = [{ name: 'name', label: 'Thread name', required: true, maxlength: 100 }, archiveField];
  if (canPrivate) {
    fields.push({ name: 'private', label: 'Private thread', kind: 'checkbox', hint: 'Only people added (and moderators) see it.' });
  }
  const thread = await richFormDialog({
    title: 'New thread',
    fields,
    submitLabel: 'Create thread',
    onSubmit: ({ name, archive, private: isPrivate }) =>
      startThread(channelId, { name: name.trim(), isPrivate: Boolean(isPrivate), archiveAfter: Number(archive) }),
  });
  if (thread) openThread(thread.id);
}

export async function newPostDialog(forum) {
  const tags = forum.available_tags ?? [];
  const fields = [
    { name: 'title', label: 'Post title', required: true, maxlength: 100 },
    { name: 'content', label: 'Message', kind: 'textarea', required: true, maxlength: 4000, rows: 5 },
  ];
  if (tags.length) {
    fields.push({
      name: 'tags',
      label: 'Tags (up to 5)',
      kind: 'checkboxes',
      choices: tags.map((t) => ({ value: t.id, label: t.emoji ? `${t.emoji} ${t.name}` : t.name })),
    });
  }
  const post = await richFormDialog({
    title: `New post in ${forum.name}`,
    fields,
    submitLabel: 'Post',
    onSubmit: ({ title, content, tags: chosen }) =>
      createPost(forum.id, { title: title.trim(), content: toStored(content.trim(), forum.guild_id), tags: chosen ?? [] }),
  });
  if (post) openThread(post.id);
}
