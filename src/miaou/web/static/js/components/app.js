// <miaou-app>: the login screen, or the shell (guilds | channels | messages | members), the
// connection banner and notices; route redirects and the page title.

import { h, scheduler } from '../dom.js';
import { channelPath, navigate } from '../router.js';
import { loggedIn } from '../session.js';
import { FORUM, store } from '../store.js';
import { ensureChannel } from '../thread-actions.js';
import { icon } from './bits.js';
import { newGroupDialog } from './dm-list.js';
import { addGuildDialog } from './guilds.js';
import { TRACK_VIEWS, tracksNav } from './track-bits.js';

const LAST_KEY = 'miaou.last-channel';

class MiaouApp extends HTMLElement {
  connectedCallback() {
    this.view = null;
    this.seen = new Set(); // channels shown (or asked for) since the page loaded
    this.update = scheduler(() => this.render());
    this.offs = [
      store.on('session', this.update),
      store.on('route', () => {
        if (this.classList.contains('nav-open')) {
          // A channel was chosen in the phone's slide-in list: go to its composer.
          this.classList.remove('nav-open');
          this.returnFocus = true;
        }
        this.update();
      }),
      store.on('guilds', this.update),
      store.on('channels', this.update),
      store.on('connection', () => this.renderBanner()),
      store.on('toast', ({ text }) => this.notice(text)),
    ];
    this.addEventListener('miaou-toggle', (event) => this.toggle(event.detail.panel));
    this.addEventListener('keydown', (event) => {
      if (event.key !== 'Escape' || event.defaultPrevented) return;
      if (this.classList.contains('nav-open')) this.toggle('nav');
      else if (this.narrow.matches && this.classList.contains('members-open')) this.toggle('members');
    });
    this.narrow = matchMedia('(max-width: 760px)');
    this.narrow.addEventListener('change', () => this.panels());
    this.banner = h('div', { class: 'banner', role: 'status', hidden: true });
    this.notices = h('div', { class: 'notices', role: 'status', 'aria-live': 'polite' });
    this.render();
  }

  disconnectedCallback() {
    for (const off of this.offs) off();
  }

  toggle(panel) {
    const name = `${panel}-open`;
    const open = !this.classList.contains(name);
    this.classList.toggle(name, open);
    if (panel === 'members') localStorage.setItem('miaou.members', open ? 'shown' : 'hidden');
    this.panels();
    if (open && panel === 'nav') this.querySelector('miaou-channels a[aria-current], miaou-channels a')?.focus();
    if (!open && panel === 'nav') this.querySelector('.nav-toggle')?.focus();
  }

  closePanels() {
    if (this.classList.contains('nav-open')) this.toggle('nav');
    if (this.narrow.matches && this.classList.contains('members-open')) this.toggle('members');
  }

  /** On phones the panels slide over the messages: out of sight, out of the Tab order. */
  panels() {
    const narrow = this.narrow.matches;
    const nav = this.querySelector('.pane-nav');
    if (nav) nav.inert = narrow && !this.classList.contains('nav-open');
    for (const panel of ['nav', 'members']) {
      const open = this.classList.contains(`${panel}-open`);
      this.querySelectorAll(`[data-toggles="${panel}"]`).forEach((b) => b.setAttribute('aria-expanded', String(open)));
    }
  }

  render() {
    if (!loggedIn()) {
      this.show('login', () => [h('miaou-login'), this.notices]);
      return;
    }
    if (!store.ready) {
      this.show('connecting', () => [
        h('div', { class: 'connecting', role: 'status' }, h('div', { class: 'spinner', 'aria-hidden': 'true' }), 'Connecting…'),
        this.notices,
      ]);
      return;
    }
    if (this.redirect()) return;
    this.show('shell', () => this.shell());
    this.renderMain();
    this.panels();
    if (this.returnFocus) {
      this.returnFocus = false;
      (this.querySelector('miaou-composer textarea') ?? this.main)?.focus();
    }
    this.renderBanner();
    this.renderTitle();
  }

  show(view, build) {
    if (this.view === view) return;
    this.view = view;
    this.main = null;
    this.replaceChildren(...build());
  }

  shell() {
    const wide = matchMedia('(min-width: 761px)').matches;
    if (wide && localStorage.getItem('miaou.members') !== 'hidden') this.classList.add('members-open');
    this.main = h('main', { id: 'main', class: 'pane-main', tabindex: '-1' });
    return [
      h('a', { class: 'skip-link', href: '#main', onclick: (e) => this.skip(e) }, 'Skip to messages'),
      this.banner,
      h(
        'div',
        { class: 'shell' },
        h('div', { class: 'pane-nav' }, h('div', { class: 'rail' }, h('miaou-guilds'), tracksNav()), h('miaou-channels')),
        h('div', { class: 'nav-scrim', 'aria-hidden': 'true', onclick: () => this.closePanels() }),
        this.main,
        h('miaou-side-panel', { class: 'pane-side' }),
        h('miaou-members', { class: 'pane-members' }),
        h('miaou-player-bar', { class: 'pane-player', hidden: true }),
      ),
      this.notices,
    ];
  }

  skip(event) {
    event.preventDefault();
    (this.querySelector('miaou-composer textarea') ?? this.main)?.focus();
  }

