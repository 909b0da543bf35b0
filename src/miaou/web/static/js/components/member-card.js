// A member's card (from the member list): who they are, their roles (given or taken with
// MANAGE_ROLES, with an optional reason), and what one may do: write to them (a DM), kick
// (KICK_MEMBERS) or ban (BAN_MEMBERS), each with an optional reason for the audit log.
// The node refuses what the hierarchy does not allow; its message shows.

import { openDM } from '../dm-actions.js';
import { h } from '../dom.js';
import { banMember, kickMember, rolesByRank, setMemberRoles } from '../guild-admin.js';
import { Permission, store } from '../store.js';
import { avatar } from './bits.js';
import { confirmWithReason, openDialog } from './dialogs.js';
import { field, richFormDialog } from './forms.js';

const DELETE_MESSAGES = [
  [0, 'None'],
  [3600, 'The last hour'],
  [86400, 'The last 24 hours'],
  [604800, 'The last 7 days'],
];

export function memberCard(guildId, member) {
  const user = member.user;
  const guild = store.guilds.get(guildId);
  const name = member.nick || user.display_name || user.username;
  const me = user.id === store.me?.id;
  const owner = user.id === guild?.owner_id;
  const status = h('p', { class: 'saved', role: 'status' });
  const roles = rolesByRank(guildId).filter((r) => r.id !== guildId);
  const canRoles = store.can(guildId, Permission.MANAGE_ROLES);
  const roleReason = canRoles && roles.length ? field({ name: 'role-reason', label: 'Reason for role changes', maxlength: 512, hint: 'Optional; kept in the audit log.' }) : null;
  const roleList = canRoles
    ? h(
        'fieldset',
        { class: 'choices member-roles' },
        h('legend', { text: 'Roles' }),
        roles.length
          ? h(
              'ul',
              {},
              roles.map((role) => {
                const id = `card-role-${role.id}`;
                const box = h('input', { id, type: 'checkbox', value: role.id, checked: member.roles.includes(role.id) });
                box.addEventListener('change', () => toggleRole(box, role));
                return h('li', { class: 'check' }, box, h('label', { for: id, text: role.name }));
              }),
            )
          : h('p', { class: 'hint', text: 'This guild has no role yet.' }),
        roleReason?.row,
      )
    : h('p', { class: 'hint', text: member.roles.length ? `Roles: ${roles.filter((r) => member.roles.includes(r.id)).map((r) => r.name).join(', ')}` : 'No role.' });

  async function toggleRole(box, role) {
    const current = store.member(guildId, user.id) ?? member;
    const next = box.checked ? [...new Set([...current.roles, role.id])] : current.roles.filter((r) => r !== role.id);
    box.disabled = true;
    status.textContent = '';
    try {
      await setMemberRoles(guildId, user.id, next, roleReason.read());
      status.textContent = `${box.checked ? 'Gave' : 'Took'} the role ${role.name}.`;
    } catch (error) {
      box.checked = !box.checked;
      status.textContent = `Not changed: ${error.message}`;
    } finally {
      box.disabled = false;
    }
  }

  const actions = [];
  const { dialog } = openDialog({
    title: name,
    className: 'member-card',
    body: [
      h('div', { class: 'card-head' }, avatar(user.id, name), h('div', {}, h('strong', { text: name }), h('p', { class: 'muted', text: `@${user.username}${owner ? ' · guild owner' : ''}` }))),
      user.bio ? h('p', { class: 'card-bio', text: user.bio }) : null,
      roleList,
      status,
      h('div', { class: 'dialog-actions card-actions' }, actions),
    ],
  });
  if (!me) {
    actions.push(
      action('Send a message', 'primary', async () => {
        dialog.close('');
        await openDM(user.id);
      }),
    );
  }
  if (!me && !owner && store.can(guildId, Permission.KICK_MEMBERS)) {
    actions.push(
      action('Kick', '', async () => {
        const reason = await confirmWithReason({ title: `Kick ${name}`, text: `Remove ${name} from ${guild.name}? They can come back with an invite.`, confirmLabel: 'Kick', danger: true });
        if (reason === null) return;
        await kickMember(guildId, user.id, reason);
        dialog.close('');
      }),
    );
  }
  if (!me && !owner && store.can(guildId, Permission.BAN_MEMBERS)) {
    actions.push(action('Ban', 'danger', () => banDialog(guildId, user, name).then((done) => done && dialog.close(''))));
  }
  dialog.querySelector('.card-actions').append(...actions);

  function action(text, kind, run) {
    const button = h('button', { type: 'button', class: ['button', kind], text });
    button.addEventListener('click', async () => {
      button.disabled = true;
      try {
        await run();
      } catch (error) {
        status.textContent = `${text}: ${error.message}`;
      } finally {
        button.disabled = false;
      }
    });
    return button;
  }
}

/** Ban with a reason (kept in the ban list and the audit log); resolves true when done. */
export async function banDialog(guildId, user, name) {
  const done = await richFormDialog({
    title: `Ban ${name}`,
    intro: `${name} leaves the guild and cannot come back until unbanned.`,
    fields: [
      { name: 'reason', label: 'Reason', kind: 'textarea', maxlength: 512, rows: 2 },
      { name: 'purge', label: 'Delete their messages from', kind: 'select', value: 0, options: DELETE_MESSAGES },
    ],
    submitLabel: 'Ban',
    onSubmit: async ({ reason, purge }) => {
      await banMember(guildId, user.id, reason.trim(), Number(purge));
      return true;
    },
  });
  return Boolean(done);
}
