// <miaou-composer>: write and send (Enter; Shift+Enter for a new line), reply, attach files
// (sent as multipart with an upload progress bar), typing announcements and the "is
// typing" line. "@name" of a member becomes a mention when sent.

import { announceTyping, loadMembers, sendMessage, uploadMessage } from '../actions.js';
import { formatBytes, h, scheduler } from '../dom.js';
import { toStored } from '../mentions.js';
import { Permission, THREAD_TYPES, store } from '../store.js';
import { snippet } from './message-view.js';

const MAX_FILES = 10;
const MAX_HEIGHT_PX = 200;
const MAX_FILES_NOTE = 'At most 10 files per message.';
let made = 0;

// <miaou-composer channel-id="..."> writes to that channel (a thread in the side panel);
// without the attribute, to the routed channel.
class MiaouComposer extends HTMLElement {
  connectedCallback() {
    this.fixedChannel = this.getAttribute('channel-id');
    this.serial = ++made;
    this.channelId = null;
    this.replies = new Map(); // channel id -> message replied to
    this.drafts = new Map(); // channel id -> text
    this.files = [];
    this.upload = null;
    this.build();
    this.renderTyping = scheduler(() => this.typingLine());
    this.offs = [
      store.on('route', () => this.open()),
      store.on('reply', ({ channelId, message }) => {
        if (channelId !== this.channelId) return; // another composer's (the side panel's)
        this.replies.set(channelId, message);
        this.renderReply();
        this.input.focus();
      }),
      store.on('typing', ({ channelId }) => channelId === this.channelId && this.renderTyping()),
      store.on('members', this.renderTyping),
      store.on('channels', () => this.renderPermissions()),
    ];
    this.open();
  }

  disconnectedCallback() {
    for (const off of this.offs) off();
    this.clearFiles();
  }

