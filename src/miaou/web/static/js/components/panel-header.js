// The side panel's header: a title, the panel's own buttons, and Close.

import { h } from '../dom.js';
import { closePanelAndReturn } from '../side-panel.js';
import { icon } from './bits.js';

export function panelHeader(title, ...extra) {
  return h(
    'header',
    { class: 'panel-header' },
    h('h2', { class: 'panel-title', text: title }),
    h('div', { class: 'panel-tools' }, extra),
    h('button', { type: 'button', class: 'icon-button panel-close', 'aria-label': 'Close the panel', title: 'Close', onclick: () => closePanelAndReturn() }, icon('close')),
  );
}
