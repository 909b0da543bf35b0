// Direct messages and group DMs (docs/chat.md, "DMs"): opening one returns the existing DM
// with that person if there is one; a group holds up to 10 people, its creator included.
// The node's CHANNEL_CREATE (on each recipient's user stream) tells the others.

import { api } from './api.js';
import { channelPath, navigate } from './router.js';
import { store } from './store.js';

export const MAX_GROUP = 10;

function keep(channel) {
  store.channels.set(channel.id, { ...store.channels.get(channel.id), ...channel });
  for (const user of channel.recipients ?? []) store.rememberUser(user);
  store.emit('channels', { guildId: null });
  return channel;
}

export async function openDM(userId) {
  const channel = keep(await api.post('/users/@me/channels', { recipient_id: userId }));
  navigate(channelPath(null, channel.id));
  return channel;
}

export async function createGroupDM(userIds, name = null) {
  const body = { recipient_ids: userIds };
  if (name) body.name = name;
  const channel = keep(await api.post('/users/@me/channels', body));
  navigate(channelPath(null, channel.id));
  return channel;
}

let refreshing = null;

/** Read my DMs and group DMs again (one the store does not hold sent a message); one
 *  request at a time. */
export function refreshDMs() {
  refreshing ??= api
    .get('/users/@me/channels')
    .then((channels) => channels.forEach(keep))
    .finally(() => {
      refreshing = null;
    });
  return refreshing;
}

/** People I may start a conversation with: everyone I share a guild or a DM with (from the
 *  member lists read so far and the DMs' recipients), by name. */
export function knownPeople() {
  const people = new Map();
  for (const members of store.members.values()) {
    for (const member of members.values()) people.set(member.user.id, member.user);
  }
  for (const channel of store.directChannels()) {
    for (const user of channel.recipients ?? []) people.set(user.id, user);
  }
  people.delete(store.me?.id);
  const name = (u) => u.display_name || u.username;
  return [...people.values()].sort((a, b) => name(a).localeCompare(name(b)));
}
