// Logging in and out, and the gateway session that keeps the store live.

import { api } from './api.js';
import { applyDispatch, applyReady, applyResumed } from './events.js';
import { Gateway } from './gateway.js';
import { navigate } from './router.js';
import { store } from './store.js';

let gateway = null;

export function loggedIn() {
  return Boolean(api.token);
}

export function startSession() {
  gateway?.stop();
  gateway = null;
  if (!api.token) {
    store.emit('session');
    return;
  }
  gateway = new Gateway(api.token);
  gateway.addEventListener('ready', (e) => applyReady(e.detail));
  gateway.addEventListener('resumed', (e) => applyResumed(e.detail));
  gateway.addEventListener('dispatch', (e) => applyDispatch(e.detail));
  gateway.addEventListener('state', (e) => {
    store.connection = e.detail.state;
    store.emit('connection');
  });
  gateway.addEventListener('auth-failed', () => endSession());
  gateway.start();
  store.emit('session');
}

export async function login(username, password) {
  const result = await api.login(username, password);
  api.setToken(result.token);
  startSession();
}

export async function register(body) {
  const result = await api.register(body);
  api.setToken(result.token);
  startSession();
}

export async function logout() {
  try {
    await api.logout();
  } catch {
    // The token is forgotten here whatever the node says.
  }
  endSession();
}

function endSession() {
  gateway?.stop();
  gateway = null;
  api.setToken(null);
  store.reset();
  store.emit('session');
  if (store.route.name !== 'invite') navigate('/login', { replace: true });
}

api.onUnauthorized = () => endSession();
