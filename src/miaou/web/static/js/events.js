// Gateway dispatches applied to the store (docs/gateway.md, "Dispatched events").

import { ackSoon, forgetHistories, loadGuild, loadMembers, reactionKey } from './actions.js';
import { refreshDMs } from './dm-actions.js';
import { addNewRole, refreshChannelsSoon } from './guild-admin.js';
import { maxId, compareIds } from './ids.js';
import { THREAD_TYPES, store } from './store.js';

const TYPING_MS = 10000;

/** READY: the whole state afresh (a new session, or after INVALID_SESSION). */
export function applyReady(d) {
  const { route, sidePanel } = store;
  store.reset();
  store.route = route;
  store.sidePanel = sidePanel; // its component reads what it shows again
  store.me = d.user;
  store.rememberUser(d.user);
  for (const guild of d.guilds ?? []) store.addGuild(guild);
  for (const channel of d.private_channels ?? []) store.channels.set(channel.id, channel);
  for (const state of d.read_states ?? []) store.setReadState(state);
  // Who is online in each guild (none listed for guilds of more than 250 members).
  for (const guild of d.guilds ?? []) {
    for (const p of guild.presences ?? []) store.presence.set(p.user.id, p.status);
  }
  store.presence.set(d.user.id, 'online');
  store.ready = true;
  store.connection = 'connected';
  store.emit('session');
  store.emit('guilds');
}

/** RESUMED: every stream the client listed was replayed. A stream it did not list (a guild
 *  joined just before the drop, of which no event had arrived) may have missed events, so
 *  what is shown of it is read again over REST. So are the channels of the guilds in
 *  `refetch_channels`: a rule changed there while away, and a replay does not carry the
 *  CHANNEL_CREATE / CHANNEL_DELETE a live session got for it (docs/gateway.md). */
export function applyResumed({ positions, refetch_channels: refetch }) {
  const reloaded = new Set();
  for (const stream of Object.keys(positions ?? {})) {
    const [kind, id] = stream.split(':');
    if (kind !== 'guild' || !store.guilds.has(id)) continue;
    const channels = [...store.channels.values()].filter((c) => c.guild_id === id);
    forgetHistories(channels.map((c) => c.id));
    loadGuild(id).catch(() => {});
    reloaded.add(id);
    if (store.members.has(id)) loadMembers(id).catch(() => {});
  }
  for (const id of refetch ?? []) {
    if (store.guilds.has(id) && !reloaded.has(id)) refreshChannelsSoon(id);
  }
}

function viewing(channelId) {
  const shown =
    (store.route.name === 'channel' && store.route.params.channelId === channelId) ||
    (store.sidePanel?.kind === 'thread' && store.sidePanel.threadId === channelId);
  return shown && document.visibilityState === 'visible';
}

function seenOnline(userId, guildId) {
  // Large guilds send no presence (READY lists none): someone acting live is online.
  if (store.presence.has(userId)) return;
  store.presence.set(userId, 'online');
  if (guildId) store.emit('members', { guildId });
}

