// The client's state and its change events. Components read the store and listen to it;
// only events.js (gateway dispatches) and actions.js (REST calls) change it.
//
// Events: 'session' (logged in/out, READY), 'connection', 'guilds', 'channels' {guildId},
// 'messages' {channelId}, 'read' {channelId}, 'members' {guildId}, 'typing' {channelId},
// 'route', 'toast' {text}.

import { compareIds } from './ids.js';

export const TEXT_CHANNEL_TYPES = new Set([0, 5]); // text, announcement
export const CATEGORY = 4;

/** One channel's loaded messages, oldest first, plus sends not yet acknowledged. */
export class History {
  constructor() {
    this.items = [];
    this.byId = new Map();
    this.pending = []; // {nonce, content, state: 'sending' | 'failed', error, reply}
    this.hasMore = true; // older messages may exist
    this.loaded = false;
    this.loading = false;
  }

  upsert(message) {
    const known = this.byId.get(message.id);
    if (known) {
      // Gateway events carry no reactions (they differ per reader): keep ours.
      const merged = { ...known, ...message };
      if (message.reactions === undefined) merged.reactions = known.reactions;
      this.items[this.items.indexOf(known)] = merged;
      this.byId.set(message.id, merged);
      return merged;
    }
    const stored = { reactions: [], ...message };
    let at = this.items.length;
    while (at > 0 && compareIds(this.items[at - 1].id, message.id) > 0) at -= 1;
    this.items.splice(at, 0, stored);
    this.byId.set(message.id, stored);
    if (message.nonce != null) this.settle(String(message.nonce));
    return stored;
  }

  update(id, change) {
    const known = this.byId.get(id);
    if (!known) return null;
    const next = { ...known, ...change(known) };
    this.items[this.items.indexOf(known)] = next;
    this.byId.set(id, next);
    return next;
  }

  remove(id) {
    const known = this.byId.get(id);
    if (!known) return false;
    this.items.splice(this.items.indexOf(known), 1);
    this.byId.delete(id);
    return true;
  }

  settle(nonce) {
    this.pending = this.pending.filter((p) => p.nonce !== nonce);
  }

  oldest() {
    return this.items[0] ?? null;
  }

  newest() {
    return this.items[this.items.length - 1] ?? null;
  }
}

class Store extends EventTarget {
  constructor() {
    super();
    this.route = { name: 'home', params: {} };
    this.reset();
  }

  reset() {
    this.me = null;
    this.ready = false;
    this.connection = 'idle';
    this.guilds = new Map(); // id -> guild (with .member: my member object)
    this.channels = new Map(); // id -> channel, every guild's
    this.readStates = new Map(); // channel id -> {last_read_id, unread_count, mention_count}
    this.histories = new Map(); // channel id -> History
    this.members = new Map(); // guild id -> Map(user id -> member)
    this.users = new Map(); // user id -> user
    this.presence = new Map(); // user id -> status
    this.typing = new Map(); // channel id -> Map(user id -> until, ms)
  }

  emit(type, detail = {}) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /** Listen; returns the function that stops listening. */
  on(type, listener) {
    const wrapped = (event) => listener(event.detail);
    this.addEventListener(type, wrapped);
    return () => this.removeEventListener(type, wrapped);
  }

  toast(text) {
    this.emit('toast', { text });
  }

  // -- guilds and channels (READY, GUILD_CREATE, a join) ----------------------------------
  addGuild(payload) {
    const { channels, ...guild } = payload;
    const known = this.guilds.get(guild.id);
    guild.member = guild.member ?? known?.member ?? { user: this.me, roles: [], nick: null };
    this.guilds.set(guild.id, guild);
    if (channels) {
      for (const [id, channel] of this.channels) {
        if (channel.guild_id === guild.id) this.channels.delete(id);
      }
      for (const channel of channels) this.channels.set(channel.id, channel);
    }
  }

  removeGuild(guildId) {
    this.guilds.delete(guildId);
    this.members.delete(guildId);
    for (const [id, channel] of this.channels) {
      if (channel.guild_id !== guildId) continue;
      this.channels.delete(id);
      this.histories.delete(id);
      this.readStates.delete(id);
    }
  }