  /** Route fix-ups once READY is in; true if it navigated (render follows). */
  redirect() {
    const { name, params } = store.route;
    if (name === 'login' || name === 'register' || (name === 'home' && location.pathname === '/')) {
      navigate(this.landing(), { replace: true });
      return true;
    }
    if (name === 'guild' && store.guilds.has(params.guildId)) {
      const first = store.firstChannel(params.guildId);
      if (first) {
        navigate(channelPath(params.guildId, first.id), { replace: true });
        return true;
      }
    }
    return false;
  }

  landing() {
    const last = localStorage.getItem(LAST_KEY);
    const [guildId, channelId] = (last ?? '').split('/');
    if (store.guilds.has(guildId) && store.channels.has(channelId)) return channelPath(guildId, channelId);
    const guild = store.sortedGuilds()[0];
    const first = guild && store.firstChannel(guild.id);
    return first ? channelPath(guild.id, first.id) : '/channels/@me';
  }

  renderMain() {
    const { name, params } = store.route;
    let kind = name;
    if (name === 'channel') {
      const channel = store.channels.get(params.channelId);
      kind = channel && (channel.guild_id ?? '@me') === params.guildId ? 'channel' : 'missing';
      if (kind === 'channel' && channel.type === FORUM) kind = 'forum';
      if (kind === 'channel' && channel.guild_id) localStorage.setItem(LAST_KEY, `${params.guildId}/${params.channelId}`);
      if (channel) this.seen.add(channel.id);
      else kind = this.fetchUnknown(params);
    } else if (name === 'guild') {
      kind = 'missing';
    }
    if (this.main.dataset.kind === kind) return;
    this.main.dataset.kind = kind;
    if (kind === 'channel') {
      this.main.replaceChildren(h('miaou-messages'), h('miaou-composer'));
    } else if (kind === 'forum') {
      this.main.replaceChildren(h('miaou-forum'));
    } else if (kind === 'settings') {
      this.main.replaceChildren(h('miaou-guild-settings'));
    } else if (kind === 'loading') {
      this.main.replaceChildren(this.header(''), h('p', { class: 'muted empty-state', role: 'status', text: 'Loading…' }));
    } else if (TRACK_VIEWS[kind]) {
      this.main.replaceChildren(h(TRACK_VIEWS[kind]));
    } else if (kind === 'invite') {
      this.main.replaceChildren(this.header('Invitation'), h('miaou-invite'));
    } else if (kind === 'missing') {
      this.main.replaceChildren(
        this.header('Not found'),
        h('section', { class: 'empty-state' }, h('h1', { text: 'Nothing here' }), h('p', { text: 'This channel does not exist, or you cannot see it.' }), h('a', { href: '/channels/@me', 'data-route': '', class: 'button', text: 'Go home' })),
      );
    } else {
      this.main.replaceChildren(this.header('Home'), this.home());
    }
  }

  /** A channel the store never held (a thread named by a link): read it once. One that
   *  was shown and went (deleted, hidden from me, a guild left) is not asked for. */
  fetchUnknown({ guildId, channelId }) {
    if (this.seen.has(channelId) || !store.guilds.has(guildId)) return 'missing';
    this.seen.add(channelId);
    ensureChannel(channelId).catch(() => {}).finally(() => this.update());
    return 'loading';
  }

  header(title) {
    return h(
      'header',
      { class: 'channel-header' },
      h('button', { type: 'button', class: 'icon-button nav-toggle', 'aria-label': 'Open the guild and channel list', 'aria-expanded': 'false', 'data-toggles': 'nav', onclick: () => this.toggle('nav') }, icon('menu')),
      h('h1', { class: 'channel-title', text: title }),
    );
  }

  home() {
    const name = store.me?.display_name || store.me?.username || '';
    const empty = store.guilds.size === 0;
    return h(
      'section',
      { class: 'empty-state' },
      h('h1', { text: `Welcome, ${name}` }),
      h('p', { text: empty ? 'You are in no guild yet: create one, or join one with an invite link.' : 'Pick a guild on the left, create one, or join one with an invite link.' }),
      h('button', { type: 'button', class: 'button primary', text: 'Create or join a guild', onclick: () => addGuildDialog() }),
      h('p', { class: 'hint', text: 'Your direct messages are on the left. Open one from a member of a guild (choose them in the member list), or start a group:' }),
      h('button', { type: 'button', class: 'button', text: 'New group message', onclick: () => newGroupDialog() }),
    );
  }

  renderBanner() {
    const down = store.ready && (store.connection === 'reconnecting' || store.connection === 'connecting');
    this.banner.hidden = !down;
    this.banner.textContent = down ? 'Connection lost: reconnecting…' : '';
  }

  renderTitle() {
    const { name, params } = store.route;
    if (TRACK_VIEWS[name]) return; // the audio screens set their own
    const channel = name === 'channel' ? store.channels.get(params.channelId) : null;
    const guild = store.guilds.get(channel?.guild_id ?? params.guildId);
    const title = channel ? store.channelRef(channel) : name === 'settings' ? 'Settings' : null;
    document.title = title ? `${title} · ${guild?.name ?? 'Direct messages'} · Miaou` : 'Miaou';
  }

  notice(text) {
    const item = h('p', { class: 'notice', text });
    this.notices.append(item);
    setTimeout(() => item.remove(), 6000);
  }
}

customElements.define('miaou-app', MiaouApp);
