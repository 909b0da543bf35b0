// The sections of a guild's settings and the permission each one needs (the node checks
// again; this only decides what to offer).

import { Permission, store } from '../store.js';

export const SECTIONS = Object.freeze([
  { id: 'overview', title: 'Overview', needs: Permission.MANAGE_GUILD },
  { id: 'channels', title: 'Channels', needs: Permission.MANAGE_CHANNELS },
  { id: 'roles', title: 'Roles', needs: Permission.MANAGE_ROLES },
  { id: 'invites', title: 'Invites', needs: Permission.MANAGE_GUILD },
  { id: 'bans', title: 'Bans', needs: Permission.BAN_MEMBERS },
  { id: 'audit-log', title: 'Audit log', needs: Permission.VIEW_AUDIT_LOG },
]);

/** The sections the signed-in user may open in this guild. */
export function settingsSections(guildId) {
  return SECTIONS.filter((s) => store.can(guildId, s.needs));
}