const handlers = {
  GUILD_CREATE(d) {
    store.addGuild(d);
    store.emit('guilds');
    store.emit('channels', { guildId: d.id });
  },
  GUILD_JOIN(d) {
    // The guild as READY lists it: the channels I may view, its roles, my member. A node
    // that sends only the id leaves it to be read over REST.
    if (!d.channels) {
      if (!store.guilds.has(d.id)) loadGuild(d.id).catch(() => {});
      return;
    }
    const guild = { ...d };
    delete guild.follow;
    store.addGuild(guild);
    store.emit('guilds');
    store.emit('channels', { guildId: d.id });
  },
  GUILD_UPDATE(d) {
    const known = store.guilds.get(d.id);
    if (!known) return;
    store.guilds.set(d.id, { ...known, ...d, member: known.member });
    store.emit('guilds');
    store.emit('channels', { guildId: d.id });
  },
  GUILD_DELETE(d) {
    store.removeGuild(d.id);
    store.emit('guilds');
  },
  GUILD_ROLE_CREATE(d) {
    addNewRole(d.guild_id, d.role);
    roleChanged(d);
  },
  GUILD_ROLE_UPDATE: roleChanged,
  GUILD_ROLE_DELETE(d) {
    const guild = store.guilds.get(d.guild_id);
    if (!guild) return;
    guild.roles = (guild.roles ?? []).filter((r) => r.id !== d.role_id);
    store.emit('channels', { guildId: d.guild_id });
  },
  // Also sent (without a position) to me alone when a rule change shows me a channel or
  // hides one from me: the node knows who sees what, so the client computes none of it.
  CHANNEL_CREATE: channelChanged,
  CHANNEL_UPDATE: channelChanged,
  CHANNEL_DELETE(d) {
    // Deleted, or hidden from me: its threads go with it.
    for (const [id, channel] of store.channels) {
      if (id === d.id || (channel.parent_id === d.id && THREAD_TYPES.has(channel.type))) {
        store.channels.delete(id);
        store.histories.delete(id);
      }
    }
    if (d.guild_id) store.emit('channels', { guildId: d.guild_id });
  },
  THREAD_CREATE: threadChanged,
  THREAD_UPDATE: threadChanged,
  THREAD_DELETE(d) {
    store.channels.delete(d.id);
    store.histories.delete(d.id);
    if (store.sidePanel?.threadId === d.id) {
      store.sidePanel = null;
      store.emit('side-panel');
    }
    store.emit('threads', { parentId: d.parent_id, threadId: d.id });
  },
  THREAD_MEMBERS_UPDATE(d) {
    const members = store.threadMembers.get(d.id);
    if (members) {
      for (const id of d.added_member_ids ?? []) members.add(id);
      for (const id of d.removed_member_ids ?? []) members.delete(id);
    }
    store.emit('thread-members', { threadId: d.id });
  },
  CHANNEL_PINS_UPDATE(d) {
    store.emit('pins', { channelId: d.channel_id });
  },
  INVITE_CREATE: (d) => store.emit('guild-admin', { guildId: d.guild_id, kind: 'invites' }),
  INVITE_DELETE: (d) => store.emit('guild-admin', { guildId: d.guild_id, kind: 'invites' }),
  GUILD_BAN_REMOVE: (d) => store.emit('guild-admin', { guildId: d.guild_id, kind: 'bans' }),
  GUILD_MEMBER_ADD(d) {
    memberChanged(d);
    const guild = store.guilds.get(d.guild_id);
    // My own arrival is counted already (GUILD_JOIN's member_count, or the REST read).
    if (guild && d.user.id !== store.me?.id) guild.member_count = (guild.member_count ?? 0) + 1;
    seenOnline(d.user.id, d.guild_id);
    store.emit('members', { guildId: d.guild_id });
  },
  GUILD_MEMBER_UPDATE(d) {
    memberChanged(d);
    // My roles changed: what I may do changes (the channels I see come as CHANNEL_CREATE /
    // CHANNEL_DELETE right after this event).
    if (d.user.id === store.me?.id) store.emit('channels', { guildId: d.guild_id });
    store.emit('members', { guildId: d.guild_id });
  },
  GUILD_MEMBER_REMOVE: memberGone,
  GUILD_BAN_ADD(d) {
    memberGone(d);
    store.emit('guild-admin', { guildId: d.guild_id, kind: 'bans' });
  },
  PRESENCE_UPDATE(d) {
    store.presence.set(d.user.id, d.status);
    if (d.guild_id) store.emit('members', { guildId: d.guild_id });
  },
  TYPING_START(d) {
    if (d.user_id === store.me?.id) return;
    let typing = store.typing.get(d.channel_id);
    if (!typing) store.typing.set(d.channel_id, (typing = new Map()));
    typing.set(d.user_id, Date.now() + TYPING_MS);
    seenOnline(d.user_id, d.guild_id);
    store.emit('typing', { channelId: d.channel_id });
    setTimeout(() => store.emit('typing', { channelId: d.channel_id }), TYPING_MS + 50);
  },
  MESSAGE_CREATE(d) {
    store.rememberUser(d.author);
    for (const user of d.mentions ?? []) store.rememberUser(user);
    const history = store.histories.get(d.channel_id);
    // A history showing an older stretch (a jump) gets new messages when it reaches the end.
    if (history && !history.detached) history.upsert(d);
    const channel = store.channels.get(d.channel_id);
    if (channel) {
      channel.last_message_id = maxId(channel.last_message_id, d.id);
      if (THREAD_TYPES.has(channel.type)) {
        channel.message_count = (channel.message_count ?? 0) + 1;
        store.emit('threads', { parentId: channel.parent_id, threadId: channel.id });
      } else if (!d.guild_id) {
        store.emit('channels', { guildId: null });
      }
    } else if (!d.guild_id) {
      refreshDMs().catch(() => {}); // a DM whose CHANNEL_CREATE this session did not get
    }
    if (store.typing.get(d.channel_id)?.delete(d.author.id)) {
      store.emit('typing', { channelId: d.channel_id });
    }
    seenOnline(d.author.id, d.guild_id);
    const state = store.readState(d.channel_id);
    if (d.author.id === store.me?.id) {
      state.last_read_id = maxId(state.last_read_id, d.id);
    } else if (viewing(d.channel_id)) {
      ackSoon(d.channel_id);
    } else if (compareIds(d.id, state.last_read_id ?? '0') > 0) {
      state.unread_count += 1;
      if (store.mentionsMe(d)) state.mention_count += 1;
    }
    store.emit('messages', { channelId: d.channel_id, kind: 'create', id: d.id });
    store.emit('read', { channelId: d.channel_id });
  },
  MESSAGE_UPDATE(d) {
    store.rememberUser(d.author);
    if (store.histories.get(d.channel_id)?.byId.has(d.id)) {
      store.history(d.channel_id).upsert(d);
      store.emit('messages', { channelId: d.channel_id, kind: 'update', id: d.id });
    }
  },
  MESSAGE_DELETE(d) {
    if (store.histories.get(d.channel_id)?.remove(d.id)) {
      store.emit('messages', { channelId: d.channel_id, kind: 'delete', id: d.id });
    }
  },
  MESSAGE_DELETE_BULK(d) {
    const history = store.histories.get(d.channel_id);
    if (!history) return;
    for (const id of d.ids ?? []) history.remove(id);
    store.emit('messages', { channelId: d.channel_id, kind: 'delete' });
  },
  MESSAGE_REACTION_ADD(d) {
    reacted(d, (reactions, key, mine) => {
      const found = reactions.find((r) => reactionKey(r.emoji) === key);
      if (!found) return [...reactions, { emoji: d.emoji, count: 1, me: mine }];
      return reactions.map((r) => (r === found ? { ...r, count: r.count + 1, me: r.me || mine } : r));
    });
  },
  MESSAGE_REACTION_REMOVE(d) {
    reacted(d, (reactions, key, mine) =>
      reactions
        .map((r) =>
          reactionKey(r.emoji) === key ? { ...r, count: r.count - 1, me: mine ? false : r.me } : r,
        )
        .filter((r) => r.count > 0),
    );
  },
  MESSAGE_REACTION_REMOVE_ALL(d) {
    reacted(d, () => []);
  },
  MESSAGE_REACTION_REMOVE_EMOJI(d) {
    reacted(d, (reactions, key) => reactions.filter((r) => reactionKey(r.emoji) !== key));
  },
  MESSAGE_ACK(d) {
    const state = store.readState(d.channel_id);
    state.last_read_id = maxId(state.last_read_id, d.message_id);
    const last = store.channels.get(d.channel_id)?.last_message_id ?? '0';
    if (compareIds(d.message_id, last) >= 0) {
      state.unread_count = 0;
      state.mention_count = 0;
    }
    store.emit('read', { channelId: d.channel_id });
  },
};

