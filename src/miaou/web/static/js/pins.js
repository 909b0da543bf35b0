// Pinned messages (docs/chat.md: at most 50 a channel). Pinning takes MANAGE_MESSAGES or
// PIN_MESSAGES in a guild, nothing in a DM; the node's MESSAGE_UPDATE and
// CHANNEL_PINS_UPDATE tell every reader.

import { api } from './api.js';
import { DM_TYPES, Permission, store } from './store.js';

const enc = encodeURIComponent;

export function pins(channelId) {
  return api.get(`/channels/${enc(channelId)}/pins`);
}

export function canPin(channelId) {
  const channel = store.channels.get(channelId);
  if (!channel) return false;
  if (DM_TYPES.has(channel.type)) return true;
  return store.canIn(channelId, Permission.MANAGE_MESSAGES) || store.canIn(channelId, Permission.PIN_MESSAGES);
}

export async function setPinned(channelId, messageId, pinned) {
  const path = `/channels/${enc(channelId)}/pins/${enc(messageId)}`;
  try {
    if (pinned) await api.put(path);
    else await api.del(path);
  } catch (error) {
    store.toast(`Could not ${pinned ? 'pin' : 'unpin'}: ${error.message}`);
  }
}
