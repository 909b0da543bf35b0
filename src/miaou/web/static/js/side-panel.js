// What the side panel beside the channel shows: one thing at a time.
//   {kind: 'thread', threadId}    a thread's messages and composer
//   {kind: 'threads', channelId}  a channel's threads, active and archived
//   {kind: 'pins', channelId}     a channel's pinned messages
//   {kind: 'search', guildId, query, sort, page}   search results

import { store } from './store.js';

export function openPanel(panel) {
  store.sidePanel = panel;
  store.emit('side-panel');
}

export function closePanel() {
  if (!store.sidePanel) return;
  store.sidePanel = null;
  store.emit('side-panel');
}

/** Open the panel, or close it if it already shows this. */
export function togglePanel(panel) {
  const open = store.sidePanel;
  const same = open && open.kind === panel.kind && (open.channelId ?? open.threadId) === (panel.channelId ?? panel.threadId);
  if (same) closePanel();
  else openPanel(panel);
}

/** Close, and give the keyboard back to the channel's composer. */
export function closePanelAndReturn() {
  closePanel();
  document.querySelector('miaou-composer:not([channel-id]) textarea')?.focus();
}
