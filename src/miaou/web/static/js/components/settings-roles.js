// <miaou-settings-roles guild-id="...">: roles from the highest down (MANAGE_ROLES): create,
// reorder, and edit one: name, colour, shown apart in the member list (hoist), mentionable,
// and its permissions as check boxes under Discord's flag names. The node refuses what is
// not below the editor's highest role; its message is shown.

import { h, scheduler } from '../dom.js';
import { createRole, deleteRole, orderRoles, rolesByRank, updateRole } from '../guild-admin.js';
import { FLAGS, bits, has } from '../permissions.js';
import { store } from '../store.js';
import { confirmWithReason } from './dialogs.js';
import { field, showErrors } from './forms.js';

const GROUPS = [...new Set(FLAGS.map((f) => f.group))];
const hex = (color) => `#${(color ?? 0).toString(16).padStart(6, '0')}`;

class MiaouSettingsRoles extends HTMLElement {
  connectedCallback() {
    this.guildId = this.getAttribute('guild-id');
    this.selected = null;
    this.update = scheduler(() => this.renderList());
    this.off = store.on('channels', ({ guildId }) => guildId === this.guildId && this.update());
    this.list = h('ol', { class: 'settings-list role-list', 'aria-label': 'Roles, highest first' });
    this.editor = h('div', { class: 'role-editor' });
    const create = h('button', { type: 'button', class: 'button primary', text: 'Create a role' });
    create.addEventListener('click', async () => {
      try {
        const role = await createRole(this.guildId, { name: 'new role' });
        this.select(role.id);
      } catch (error) {
        store.toast(`Could not create a role: ${error.message}`);
      }
    });
    this.replaceChildren(
      h(
        'section',
        { class: 'settings-section', 'aria-labelledby': 'roles-title' },
        h('div', { class: 'settings-head' }, h('h2', { id: 'roles-title', class: 'settings-title', text: 'Roles' }), create),
        h('p', { class: 'hint', text: 'Members get the permissions of all their roles; a higher role can manage lower ones. Channel overwrites are under Channels.' }),
        h('div', { class: 'roles-layout' }, this.list, this.editor),
      ),
    );
    this.renderList();
    this.select(this.guildId); // @everyone
  }

  disconnectedCallback() {
    this.off();
  }

  renderList() {
    const roles = rolesByRank(this.guildId);
    const movable = roles.filter((r) => r.id !== this.guildId);
    const focused = this.list.contains(document.activeElement) ? document.activeElement.dataset.key : null;
    this.list.replaceChildren(
      ...roles.map((role) => {
        const at = movable.indexOf(role);
        const everyone = role.id === this.guildId;
        const small = (text, label, disabled, action) =>
          h('button', { type: 'button', class: 'button small', text, 'aria-label': `${label} ${role.name}`, disabled, dataset: { key: `${text}:${role.id}` }, onclick: action });
        return h(
          'li',
          { class: 'admin-row', dataset: { roleId: role.id } },
          h(
            'button',
            { type: 'button', class: 'role-pick', 'aria-pressed': String(this.selected === role.id), dataset: { key: `pick:${role.id}` }, onclick: () => this.select(role.id) },
            h('span', { class: 'role-dot', dataset: { color: role.color ? hex(role.color) : '' } }),
            h('span', { text: everyone ? '@everyone' : role.name }),
            role.hoist ? h('span', { class: 'hint', text: ' · shown apart' }) : null,
          ),
          everyone
            ? null
            : h('span', { class: 'admin-actions' }, small('Up', 'Move up', at <= 0, () => this.move(movable, at, -1)), small('Down', 'Move down', at >= movable.length - 1, () => this.move(movable, at, 1))),
        );
      }),
    );
    // Colours through CSSOM (the CSP allows no style attribute).
    for (const dot of this.list.querySelectorAll('.role-dot')) {
      if (dot.dataset.color) dot.style.setProperty('--role-color', dot.dataset.color);
    }
    if (focused) this.list.querySelector(`[data-key="${focused}"]`)?.focus();
  }

