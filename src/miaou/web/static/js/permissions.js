// Discord's permission flags and the node's rules for them (src/miaou/chat/permissions.py),
// as pure functions over plain data: which buttons to offer, which checkboxes to show. The
// node decides; a client that guesses wrong only gets the node's 403.

const bit = (n) => 1n << BigInt(n);

/** [flag name, bit, short description, group, applies in channel overwrites] */
export const FLAGS = Object.freeze([
  ['ADMINISTRATOR', 3, 'Every permission, and bypasses channel overwrites', 'Advanced', false],
  ['VIEW_CHANNEL', 10, 'See channels and read their live messages', 'General', true],
  ['MANAGE_CHANNELS', 4, 'Create, edit and delete channels', 'General', true],
  ['MANAGE_ROLES', 28, 'Create and edit roles; channel permission overwrites', 'General', true],
  ['MANAGE_GUILD', 5, 'Edit the guild: name, description; invites list', 'General', false],
  ['VIEW_AUDIT_LOG', 7, 'Read the audit log', 'General', false],
  ['MANAGE_WEBHOOKS', 29, 'Manage webhooks', 'General', true],
  ['MANAGE_GUILD_EXPRESSIONS', 30, 'Edit and delete custom emoji', 'General', false],
  ['CREATE_GUILD_EXPRESSIONS', 43, 'Add custom emoji', 'General', false],
  ['VIEW_GUILD_INSIGHTS', 19, 'View guild insights', 'General', false],
  ['VIEW_CREATOR_MONETIZATION_ANALYTICS', 41, 'View monetization analytics', 'General', false],
  ['CREATE_INSTANT_INVITE', 0, 'Create invites', 'Membership', true],
  ['CHANGE_NICKNAME', 26, 'Change their own nickname', 'Membership', false],
  ['MANAGE_NICKNAMES', 27, "Change others' nicknames", 'Membership', false],
  ['KICK_MEMBERS', 1, 'Remove members', 'Membership', false],
  ['BAN_MEMBERS', 2, 'Ban members', 'Membership', false],
  ['MODERATE_MEMBERS', 40, 'Time members out', 'Membership', false],
  ['SEND_MESSAGES', 11, 'Send messages in channels', 'Text', true],
  ['SEND_MESSAGES_IN_THREADS', 38, 'Send messages in threads', 'Text', true],
  ['CREATE_PUBLIC_THREADS', 35, 'Start public threads', 'Text', true],
  ['CREATE_PRIVATE_THREADS', 36, 'Start private threads', 'Text', true],
  ['EMBED_LINKS', 14, 'Links show previews', 'Text', true],
  ['ATTACH_FILES', 15, 'Upload files', 'Text', true],
  ['ADD_REACTIONS', 6, 'Add new reactions', 'Text', true],
  ['USE_EXTERNAL_EMOJIS', 18, "Use other guilds' emoji", 'Text', true],
  ['USE_EXTERNAL_STICKERS', 37, "Use other guilds' stickers", 'Text', true],
  ['MENTION_EVERYONE', 17, 'Mention @everyone, @here and all roles', 'Text', true],
  ['MANAGE_MESSAGES', 13, "Delete others' messages, pin", 'Text', true],
  ['PIN_MESSAGES', 51, 'Pin and unpin messages', 'Text', true],
  ['MANAGE_THREADS', 34, 'Rename, archive, lock and delete threads', 'Text', true],
  ['READ_MESSAGE_HISTORY', 16, 'Read earlier messages', 'Text', true],
  ['SEND_TTS_MESSAGES', 12, 'Send text-to-speech messages', 'Text', true],
  ['SEND_VOICE_MESSAGES', 46, 'Send voice messages', 'Text', true],
  ['SEND_POLLS', 49, 'Create polls', 'Text', true],
  ['USE_APPLICATION_COMMANDS', 31, 'Use application commands', 'Text', true],
  ['USE_EXTERNAL_APPS', 50, 'Use external apps', 'Text', true],
  ['BYPASS_SLOWMODE', 52, 'Not slowed down by slow mode', 'Text', true],
  ['CONNECT', 20, 'Join voice channels', 'Voice', true],
  ['SPEAK', 21, 'Speak in voice channels', 'Voice', true],
  ['STREAM', 9, 'Share video and screen', 'Voice', true],
  ['USE_VAD', 25, 'Use voice activity detection', 'Voice', true],
  ['PRIORITY_SPEAKER', 8, 'Be heard over others', 'Voice', true],
  ['MUTE_MEMBERS', 22, 'Mute others in voice', 'Voice', true],
  ['DEAFEN_MEMBERS', 23, 'Deafen others in voice', 'Voice', true],
  ['MOVE_MEMBERS', 24, 'Move others between voice channels', 'Voice', true],
  ['USE_EMBEDDED_ACTIVITIES', 39, 'Use activities', 'Voice', true],
  ['USE_SOUNDBOARD', 42, 'Use the soundboard', 'Voice', true],
  ['USE_EXTERNAL_SOUNDS', 45, "Use other guilds' sounds", 'Voice', true],
  ['REQUEST_TO_SPEAK', 32, 'Ask to speak on stage', 'Voice', true],
  ['MANAGE_EVENTS', 33, 'Edit and delete events', 'Events', false],
  ['CREATE_EVENTS', 44, 'Create events', 'Events', true],
].map(([name, n, description, group, channel]) => Object.freeze({ name, bit: bit(n), description, group, channel })));

