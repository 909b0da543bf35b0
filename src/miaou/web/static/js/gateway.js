// The gateway client (docs/gateway.md): HELLO -> IDENTIFY or RESUME, heartbeats at HELLO's
// interval, the highest position seen per stream ("s" of stream "st"), duplicates dropped,
// and reconnection with exponential backoff that RESUMEs, so nothing is missed after a
// network drop. INVALID_SESSION: IDENTIFY afresh; the app re-reads its state (READY again).
//
// Events (EventTarget): 'ready' (READY's d), 'resumed' ({positions} of streams the client
// did not list, refetch_channels: guilds whose channels to read again), 'dispatch' ({t, d, s, st}), 'state' (connecting | connected | reconnecting |
// closed), 'auth-failed' (close 4004: the token is not valid).

export const Op = Object.freeze({
  DISPATCH: 0,
  HEARTBEAT: 1,
  IDENTIFY: 2,
  PRESENCE_UPDATE: 3,
  RESUME: 6,
  RECONNECT: 7,
  INVALID_SESSION: 9,
  HELLO: 10,
  HEARTBEAT_ACK: 11,
});

const CLOSE_RECONNECTING = 4000;
const CLOSE_DECODE_ERROR = 4002;
const CLOSE_AUTH_FAILED = 4004;
const MAX_CLIENT_FRAME = 60 * 1024; // the node refuses frames over 64 KiB

export function gatewayUrl(loc = location) {
  return `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}/gateway`;
}

export class Gateway extends EventTarget {
  constructor(token, { url = gatewayUrl(), minDelayMs = 250, maxDelayMs = 15000 } = {}) {
    super();
    this.token = token;
    this.url = url;
    this.minDelayMs = minDelayMs;
    this.maxDelayMs = maxDelayMs;
    this.positions = new Map(); // stream -> highest position received
    this.sessionId = null;
    this.resumable = false;
    this.state = 'idle';
    this.ws = null;
    this.attempt = 0;
    this.reconnects = 0;
    this.duplicates = 0;
    this.stopped = true;
    this.resuming = false;
    this.established = false;
    this.heartbeatTimer = null;
    this.reconnectTimer = null;
    this.awaitingAck = false;
    this.onOnline = () => {
      if (this.state === 'reconnecting') {
        clearTimeout(this.reconnectTimer);
        this.connect();
      }
    };
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    addEventListener('online', this.onOnline);
    this.connect();
  }

