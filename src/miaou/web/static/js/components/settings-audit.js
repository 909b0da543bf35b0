// <miaou-settings-audit guild-id="...">: the audit log (VIEW_AUDIT_LOG), newest first, 50 at
// a time ("Older entries" reads the next page with `before`), narrowed by action and by who
// did it. Each entry: when, who, what, on what, the changes and the reason.

import { loadMembers } from '../actions.js';
import { h, formatDateTime } from '../dom.js';
import { AUDIT_PAGE, auditLog } from '../guild-admin.js';
import { idTime } from '../ids.js';
import { store } from '../store.js';
import { field } from './forms.js';

// The node's action numbers (src/miaou/chat/audit.py, Discord's).
export const ACTIONS = [
  [1, 'GUILD_UPDATE', 'updated the guild'],
  [10, 'CHANNEL_CREATE', 'created a channel'],
  [11, 'CHANNEL_UPDATE', 'updated a channel'],
  [12, 'CHANNEL_DELETE', 'deleted a channel'],
  [13, 'CHANNEL_OVERWRITE_CREATE', 'added a permission overwrite'],
  [14, 'CHANNEL_OVERWRITE_UPDATE', 'changed a permission overwrite'],
  [15, 'CHANNEL_OVERWRITE_DELETE', 'removed a permission overwrite'],
  [20, 'MEMBER_KICK', 'kicked a member'],
  [22, 'MEMBER_BAN_ADD', 'banned a member'],
  [23, 'MEMBER_BAN_REMOVE', 'unbanned a member'],
  [24, 'MEMBER_UPDATE', 'updated a member'],
  [25, 'MEMBER_ROLE_UPDATE', "changed a member's roles"],
  [30, 'ROLE_CREATE', 'created a role'],
  [31, 'ROLE_UPDATE', 'updated a role'],
  [32, 'ROLE_DELETE', 'deleted a role'],
  [40, 'INVITE_CREATE', 'created an invite'],
  [42, 'INVITE_DELETE', 'revoked an invite'],
  [60, 'EMOJI_CREATE', 'added an emoji'],
  [61, 'EMOJI_UPDATE', 'renamed an emoji'],
  [62, 'EMOJI_DELETE', 'deleted an emoji'],
  [72, 'MESSAGE_DELETE', "deleted someone's message"],
  [74, 'MESSAGE_PIN', 'pinned a message'],
  [75, 'MESSAGE_UNPIN', 'unpinned a message'],
  [110, 'THREAD_CREATE', 'created a thread'],
  [111, 'THREAD_UPDATE', 'updated a thread'],
  [112, 'THREAD_DELETE', 'deleted a thread'],
];
const WHAT = Object.fromEntries(ACTIONS.map(([, name, text]) => [name, text]));

function targetText(guildId, entry) {
  const id = entry.target_id;
  if (!id) return null;
  const guild = store.guilds.get(guildId);
  const role = guild?.roles?.find((r) => r.id === id);
  if (role) return role.id === guildId ? '@everyone' : `@${role.name}`;
  const channel = store.channels.get(id);
  if (channel) return channel.name ? `#${channel.name}` : null;
  if (id === guildId) return null;
  const user = store.displayName(id, guildId);
  return user ? `@${user}` : `id ${id}`;
}

function changesText(changes) {
  if (!changes) return null;
  const show = (v) => (v == null ? 'none' : typeof v === 'object' ? JSON.stringify(v) : String(v));
  return Object.entries(changes)
    .map(([key, change]) => (change && typeof change === 'object' && 'new' in change ? `${key}: ${show(change.old)} → ${show(change.new)}` : `${key}: ${show(change)}`))
    .join('; ');
}

class MiaouSettingsAudit extends HTMLElement {
  async connectedCallback() {
    this.guildId = this.getAttribute('guild-id');
    this.list = h('ol', { class: 'audit-list', 'aria-label': 'Audit log entries' });
    this.status = h('p', { class: 'muted', role: 'status' });
    this.more = h('button', { type: 'button', class: 'button small', text: 'Older entries', hidden: true, onclick: () => this.load(false) });
    await loadMembers(this.guildId).catch(() => {});
    if (!this.isConnected) return;
    const members = [...(store.members.get(this.guildId)?.values() ?? [])];
    this.action = field({ name: 'action', label: 'Action', kind: 'select', value: '', options: [['', 'All actions'], ...ACTIONS.map(([n, name]) => [n, name])] });
    this.user = field({ name: 'user', label: 'Done by', kind: 'select', value: '', options: [['', 'Anyone'], ...members.map((m) => [m.user.id, m.nick || m.user.display_name || m.user.username])] });
    for (const f of [this.action, this.user]) f.input.addEventListener('change', () => this.load(true));
    this.replaceChildren(
      h(
        'section',
        { class: 'settings-section', 'aria-labelledby': 'audit-title' },
        h('h2', { id: 'audit-title', class: 'settings-title', text: 'Audit log' }),
        h('div', { class: 'settings-form inline-form', role: 'group', 'aria-label': 'Filters' }, this.action.row, this.user.row),
        this.status,
        this.list,
        this.more,
      ),
    );
    this.load(true);
  }

  async load(fresh) {
    const serial = (this.serial = (this.serial ?? 0) + 1);
    if (fresh) {
      this.list.replaceChildren();
      this.oldest = null;
    }
    this.status.textContent = 'Loading…';
    let page;
    try {
      page = await auditLog(this.guildId, { userId: this.user.read() || null, actionType: this.action.read() || null, before: this.oldest });
    } catch (error) {
      this.status.textContent = `Could not read the audit log: ${error.message}`;
      return;
    }
    if (serial !== this.serial) return;
    this.list.append(...page.map((entry) => this.entry(entry)));
    this.oldest = page[page.length - 1]?.id ?? this.oldest;
    this.more.hidden = page.length < AUDIT_PAGE;
    this.status.textContent = this.list.children.length ? `${this.list.children.length} entries shown` : 'No entry.';
  }

  entry(entry) {
    const actor = entry.actor_id ? store.displayName(entry.actor_id, this.guildId) ?? 'someone' : 'the node';
    const target = targetText(this.guildId, entry);
    const changes = changesText(entry.changes);
    return h(
      'li',
      { class: 'audit-entry', dataset: { action: entry.action } },
      h('p', {}, h('strong', { text: actor }), ` ${WHAT[entry.action] ?? entry.action.toLowerCase()}`, target ? [' ', h('strong', { text: target })] : null),
      h('p', { class: 'hint' }, h('time', { datetime: new Date(idTime(entry.id)).toISOString(), text: formatDateTime(idTime(entry.id)) }), ` · ${entry.action}`),
      changes ? h('p', { class: 'audit-changes', text: changes }) : null,
      entry.reason ? h('p', { class: 'audit-reason', text: `Reason: ${entry.reason}` }) : null,
    );
  }
}

customElements.define('miaou-settings-audit', MiaouSettingsAudit);