function roleChanged(d) {
  const guild = store.guilds.get(d.guild_id);
  if (!guild) return;
  guild.roles = [...(guild.roles ?? []).filter((r) => r.id !== d.role.id), d.role];
  // Channels it shows me or hides from me come as CHANNEL_CREATE / CHANNEL_DELETE right
  // after this event; what I may do in those I keep changes now.
  store.emit('channels', { guildId: d.guild_id });
}

function channelChanged(d) {
  store.channels.set(d.id, { ...store.channels.get(d.id), ...d });
  store.emit('channels', { guildId: d.guild_id ?? null });
}

function threadChanged(d) {
  store.channels.set(d.id, { ...store.channels.get(d.id), ...d });
  store.emit('threads', { parentId: d.parent_id, threadId: d.id });
}

function memberChanged(d) {
  const { guild_id: guildId, ...member } = d;
  store.rememberUser(member.user);
  store.members.get(guildId)?.set(member.user.id, member);
  const guild = store.guilds.get(guildId);
  if (guild && member.user.id === store.me?.id) guild.member = member;
}

function memberGone(d) {
  const guildId = d.guild_id;
  if (d.user.id === store.me?.id) {
    store.removeGuild(guildId);
    store.emit('guilds');
    return;
  }
  if (store.members.get(guildId)?.delete(d.user.id)) {
    const guild = store.guilds.get(guildId);
    if (guild) guild.member_count = Math.max(0, (guild.member_count ?? 1) - 1);
  }
  store.emit('members', { guildId });
}

function reacted(d, change) {
  const history = store.histories.get(d.channel_id);
  if (!history?.byId.has(d.message_id)) return;
  const key = reactionKey(d.emoji);
  const mine = d.user_id === store.me?.id;
  history.update(d.message_id, (m) => ({ reactions: change(m.reactions ?? [], key, mine) }));
  store.emit('messages', { channelId: d.channel_id, kind: 'update', id: d.message_id });
}

export function applyDispatch({ t, d }) {
  const handler = handlers[t];
  if (handler && d) handler(d);
}
