// Who a private track is shared with: the list (names read from the node), remove, and
// add someone by user id or by username (known here, else looked up on the node).

import { share, shares, unshare, user, userNamed } from '../audio/tracks-api.js';
import { h } from '../dom.js';
import { store } from '../store.js';

let counter = 0;

/** The user id `text` names: an id as it is, else a username (with or without @) among
 *  the people this client has seen; null if none. */
export function resolveUser(text) {
  const wanted = text.trim().replace(/^@/, '');
  if (/^\d{1,20}$/.test(wanted)) return wanted;
  const lower = wanted.toLowerCase();
  for (const known of store.users.values()) {
    if (known.username?.toLowerCase() === lower) return known.id;
  }
  for (const members of store.members.values()) {
    for (const member of members.values()) {
      if (member.user?.username?.toLowerCase() === lower) return member.user.id;
    }
  }
  return null;
}

async function nameOf(userId) {
  const known = store.users.get(userId);
  if (known) return known.username;
  try {
    const found = await user(userId);
    return found.username;
  } catch {
    return `user ${userId}`;
  }
}

export function sharesSection(track) {
  const id = `track-share-${++counter}`;
  const list = h('ul', { class: 'share-list', 'aria-label': 'Shared with' });
  const status = h('p', { class: 'hint', role: 'status' });
  const who = h('input', { id, type: 'text', autocomplete: 'off', maxlength: 100, placeholder: 'username or user id' });
  const add = h('button', { type: 'submit', class: 'button small', text: 'Share' });
  const form = h('form', { class: 'copy-row share-form' }, who, add);

  async function refresh() {
    let ids;
    try {
      ids = await shares(track.id);
    } catch (failure) {
      status.textContent = failure.message;
      return;
    }
    const names = await Promise.all(ids.map(nameOf));
    list.replaceChildren(
      ...ids.map((userId, i) =>
        h(
          'li',
          { class: 'share-item' },
          h('span', { text: names[i] }),
          h('button', {
            type: 'button',
            class: 'button small',
            text: 'Remove',
            'aria-label': `Stop sharing with ${names[i]}`,
            onclick: async () => {
              try {
                await unshare(track.id, userId);
                status.textContent = `No longer shared with ${names[i]}.`;
              } catch (failure) {
                status.textContent = failure.message;
              }
              refresh();
            },
          }),
        ),
      ),
    );
    if (!ids.length) list.replaceChildren(h('li', { class: 'hint', text: 'Shared with no one yet.' }));
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const named = who.value.trim().replace(/^@/, '');
    if (!named) return;
    add.disabled = true;
    try {
      const userId = resolveUser(named) ?? (await userNamed(named)).id;
      await share(track.id, userId);
      status.textContent = `Shared with ${await nameOf(userId)}.`;
      who.value = '';
    } catch (failure) {
      status.textContent = failure.code === 'unknown_user' ? 'There is no such user.' : failure.message;
    }
    add.disabled = false;
    refresh();
  });
  refresh();
  return h(
    'section',
    { class: 'track-section' },
    h('h3', { text: 'Shared with' }),
    h('p', { class: 'hint', text: 'A private track plays only for you and the people you share it with.' }),
    list,
    h('label', { for: id, text: 'Share with' }),
    form,
    status,
  );
}
