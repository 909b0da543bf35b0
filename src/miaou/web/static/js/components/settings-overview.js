// <miaou-settings-overview guild-id="...">: the guild's name, description and system
// channel (MANAGE_GUILD). Its icon: see docs/web.md, "What the API lacks".

import { h } from '../dom.js';
import { updateGuild } from '../guild-admin.js';
import { store } from '../store.js';
import { initials } from './bits.js';
import { field, showErrors } from './forms.js';

class MiaouSettingsOverview extends HTMLElement {
  connectedCallback() {
    this.guildId = this.getAttribute('guild-id');
    this.render();
  }

  render() {
    const guild = store.guilds.get(this.guildId);
    const texts = [...store.channels.values()].filter((c) => c.guild_id === guild.id && c.type === 0);
    const fields = new Map([
      ['name', field({ name: 'name', label: 'Guild name', value: guild.name, required: true, minlength: 2, maxlength: 100 })],
      ['description', field({ name: 'description', label: 'Description', kind: 'textarea', value: guild.description ?? '', maxlength: 1000 })],
      [
        'system_channel_id',
        field({
          name: 'system_channel_id',
          label: 'Channel for welcome messages',
          kind: 'select',
          value: guild.system_channel_id ?? '',
          options: [['', 'None'], ...texts.map((c) => [c.id, `#${c.name}`])],
        }),
      ],
    ]);
    const error = h('p', { class: 'form-error', role: 'alert' });
    const done = h('p', { class: 'saved', role: 'status' });
    const save = h('button', { type: 'submit', class: 'button primary', text: 'Save changes' });
    const form = h(
      'form',
      { class: 'settings-form', novalidate: true, 'aria-labelledby': 'overview-title' },
      h('h2', { id: 'overview-title', class: 'settings-title', text: 'Overview' }),
      h(
        'div',
        { class: 'guild-icon-preview' },
        h('span', { class: 'guild-icon big', 'aria-hidden': 'true', text: initials(guild.name) }),
        h('p', { class: 'hint', text: 'The icon shows the guild\u2019s initials: this node has no icon upload yet.' }),
      ),
      [...fields.values()].map((f) => f.row),
      error,
      h('div', { class: 'form-actions' }, save, done),
    );
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      if (!form.reportValidity()) return;
      const name = fields.get('name').read().trim();
      const description = fields.get('description').read().trim();
      const system = fields.get('system_channel_id').read() || null;
      const current = store.guilds.get(this.guildId);
      const changes = {};
      if (name !== current.name) changes.name = name;
      if (description !== (current.description ?? '')) changes.description = description;
      if (system !== (current.system_channel_id ?? null)) changes.system_channel_id = system;
      error.textContent = '';
      done.textContent = '';
      showErrors(fields, null);
      if (!Object.keys(changes).length) {
        done.textContent = 'Nothing to save.';
        return;
      }
      save.disabled = true;
      try {
        await updateGuild(guild.id, changes);
        done.textContent = 'Saved.';
      } catch (failure) {
        error.textContent = showErrors(fields, failure);
      } finally {
        save.disabled = false;
      }
    });
    this.replaceChildren(form);
  }
}

customElements.define('miaou-settings-overview', MiaouSettingsOverview);
