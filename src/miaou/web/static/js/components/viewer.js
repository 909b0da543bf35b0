// The full-size image of an attachment, in a dialog.

import { objectUrl } from '../attachments.js';
import { formatBytes, h } from '../dom.js';
import { openDialog } from './dialogs.js';

export function openImageViewer(attachment) {
  const img = h('img', { class: 'viewer-image', alt: attachment.filename, width: attachment.width, height: attachment.height });
  openDialog({
    title: attachment.filename,
    className: 'viewer',
    body: [img, h('p', { class: 'hint', text: `${attachment.width} × ${attachment.height} · ${formatBytes(attachment.size)}` })],
  });
  objectUrl(attachment.url).then((url) => (img.src = url), () => img.classList.add('broken'));
}