  setReadState(state) {
    this.readStates.set(state.channel_id, {
      last_read_id: state.last_read_id ?? '0',
      unread_count: state.unread_count ?? 0,
      mention_count: state.mention_count ?? 0,
    });
  }

  // -- reading ------------------------------------------------------------------------------
  history(channelId) {
    let found = this.histories.get(channelId);
    if (!found) {
      found = new History();
      this.histories.set(channelId, found);
    }
    return found;
  }

  sortedGuilds() {
    return [...this.guilds.values()];
  }

  /** [{category, channels}] in display order; category null for channels outside one. */
  channelTree(guildId) {
    const all = [...this.channels.values()].filter((c) => c.guild_id === guildId);
    const order = (a, b) => a.position - b.position || compareIds(a.id, b.id);
    const categories = all.filter((c) => c.type === CATEGORY).sort(order);
    const texts = all.filter((c) => TEXT_CHANNEL_TYPES.has(c.type)).sort(order);
    const known = new Set(categories.map((c) => c.id));
    const groups = [{ category: null, channels: texts.filter((c) => !known.has(c.parent_id)) }];
    for (const category of categories) {
      groups.push({ category, channels: texts.filter((c) => c.parent_id === category.id) });
    }
    return groups.filter((g) => g.category || g.channels.length);
  }

  firstChannel(guildId) {
    const guild = this.guilds.get(guildId);
    const system = guild?.system_channel_id && this.channels.get(guild.system_channel_id);
    if (system && TEXT_CHANNEL_TYPES.has(system.type)) return system;
    for (const group of this.channelTree(guildId)) {
      if (group.channels.length) return group.channels[0];
    }
    return null;
  }

  member(guildId, userId) {
    return this.members.get(guildId)?.get(userId) ?? null;
  }

  /** The name to show for a user: nickname in the guild, display name, username. */
  displayName(userId, guildId = null) {
    const member = guildId ? this.member(guildId, userId) : null;
    const user = member?.user ?? this.users.get(userId);
    return member?.nick || user?.display_name || user?.username || null;
  }

  rememberUser(user) {
    if (user?.id && user.username) this.users.set(user.id, user);
  }

  myRoles(guildId) {
    return new Set(this.guilds.get(guildId)?.member?.roles ?? []);
  }

  /** Guild-level permissions (no channel overwrites): enough to offer or hide a button. */
  permissions(guildId) {
    const guild = this.guilds.get(guildId);
    if (!guild || !this.me) return 0n;
    if (guild.owner_id === this.me.id) return ~0n;
    const mine = this.myRoles(guildId);
    let bits = 0n;
    for (const role of guild.roles ?? []) {
      if (role.id === guildId || mine.has(role.id)) bits |= BigInt(role.permissions);
    }
    return bits & Permission.ADMINISTRATOR ? ~0n : bits;
  }

  can(guildId, bit) {
    return (this.permissions(guildId) & bit) === bit;
  }

  mentionsMe(message) {
    if (!this.me) return false;
    if (message.mention_everyone) return true;
    if ((message.mentions ?? []).some((u) => u.id === this.me.id)) return true;
    if (!message.guild_id) return false;
    const mine = this.myRoles(message.guild_id);
    return (message.mention_roles ?? []).some((r) => mine.has(r));
  }

  readState(channelId) {
    let found = this.readStates.get(channelId);
    if (!found) {
      found = { last_read_id: '0', unread_count: 0, mention_count: 0 };
      this.readStates.set(channelId, found);
    }
    return found;
  }

  /** {unread, mentions} of a guild: any channel unread, mentions added up. */
  guildUnread(guildId) {
    let unread = false;
    let mentions = 0;
    for (const channel of this.channels.values()) {
      if (channel.guild_id !== guildId) continue;
      const state = this.readStates.get(channel.id);
      if (!state) continue;
      unread ||= state.unread_count > 0;
      mentions += state.mention_count;
    }
    return { unread, mentions };
  }
}

export const Permission = Object.freeze({
  CREATE_INSTANT_INVITE: 1n << 0n,
  ADMINISTRATOR: 1n << 3n,
  MANAGE_CHANNELS: 1n << 4n,
  ADD_REACTIONS: 1n << 6n,
  SEND_MESSAGES: 1n << 11n,
  MANAGE_MESSAGES: 1n << 13n,
  ATTACH_FILES: 1n << 15n,
});

export const store = new Store();
