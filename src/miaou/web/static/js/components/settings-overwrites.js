// A channel's permission overwrites (MANAGE_ROLES), in a dialog: for @everyone, a role or a
// member, each flag that applies in channels is allowed, left to the roles (neutral) or
// denied. Saving one target's overwrite is one PUT; removing it, one DELETE.

import { loadMembers } from '../actions.js';
import { fill, h } from '../dom.js';
import { deleteOverwrite, putOverwrite, rolesByRank } from '../guild-admin.js';
import { FLAGS, bits, has } from '../permissions.js';
import { CATEGORY, store } from '../store.js';
import { openDialog } from './dialogs.js';

const CHANNEL_FLAGS = FLAGS.filter((f) => f.channel);
let serial = 0;

function targetName(guildId, overwrite) {
  if (overwrite.type === 0) {
    const role = store.guilds.get(guildId)?.roles?.find((r) => r.id === overwrite.id);
    return overwrite.id === guildId ? '@everyone' : role ? role.name : 'deleted role';
  }
  return store.displayName(overwrite.id, guildId) ?? 'a member';
}

export async function overwritesDialog(channel) {
  const guildId = channel.guild_id;
  await loadMembers(guildId).catch(() => {});
  const id = ++serial;
  const targets = h('ul', { class: 'overwrite-targets', 'aria-label': 'Roles and members with overwrites' });
  const adder = h('select', { id: `ow-add-${id}` });
  const editor = h('div', { class: 'overwrite-editor' });
  const status = h('p', { class: 'saved', role: 'status' });
  const title = channel.type === CATEGORY ? channel.name : `#${channel.name}`;
  const { dialog } = openDialog({
    title: `Permissions of ${title}`,
    className: 'overwrites-dialog',
    body: h(
      'div',
      { class: 'overwrites' },
      h('div', { class: 'overwrite-side' }, targets, h('label', { for: `ow-add-${id}`, text: 'Add a role or a member' }), adder),
      h('div', { class: 'overwrite-main' }, editor, status),
    ),
  });
  let selected = null; // {id, type}

  const current = () => store.channels.get(channel.id) ?? channel;
  const overwriteOf = (target) =>
    (current().permission_overwrites ?? []).find((o) => o.id === target.id && o.type === target.type) ?? { ...target, allow: '0', deny: '0' };

  function renderTargets() {
    const listed = [...(current().permission_overwrites ?? [])];
    if (!listed.some((o) => o.id === guildId && o.type === 0)) listed.unshift({ id: guildId, type: 0, allow: '0', deny: '0' });
    if (selected && !listed.some((o) => o.id === selected.id && o.type === selected.type)) listed.push({ ...selected, allow: '0', deny: '0' });
    targets.replaceChildren(
      ...listed.map((o) =>
        h(
          'li',
          {},
          h('button', {
            type: 'button',
            class: 'target',
            text: targetName(guildId, o),
            'aria-pressed': String(selected?.id === o.id && selected?.type === o.type),
            onclick: () => select({ id: o.id, type: o.type }),
          }),
        ),
      ),
    );
    const taken = new Set(listed.map((o) => `${o.type}:${o.id}`));
    const roles = rolesByRank(guildId).filter((r) => r.id !== guildId && !taken.has(`0:${r.id}`));
    const members = [...(store.members.get(guildId)?.values() ?? [])].filter((m) => !taken.has(`1:${m.user.id}`));
    fill(adder,
      h('option', { value: '', text: 'Choose a role or a member…' }),
      roles.length ? h('optgroup', { label: 'Roles' }, roles.map((r) => h('option', { value: `0:${r.id}`, text: r.name }))) : null,
      members.length
        ? h('optgroup', { label: 'Members' }, members.map((m) => h('option', { value: `1:${m.user.id}`, text: m.nick || m.user.display_name || m.user.username })))
        : null,
    );
  }

  function select(target) {
    selected = target;
    status.textContent = '';
    renderTargets();
    renderEditor();
  }

  function renderEditor() {
    const overwrite = overwriteOf(selected);
    const allow = bits(overwrite.allow);
    const deny = bits(overwrite.deny);
    const rows = CHANNEL_FLAGS.map((flag) => {
      const state = has(allow, flag.bit) ? 'allow' : has(deny, flag.bit) ? 'deny' : 'neutral';
      const name = `ow-${id}-${flag.name}`;
      const radio = (value, text) => {
        const radioId = `${name}-${value}`;
        return h('span', { class: `tri ${value}` }, h('input', { type: 'radio', id: radioId, name, value, checked: state === value }), h('label', { for: radioId, text }));
      };
      return h(
        'div',
        { class: 'flag-row', role: 'radiogroup', 'aria-label': flag.name, dataset: { flag: flag.name } },
        h('span', { class: 'flag-text' }, h('code', { class: 'flag-name', text: flag.name }), h('span', { class: 'hint', text: flag.description })),
        h('span', { class: 'tri-group' }, radio('allow', 'Allow'), radio('neutral', 'Neutral'), radio('deny', 'Deny')),
      );
    });
    const save = h('button', { type: 'submit', class: 'button primary', text: 'Save' });
    const remove = h('button', { type: 'button', class: 'button danger', text: 'Remove overwrite' });
    const form = h(
      'form',
      { class: 'overwrite-form' },
      h('h3', { text: `${targetName(guildId, selected)} in ${title}` }),
      h('div', { class: 'flag-rows' }, rows),
      h('div', { class: 'dialog-actions' }, remove, save),
    );
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      let nextAllow = 0n;
      let nextDeny = 0n;
      for (const flag of CHANNEL_FLAGS) {
        const value = form.querySelector(`input[name="ow-${id}-${flag.name}"]:checked`)?.value;
        if (value === 'allow') nextAllow |= flag.bit;
        if (value === 'deny') nextDeny |= flag.bit;
      }
      await run(save, () => putOverwrite(channel.id, selected.id, selected.type, nextAllow, nextDeny), 'Saved.');
    });
    remove.addEventListener('click', () => run(remove, () => deleteOverwrite(channel.id, selected.id), 'Removed.'));
    editor.replaceChildren(form);
  }

  async function run(button, action, done) {
    button.disabled = true;
    status.textContent = '';
    try {
      await action();
      status.textContent = done;
      renderTargets();
      renderEditor();
      editor.querySelector('button[type="submit"]')?.focus();
    } catch (error) {
      status.textContent = `Not saved: ${error.message}`;
    } finally {
      button.disabled = false;
    }
  }

  adder.addEventListener('change', () => {
    if (!adder.value) return;
    const [type, targetId] = adder.value.split(':');
    select({ id: targetId, type: Number(type) });
  });
  select({ id: guildId, type: 0 });
  dialog.querySelector('.target')?.focus();
}
