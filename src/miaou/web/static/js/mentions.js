// Mentions as people type them ("@alice") and as the node stores them ("<@123>").

import { store } from './store.js';

const CODE = /(```[\s\S]*?```|`[^`\n]*`)/;
const TYPED = /(^|[^\p{L}\p{N}_<@\\])@([\p{L}\p{N}_.-]{2,32})/gu;
const STORED = /<@!?([0-9]{1,20})>/g;

function outsideCode(text, replace) {
  return text
    .split(CODE)
    .map((part, index) => (index % 2 ? part : replace(part)))
    .join('');
}

/** "@alice" to "<@id>" for members of the guild, outside code. */
export function toStored(text, guildId) {
  const members = store.members.get(guildId);
  if (!members) return text;
  const byName = new Map();
  for (const member of members.values()) byName.set(member.user.username.toLowerCase(), member.user.id);
  return outsideCode(text, (part) =>
    part.replace(TYPED, (all, lead, name) => {
      const id = byName.get(name.toLowerCase());
      return id ? `${lead}<@${id}>` : all;
    }),
  );
}

/** "<@id>" back to "@username", for editing a message. */
export function toTyped(text) {
  return outsideCode(text, (part) =>
    part.replace(STORED, (all, id) => {
      const user = store.users.get(id);
      return user ? `@${user.username}` : all;
    }),
  );
}
