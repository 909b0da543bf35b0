// The client's state and its change events. Components read the store and listen to it;
// only events.js (gateway dispatches) and actions.js (REST calls) change it.
//
// Events: 'session' (logged in/out, READY), 'connection', 'guilds', 'channels' {guildId},
// 'messages' {channelId}, 'read' {channelId}, 'members' {guildId}, 'typing' {channelId},
// 'route', 'toast' {text}, 'threads' {parentId}, 'thread-members' {threadId}, 'side-panel',
// 'pins' {channelId}, 'guild-admin' {guildId, kind: 'invites' | 'bans'}.

import { compareIds } from './ids.js';
import { Permission, THREAD_TYPES, basePermissions, channelPermissions } from './permissions.js';

export { Permission, THREAD_TYPES };
export const TEXT_CHANNEL_TYPES = new Set([0, 5]); // text, announcement
export const CATEGORY = 4;
export const FORUM = 15;
export const LISTED_TYPES = new Set([0, 5, FORUM]); // shown in the channel list
export const DM_TYPES = new Set([1, 3]); // DM, group DM

/** One channel's loaded messages, oldest first, plus sends not yet acknowledged. */
export class History {
  constructor() {
    this.items = [];
    this.byId = new Map();
    this.pending = []; // {nonce, content, state: 'sending' | 'failed', error, reply}
    this.hasMore = true; // older messages may exist
    this.detached = false; // a stretch further back (a jump) that does not reach the newest
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
    this.threadLists = new Map(); // parent channel id -> {loaded, moreArchived}
    this.threadMembers = new Map(); // thread id -> Set(user id)
    this.sidePanel = null; // {kind: 'thread' | 'threads' | 'pins' | 'search', ...}
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
      // Threads are not in a guild's channel list (they are read per parent): keep them.
      for (const [id, channel] of this.channels) {
        if (channel.guild_id === guild.id && !THREAD_TYPES.has(channel.type)) this.channels.delete(id);
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
    const texts = all.filter((c) => LISTED_TYPES.has(c.type)).sort(order);
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
    return basePermissions(this.guilds.get(guildId), this.me?.id, this.myRoles(guildId));
  }

  can(guildId, bit) {
    return (this.permissions(guildId) & bit) === bit;
  }

  /** Permissions in a channel or thread, overwrites included (a thread: its parent's). */
  channelPermissions(channelId) {
    let channel = this.channels.get(channelId);
    const guild = this.guilds.get(channel?.guild_id);
    if (!guild) return 0n;
    const thread = THREAD_TYPES.has(channel.type);
    if (thread) channel = this.channels.get(channel.parent_id) ?? channel;
    const until = guild.member?.communication_disabled_until;
    return channelPermissions({
      guild,
      userId: this.me?.id,
      roleIds: this.myRoles(guild.id),
      channel,
      thread,
      timedOut: Boolean(until && until > Date.now()),
    });
  }

  canIn(channelId, bit) {
    return (this.channelPermissions(channelId) & bit) === bit;
  }

  /** What a channel is called: #name, a DM's other person, a group DM's name or people. */
  channelLabel(channel) {
    if (!channel) return '';
    if (!DM_TYPES.has(channel.type)) return channel.name ?? '';
    if (channel.type === 3 && channel.name) return channel.name;
    const others = (channel.recipients ?? []).filter((u) => u.id !== this.me?.id);
    const names = others.map((u) => u.display_name || u.username);
    return names.join(', ') || 'Only you';
  }

  /** The channel's heading: "# general", "@ alice" for a DM, a thread's or group's name. */
  channelTitle(channel) {
    const label = this.channelLabel(channel);
    if (!channel) return '';
    if (channel.type === 1) return `@ ${label}`;
    if (channel.type === 3 || THREAD_TYPES.has(channel.type)) return label;
    return `# ${label}`;
  }

  /** The channel as named in a sentence: "#general", "@alice", a thread's or group's name. */
  channelRef(channel) {
    return this.channelTitle(channel).replace(/^([#@]) /, '$1');
  }

  /** DMs and group DMs, the most recently active first. */
  directChannels() {
    const active = (c) => c.last_message_id ?? c.id;
    return [...this.channels.values()]
      .filter((c) => DM_TYPES.has(c.type))
      .sort((a, b) => compareIds(active(b), active(a)));
  }

  /** A parent channel's threads in the store: {active, archived}, newest first. */
  threadsOf(parentId) {
    const all = [...this.channels.values()]
      .filter((c) => c.parent_id === parentId && THREAD_TYPES.has(c.type))
      .sort((a, b) => compareIds(b.id, a.id));
    const archived = (c) => Boolean(c.thread_metadata?.archived);
    return { active: all.filter((c) => !archived(c)), archived: all.filter(archived) };
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
      // Threads are not in the channel list: their unread messages would mark nothing there.
      if (channel.guild_id !== guildId || THREAD_TYPES.has(channel.type)) continue;
      const state = this.readStates.get(channel.id);
      if (!state) continue;
      unread ||= state.unread_count > 0;
      mentions += state.mention_count;
    }
    return { unread, mentions };
  }
}

export const store = new Store();
