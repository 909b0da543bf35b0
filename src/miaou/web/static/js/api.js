// The REST API (docs/api.md, docs/chat.md): a fetch wrapper with the bearer token, errors
// of the node's one shape ({"code", "message", "errors"}) as ApiError, and Retry-After.

const TOKEN_KEY = 'miaou.token';
const MAX_AUTO_WAIT_S = 5; // a 429 asking for longer is shown to the user instead

export class ApiError extends Error {
  constructor(status, body = {}, retryAfter = null) {
    super(body?.message || `The node answered ${status}.`);
    this.name = 'ApiError';
    this.status = status;
    this.code = body?.code || (status === 0 ? 'network_error' : 'http_error');
    this.errors = body?.errors && typeof body.errors === 'object' ? body.errors : {};
    this.retryAfter = retryAfter;
  }

  /** Problems with one field of the request, as a list of strings. */
  field(name) {
    const found = this.errors[name];
    return Array.isArray(found) ? found.map(String) : [];
  }
}

const networkError = () =>
  new ApiError(0, { code: 'network_error', message: 'The node cannot be reached.' });

function retryAfterOf(headers) {
  const raw = headers.get('Retry-After');
  const seconds = raw == null ? NaN : Number(raw);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds : null;
}

async function readJson(text) {
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

const MAX_REASON = 512; // characters, as the node stores them

/** X-Audit-Log-Reason, URL-encoded as Discord has it (a header cannot carry most of
 *  Unicode); none for a blank reason. */
function reasonHeader(reason) {
  const text = Array.from(reason?.trim() ?? '').slice(0, MAX_REASON).join('');
  return text ? { 'X-Audit-Log-Reason': encodeURIComponent(text) } : {};
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const enc = encodeURIComponent;

export class Api {
  constructor(base = '/api/v1') {
    this.base = base;
    this.token = localStorage.getItem(TOKEN_KEY);
    /** Called when the node refuses the token (401 with a token sent). */
    this.onUnauthorized = null;
  }

  setToken(token) {
    this.token = token;
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  }

  url(path, query) {
    const url = new URL(this.base + path, location.origin);
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value != null) url.searchParams.set(key, String(value));
    }
    return url.pathname + url.search;
  }

  authHeaders() {
    return this.token ? { Authorization: `Bearer ${this.token}` } : {};
  }

  /** options: body (JSON), query, reason (for the guild's audit log), retries (on 429). */
  async request(method, path, options = {}) {
    const { body, query, reason, retries = 1 } = options;
    const headers = { Accept: 'application/json', ...this.authHeaders(), ...reasonHeader(reason) };
    let payload;
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(this.url(path, query), {
        method,
        headers,
        body: payload,
        credentials: 'omit',
        cache: 'no-store',
      });
    } catch {
      throw networkError();
    }
    const retryAfter = retryAfterOf(response.headers);
    if (response.status === 429 && retries > 0 && (retryAfter ?? 1) <= MAX_AUTO_WAIT_S) {
      await sleep((retryAfter ?? 1) * 1000);
      return this.request(method, path, { ...options, retries: retries - 1 });
    }
    const data = await readJson(await response.text());
    if (!response.ok) throw this.failure(response.status, data, retryAfter);
    return data;
  }

  failure(status, data, retryAfter) {
    const error = new ApiError(status, data, retryAfter);
    if (status === 401 && this.token && error.code !== 'invalid_credentials') {
      this.onUnauthorized?.(error);
    }
    return error;
  }

  get(path, query) {
    return this.request('GET', path, { query });
  }
  // options: {reason} for a moderation or configuration request (see request()).
  post(path, body, options) {
    return this.request('POST', path, { ...options, body });
  }
  patch(path, body, options) {
    return this.request('PATCH', path, { ...options, body });
  }
  put(path, body, options) {
    return this.request('PUT', path, { ...options, body });
  }
  del(path, options) {
    return this.request('DELETE', path, options);
  }

  /** A file the node serves only with the token (attachments): as a Blob. */
  async blob(path) {
    let response;
    try {
      response = await fetch(path, { headers: this.authHeaders(), credentials: 'omit' });
    } catch {
      throw networkError();
    }
    if (!response.ok) {
      throw this.failure(response.status, await readJson(await response.text()), null);
    }
    return response.blob();
  }

  /** A request whose body is a FormData or a Blob (track uploads, covers), over
   *  XMLHttpRequest for its upload progress: onProgress(loaded, total). Returns
   *  {promise, abort}; the promise gives the answer's JSON. */
  sendBody(method, path, body, onProgress) {
    const xhr = new XMLHttpRequest();
    const promise = new Promise((resolve, reject) => {
      xhr.open(method, this.url(path));
      for (const [key, value] of Object.entries(this.authHeaders())) xhr.setRequestHeader(key, value);
      xhr.setRequestHeader('Accept', 'application/json');
      if (body instanceof Blob) xhr.setRequestHeader('Content-Type', body.type || 'application/octet-stream');
      xhr.upload.onprogress = (event) => {
        if (event.lengthComputable) onProgress?.(event.loaded, event.total);
      };
      xhr.onload = async () => {
        const data = await readJson(xhr.responseText);
        if (xhr.status >= 200 && xhr.status < 300) resolve(data);
        else {
          const after = Number(xhr.getResponseHeader('Retry-After'));
          reject(this.failure(xhr.status, data, Number.isFinite(after) ? after : null));
        }
      };
      xhr.onerror = () => reject(networkError());
      xhr.onabort = () => reject(new ApiError(0, { code: 'aborted', message: 'Cancelled.' }));
      xhr.send(body);
    });
    return { promise, abort: () => xhr.abort() };
  }

  /** A send with files: multipart/form-data (payload_json + files[N]) over XMLHttpRequest,
   *  for its upload progress. Returns {promise, abort}. */
  upload(channelId, payload, files, onProgress) {
    const form = new FormData();
    form.append('payload_json', JSON.stringify(payload));
    files.forEach((file, index) => form.append(`files[${index}]`, file, file.name));
    return this.sendBody('POST', `/channels/${enc(channelId)}/messages`, form, onProgress);
  }

  // -- accounts ---------------------------------------------------------------------------
  register(body) {
    return this.post('/auth/register', body);
  }
  login(username, password) {
    return this.post('/auth/login', { username, password });
  }
  logout() {
    return this.post('/auth/logout');
  }

  // -- guilds, channels, members, invites ---------------------------------------------------
  createGuild(name) {
    return this.post('/guilds', { name });
  }
  guild(guildId) {
    return this.get(`/guilds/${enc(guildId)}`);
  }
  channels(guildId) {
    return this.get(`/guilds/${enc(guildId)}/channels`);
  }
  createChannel(guildId, body) {
    return this.post(`/guilds/${enc(guildId)}/channels`, body);
  }
  members(guildId, after) {
    return this.get(`/guilds/${enc(guildId)}/members`, { limit: 1000, after });
  }
  readStates() {
    return this.get('/users/@me/read-states');
  }
  createInvite(channelId, body) {
    return this.post(`/channels/${enc(channelId)}/invites`, body);
  }
  previewInvite(code) {
    return this.get(`/invites/${enc(code)}`);
  }
  acceptInvite(code) {
    return this.post(`/invites/${enc(code)}`);
  }

  // -- messages -----------------------------------------------------------------------------
  messages(channelId, query) {
    return this.get(`/channels/${enc(channelId)}/messages`, query);
  }
  message(channelId, messageId) {
    return this.get(`/channels/${enc(channelId)}/messages/${enc(messageId)}`);
  }
  send(channelId, body) {
    return this.post(`/channels/${enc(channelId)}/messages`, body);
  }
  edit(channelId, messageId, content) {
    return this.patch(`/channels/${enc(channelId)}/messages/${enc(messageId)}`, { content });
  }
  remove(channelId, messageId) {
    return this.del(`/channels/${enc(channelId)}/messages/${enc(messageId)}`);
  }
  versions(channelId, messageId) {
    return this.get(`/channels/${enc(channelId)}/messages/${enc(messageId)}/versions`);
  }
  react(channelId, messageId, emoji) {
    return this.put(`/channels/${enc(channelId)}/messages/${enc(messageId)}/reactions/${enc(emoji)}/@me`);
  }
  unreact(channelId, messageId, emoji) {
    return this.del(`/channels/${enc(channelId)}/messages/${enc(messageId)}/reactions/${enc(emoji)}/@me`);
  }
  typing(channelId) {
    return this.post(`/channels/${enc(channelId)}/typing`);
  }
  ack(channelId, messageId) {
    return this.post(`/channels/${enc(channelId)}/messages/${enc(messageId)}/ack`);
  }
}

export const api = new Api();
