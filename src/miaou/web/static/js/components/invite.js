// <miaou-invite>: /invite/{code}: what the invite leads to, and a button to join.

import { acceptInvite } from '../actions.js';
import { api } from '../api.js';
import { h } from '../dom.js';
import { channelPath, navigate } from '../router.js';
import { store } from '../store.js';

class MiaouInvite extends HTMLElement {
  connectedCallback() {
    this.off = store.on('route', () => this.load());
    this.load();
  }

  disconnectedCallback() {
    this.off?.();
  }

  async load() {
    const code = store.route.name === 'invite' ? store.route.params.code : null;
    if (!code || code === this.code) return;
    this.code = code;
    this.replaceChildren(h('section', { class: 'invite-card' }, h('p', { class: 'muted', role: 'status', text: 'Reading the invite…' })));
    try {
      this.render(await api.previewInvite(code));
    } catch (error) {
      this.replaceChildren(
        h('section', { class: 'invite-card' }, h('h1', { text: 'This invite cannot be used' }), h('p', { role: 'alert', text: error.message }), h('a', { href: '/channels/@me', 'data-route': '', class: 'button', text: 'Go home' })),
      );
    }
  }

  render(preview) {
    const member = store.guilds.has(preview.guild_id);
    const error = h('p', { class: 'form-error', role: 'alert' });
    const join = h('button', { type: 'button', class: 'button primary wide', text: member ? `Open ${preview.guild_name}` : `Join ${preview.guild_name}` });
    join.addEventListener('click', async () => {
      join.disabled = true;
      error.textContent = '';
      try {
        if (!member) await acceptInvite(preview.code);
        navigate(channelPath(preview.guild_id, preview.channel_id));
      } catch (failure) {
        join.disabled = false;
        error.textContent = failure.message;
      }
    });
    const headingId = 'invite-heading';
    this.replaceChildren(
      h(
        'section',
        { class: 'invite-card', 'aria-labelledby': headingId },
        h('p', { class: 'muted', text: member ? 'You are already a member of' : 'You have been invited to join' }),
        h('h1', { id: headingId, text: preview.guild_name }),
        h('p', { class: 'muted', text: `${preview.member_count} member${preview.member_count === 1 ? '' : 's'}${preview.channel_name ? ` · #${preview.channel_name}` : ''}` }),
        error,
        join,
      ),
    );
    join.focus();
  }
}

customElements.define('miaou-invite', MiaouInvite);
