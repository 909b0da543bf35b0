// What the user does, over REST; the store is updated from the answers (and, for others'
// changes and reactions, from the gateway: see events.js).

import { api } from './api.js';
import { compareIds, maxId, newNonce } from './ids.js';
import { store } from './store.js';

export const PAGE = 50;
const TYPING_EVERY_MS = 8000; // the node shows typing for 10 s
const INVITE_MAX_AGE_S = 7 * 86400; // the longest the node allows
const JOIN_WAIT_MS = 3000; // for a join's GUILD_JOIN before reading the guild over REST

const changed = (channelId, kind) => store.emit('messages', { channelId, kind });

function remember(message) {
  store.rememberUser(message.author);
  for (const user of message.mentions ?? []) store.rememberUser(user);
}

/** Merge a page of history: messages already known (from live events) are kept. */
function mergePage(history, page) {
  for (const message of page) {
    remember(message);
    const known = history.byId.get(message.id);
    if (!known) history.upsert(message);
    else if (!known.reactions?.length && message.reactions?.length) {
      history.update(message.id, () => ({ reactions: message.reactions }));
    }
  }
}

// -- history ----------------------------------------------------------------------------------
export async function loadHistory(channelId) {
  const history = store.history(channelId);
  if (history.loaded || history.loading) return;
  history.loading = true;
  changed(channelId, 'loading');
  try {
    const page = await api.messages(channelId, { limit: PAGE });
    mergePage(history, page);
    history.hasMore = page.length === PAGE;
    history.loaded = true;
  } catch (error) {
    store.toast(`Could not load messages: ${error.message}`);
  } finally {
    history.loading = false;
    changed(channelId, 'reset');
  }
}

/** Load the page before the oldest loaded message; true if something was added. */
export async function loadOlder(channelId) {
  const history = store.history(channelId);
  const oldest = history.oldest();
  if (!history.loaded || history.loading || !history.hasMore || !oldest) return false;
  history.loading = true;
  changed(channelId, 'loading');
  let added = false;
  try {
    const page = await api.messages(channelId, { before: oldest.id, limit: PAGE });
    mergePage(history, page);
    history.hasMore = page.length === PAGE;
    added = page.length > 0;
  } catch (error) {
    store.toast(`Could not load older messages: ${error.message}`);
  } finally {
    history.loading = false;
    changed(channelId, 'older');
  }
  return added;
}

/** Forget loaded history (it may have missed events): it is read again when shown. */
export function forgetHistories(channelIds) {
  for (const id of channelIds) store.histories.delete(id);
  for (const id of channelIds) changed(id, 'reset');
}

// -- sending ----------------------------------------------------------------------------------
function sent(channelId, message) {
  remember(message);
  const history = store.history(channelId);
  if (history.detached) {
    // Showing an older stretch (a jump): sending goes back to the present.
    store.histories.delete(channelId);
    loadHistory(channelId);
  } else {
    history.upsert(message);
  }
  const channel = store.channels.get(channelId);
  if (channel) channel.last_message_id = maxId(channel.last_message_id, message.id);
  const state = store.readState(channelId);
  state.last_read_id = maxId(state.last_read_id, message.id);
  typingSent.delete(channelId);
  changed(channelId, 'sent');
}

function referenceOf(replyTo) {
  return replyTo ? { message_id: replyTo, fail_if_not_exists: false } : undefined;
}

export async function sendMessage(channelId, content, { replyTo = null } = {}) {
  const history = store.history(channelId);
  const nonce = newNonce();
  const pending = { nonce, content, replyTo, state: 'sending', error: null };
  history.pending.push(pending);
  changed(channelId, 'pending');
  await deliver(channelId, pending);
}

async function deliver(channelId, pending) {
  const history = store.history(channelId);
  const body = { content: pending.content, nonce: pending.nonce };
  const reference = referenceOf(pending.replyTo);
  if (reference) body.message_reference = reference;
  try {
    sent(channelId, await api.send(channelId, body));
    history.settle(pending.nonce);
  } catch (error) {
    pending.state = 'failed';
    pending.error = error.message;
  }
  changed(channelId, 'pending');
}

export function retryPending(channelId, nonce) {
  const pending = store.history(channelId).pending.find((p) => p.nonce === nonce);
  if (!pending) return;
  pending.state = 'sending';
  pending.error = null;
  changed(channelId, 'pending');
  deliver(channelId, pending);
}

export function discardPending(channelId, nonce) {
  store.history(channelId).settle(nonce);
  changed(channelId, 'pending');
}

/** Send with files (multipart, XMLHttpRequest for progress): {promise, abort}. */
export function uploadMessage(channelId, files, content, { replyTo = null, onProgress } = {}) {
  const payload = { content, nonce: newNonce() };
  const reference = referenceOf(replyTo);
  if (reference) payload.message_reference = reference;
  const upload = api.upload(channelId, payload, files, onProgress);
  return {
    abort: upload.abort,
    promise: upload.promise.then((message) => {
      sent(channelId, message);
      return message;
    }),
  };
}

export async function editMessage(channelId, messageId, content) {
  const message = await api.edit(channelId, messageId, content);
  remember(message);
  store.history(channelId).upsert(message);
  changed(channelId, 'edit');
}