/** Flag name -> bit (a BigInt: the field outgrows 2^53). */
export const Permission = Object.freeze(Object.fromEntries(FLAGS.map((f) => [f.name, f.bit])));

export const ALL = FLAGS.reduce((bits, f) => bits | f.bit, 0n);
const P = Permission;
const NEEDS_SEND = P.MENTION_EVERYONE | P.SEND_TTS_MESSAGES | P.ATTACH_FILES | P.EMBED_LINKS;
const TIMEOUT_KEEPS = P.VIEW_CHANNEL | P.READ_MESSAGE_HISTORY;
const OVERWRITABLE = ALL & ~P.ADMINISTRATOR;
export const THREAD_TYPES = new Set([10, 11, 12]);

export function bits(value) {
  try {
    return BigInt(value ?? 0);
  } catch {
    return 0n;
  }
}

export function has(perms, flag) {
  return (perms & flag) === flag;
}

/** Guild-level permissions: owner or ADMINISTRATOR -> everything, else @everyone | roles. */
export function basePermissions(guild, userId, roleIds) {
  if (!guild || !userId) return 0n;
  if (guild.owner_id === userId) return ALL;
  let perms = 0n;
  for (const role of guild.roles ?? []) {
    if (role.id === guild.id || roleIds.has(role.id)) perms |= bits(role.permissions);
  }
  perms &= ALL;
  return has(perms, P.ADMINISTRATOR) ? ALL : perms;
}

/** Permissions in a channel: base, then the @everyone overwrite, the roles' (denies then
 *  allows, combined), the member's; a timeout keeps VIEW_CHANNEL and READ_MESSAGE_HISTORY;
 *  without VIEW_CHANNEL nothing; without SEND (SEND_MESSAGES_IN_THREADS in a thread) no
 *  mention-everyone, TTS, attach or embed. `channel` is the thread's parent for a thread. */
export function channelPermissions({ guild, userId, roleIds, channel, thread = false, timedOut = false }) {
  const base = basePermissions(guild, userId, roleIds);
  if (base === ALL) return ALL;
  const layers = [
    [0n, 0n],
    [0n, 0n],
    [0n, 0n],
  ];
  for (const ow of channel?.permission_overwrites ?? []) {
    let layer = null;
    if (ow.type === 0 && ow.id === guild.id) layer = layers[0];
    else if (ow.type === 0 && roleIds.has(ow.id)) layer = layers[1];
    else if (ow.type === 1 && ow.id === userId) layer = layers[2];
    if (!layer) continue;
    layer[0] |= bits(ow.deny) & OVERWRITABLE;
    layer[1] |= bits(ow.allow) & OVERWRITABLE;
  }
  let perms = base;
  for (const [deny, allow] of layers) perms = (perms & ~deny) | allow;
  if (timedOut) perms &= TIMEOUT_KEEPS;
  if (!has(perms, P.VIEW_CHANNEL)) return 0n;
  const send = thread ? P.SEND_MESSAGES_IN_THREADS : P.SEND_MESSAGES;
  return has(perms, send) ? perms : perms & ~NEEDS_SEND;
}

/** A role's or an overwrite's bits as {name: true} for the checkboxes. */
export function flagsOf(value) {
  const perms = bits(value);
  return FLAGS.filter((f) => has(perms, f.bit)).map((f) => f.name);
}

export function toBits(names) {
  return names.reduce((acc, name) => acc | (Permission[name] ?? 0n), 0n);
}
