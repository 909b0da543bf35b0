// Modal dialogs on <dialog>: focus is kept inside while open and given back on close;
// Escape cancels.

import { h } from '../dom.js';

let counter = 0;

/** Open a modal; body is a node or a list of nodes. Returns {dialog, closed}: closed
 *  resolves with the dialog's return value. */
export function openDialog({ title, body, className = '' }) {
  counter += 1;
  const titleId = `dialog-title-${counter}`;
  // Focus goes back where it was; from a dialog that is closing, to what opened that one.
  const active = document.activeElement;
  const before = active?.closest?.('dialog')?.opener ?? active;
  const close = h('button', { type: 'button', class: 'icon-button dialog-close', 'aria-label': 'Close' }, '✕');
  const dialog = h(
    'dialog',
    { class: ['dialog', className], 'aria-labelledby': titleId },
    h('header', { class: 'dialog-header' }, h('h2', { id: titleId, text: title }), close),
    h('div', { class: 'dialog-body' }, body),
  );
  dialog.opener = before;
  close.addEventListener('click', () => dialog.close(''));
  document.body.append(dialog);
  dialog.showModal();
  const closed = new Promise((resolve) => {
    dialog.addEventListener('close', () => {
      dialog.remove();
      if (before instanceof HTMLElement && before.isConnected) before.focus();
      resolve(dialog.returnValue);
    });
  });
  return { dialog, closed };
}

/** A form in a modal: fields [{name, label, value, type, required, maxlength, minlength,
 *  autocomplete, hint}]; onSubmit(values) may throw an ApiError, shown in the form. */
export function formDialog({ title, intro = null, fields, submitLabel, onSubmit }) {
  const error = h('p', { class: 'form-error', role: 'alert' });
  const inputs = new Map();
  const rows = fields.map((field) => {
    const id = `field-${++counter}`;
    const input = h('input', {
      id,
      name: field.name,
      type: field.type ?? 'text',
      value: field.value ?? '',
      required: field.required ?? false,
      maxlength: field.maxlength,
      minlength: field.minlength,
      autocomplete: field.autocomplete ?? 'off',
      'aria-describedby': `${id}-problem`,
    });
    inputs.set(field.name, input);
    return h(
      'div',
      { class: 'field' },
      h('label', { for: id, text: field.label }),
      input,
      field.hint ? h('p', { class: 'hint', text: field.hint }) : null,
      h('p', { class: 'field-problem', id: `${id}-problem` }),
    );
  });
  const submit = h('button', { type: 'submit', class: 'button primary', text: submitLabel });
  const cancel = h('button', { type: 'button', class: 'button', text: 'Cancel' });
  const form = h(
    'form',
    { class: 'dialog-form', novalidate: true },
    intro ? h('p', { class: 'intro', text: intro }) : null,
    rows,
    error,
    h('div', { class: 'dialog-actions' }, cancel, submit),
  );
  let result = null;
  const { dialog, closed } = openDialog({ title, body: form });
  cancel.addEventListener('click', () => dialog.close(''));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!form.reportValidity()) return;
    const values = Object.fromEntries([...inputs].map(([name, input]) => [name, input.value]));
    submit.disabled = true;
    error.textContent = '';
    for (const input of inputs.values()) showProblem(input, []);
    try {
      result = await onSubmit(values);
      dialog.close('ok');
    } catch (failure) {
      error.textContent = failure.message;
      for (const [name, input] of inputs) showProblem(input, failure.field?.(name) ?? []);
      submit.disabled = false;
    }
  });
  inputs.values().next().value?.focus();
  return closed.then(() => result);
}

export function showProblem(input, problems) {
  const slot = document.getElementById(input.getAttribute('aria-describedby'));
  if (slot) slot.textContent = problems.join('; ');
  if (problems.length) input.setAttribute('aria-invalid', 'true');
  else input.removeAttribute('aria-invalid');
}

/** Ask before doing something that cannot be undone; resolves true to go ahead. */
export async function confirmDialog(options) {
  return (await ask(options, false)) !== null;
}

/** The same for a moderation action, with an optional reason for the audit log: resolves
 *  with the reason typed ('' for none), or null when cancelled. */
export function confirmWithReason(options) {
  return ask(options, true);
}

async function ask({ title, text, confirmLabel, danger = false }, withReason) {
  const yes = h('button', { type: 'submit', value: 'yes', class: ['button', danger ? 'danger' : 'primary'], text: confirmLabel });
  const no = h('button', { type: 'submit', value: 'no', class: 'button', text: 'Cancel' });
  const id = `reason-${++counter}`;
  const reason = withReason ? h('textarea', { id, name: 'reason', rows: 2, maxlength: 512, 'aria-describedby': `${id}-hint` }) : null;
  const body = h(
    'form',
    { method: 'dialog', class: 'dialog-form' },
    h('p', { text }),
    reason
      ? h('div', { class: 'field' }, h('label', { for: id, text: 'Reason' }), reason, h('p', { class: 'hint', id: `${id}-hint`, text: 'Optional; kept in the audit log.' }))
      : null,
    h('div', { class: 'dialog-actions' }, no, yes),
  );
  const { closed } = openDialog({ title, body, className: 'confirm' });
  (reason ?? yes).focus();
  return (await closed) === 'yes' ? (reason?.value.trim() ?? '') : null;
}
