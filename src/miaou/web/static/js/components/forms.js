// Form fields beyond text inputs (text areas, check boxes, selects, numbers, colours, a set
// of check boxes) and a modal form built from them. Every control gets a label; the node's
// field errors ({"errors": {"name": [...]}}) are shown under the field they name.

import { h } from '../dom.js';
import { openDialog, showProblem } from './dialogs.js';

let counter = 0;

/** A labelled control: {row, input, read()}. spec: {name, label, kind, value, hint,
 *  required, maxlength, min, max, options: [[value, text]], choices: [{value, label,
 *  hint, checked}]} */
export function field(spec) {
  const id = `form-${spec.name}-${++counter}`;
  const problem = `${id}-problem`;
  const kind = spec.kind ?? 'text';
  const common = { id, name: spec.name, 'aria-describedby': problem, required: spec.required ?? false };
  let input;
  let read;
  if (kind === 'checkbox') {
    input = h('input', { ...common, type: 'checkbox', checked: Boolean(spec.value) });
    read = () => input.checked;
    return {
      input,
      read,
      row: h(
        'div',
        { class: 'field check' },
        input,
        h('label', { for: id, text: spec.label }),
        spec.hint ? h('p', { class: 'hint', text: spec.hint }) : null,
        h('p', { class: 'field-problem', id: problem }),
      ),
    };
  }
  if (kind === 'checkboxes') {
    const boxes = spec.choices.map((choice, index) => {
      const boxId = `${id}-${index}`;
      const box = h('input', { id: boxId, type: 'checkbox', value: choice.value, checked: Boolean(choice.checked) });
      return { box, row: h('li', { class: 'check' }, box, h('label', { for: boxId, text: choice.label }), choice.hint ? h('span', { class: 'hint', text: ` ${choice.hint}` }) : null) };
    });
    input = h('fieldset', { class: 'choices', id, 'aria-describedby': problem }, h('legend', { text: spec.label }), h('ul', {}, boxes.map((b) => b.row)));
    read = () => boxes.filter((b) => b.box.checked).map((b) => b.box.value);
    return { input, read, row: h('div', { class: 'field' }, input, spec.hint ? h('p', { class: 'hint', text: spec.hint }) : null, h('p', { class: 'field-problem', id: problem })) };
  }
  if (kind === 'textarea') {
    input = h('textarea', { ...common, rows: spec.rows ?? 3, maxlength: spec.maxlength, value: spec.value ?? '' });
    read = () => input.value;
  } else if (kind === 'select') {
    input = h('select', common, spec.options.map(([value, text]) => h('option', { value: String(value), text, selected: String(value) === String(spec.value) })));
    read = () => input.value;
  } else {
    input = h('input', {
      ...common,
      type: kind,
      value: spec.value ?? '',
      maxlength: spec.maxlength,
      minlength: spec.minlength,
      min: spec.min,
      max: spec.max,
      autocomplete: 'off',
      placeholder: spec.placeholder,
    });
    read = () => (kind === 'number' ? Number(input.value || 0) : input.value);
  }
  const row = h(
    'div',
    { class: 'field' },
    h('label', { for: id, text: spec.label }),
    input,
    spec.hint ? h('p', { class: 'hint', text: spec.hint }) : null,
    h('p', { class: 'field-problem', id: problem }),
  );
  return { row, input, read };
}

/** Show an ApiError's field problems under the fields; returns the text for the form. */
export function showErrors(fields, error) {
  for (const [name, f] of fields) showProblem(f.input, error?.field?.(name) ?? []);
  return error?.message ?? '';
}

/** A modal form of fields; onSubmit(values) may throw (shown in the form). Resolves with
 *  what onSubmit returned, or null when cancelled. */
export function richFormDialog({ title, intro = null, fields: specs, submitLabel, onSubmit, className = '' }) {
  const fields = new Map(specs.map((spec) => [spec.name, field(spec)]));
  const error = h('p', { class: 'form-error', role: 'alert' });
  const submit = h('button', { type: 'submit', class: 'button primary', text: submitLabel });
  const cancel = h('button', { type: 'button', class: 'button', text: 'Cancel' });
  const form = h(
    'form',
    { class: 'dialog-form', novalidate: true },
    intro ? h('p', { class: 'intro', text: intro }) : null,
    [...fields.values()].map((f) => f.row),
    error,
    h('div', { class: 'dialog-actions' }, cancel, submit),
  );
  let result = null;
  const { dialog, closed } = openDialog({ title, body: form, className });
  cancel.addEventListener('click', () => dialog.close(''));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!form.reportValidity()) return;
    const values = Object.fromEntries([...fields].map(([name, f]) => [name, f.read()]));
    submit.disabled = true;
    error.textContent = '';
    showErrors(fields, null);
    try {
      result = await onSubmit(values);
      dialog.close('ok');
    } catch (failure) {
      error.textContent = showErrors(fields, failure);
      submit.disabled = false;
    }
  });
  fields.values().next().value?.input.focus();
  return closed.then(() => result);
}
