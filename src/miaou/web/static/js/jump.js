// Jumping to a message that is not in the loaded history (a search hit, a jump link, a
// pin): the history is replaced by the page `around` it, a stretch that may not reach the
// newest message ("detached"). Scrolling down reads newer pages (`after`) until it does;
// live messages are not added to a detached history (they would leave a gap), and "jump to
// present" reads the newest page again.

import { loadHistory, PAGE } from './actions.js';
import { api } from './api.js';
import { compareIds } from './ids.js';
import { History, store } from './store.js';

const changed = (channelId, kind) => store.emit('messages', { channelId, kind });

function remember(message) {
  store.rememberUser(message.author);
  for (const user of message.mentions ?? []) store.rememberUser(user);
}

/** Make sure the message is in the channel's history; false if the node has no such
 *  message there (deleted, or never was). */
export async function loadAround(channelId, messageId) {
  const known = store.histories.get(channelId);
  if (known?.byId.has(messageId)) return true;
  const page = await api.messages(channelId, { around: messageId, limit: PAGE });
  const history = new History();
  history.pending = known?.pending ?? [];
  for (const message of page) {
    remember(message);
    history.upsert(message);
  }
  // The node takes up to half a page newer than the message, the rest from it backwards.
  const newer = page.filter((m) => compareIds(m.id, messageId) > 0).length;
  history.hasMore = page.length - newer === PAGE - newer;
  history.detached = newer === Math.floor(PAGE / 2);
  history.loaded = true;
  store.histories.set(channelId, history);
  changed(channelId, 'reset');
  return history.byId.has(messageId);
}

/** The page after the newest loaded message of a detached history. */
export async function loadNewer(channelId) {
  const history = store.histories.get(channelId);
  const newest = history?.newest();
  if (!history?.detached || history.loading || !newest) return;
  history.loading = true;
  try {
    const page = await api.messages(channelId, { after: newest.id, limit: PAGE });
    for (const message of page) {
      remember(message);
      if (!history.byId.has(message.id)) history.upsert(message);
    }
    if (page.length < PAGE) history.detached = false;
  } catch (error) {
    store.toast(`Could not load newer messages: ${error.message}`);
  } finally {
    history.loading = false;
    changed(channelId, 'newer');
  }
}

export async function jumpToPresent(channelId) {
  store.histories.delete(channelId);
  changed(channelId, 'reset');
  await loadHistory(channelId);
}
