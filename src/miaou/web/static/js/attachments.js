// Attachments are served only with the bearer token (docs/chat.md), so an <img src> cannot
// load them directly: they are fetched with the token and shown from blob: URLs (the CSP
// allows img-src blob:). Object URLs are cached per path for the page's lifetime.

import { api } from './api.js';
import { formatBytes, h } from './dom.js';

const IMAGE_TYPES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);
const cache = new Map(); // path -> Promise<object URL>
const MAX_CACHED = 300;

export function objectUrl(path) {
  let found = cache.get(path);
  if (!found) {
    found = api.blob(path).then((blob) => URL.createObjectURL(blob));
    found.catch(() => cache.delete(path));
    cache.set(path, found);
    if (cache.size > MAX_CACHED) {
      const [oldest, url] = cache.entries().next().value;
      cache.delete(oldest);
      url.then((u) => URL.revokeObjectURL(u)).catch(() => {});
    }
  }
  return found;
}

export function isImage(attachment) {
  return IMAGE_TYPES.has(attachment.content_type) && attachment.width && attachment.height;
}

function image(attachment, onOpen) {
  const img = h('img', {
    alt: attachment.filename,
    width: attachment.width,
    height: attachment.height,
    decoding: 'async',
  });
  objectUrl(attachment.proxy_url ?? attachment.url).then(
    (url) => (img.src = url),
    () => img.classList.add('broken'),
  );
  return h(
    'button',
    {
      type: 'button',
      class: 'attachment-image',
      'aria-label': `Open image ${attachment.filename}`,
      onclick: () => onOpen(attachment),
    },
    img,
  );
}

async function download(attachment) {
  const url = await objectUrl(attachment.url);
  const link = h('a', { href: url, download: attachment.filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
}

function file(attachment) {
  return h(
    'div',
    { class: 'attachment-file' },
    h('span', { class: 'icon icon-file', 'aria-hidden': 'true' }),
    h('span', { class: 'file-name', text: attachment.filename }),
    h('span', { class: 'file-size', text: formatBytes(attachment.size) }),
    h('button', {
      type: 'button',
      class: 'button small',
      text: 'Download',
      'aria-label': `Download ${attachment.filename}`,
      onclick: () => download(attachment).catch(() => {}),
    }),
  );
}

export function renderAttachments(attachments, onOpen) {
  if (!attachments?.length) return null;
  return h(
    'div',
    { class: 'attachments' },
    attachments.map((a) => (isImage(a) ? image(a, onOpen) : file(a))),
  );
}
