// Guild administration over REST (docs/chat.md): the guild itself, channels and their
// permission overwrites, roles, invites, bans, kicks and the audit log. The store follows
// from the answers, and from the gateway's events for what others change.

import { api } from './api.js';
import { store } from './store.js';

const enc = encodeURIComponent;
const guildPath = (guildId) => `/guilds/${enc(guildId)}`;

// -- channels I can see ------------------------------------------------------------------------
const refreshTimers = new Map();

/** Read the guild's channel list again, soon (a RESUME replayed a rule change there, see
 *  docs/gateway.md). A little jitter spreads the members of a guild who resume together. */
export function refreshChannelsSoon(guildId) {
  if (refreshTimers.has(guildId)) return;
  if (store.guilds.get(guildId)?.owner_id === store.me?.id) return; // the owner sees all
  const delay = 150 + Math.floor(Math.random() * 350);
  refreshTimers.set(
    guildId,
    setTimeout(() => {
      refreshTimers.delete(guildId);
      refreshChannels(guildId).catch(() => {});
    }, delay),
  );
}

export async function refreshChannels(guildId) {
  const channels = await api.get(`${guildPath(guildId)}/channels`);
  const guild = store.guilds.get(guildId);
  if (!guild) return;
  const visible = new Set(channels.map((c) => c.id));
  for (const [id, channel] of store.channels) {
    if (channel.guild_id === guildId && !visible.has(id) && !visible.has(channel.parent_id)) {
      store.histories.delete(id);
    }
  }
  store.addGuild({ ...guild, channels });
  store.emit('channels', { guildId });
}

// -- the guild -----------------------------------------------------------------------------------
export async function updateGuild(guildId, changes) {
  const guild = await api.patch(guildPath(guildId), changes);
  const known = store.guilds.get(guildId);
  if (known) store.guilds.set(guildId, { ...known, ...guild, member: known.member });
  store.emit('guilds');
  store.emit('channels', { guildId });
  return guild;
}

// -- channels ------------------------------------------------------------------------------------
function keep(channel) {
  store.channels.set(channel.id, { ...store.channels.get(channel.id), ...channel });
  store.emit('channels', { guildId: channel.guild_id });
  return channel;
}

export async function createChannel(guildId, body) {
  return keep(await api.post(`${guildPath(guildId)}/channels`, body));
}

export async function updateChannel(channelId, changes) {
  return keep(await api.patch(`/channels/${enc(channelId)}`, changes));
}

// `reason` (optional, here and below) goes to the audit log.
export async function deleteChannel(channelId, reason) {
  const channel = store.channels.get(channelId);
  await api.del(`/channels/${enc(channelId)}`, { reason });
  store.channels.delete(channelId);
  store.histories.delete(channelId);
  store.emit('channels', { guildId: channel?.guild_id ?? null });
}

/** Positions (and parents) of several channels at once: [{id, position, parent_id?}]. */
export async function moveChannels(guildId, moves) {
  const channels = await api.patch(`${guildPath(guildId)}/channels`, moves);
  for (const channel of channels) store.channels.set(channel.id, { ...store.channels.get(channel.id), ...channel });
  store.emit('channels', { guildId });
}

/** Set an overwrite (type 0: role, 1: member); allow and deny are BigInts. */
export async function putOverwrite(channelId, targetId, type, allow, deny) {
  await api.put(`/channels/${enc(channelId)}/permissions/${enc(targetId)}`, {
    id: targetId,
    type,
    allow: allow.toString(),
    deny: deny.toString(),
  });
  return readChannel(channelId);
}

export async function deleteOverwrite(channelId, targetId) {
  await api.del(`/channels/${enc(channelId)}/permissions/${enc(targetId)}`);
  return readChannel(channelId);
}

export async function readChannel(channelId) {
  return keep(await api.get(`/channels/${enc(channelId)}`));
}

