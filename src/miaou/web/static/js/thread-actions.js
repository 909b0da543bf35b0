// Threads and forum posts over REST (docs/chat.md, "threads"). Threads are channels: they
// live in store.channels beside their parent (READY does not list them: they are read per
// parent when its thread list or forum is shown) and their messages use the same histories.

import { api } from './api.js';
import { openPanel } from './side-panel.js';
import { store } from './store.js';

const enc = encodeURIComponent;
export const ARCHIVED_PAGE = 50;
export const ARCHIVE_AFTER = [
  [60, '1 hour'],
  [1440, '24 hours'],
  [4320, '3 days'],
  [10080, '1 week'],
];

function keep(thread) {
  store.channels.set(thread.id, { ...store.channels.get(thread.id), ...thread });
  store.emit('threads', { parentId: thread.parent_id, threadId: thread.id });
  return thread;
}

const loading = new Map(); // parent id -> Promise

/** Read a channel's active threads and the newest archived ones; once per parent unless
 *  `again`. */
export function loadThreads(parentId, { again = false } = {}) {
  if (!again && store.threadLists.get(parentId)?.loaded) return Promise.resolve();
  let pending = loading.get(parentId);
  if (!pending) {
    pending = readThreads(parentId).finally(() => loading.delete(parentId));
    loading.set(parentId, pending);
  }
  return pending;
}

async function readThreads(parentId) {
  const path = `/channels/${enc(parentId)}/threads`;
  const [active, archived] = await Promise.all([
    api.get(path, { limit: 100 }),
    api.get(path, { archived: true, limit: ARCHIVED_PAGE }),
  ]);
  for (const thread of [...active, ...archived]) store.channels.set(thread.id, { ...store.channels.get(thread.id), ...thread });
  store.threadLists.set(parentId, { loaded: true, moreArchived: archived.length === ARCHIVED_PAGE });
  store.emit('threads', { parentId });
}

export async function loadMoreArchived(parentId) {
  const { archived } = store.threadsOf(parentId);
  const oldest = archived[archived.length - 1];
  const page = await api.get(`/channels/${enc(parentId)}/threads`, {
    archived: true,
    before: oldest?.id,
    limit: ARCHIVED_PAGE,
  });
  for (const thread of page) store.channels.set(thread.id, thread);
  store.threadLists.set(parentId, { loaded: true, moreArchived: page.length === ARCHIVED_PAGE });
  store.emit('threads', { parentId });
}

/** A thread from a message (messageId) or on its own; private ones only on their own. */
export async function startThread(channelId, { name, messageId = null, isPrivate = false, archiveAfter = 1440 }) {
  const body = { name, auto_archive_duration: archiveAfter };
  if (!messageId) body.type = isPrivate ? 12 : 11;
  const path = messageId
    ? `/channels/${enc(channelId)}/messages/${enc(messageId)}/threads`
    : `/channels/${enc(channelId)}/threads`;
  const thread = keep(await api.post(path, body));
  store.threadMembers.set(thread.id, new Set([store.me.id])); // the creator is its first member
  return thread;
}

/** A forum post: a thread with its first message and some of the forum's tags. */
export async function createPost(forumId, { title, content, tags }) {
  const thread = keep(
    await api.post(`/channels/${enc(forumId)}/threads`, {
      name: title,
      message: { content },
      applied_tags: tags,
    }),
  );
  store.threadMembers.set(thread.id, new Set([store.me.id]));
  return thread;
}

export async function loadThreadMembers(threadId) {
  const members = await api.get(`/channels/${enc(threadId)}/thread-members`);
  store.threadMembers.set(threadId, new Set(members.map((m) => m.user_id)));
  store.emit('thread-members', { threadId });
}

export function isThreadMember(threadId) {
  return store.threadMembers.get(threadId)?.has(store.me?.id) ?? false;
}

export async function joinThread(threadId) {
  await api.put(`/channels/${enc(threadId)}/thread-members/@me`);
  store.threadMembers.get(threadId)?.add(store.me.id);
  store.emit('thread-members', { threadId });
}

export async function leaveThread(threadId) {
  await api.del(`/channels/${enc(threadId)}/thread-members/@me`);
  store.threadMembers.get(threadId)?.delete(store.me.id);
  store.emit('thread-members', { threadId });
}

export async function setArchived(threadId, archived) {
  return keep(await api.patch(`/channels/${enc(threadId)}`, { archived }));
}

export async function renameThread(threadId, name) {
  return keep(await api.patch(`/channels/${enc(threadId)}`, { name }));
}

/** A channel the store does not hold yet (a thread named by a link or a search hit). */
export async function ensureChannel(channelId) {
  const known = store.channels.get(channelId);
  if (known) return known;
  const channel = await api.get(`/channels/${enc(channelId)}`);
  store.channels.set(channel.id, channel);
  store.emit('threads', { parentId: channel.parent_id, threadId: channel.id });
  store.emit('channels', { guildId: channel.guild_id });
  return channel;
}

export function openThread(threadId) {
  openPanel({ kind: 'thread', threadId });
}
