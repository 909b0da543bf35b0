// Small pieces shared by components: initials, colour numbers, count badges, avatars,
// lists read afresh.

import { h } from '../dom.js';

export function initials(name) {
  const words = String(name ?? '?').trim().split(/\s+/).filter(Boolean);
  const letters = words.length > 1 ? words[0][0] + words[1][0] : (words[0] ?? '?').slice(0, 2);
  return letters.toUpperCase();
}

/** A stable colour number (0-7) for an id. */
export function hue(id) {
  let sum = 0;
  for (const c of String(id)) sum = (sum * 31 + c.charCodeAt(0)) % 8;
  return sum;
}

export function icon(name) {
  return h('span', { class: `icon icon-${name}`, 'aria-hidden': 'true' });
}

export function badge(count) {
  return h('span', { class: 'badge', 'aria-hidden': 'true', text: count > 99 ? '99+' : String(count) });
}

export function avatar(userId, name, status = null) {
  return h(
    'span',
    { class: `avatar hue-${hue(userId)}`, 'aria-hidden': 'true' },
    initials(name),
    status ? h('span', { class: `presence ${status}` }) : null,
  );
}

/** Read with `fetch` and show the answer with `render`; a failure is shown in `container`
 *  instead. Of overlapping reads by one `owner` (a live event may ask again before the
 *  last answer came), only the latest renders. */
export async function showLatest(owner, container, fetch, render) {
  const serial = (owner.readSerial = (owner.readSerial ?? 0) + 1);
  let found;
  try {
    found = await fetch();
  } catch (error) {
    container.replaceChildren(h('p', { class: 'form-error', role: 'alert', text: error.message }));
    return;
  }
  if (serial === owner.readSerial) render(found);
}
