// Guild message search (GET /guilds/{id}/messages/search, docs/chat.md): what the search
// box's text means, and the request it makes. Words are content terms (all must occur);
// filters are Discord's: from:USER in:CHANNEL has:attachment|link mentions:USER
// before:DATE after:DATE during:DATE pinned:true|false (a value with spaces in quotes).
// Names become ids here, from the member list and the channel list.

import { loadMembers } from './actions.js';
import { api } from './api.js';
import { idAt } from './ids.js';
import { store } from './store.js';

export const SEARCH_PAGE = 25; // the node's largest page
export const MAX_OFFSET = 4975;
export const FILTERS = [
  ['from:', 'a member', 'from:alice'],
  ['mentions:', 'a member', 'mentions:bob'],
  ['in:', 'a channel', 'in:general'],
  ['has:', 'attachment or link', 'has:link'],
  ['before:', 'a date', 'before:2026-05-01'],
  ['after:', 'a date', 'after:2026-04-01'],
  ['during:', 'a date', 'during:2026-04-15'],
  ['pinned:', 'true or false', 'pinned:true'],
];
export const SORTS = {
  newest: { sort_by: 'timestamp', sort_order: 'desc' },
  oldest: { sort_by: 'timestamp', sort_order: 'asc' },
  relevance: { sort_by: 'relevance', sort_order: 'desc' },
};
const KEYS = new Set(['from', 'mentions', 'in', 'has', 'before', 'after', 'during', 'pinned']);
const HAS = { attachment: 'attachment', attachments: 'attachment', file: 'attachment', image: 'attachment', link: 'link', links: 'link' };
const TOKEN = /(\w+):(?:"([^"]*)"|(\S+))|"([^"]*)"|(\S+)/g;

export class SearchError extends Error {}

/** The box's text as {terms: [...], filters: [[key, value], ...]} (no lookups yet). */
export function parseQuery(text) {
  const terms = [];
  const filters = [];
  for (const match of text.matchAll(TOKEN)) {
    const [, key, quoted, bare, phrase, word] = match;
    if (key && KEYS.has(key.toLowerCase())) filters.push([key.toLowerCase(), (quoted ?? bare).trim()]);
    else terms.push(phrase ?? word ?? match[0]);
  }
  return { terms: terms.filter(Boolean), filters };
}

function findMember(guildId, raw) {
  const name = raw.replace(/^@/, '').toLowerCase();
  const members = [...(store.members.get(guildId)?.values() ?? [])];
  const exact = (m) => m.user.username.toLowerCase() === name;
  const shown = (m) => [m.nick, m.user.display_name].some((n) => n && n.toLowerCase() === name);
  const found = members.find(exact) ?? members.find(shown);
  if (!found) throw new SearchError(`No member is called "${raw}".`);
  return found.user.id;
}

function findChannel(guildId, raw) {
  const name = raw.replace(/^#/, '').toLowerCase();
  for (const channel of store.channels.values()) {
    if (channel.guild_id === guildId && channel.name?.toLowerCase() === name && channel.type !== 4) return channel.id;
  }
  throw new SearchError(`No channel is called "${raw}".`);
}

function day(raw) {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(raw);
  const date = match ? new Date(Number(match[1]), Number(match[2]) - 1, Number(match[3])) : null;
  if (!date || Number.isNaN(date.getTime()) || date.getDate() !== Number(match[3])) {
    throw new SearchError(`"${raw}" is not a date (year-month-day, like 2026-04-15).`);
  }
  const next = new Date(date);
  next.setDate(date.getDate() + 1);
  return { start: date.getTime(), end: next.getTime() };
}

/** The request's query string for the box's text, names resolved: throws SearchError. */
export async function searchParams(guildId, text, { sort = 'newest', page = 0 } = {}) {
  const { terms, filters } = parseQuery(text);
  if (filters.some(([k]) => k === 'from' || k === 'mentions') && !store.members.has(guildId)) {
    await loadMembers(guildId);
  }
  const params = new URLSearchParams();
  if (terms.length) params.set('content', terms.join(' '));
  for (const [key, value] of filters) {
    if (!value) throw new SearchError(`"${key}:" needs a value.`);
    if (key === 'from') params.set('author_id', findMember(guildId, value));
    else if (key === 'mentions') params.set('mentions', findMember(guildId, value));
    else if (key === 'in') params.append('channel_id', findChannel(guildId, value));
    else if (key === 'has') {
      const kind = HAS[value.toLowerCase()];
      if (!kind) throw new SearchError('has: takes attachment or link.');
      params.append('has', kind);
    } else if (key === 'before') params.set('max_id', idAt(day(value).start));
    else if (key === 'after') params.set('min_id', (BigInt(idAt(day(value).end)) - 1n).toString());
    else if (key === 'during') {
      const { start, end } = day(value);
      params.set('min_id', (BigInt(idAt(start)) - 1n).toString());
      params.set('max_id', idAt(end));
    } else if (key === 'pinned') {
      const yes = ['true', 'yes', '1'].includes(value.toLowerCase());
      const no = ['false', 'no', '0'].includes(value.toLowerCase());
      if (!yes && !no) throw new SearchError('pinned: takes true or false.');
      params.set('pinned', String(yes));
    }
  }
  if (![...params.keys()].length) throw new SearchError('Type words to look for, or a filter.');
  for (const [key, value] of Object.entries(SORTS[sort] ?? SORTS.newest)) params.set(key, value);
  params.set('limit', String(SEARCH_PAGE));
  params.set('offset', String(Math.min(page * SEARCH_PAGE, MAX_OFFSET)));
  return params;
}

/** {total, hits: [message]} for a page of results. */
export async function search(guildId, text, options) {
  const params = await searchParams(guildId, text, options);
  const answer = await api.get(`/guilds/${encodeURIComponent(guildId)}/messages/search?${params}`);
  const hits = (answer.messages ?? []).map((hit) => hit[0]).filter(Boolean);
  for (const hit of hits) store.rememberUser(hit.author);
  return { total: answer.total_results ?? 0, hits };
}