  async move(movable, at, step) {
    const order = [...movable];
    [order[at], order[at + step]] = [order[at + step], order[at]];
    try {
      await orderRoles(this.guildId, order);
    } catch (error) {
      store.toast(`Could not move the role: ${error.message}`);
    }
  }

  select(roleId) {
    this.selected = roleId;
    this.renderList();
    this.renderEditor();
  }

  renderEditor() {
    const role = store.guilds.get(this.guildId)?.roles?.find((r) => r.id === this.selected);
    if (!role) {
      this.editor.replaceChildren();
      return;
    }
    const everyone = role.id === this.guildId;
    const perms = bits(role.permissions);
    const fields = new Map();
    if (!everyone) {
      fields.set('name', field({ name: 'name', label: 'Role name', value: role.name, required: true, maxlength: 100 }));
      fields.set('colored', field({ name: 'colored', label: 'Coloured name', kind: 'checkbox', value: role.color !== 0 }));
      fields.set('color', field({ name: 'color', label: 'Colour', kind: 'color', value: role.color ? hex(role.color) : '#c2410c' }));
      fields.set('hoist', field({ name: 'hoist', label: 'Show members with this role apart in the member list', kind: 'checkbox', value: role.hoist }));
      fields.set('mentionable', field({ name: 'mentionable', label: 'Anyone may @mention this role', kind: 'checkbox', value: role.mentionable }));
    }
    for (const group of GROUPS) {
      fields.set(
        `perm-${group}`,
        field({
          name: `perm-${group}`,
          label: `${group} permissions`,
          kind: 'checkboxes',
          choices: FLAGS.filter((f) => f.group === group).map((f) => ({ value: f.name, label: f.name, hint: f.description, checked: has(perms, f.bit) })),
        }),
      );
    }
    const error = h('p', { class: 'form-error', role: 'alert' });
    const done = h('p', { class: 'saved', role: 'status' });
    const save = h('button', { type: 'submit', class: 'button primary', text: 'Save role' });
    const remove = everyone ? null : h('button', { type: 'button', class: 'button danger', text: 'Delete role' });
    const form = h(
      'form',
      { class: 'settings-form role-form', novalidate: true, 'aria-label': `Edit ${everyone ? '@everyone' : role.name}` },
      h('h3', { text: everyone ? '@everyone (every member)' : `Role: ${role.name}` }),
      [...fields.values()].map((f) => f.row),
      error,
      h('div', { class: 'form-actions' }, save, remove, done),
    );
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      if (!form.reportValidity()) return;
      let next = 0n;
      for (const group of GROUPS) {
        for (const name of fields.get(`perm-${group}`).read()) next |= FLAGS.find((f) => f.name === name).bit;
      }
      const changes = { permissions: next.toString() };
      if (!everyone) {
        changes.name = fields.get('name').read().trim();
        changes.color = fields.get('colored').read() ? parseInt(fields.get('color').read().slice(1), 16) : 0;
        changes.hoist = fields.get('hoist').read();
        changes.mentionable = fields.get('mentionable').read();
      }
      save.disabled = true;
      error.textContent = '';
      done.textContent = '';
      try {
        await updateRole(this.guildId, role.id, changes);
      } catch (failure) {
        error.textContent = showErrors(fields, failure);
        save.disabled = false;
        return;
      }
      // Shown again with its new name; the keyboard stays on Save.
      this.renderEditor();
      this.editor.querySelector('.saved').textContent = 'Saved.';
      this.editor.querySelector('button[type="submit"]').focus();
    });
    remove?.addEventListener('click', async () => {
      const reason = await confirmWithReason({ title: 'Delete role', text: `Delete the role ${role.name}? Members lose it.`, confirmLabel: 'Delete', danger: true });
      if (reason === null) return;
      try {
        await deleteRole(this.guildId, role.id, reason);
        this.select(this.guildId);
      } catch (failure) {
        error.textContent = failure.message;
      }
    });
    this.editor.replaceChildren(form);
  }
}

customElements.define('miaou-settings-roles', MiaouSettingsRoles);
