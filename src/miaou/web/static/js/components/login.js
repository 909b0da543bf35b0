// <miaou-login>: log in or create an account (docs/api.md, Authentication).

import { api } from '../api.js';
import { h } from '../dom.js';
import { navigate } from '../router.js';
import { login, register } from '../session.js';
import { store } from '../store.js';
import { showProblem } from './dialogs.js';

class MiaouLogin extends HTMLElement {
  connectedCallback() {
    this.mode = store.route.name === 'register' ? 'register' : 'login';
    this.needsInvite = false;
    this.registration = null; // 'open' | 'invite' | 'closed', once the node said
    api
      .get('/node')
      .then((node) => {
        this.registration = node.registration;
        this.needsInvite = node.registration === 'invite';
        if (this.isConnected && node.registration !== 'open') this.render();
      })
      .catch(() => {}); // an older node: find out on submit, as before
    this.off = store.on('route', () => {
      if (store.route.name === 'login' || store.route.name === 'register') this.mode = store.route.name;
      this.render();
    });
    this.render();
  }

  disconnectedCallback() {
    this.off?.();
  }

  switchTo(mode) {
    if (store.route.name === 'login' || store.route.name === 'register') {
      navigate(`/${mode}`);
    } else {
      this.mode = mode;
      this.render();
    }
  }

  field(name, label, attrs) {
    const id = `login-${name}`;
    const input = h('input', { id, name, 'aria-describedby': `${id}-problem`, ...attrs });
    return h(
      'div',
      { class: 'field' },
      h('label', { for: id, text: label }),
      input,
      h('p', { class: 'field-problem', id: `${id}-problem` }),
    );
  }

  render() {
    const registering = this.mode === 'register';
    const closed = registering && this.registration === 'closed';
    const invite = store.route.name === 'invite' ? store.route.params.code : null;
    const error = h('p', { class: 'form-error', role: 'alert' });
    const submit = h('button', {
      type: 'submit',
      class: 'button primary wide',
      text: registering ? 'Create account' : 'Log in',
      disabled: closed,
    });
    const fields = [
      this.field('username', 'Username', {
        autocomplete: 'username',
        required: true,
        minlength: 2,
        maxlength: 32,
        autocapitalize: 'none',
        spellcheck: 'false',
      }),
      registering
        ? this.field('display_name', 'Display name (optional)', { maxlength: 32, autocomplete: 'nickname' })
        : null,
      this.field('password', 'Password', {
        type: 'password',
        required: true,
        minlength: registering ? 8 : null,
        maxlength: 1024,
        autocomplete: registering ? 'new-password' : 'current-password',
      }),
      registering && this.needsInvite
        ? this.field('invite_code', 'Registration invite code', { required: true })
        : null,
    ];
    const form = h(
      'form',
      { class: 'auth-form', novalidate: true, 'aria-labelledby': 'auth-title' },
      h('h1', { id: 'auth-title', text: registering ? 'Create an account' : 'Welcome back' }),
      invite
        ? h('p', { class: 'intro', text: 'You have been invited to a guild: log in or create an account to join it.' })
        : null,
      closed
        ? h('p', { class: 'intro', role: 'note', text: 'This node is not taking new accounts: an administrator makes them.' })
        : registering && this.needsInvite
          ? h('p', { class: 'intro', text: 'This node takes new accounts with a registration invite code.' })
          : null,
      fields,
      error,
      submit,
      h(
        'p',
        { class: 'switch' },
        registering ? 'Already have an account? ' : 'New here? ',
        h('button', {
          type: 'button',
          class: 'link-button',
          text: registering ? 'Log in' : 'Create an account',
          onclick: () => this.switchTo(registering ? 'login' : 'register'),
        }),
      ),
    );
    form.addEventListener('submit', (event) => this.submit(event, form, error, submit));
    // Drawn again (the node's answer, a switch of mode): what was typed stays.
    for (const input of this.querySelectorAll('input')) {
      const twin = input.value && form.querySelector(`input[name="${input.name}"]`);
      if (twin) twin.value = input.value;
    }
    this.replaceChildren(h('main', { class: 'auth' }, h('div', { class: 'auth-brand', 'aria-hidden': 'true', text: 'Miaou' }), form));
    form.querySelector('input')?.focus();
  }

  async submit(event, form, error, submit) {
    event.preventDefault();
    if (!form.reportValidity()) return;
    const values = Object.fromEntries(new FormData(form));
    submit.disabled = true;
    error.textContent = '';
    for (const input of form.querySelectorAll('input')) showProblem(input, []);
    try {
      if (this.mode === 'register') {
        const body = { username: values.username.trim(), password: values.password };
        if (values.display_name?.trim()) body.display_name = values.display_name.trim();
        if (values.invite_code?.trim()) body.invite_code = values.invite_code.trim();
        await register(body);
      } else {
        await login(values.username.trim(), values.password);
      }
    } catch (failure) {
      submit.disabled = false;
      if (failure.code === 'invite_required' && !this.needsInvite) {
        this.needsInvite = true;
        this.render();
        this.querySelector('.form-error').textContent = failure.message;
        return;
      }
      error.textContent =
        failure.status === 429 && failure.retryAfter
          ? `${failure.message} Try again in ${Math.ceil(failure.retryAfter)} s.`
          : failure.message;
      for (const input of form.querySelectorAll('input')) showProblem(input, failure.field?.(input.name) ?? []);
    }
  }
}

customElements.define('miaou-login', MiaouLogin);