  build() {
    this.replyBar = h('div', { class: 'reply-bar', hidden: true });
    this.chips = h('ul', { class: 'file-chips', 'aria-label': 'Files to send', hidden: true });
    const progressId = `upload-progress-${this.serial}`;
    this.progress = h('progress', { id: progressId, class: 'upload', max: 100, value: 0 });
    this.progressLabel = h('label', { for: progressId, class: 'upload-label' });
    this.cancelUpload = h('button', { type: 'button', class: 'button small', text: 'Cancel', onclick: () => this.upload?.abort() });
    this.uploadBox = h('div', { class: 'upload-box', hidden: true }, this.progressLabel, this.progress, this.cancelUpload);
    this.fileInput = h('input', { type: 'file', multiple: true, hidden: true, class: 'file-input', 'aria-label': 'Files to attach' });
    this.attach = h('button', { type: 'button', class: 'icon-button attach', 'aria-label': 'Attach files', title: 'Attach files' }, '+');
    this.input = h('textarea', { rows: 1, maxlength: 4000, class: 'composer-input', enterkeyhint: 'send' });
    this.send = h('button', { type: 'submit', class: 'button primary send', text: 'Send' });
    this.typing = h('p', { class: 'typing', 'aria-live': 'polite' });
    this.form = h(
      'form',
      { class: 'composer', 'aria-label': 'Send a message' },
      this.replyBar,
      this.chips,
      this.uploadBox,
      h('div', { class: 'composer-row' }, this.attach, this.fileInput, this.input, this.send),
      this.typing,
    );
    this.attach.addEventListener('click', () => this.fileInput.click());
    this.fileInput.addEventListener('change', () => {
      this.addFiles([...this.fileInput.files]);
      this.fileInput.value = '';
      this.input.focus();
    });
    this.input.addEventListener('keydown', (event) => this.onKey(event));
    this.input.addEventListener('input', () => this.onInput());
    this.input.addEventListener('paste', (event) => {
      const files = [...(event.clipboardData?.files ?? [])];
      if (files.length) {
        event.preventDefault();
        this.addFiles(files);
      }
    });
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.submit();
    });
    this.replaceChildren(this.form);
  }

  open() {
    const { name, params } = store.route;
    const channelId = this.fixedChannel ?? (name === 'channel' ? params.channelId : null);
    if (!channelId || channelId === this.channelId) return;
    if (this.channelId) this.drafts.set(this.channelId, this.input.value);
    this.channelId = channelId;
    this.input.value = this.drafts.get(this.channelId) ?? '';
    this.clearFiles();
    const channel = store.channels.get(this.channelId);
    const label = `Message ${store.channelRef(channel)}`;
    this.label = label;
    this.input.placeholder = label;
    this.input.setAttribute('aria-label', label);
    this.renderPermissions();
    this.renderReply();
    this.typingLine();
    this.grow();
    if (channel?.guild_id && !store.members.has(channel.guild_id)) loadMembers(channel.guild_id).catch(() => {});
  }

  renderPermissions() {
    const channel = store.channels.get(this.channelId);
    if (!channel?.guild_id) return;
    const thread = THREAD_TYPES.has(channel.type);
    const canSend = store.canIn(this.channelId, thread ? Permission.SEND_MESSAGES_IN_THREADS : Permission.SEND_MESSAGES);
    this.input.disabled = !canSend;
    this.send.disabled = !canSend || Boolean(this.upload);
    this.attach.hidden = !store.canIn(this.channelId, Permission.ATTACH_FILES);
    this.input.placeholder = canSend ? this.label : 'You cannot send messages here.';
  }

  renderReply() {
    const message = this.replies.get(this.channelId);
    this.replyBar.hidden = !message;
    if (!message) {
      this.replyBar.replaceChildren();
      return;
    }
    const guildId = store.channels.get(this.channelId)?.guild_id;
    const name = store.displayName(message.author.id, guildId) ?? message.author.username;
    this.replyBar.replaceChildren(
      h('span', { class: 'reply-to' }, 'Replying to ', h('strong', { text: name }), h('span', { class: 'muted', text: ` ${snippet(message, 60, guildId)}` })),
      h('button', { type: 'button', class: 'icon-button small', 'aria-label': 'Cancel the reply', onclick: () => this.cancelReply() }, '✕'),
    );
  }

  cancelReply() {
    this.replies.delete(this.channelId);
    this.renderReply();
    this.input.focus();
  }

  typingLine() {
    const typing = store.typing.get(this.channelId);
    const now = Date.now();
    const guildId = store.channels.get(this.channelId)?.guild_id;
    const names = [];
    for (const [userId, until] of typing ?? []) {
      if (until > now) names.push(store.displayName(userId, guildId) ?? 'Someone');
      else typing.delete(userId);
    }
    let text = '';
    if (names.length === 1) text = `${names[0]} is typing…`;
    else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
    else if (names.length > 2) text = 'Several people are typing…';
    if (this.typing.textContent !== text) this.typing.textContent = text;
  }

  // -- files ----------------------------------------------------------------------------------
  addFiles(files) {
    for (const file of files) {
      if (this.files.length >= MAX_FILES) {
        store.toast(MAX_FILES_NOTE);
        break;
      }
      const preview = file.type.startsWith('image/') ? URL.createObjectURL(file) : null;
      this.files.push({ file, preview });
    }
    this.renderFiles();
  }

  clearFiles() {
    for (const { preview } of this.files) if (preview) URL.revokeObjectURL(preview);
    this.files = [];
    this.renderFiles();
  }

  removeFile(index) {
    const [gone] = this.files.splice(index, 1);
    if (gone?.preview) URL.revokeObjectURL(gone.preview);
    this.renderFiles();
    this.input.focus();
  }

  renderFiles() {
    this.chips.hidden = this.files.length === 0;
    this.chips.replaceChildren(
      ...this.files.map(({ file, preview }, index) =>
        h(
          'li',
          { class: 'file-chip' },
          preview ? h('img', { src: preview, alt: '', class: 'chip-preview' }) : h('span', { class: 'icon icon-file', 'aria-hidden': 'true' }),
          h('span', { class: 'chip-name', text: file.name }),
          h('span', { class: 'muted', text: formatBytes(file.size) }),
          h('button', { type: 'button', class: 'icon-button small', 'aria-label': `Remove ${file.name}`, onclick: () => this.removeFile(index) }, '✕'),
        ),
      ),
    );
  }

  // -- sending --------------------------------------------------------------------------------
  onKey(event) {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      this.submit();
    } else if (event.key === 'Escape' && this.replies.has(this.channelId)) {
      event.preventDefault();
      this.cancelReply();
    } else if (event.key === 'ArrowUp' && !this.input.value) {
      const messages = this.parentElement?.querySelector('miaou-messages');
      if (messages) {
        event.preventDefault();
        messages.editLast();
      }
    }
  }

  onInput() {
    this.grow();
    if (this.input.value.trim()) announceTyping(this.channelId);
  }

  grow() {
    this.input.style.height = 'auto';
    this.input.style.height = `${Math.min(this.input.scrollHeight, MAX_HEIGHT_PX)}px`;
  }

  async submit() {
    if (this.upload || this.input.disabled) return;
    const channelId = this.channelId;
    const guildId = store.channels.get(channelId)?.guild_id;
    const text = this.input.value;
    const files = this.files;
    if (!text.trim() && !files.length) return;
    const reply = this.replies.get(channelId) ?? null;
    const content = toStored(text.trim(), guildId);
    this.input.value = '';
    this.grow();
    this.replies.delete(channelId);
    this.renderReply();
    if (!files.length) {
      sendMessage(channelId, content, { replyTo: reply?.id ?? null });
      return;
    }
    this.files = [];
    this.renderFiles();
    await this.sendFiles(channelId, files, content, reply, text);
  }

  async sendFiles(channelId, files, content, reply, text) {
    const names = files.map((f) => f.file.name).join(', ');
    this.progress.value = 0;
    this.progressLabel.textContent = `Uploading ${names}`;
    this.uploadBox.hidden = false;
    this.send.disabled = true;
    const onProgress = (loaded, total) => {
      const percent = Math.round((loaded / total) * 100);
      this.progress.value = percent;
      this.progressLabel.textContent = `Uploading ${names}: ${percent}%`;
    };
    this.upload = uploadMessage(channelId, files.map((f) => f.file), content, { replyTo: reply?.id ?? null, onProgress });
    try {
      await this.upload.promise;
      for (const { preview } of files) if (preview) URL.revokeObjectURL(preview);
    } catch (error) {
      if (error.code !== 'aborted') store.toast(`Upload failed: ${error.message}`);
      if (channelId === this.channelId) {
        // Give the files and text back, to try again.
        this.files = files;
        this.renderFiles();
        if (!this.input.value) this.input.value = text;
        if (reply) this.replies.set(channelId, reply);
        this.renderReply();
      }
    } finally {
      this.upload = null;
      this.uploadBox.hidden = true;
      this.renderPermissions();
    }
  }
}

customElements.define('miaou-composer', MiaouComposer);