  stop() {
    this.stopped = true;
    removeEventListener('online', this.onOnline);
    clearTimeout(this.reconnectTimer);
    this.stopHeartbeat();
    const ws = this.ws;
    this.ws = null;
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000);
    this.setState('closed');
  }

  setPresence(status) {
    this.send({ op: Op.PRESENCE_UPDATE, d: { status } });
  }

  // -- connection ---------------------------------------------------------------------------
  connect() {
    this.setState(this.resumable ? 'reconnecting' : 'connecting');
    this.established = false;
    this.resuming = false;
    this.awaitingAck = false;
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onmessage = (event) => this.onMessage(ws, event.data);
    ws.onclose = (event) => this.onClose(ws, event.code);
  }

  /** Drop this connection and reconnect (then RESUME). */
  drop() {
    const ws = this.ws;
    this.ws = null;
    this.stopHeartbeat();
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(CLOSE_RECONNECTING);
    if (!this.stopped) this.scheduleReconnect();
  }

  onClose(ws, code) {
    if (ws !== this.ws) return; // a connection we already left
    this.ws = null;
    this.stopHeartbeat();
    if (this.stopped) return;
    if (code === CLOSE_AUTH_FAILED) {
      this.stopped = true;
      this.setState('closed');
      this.emit('auth-failed', { code });
      return;
    }
    // A RESUME refused as malformed would be refused again: start a fresh session.
    if (this.resuming && !this.established && code === CLOSE_DECODE_ERROR) this.invalidate();
    this.scheduleReconnect();
  }

  scheduleReconnect() {
    this.setState('reconnecting');
    const ceiling = Math.min(this.maxDelayMs, this.minDelayMs * 2 ** Math.min(this.attempt, 16));
    this.attempt += 1;
    const delay = ceiling / 2 + (Math.random() * ceiling) / 2;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => {
      if (!this.stopped) {
        this.reconnects += 1;
        this.connect();
      }
    }, delay);
  }

  send(frame) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }

  // -- frames -------------------------------------------------------------------------------
  onMessage(ws, raw) {
    if (ws !== this.ws) return;
    let frame;
    try {
      frame = JSON.parse(raw);
    } catch {
      this.drop();
      return;
    }
    if (!frame || typeof frame !== 'object') return;
    switch (frame.op) {
      case Op.HELLO:
        this.onHello(frame.d);
        break;
      case Op.HEARTBEAT_ACK:
        this.awaitingAck = false;
        break;
      case Op.HEARTBEAT:
        this.send({ op: Op.HEARTBEAT, d: null });
        break;
      case Op.RECONNECT:
        this.drop();
        break;
      case Op.INVALID_SESSION:
        this.invalidate();
        this.identify();
        break;
      case Op.DISPATCH:
        this.onDispatch(frame);
        break;
      default:
        break; // an opcode this client does not know
    }
  }

  onHello(d) {
    const interval = Number(d?.heartbeat_interval);
    if (!(interval > 0)) {
      this.drop();
      return;
    }
    this.startHeartbeat(interval);
    if (!this.resumable) {
      this.identify();
      return;
    }
    const positions = Object.fromEntries(this.positions);
    const frame = { op: Op.RESUME, d: { token: this.token, positions } };
    if (JSON.stringify(frame).length > MAX_CLIENT_FRAME) {
      this.invalidate();
      this.identify();
      return;
    }
    this.resuming = true;
    this.send(frame);
  }

  identify() {
    this.send({ op: Op.IDENTIFY, d: { token: this.token } });
  }

  invalidate() {
    this.positions.clear();
    this.sessionId = null;
    this.resumable = false;
    this.resuming = false;
    this.emit('invalidated', {});
  }

  onDispatch(frame) {
    const { t, d, s, st } = frame;
    if (t === 'READY') {
      this.sessionId = d?.session_id ?? null;
      this.positions = new Map(Object.entries(d?.positions ?? {}));
      this.resumable = true;
      this.established = true;
      this.attempt = 0;
      this.setState('connected');
      this.emit('ready', d);
      return;
    }
    if (t === 'RESUMED') {
      const fresh = d?.positions ?? {};
      for (const [stream, position] of Object.entries(fresh)) {
        if (position > (this.positions.get(stream) ?? 0)) this.positions.set(stream, position);
      }
      this.established = true;
      this.attempt = 0;
      this.setState('connected');
      this.emit('resumed', { positions: fresh, refetch_channels: d?.refetch_channels ?? [] });
      return;
    }
    if (Number.isInteger(s) && typeof st === 'string') {
      if (s <= (this.positions.get(st) ?? 0)) {
        this.duplicates += 1;
        return;
      }
      this.positions.set(st, s);
    }
    // A guild joined or a DM opened: the node follows that stream for us from `position`;
    // a RESUME before its first event must still ask for what came after it.
    const follow = d?.follow;
    if (typeof follow?.stream === 'string' && Number.isInteger(follow.position)) {
      if (!this.positions.has(follow.stream)) this.positions.set(follow.stream, follow.position);
    }
    this.emit('dispatch', { t, d, s, st });
  }

  // -- heartbeats ---------------------------------------------------------------------------
  startHeartbeat(interval) {
    this.stopHeartbeat();
    const beat = () => {
      if (this.awaitingAck) {
        this.drop(); // no ACK since the last beat: a zombie connection
        return;
      }
      this.awaitingAck = true;
      this.send({ op: Op.HEARTBEAT, d: null });
      this.heartbeatTimer = setTimeout(beat, interval);
    };
    this.heartbeatTimer = setTimeout(beat, interval * Math.random());
  }

  stopHeartbeat() {
    clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }

  setState(state) {
    if (state === this.state) return;
    this.state = state;
    this.emit('state', { state });
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
