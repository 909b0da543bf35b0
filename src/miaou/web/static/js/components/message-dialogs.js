// Dialogs about one message: its edit history, and confirming its deletion.

import { api } from '../api.js';
import { formatDateTime, h } from '../dom.js';
import { renderMarkdown } from '../markdown.js';
import { confirmDialog, openDialog } from './dialogs.js';
import { markdownContext, snippet } from './message-view.js';

/** Earlier versions (GET .../versions, oldest first), then the current text. */
export async function showEditHistory(channelId, guildId, message) {
  const list = h('ol', { class: 'versions', 'aria-busy': 'true' }, h('li', { class: 'muted', text: 'Loading…' }));
  openDialog({ title: 'Edit history', body: list, className: 'history-dialog' });
  const context = markdownContext(guildId);
  const entry = (label, at, content) =>
    h(
      'li',
      { class: 'version' },
      h('p', { class: 'version-meta' }, h('strong', { text: label }), ` · ${formatDateTime(at)}`),
      h('div', { class: 'content' }, renderMarkdown(content, context)),
    );
  try {
    const versions = await api.versions(channelId, message.id);
    list.replaceChildren(
      ...versions.map((v) => entry(v.version === 1 ? 'Original' : `Version ${v.version}`, v.created_at, v.content)),
      entry('Current', message.edited_timestamp ?? message.timestamp, message.content),
    );
  } catch (error) {
    list.replaceChildren(h('li', { class: 'form-error', text: error.message }));
  }
  list.removeAttribute('aria-busy');
}

export function confirmDeletion(message, guildId) {
  return confirmDialog({
    title: 'Delete message',
    text: `Delete this message? "${snippet(message, 80, guildId)}"`,
    confirmLabel: 'Delete',
    danger: true,
  });
}