export async function deleteMessage(channelId, messageId) {
  await api.remove(channelId, messageId);
  if (store.history(channelId).remove(messageId)) changed(channelId, 'delete');
}

export async function loadMessage(channelId, messageId) {
  const message = await api.message(channelId, messageId);
  remember(message);
  return message;
}

export function reactionKey(emoji) {
  return emoji.id ? `${emoji.name}:${emoji.id}` : emoji.name;
}

/** Add my reaction, or take it back; the gateway's event updates the counts. */
export async function toggleReaction(channelId, message, key) {
  const mine = (message.reactions ?? []).some((r) => reactionKey(r.emoji) === key && r.me);
  try {
    if (mine) await api.unreact(channelId, message.id, key);
    else await api.react(channelId, message.id, key);
  } catch (error) {
    store.toast(`Could not react: ${error.message}`);
  }
}

// -- typing and read state ----------------------------------------------------------------------
const typingSent = new Map();

export function announceTyping(channelId) {
  const now = Date.now();
  if (now - (typingSent.get(channelId) ?? 0) < TYPING_EVERY_MS) return;
  typingSent.set(channelId, now);
  api.typing(channelId).catch(() => typingSent.delete(channelId));
}

const ackTimers = new Map();

/** Mark the channel read up to its newest message, soon (several events, one request). */
export function ackSoon(channelId, delayMs = 250) {
  clearTimeout(ackTimers.get(channelId));
  ackTimers.set(
    channelId,
    setTimeout(() => {
      ackTimers.delete(channelId);
      ackChannel(channelId);
    }, delayMs),
  );
}

export async function ackChannel(channelId) {
  const newest =
    store.histories.get(channelId)?.newest()?.id ?? store.channels.get(channelId)?.last_message_id;
  if (!newest) return;
  const state = store.readState(channelId);
  const behind = compareIds(newest, state.last_read_id ?? '0') > 0;
  if (!behind && !state.unread_count && !state.mention_count) return;
  state.last_read_id = maxId(state.last_read_id, newest);
  state.unread_count = 0;
  state.mention_count = 0;
  store.emit('read', { channelId });
  if (!behind) return;
  try {
    await api.ack(channelId, newest);
  } catch {
    // The counts come back with the next READY; nothing to tell the user.
  }
}

// -- guilds, members, invites --------------------------------------------------------------------
export async function createGuild(name) {
  const guild = await api.createGuild(name);
  store.addGuild(guild);
  store.emit('guilds');
  store.emit('channels', { guildId: guild.id });
  return guild;
}

/** (Re)read a guild, its channels and read states over REST. */
export async function loadGuild(guildId) {
  const [guild, channels, states] = await Promise.all([
    api.guild(guildId),
    api.channels(guildId),
    api.readStates(),
  ]);
  store.addGuild({ ...guild, channels });
  for (const state of states) {
    if (state.guild_id === guildId) store.setReadState(state);
  }
  store.emit('guilds');
  store.emit('channels', { guildId });
  return guild;
}

const membersLoading = new Map(); // guild id -> Promise

/** Read a guild's member list (every page); one request at a time per guild. */
export function loadMembers(guildId) {
  let loading = membersLoading.get(guildId);
  if (!loading) {
    loading = readMembers(guildId).finally(() => membersLoading.delete(guildId));
    membersLoading.set(guildId, loading);
  }
  return loading;
}

async function readMembers(guildId) {
  const found = new Map();
  let after;
  for (;;) {
    const page = await api.members(guildId, after);
    for (const member of page) {
      found.set(member.user.id, member);
      store.rememberUser(member.user);
    }
    if (page.length < 1000) break;
    after = page[page.length - 1].user.id;
  }
  store.members.set(guildId, found);
  store.emit('members', { guildId });
}

export async function createChannel(guildId, name, parentId = null) {
  const channel = await api.createChannel(guildId, { name, parent_id: parentId });
  store.channels.set(channel.id, channel);
  store.emit('channels', { guildId });
  return channel;
}

export async function createInvite(channelId) {
  const invite = await api.createInvite(channelId, { max_age: INVITE_MAX_AGE_S, max_uses: 0 });
  return { ...invite, url: `${location.origin}/invite/${encodeURIComponent(invite.code)}` };
}

/** The invite code in a pasted link or code. */
export function inviteCode(text) {
  const trimmed = text.trim();
  const match = /\/invite\/([^/?#\s]+)/.exec(trimmed);
  return match ? decodeURIComponent(match[1]) : trimmed;
}

/** True once the guild is in the store, false if it is not within `ms`. */
function guildArrives(guildId, ms) {
  if (store.guilds.has(guildId)) return Promise.resolve(true);
  return new Promise((resolve) => {
    let timer = 0;
    const off = store.on('guilds', () => {
      if (!store.guilds.has(guildId)) return;
      clearTimeout(timer);
      off();
      resolve(true);
    });
    timer = setTimeout(() => {
      off();
      resolve(false);
    }, ms);
  });
}

export async function acceptInvite(code) {
  const guild = await api.acceptInvite(code);
  // The join's GUILD_JOIN (or, on a session that starts meanwhile, READY) brings the guild
  // with its channels; it is read over REST only if neither comes in time.
  if (!(await guildArrives(guild.id, JOIN_WAIT_MS))) await loadGuild(guild.id);
  return guild;
}