// -- roles ---------------------------------------------------------------------------------------
function keepRole(guildId, role) {
  const guild = store.guilds.get(guildId);
  if (guild) guild.roles = [...(guild.roles ?? []).filter((r) => r.id !== role.id), role];
  store.emit('channels', { guildId });
  return role;
}

/** A role new to the store: the node put it at its position and moved those from there up
 *  by one without telling (no GUILD_ROLE_UPDATE for them), so the same is done here. */
export function addNewRole(guildId, role) {
  const guild = store.guilds.get(guildId);
  if (!guild || (guild.roles ?? []).some((r) => r.id === role.id)) return;
  guild.roles = (guild.roles ?? []).map((r) =>
    r.id !== guildId && r.position >= role.position ? { ...r, position: r.position + 1 } : r,
  );
}

export async function createRole(guildId, body) {
  const role = await api.post(`${guildPath(guildId)}/roles`, body);
  addNewRole(guildId, role);
  return keepRole(guildId, role);
}

export async function updateRole(guildId, roleId, changes) {
  return keepRole(guildId, await api.patch(`${guildPath(guildId)}/roles/${enc(roleId)}`, changes));
}

export async function deleteRole(guildId, roleId, reason) {
  await api.del(`${guildPath(guildId)}/roles/${enc(roleId)}`, { reason });
  const guild = store.guilds.get(guildId);
  if (guild) guild.roles = (guild.roles ?? []).filter((r) => r.id !== roleId);
  store.emit('channels', { guildId });
}

/** Give the roles (highest first, @everyone left out) the positions n..1. */
export async function orderRoles(guildId, highestFirst) {
  const moves = highestFirst.map((role, index) => ({ id: role.id, position: highestFirst.length - index }));
  const roles = await api.patch(`${guildPath(guildId)}/roles`, moves);
  const guild = store.guilds.get(guildId);
  if (guild) guild.roles = roles;
  store.emit('channels', { guildId });
}

/** Roles from the highest down, @everyone last. */
export function rolesByRank(guildId) {
  const roles = [...(store.guilds.get(guildId)?.roles ?? [])];
  return roles.sort((a, b) => b.position - a.position || (a.id < b.id ? -1 : 1));
}

// -- members, bans ------------------------------------------------------------------------------
export async function banMember(guildId, userId, reason, deleteMessageSeconds = 0) {
  await api.put(`${guildPath(guildId)}/bans/${enc(userId)}`, {
    reason: reason || null,
    delete_message_seconds: deleteMessageSeconds,
  });
}

export function unban(guildId, userId) {
  return api.del(`${guildPath(guildId)}/bans/${enc(userId)}`);
}

export function bans(guildId) {
  return api.get(`${guildPath(guildId)}/bans`, { limit: 1000 });
}

export function kickMember(guildId, userId, reason) {
  return api.del(`${guildPath(guildId)}/members/${enc(userId)}`, { reason });
}

export function setMemberRoles(guildId, userId, roleIds, reason) {
  return api.patch(`${guildPath(guildId)}/members/${enc(userId)}`, { roles: roleIds }, { reason });
}

// -- invites -------------------------------------------------------------------------------------
export function invites(guildId) {
  return api.get(`${guildPath(guildId)}/invites`);
}

export function createInvite(channelId, { maxAge, maxUses }) {
  return api.post(`/channels/${enc(channelId)}/invites`, { max_age: maxAge, max_uses: maxUses });
}

export function revokeInvite(code) {
  return api.del(`/invites/${enc(code)}`);
}

export function inviteUrl(code) {
  return `${location.origin}/invite/${enc(code)}`;
}

// -- audit log -----------------------------------------------------------------------------------
export const AUDIT_PAGE = 50;

/** A page of the audit log, newest first: {userId, actionType, before} narrow it. */
export function auditLog(guildId, { userId = null, actionType = null, before = null } = {}) {
  return api.get(`${guildPath(guildId)}/audit-logs`, {
    user_id: userId,
    action_type: actionType,
    before,
    limit: AUDIT_PAGE,
  });
}
