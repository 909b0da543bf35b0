"""Gateway client: one WebSocket carrying every live event, with auto-reconnect and RESUME.

The protocol is described in ``docs/gateway.md``. Usage::

    async with Client("http://127.0.0.1:8080") as client:
        await client.login("alice", "correct horse battery")
        async with await client.gateway() as gw:          # connect(): HELLO, IDENTIFY, READY
            print(gw.session_id, gw.positions)
            message = await client.send_message(channel_id, "hi")
            event = await gw.wait_for("MESSAGE_CREATE", lambda e: e.d["id"] == message.id)
            async for event in gw.events():                # until gw.close()
                ...

Behaviour, in short:

- **Positions.** ``positions`` holds, per stream (``st``), the highest position (``s``) the
  client received. A dispatch whose position is not above it is a replayed duplicate and is
  dropped (counted in ``duplicates``).
- **Reconnect.** A lost connection, a close code other than 4004, a RECONNECT (op 7), a
  malformed frame or a missed HEARTBEAT_ACK make the client reconnect with exponential
  backoff (0.1 s doubling up to ``max_backoff``, with jitter) and send RESUME with its
  positions; the node replays what was missed. ``max_reconnects`` bounds the attempts of one
  outage (None: unbounded); ``reconnects`` counts the successful ones. Close code 4004
  (authentication failed) is final: consumers get :class:`GatewayAuthError`.
- **Invalid session.** On INVALID_SESSION (op 9) the client delivers a synthetic
  ``SESSION_INVALIDATED`` event (``d`` = ``{"reason", "previous_positions"}``), then IDENTIFYs
  afresh: the application should re-fetch its state over REST. The same happens, with
  ``reason`` ``"resume_too_large"`` / ``"resume_refused"``, when the positions are too many
  for a RESUME frame (64 KiB) or the node refuses the RESUME as malformed (close 4002).
- **Bounded queue.** Events wait in a queue of at most ``queue_size``; when the application
  does not keep up, the *oldest* events are dropped and ``dropped`` counts them (an app that
  sees it grow should re-fetch over REST). Memory never grows without bound.
- **Consumers.** :meth:`GatewayClient.events` (iterator, ends on :meth:`close`),
  :meth:`GatewayClient.next_event` and :meth:`GatewayClient.wait_for` (removes the first
  matching event from the queue and leaves the others in place). When the client stops
  for good, consumers get the buffered events first, then the error
  (:class:`GatewayAuthError` or :class:`GatewayClosed`).

The protocol bookkeeping lives in :class:`GatewayState` (sans-I/O: frames in, actions out)
and :class:`EventQueue`; :class:`GatewayClient` only moves frames between them and a socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from enum import IntEnum
from types import TracebackType
from typing import Any, Final, TypeAlias
from urllib.parse import urljoin, urlsplit, urlunsplit

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from miaou.sdk.errors import GatewayAuthError, GatewayClosed, GatewayError
from miaou.sdk.models import GatewayEvent

__all__ = [
    "PRESENCE_STATUSES",
    "Deliver",
    "Established",
    "EventQueue",
    "GatewayClient",
    "GatewayState",
    "Op",
    "Reconnect",
    "Send",
    "StartHeartbeat",
    "backoff_delay",
    "decode_frame",
    "encode_frame",
    "gateway_url",
]

log = logging.getLogger("miaou.sdk.gateway")

USER_AGENT: Final = "miaou-sdk/0.1"
MAX_FRAME_SIZE: Final = 16 * 1024 * 1024  # what the client accepts (READY can be large)
MAX_CLIENT_FRAME: Final = 64 * 1024  # what the node accepts from a client
CLOSE_NORMAL: Final = 1000
CLOSE_RECONNECTING: Final = 4000  # our close when we drop a connection to reconnect
CLOSE_DECODE_ERROR: Final = 4002
CLOSE_AUTH_FAILED: Final = 4004
PRESENCE_STATUSES: Final = frozenset({"online", "idle", "dnd", "invisible"})
SESSION_INVALIDATED: Final = "SESSION_INVALIDATED"


class Op(IntEnum):
    DISPATCH = 0
    HEARTBEAT = 1
    IDENTIFY = 2
    PRESENCE_UPDATE = 3
    RESUME = 6
    RECONNECT = 7
    INVALID_SESSION = 9
    HELLO = 10
    HEARTBEAT_ACK = 11


# -- actions: what the state machine asks the socket layer to do ----------------------------
@dataclass(frozen=True, slots=True)
class Send:
    """Send this frame."""

    frame: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Deliver:
    """Hand this event to the application (the queue)."""

    event: GatewayEvent


@dataclass(frozen=True, slots=True)
class StartHeartbeat:
    """Start heartbeating on this connection, every ``interval`` seconds."""

    interval: float


@dataclass(frozen=True, slots=True)
class Established:
    """The handshake is over: READY (``resumed`` False) or RESUMED (True) was received."""

    resumed: bool


@dataclass(frozen=True, slots=True)
class Reconnect:
    """Drop this connection and reconnect (then RESUME)."""

    reason: str


Action: TypeAlias = Send | Deliver | StartHeartbeat | Established | Reconnect


# -- pure helpers ---------------------------------------------------------------------------
def encode_frame(frame: dict[str, Any]) -> str:
    return msgspec.json.encode(frame).decode()


def decode_frame(raw: str | bytes) -> dict[str, Any]:
    """A text frame's JSON object, with an integer ``op``; else :class:`GatewayError`."""
    if isinstance(raw, bytes):
        raise GatewayError("binary frame received (the client speaks JSON text frames)")
    try:
        frame = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise GatewayError(f"frame is not JSON: {exc}") from exc
    if not isinstance(frame, dict):
        raise GatewayError("frame is not a JSON object")
    op = frame.get("op")
    if not isinstance(op, int) or isinstance(op, bool):
        raise GatewayError("frame has no integer op")
    return frame


def backoff_delay(
    attempt: int, *, base: float = 0.1, cap: float = 10.0, jitter: float = 1.0
) -> float:
    """Delay before reconnect attempt ``attempt`` (0-based): ``base`` doubling per attempt up
    to ``cap``, then scaled into its upper half by ``jitter`` in [0, 1]: the result lies in
    ``[d / 2, d]`` with ``d = min(cap, base * 2**attempt)``."""
    ceiling = min(cap, base * 2.0 ** min(max(attempt, 0), 64))
    jitter = min(max(jitter, 0.0), 1.0)
    return ceiling / 2 + ceiling / 2 * jitter


def gateway_url(base_url: str, url: str) -> str:
    """The gateway URL the node announced, made absolute (ws/wss) against the REST base."""
    absolute = urljoin(base_url.rstrip("/") + "/", url)
    parts = urlsplit(absolute)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return urlunsplit(parts._replace(scheme=scheme))


def _positions(value: Any) -> dict[str, int]:
    """The well-formed entries of a ``positions`` object (stream → integer position)."""
    if not isinstance(value, dict):
        return {}
    return {
        str(st): pos
        for st, pos in value.items()
        if isinstance(pos, int) and not isinstance(pos, bool)
    }


# -- the protocol state (sans-I/O) ----------------------------------------------------------
class GatewayState:
    """The client side of the protocol, without a socket: frames in, actions out.

    It outlives connections: ``positions`` and ``resumable`` decide whether the next
    connection RESUMEs or IDENTIFYs. Call :meth:`on_connect` when a new socket opens,
    :meth:`on_frame` for each frame received, :meth:`heartbeat_tick` when a beat is due.
    """

    def __init__(self, token: str, *, presence: str | None = None) -> None:
        if presence is not None:
            _check_status(presence)
        self.token = token
        self.presence = presence
        self.positions: dict[str, int] = {}
        self.session_id: str | None = None
        self.user: dict[str, Any] | None = None
        self.ready: dict[str, Any] | None = None
        self.resumable = False  # READY seen and no INVALID_SESSION since
        self.duplicates = 0
        # Per connection.
        self.heartbeat_interval: float | None = None  # seconds, from HELLO
        self.awaiting_ack = False
        self.established = False
        self.resuming = False  # this connection sent RESUME
        self.presence_sent: str | None = None  # the presence this connection announced

    # -- frames we send ---------------------------------------------------------------------
    def identify_frame(self) -> dict[str, Any]:
        d: dict[str, Any] = {"token": self.token}
        if self.presence is not None:
            d["presence"] = {"status": self.presence}
            self.presence_sent = self.presence
        return {"op": int(Op.IDENTIFY), "d": d}

    def resume_frame(self) -> dict[str, Any]:
        return {"op": int(Op.RESUME), "d": {"token": self.token, "positions": dict(self.positions)}}

    def set_presence(self, status: str) -> dict[str, Any] | None:
        """The application sets its presence: validate and remember it. Returns the op-3
        frame to send now, or None before READY / RESUMED (it is sent once they arrive)."""
        _check_status(status)
        self.presence = status
        return self._presence_update() if self.established else None

    def _presence_update(self) -> dict[str, Any]:
        self.presence_sent = self.presence
        return {"op": int(Op.PRESENCE_UPDATE), "d": {"status": self.presence}}

    def _presence_actions(self) -> list[Action]:
        """After READY / RESUMED: announce the presence if this connection has not."""
        if self.presence is None or self.presence == self.presence_sent:
            return []
        return [Send(self._presence_update())]

    # -- events -----------------------------------------------------------------------------
    def on_connect(self) -> None:
        """A new socket is open: forget the previous connection's heartbeat and handshake."""
        self.heartbeat_interval = None
        self.awaiting_ack = False
        self.established = False
        self.resuming = False
        self.presence_sent = None

    def heartbeat_tick(self) -> Send | Reconnect:
        """A beat is due. If the previous one was never acknowledged the connection is a
        zombie: reconnect. Otherwise send a HEARTBEAT."""
        if self.awaiting_ack:
            return Reconnect("no HEARTBEAT_ACK before the next heartbeat was due")
        self.awaiting_ack = True
        return Send({"op": int(Op.HEARTBEAT), "d": None})

    def on_frame(self, frame: dict[str, Any]) -> list[Action]:
        """The actions a received frame calls for. Raises :class:`GatewayError` when the
        frame is malformed (the caller drops the connection and resumes)."""
        op = frame.get("op")
        d = frame.get("d")
        if op == Op.DISPATCH:
            return self._on_dispatch(frame)
        if op == Op.HELLO:
            return self._on_hello(d)
        if op == Op.HEARTBEAT_ACK:
            self.awaiting_ack = False
            return []
        if op == Op.HEARTBEAT:  # the node asks for a beat now (Discord's semantics)
            return [Send({"op": int(Op.HEARTBEAT), "d": None})]
        if op == Op.RECONNECT:
            return [Reconnect("the node asked the client to reconnect (op 7)")]
        if op == Op.INVALID_SESSION:
            return [*self._invalidate("invalid_session"), Send(self.identify_frame())]
        return []  # an opcode this client does not know: ignored (forward compatibility)

    def on_close(self, code: int | None) -> list[Action]:
        """The connection closed with ``code``. A RESUME refused as malformed (4002: say,
        more positions than the node accepts) would be refused again: the session is
        dropped (SESSION_INVALIDATED now) so that the next connection IDENTIFYs."""
        if self.resuming and not self.established and code == CLOSE_DECODE_ERROR:
            return self._invalidate("resume_refused")
        return []

    def _on_hello(self, d: Any) -> list[Action]:
        interval = d.get("heartbeat_interval") if isinstance(d, dict) else None
        if (
            not isinstance(interval, int | float)
            or isinstance(interval, bool)
            or not math.isfinite(interval)
            or interval <= 0
        ):
            raise GatewayError("HELLO without a positive heartbeat_interval")
        self.heartbeat_interval = interval / 1000
        start = StartHeartbeat(self.heartbeat_interval)
        if not self.resumable:
            return [start, Send(self.identify_frame())]
        resume = self.resume_frame()
        if len(encode_frame(resume)) > MAX_CLIENT_FRAME:  # the node would refuse it
            return [start, *self._invalidate("resume_too_large"), Send(self.identify_frame())]
        self.resuming = True
        return [start, Send(resume)]

    def _invalidate(self, reason: str) -> list[Action]:
        """Forget the session; tell the application (it should re-fetch over REST)."""
        previous = dict(self.positions)
        self.positions.clear()
        self.session_id = None
        self.resumable = False
        self.resuming = False
        self.established = False
        d = {"reason": reason, "previous_positions": previous}
        return [Deliver(GatewayEvent(SESSION_INVALIDATED, d))]

    def _on_dispatch(self, frame: dict[str, Any]) -> list[Action]:
        t, d, s, st = frame.get("t"), frame.get("d"), frame.get("s"), frame.get("st")
        if not isinstance(t, str):
            raise GatewayError("dispatch without an event name")
        if s is not None and (not isinstance(s, int) or isinstance(s, bool)):
            raise GatewayError(f"dispatch {t} with a non-integer position")
        if st is not None and not isinstance(st, str):
            raise GatewayError(f"dispatch {t} with a non-string stream")
        if t == "READY":
            return self._on_ready(d)
        if t == "RESUMED":
            return self._on_resumed(d)
        if s is not None and st is not None:
            if s <= self.positions.get(st, 0):
                self.duplicates += 1
                return []
            self.positions[st] = s
        return [Deliver(GatewayEvent(t, d, s, st))]

    def _on_ready(self, d: Any) -> list[Action]:
        if not isinstance(d, dict):
            raise GatewayError("READY without a payload object")
        session_id = d.get("session_id")
        self.session_id = str(session_id) if session_id is not None else None
        user = d.get("user")
        self.user = user if isinstance(user, dict) else None
        self.ready = d
        # A fresh session: READY names where every followed stream stands.
        self.positions = _positions(d.get("positions"))
        self.resumable = True
        self.established = True
        return [
            Deliver(GatewayEvent("READY", d)),
            Established(resumed=False),
            *self._presence_actions(),
        ]

    def _on_resumed(self, d: Any) -> list[Action]:
        for st, pos in _positions(d.get("positions") if isinstance(d, dict) else None).items():
            if pos > self.positions.get(st, 0):
                self.positions[st] = pos
        self.established = True
        # RESUME carries no presence: a presence the application set is announced again.
        return [
            Deliver(GatewayEvent("RESUMED", d)),
            Established(resumed=True),
            *self._presence_actions(),
        ]


def _check_status(status: str) -> None:
    if status not in PRESENCE_STATUSES:
        raise ValueError(f"presence status must be one of {sorted(PRESENCE_STATUSES)}")


# -- the bounded event queue ----------------------------------------------------------------
class EventQueue:
    """Events waiting for the application, at most ``maxsize``: when full, the oldest is
    dropped (``dropped`` counts them). :meth:`close` ends it: consumers get what is buffered,
    then ``error`` (or :class:`GatewayClosed` for a clean close)."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("queue size must be at least 1")
        self.maxsize = maxsize
        self.dropped = 0
        self.error: GatewayError | None = None
        self.closed = False
        self._items: deque[tuple[int, GatewayEvent]] = deque()  # (arrival number, event)
        self._arrivals = 0
        self._waiters: list[asyncio.Future[None]] = []

    def __len__(self) -> int:
        return len(self._items)

    def put(self, event: GatewayEvent) -> None:
        if self.closed:
            return
        if len(self._items) >= self.maxsize:
            self._items.popleft()
            self.dropped += 1
        self._items.append((self._arrivals, event))
        self._arrivals += 1
        self._wake()

    def close(self, error: GatewayError | None = None) -> None:
        if not self.closed:
            self.closed = True
            self.error = error
            self._wake()

    def get_nowait(self) -> GatewayEvent | None:
        return self._items.popleft()[1] if self._items else None

    async def get(self) -> GatewayEvent:
        """The oldest event, waiting for one (bound it with ``asyncio.timeout``)."""
        while not self._items:
            self._raise_if_closed()
            await self._wait()
        return self._items.popleft()[1]

    async def find(self, predicate: Callable[[GatewayEvent], bool]) -> GatewayEvent:
        """Remove and return the first event (buffered or yet to come) that matches; the
        others stay queued in order. Each event is tested once."""
        tested = -1  # arrival number of the last event tested
        while True:
            fresh: list[int] = []  # indexes of untested events, newest first
            for index in range(len(self._items) - 1, -1, -1):
                if self._items[index][0] <= tested:
                    break
                fresh.append(index)
            for index in reversed(fresh):
                arrival, event = self._items[index]
                tested = arrival
                if predicate(event):
                    del self._items[index]
                    return event
            self._raise_if_closed()
            await self._wait()

    def _raise_if_closed(self) -> None:
        if self.closed:
            raise self.error or GatewayClosed("the gateway client is closed")

    async def _wait(self) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def _wake(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()


# -- the socket layer -----------------------------------------------------------------------
@dataclass(eq=False)
class _Connection:
    """One socket and the tasks serving it."""

    ws: ClientConnection
    established: asyncio.Future[bool]  # READY / RESUMED received (result: resumed)
    ended: asyncio.Future[GatewayError]  # why it ended (the first cause wins)
    reader: asyncio.Task[None] | None = None
    heartbeat: asyncio.Task[None] | None = None

    def end(self, cause: GatewayError) -> None:
        if not self.ended.done():
            self.ended.set_result(cause)


class GatewayClient:
    """An asyncio client of the Miaou gateway; see the module documentation.

    ``connect_timeout`` bounds the WebSocket opening handshake, ``ready_timeout`` the wait
    for HELLO and READY/RESUMED (including a RESUME's replay) on each connection;
    ``max_frame_size`` is the largest frame accepted (a bigger one drops the connection).
    ``presence`` is sent in IDENTIFY (and set again after a RESUME).
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        heartbeat_jitter: bool = True,
        reconnect: bool = True,
        max_backoff: float = 10.0,
        queue_size: int = 10_000,
        max_reconnects: int | None = None,
        presence: str | None = None,
        connect_timeout: float = 10.0,
        ready_timeout: float = 30.0,
        close_timeout: float = 2.0,
        max_frame_size: int = MAX_FRAME_SIZE,
    ) -> None:
        if max_backoff <= 0 or connect_timeout <= 0 or ready_timeout <= 0 or close_timeout <= 0:
            raise ValueError("max_backoff and timeouts must be positive")
        if max_reconnects is not None and max_reconnects < 0:
            raise ValueError("max_reconnects must be None or >= 0")
        if max_frame_size < 1024:
            raise ValueError("max_frame_size must be at least 1 KiB")
        self.url = url
        self.heartbeat_jitter = heartbeat_jitter
        self.reconnect = reconnect
        self.max_backoff = max_backoff
        self.max_reconnects = max_reconnects
        self.connect_timeout = connect_timeout
        self.ready_timeout = ready_timeout
        self.close_timeout = close_timeout
        self.max_frame_size = max_frame_size
        self.reconnects = 0  # successful reconnections since connect()
        self._state = GatewayState(token, presence=presence)
        self._queue = EventQueue(queue_size)
        self._random = random.Random()  # noqa: S311 - jitter only
        self._conn: _Connection | None = None
        self._runner: asyncio.Task[None] | None = None
        self._closed = False

    # -- state ------------------------------------------------------------------------------
    @property
    def session_id(self) -> str | None:
        return self._state.session_id

    @property
    def user(self) -> dict[str, Any] | None:
        return self._state.user

    @property
    def ready(self) -> dict[str, Any] | None:
        """The last READY payload."""
        return self._state.ready

    @property
    def positions(self) -> dict[str, int]:
        """Per stream, the highest position received (a copy)."""
        return dict(self._state.positions)

    @property
    def duplicates(self) -> int:
        """Replayed dispatches dropped because their position was not new."""
        return self._state.duplicates

    @property
    def dropped(self) -> int:
        """Events dropped, oldest first, because the queue was full."""
        return self._queue.dropped

    @property
    def pending(self) -> int:
        """Events waiting in the queue."""
        return len(self._queue)

    @property
    def connected(self) -> bool:
        """True while a connection is open and past READY / RESUMED."""
        conn = self._conn
        return conn is not None and conn.established.done() and not conn.ended.done()

    @property
    def closed(self) -> bool:
        """True once the client stopped for good (closed, auth failed, gave up)."""
        return self._closed or self._queue.closed

    # -- lifecycle --------------------------------------------------------------------------
    async def connect(self) -> None:
        """Open the socket, IDENTIFY and wait for READY; then keep the session alive in the
        background. Raises :class:`GatewayAuthError` (4004) or :class:`GatewayError` if this
        first connection fails (it is not retried). Connecting twice is a no-op."""
        if self.closed:
            raise GatewayClosed("the gateway client is closed")
        if self._runner is not None:
            return
        conn = await self._establish()
        self._runner = asyncio.create_task(self._run(conn), name="miaou-gateway")

    async def close(self) -> None:
        """Close with 1000, stop every task; consumers' :meth:`events` ends. Idempotent."""
        if self._closed:
            return
        self._closed = True
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._teardown(conn, CLOSE_NORMAL, "client closed")
        self._queue.close()

    async def __aenter__(self) -> GatewayClient:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- consuming events -------------------------------------------------------------------
    async def events(self) -> AsyncIterator[GatewayEvent]:
        """Every event, in order; ends after :meth:`close`, raises if the client stopped
        otherwise (:class:`GatewayAuthError`, :class:`GatewayClosed`)."""
        while True:
            try:
                event = await self._queue.get()
            except GatewayClosed:
                if self._queue.error is None:
                    return
                raise
            yield event

    async def next_event(self, timeout: float | None = 30.0) -> GatewayEvent:  # noqa: ASYNC109
        """The next event; TimeoutError after ``timeout`` seconds (None: wait forever)."""
        async with asyncio.timeout(timeout):
            return await self._queue.get()

    async def wait_for(
        self,
        type_: str,
        predicate: Callable[[GatewayEvent], bool] | None = None,
        *,
        timeout: float | None = 30.0,  # noqa: ASYNC109 - the Discord-style API
    ) -> GatewayEvent:
        """The first event named ``type_`` (and matching ``predicate``), already queued or
        yet to come; it is removed from the queue, the others stay. TimeoutError after
        ``timeout`` seconds."""

        def match(event: GatewayEvent) -> bool:
            return event.t == type_ and (predicate is None or predicate(event))

        async with asyncio.timeout(timeout):
            return await self._queue.find(match)

    # -- sending ----------------------------------------------------------------------------
    async def send_presence(self, status: str) -> None:
        """Set presence (``online``, ``idle``, ``dnd``, ``invisible``). While reconnecting it
        is remembered and sent once the session is back."""
        if self.closed:
            raise GatewayClosed("the gateway client is closed")
        frame = self._state.set_presence(status)
        conn = self._conn
        if frame is not None and conn is not None and not conn.ended.done():
            # If the socket just died the reader sees it too; presence is sent after RESUMED.
            with contextlib.suppress(ConnectionClosed):
                await conn.ws.send(encode_frame(frame))

    # -- internals --------------------------------------------------------------------------
    async def _establish(self) -> _Connection:
        """Open a socket and run the handshake up to READY / RESUMED."""
        try:
            ws = await connect(
                self.url,
                compression=None,  # the node never compresses
                max_size=self.max_frame_size,
                ping_interval=None,  # the protocol's own heartbeats keep it alive
                open_timeout=self.connect_timeout,
                close_timeout=self.close_timeout,
                user_agent_header=USER_AGENT,
            )
        except (OSError, TimeoutError, WebSocketException) as exc:
            raise GatewayError(f"cannot open {self.url}: {exc!r}") from exc
        loop = asyncio.get_running_loop()
        conn = _Connection(ws, loop.create_future(), loop.create_future())
        self._state.on_connect()
        self._conn = conn
        conn.reader = asyncio.create_task(self._read(conn), name="miaou-gateway-reader")
        try:
            waited: list[asyncio.Future[Any]] = [conn.established, conn.ended]
            await asyncio.wait(
                waited,
                timeout=self.ready_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
        except BaseException:
            await self._teardown(conn, CLOSE_NORMAL if self._closed else CLOSE_RECONNECTING)
            raise
        if conn.established.done():
            return conn
        cause = (
            conn.ended.result()
            if conn.ended.done()
            else GatewayError(f"no READY within {self.ready_timeout} s")
        )
        await self._teardown(conn, CLOSE_RECONNECTING, "handshake failed")
        raise cause

    async def _read(self, conn: _Connection) -> None:
        try:
            while True:
                frame = decode_frame(await conn.ws.recv())
                for action in self._state.on_frame(frame):
                    await self._apply(conn, action)
                if conn.ended.done():
                    return
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else None
            reason = exc.rcvd.reason if exc.rcvd is not None else ""
            for action in self._state.on_close(code):
                if isinstance(action, Deliver):
                    self._queue.put(action.event)
            if code == CLOSE_AUTH_FAILED:
                conn.end(GatewayAuthError(f"authentication failed: {reason}", code=code))
            else:
                conn.end(GatewayError(f"connection closed: {exc}", code=code))
        except GatewayError as exc:  # a malformed frame: drop the connection and resume
            conn.end(exc)
        except (OSError, WebSocketException) as exc:
            conn.end(GatewayError(f"connection failed: {exc!r}"))

    async def _apply(self, conn: _Connection, action: Action) -> None:
        if isinstance(action, Deliver):
            self._queue.put(action.event)
        elif isinstance(action, Send):
            await conn.ws.send(encode_frame(action.frame))
        elif isinstance(action, StartHeartbeat):
            if conn.heartbeat is None:
                conn.heartbeat = asyncio.create_task(
                    self._beat(conn, action.interval), name="miaou-gateway-heartbeat"
                )
        elif isinstance(action, Established):
            if not conn.established.done():
                conn.established.set_result(action.resumed)
        else:
            conn.end(GatewayError(action.reason))

    async def _beat(self, conn: _Connection, interval: float) -> None:
        delay = interval * (self._random.random() if self.heartbeat_jitter else 1.0)
        try:
            while not conn.ended.done():
                await asyncio.sleep(delay)
                delay = interval
                action = self._state.heartbeat_tick()
                if isinstance(action, Reconnect):
                    conn.end(GatewayError(action.reason))
                    return
                await conn.ws.send(encode_frame(action.frame))
        except (ConnectionClosed, OSError):
            return  # the reader reports why

    async def _run(self, conn: _Connection) -> None:
        """Supervise the session: when a connection ends, reconnect and resume."""
        try:
            while True:
                cause = await asyncio.shield(conn.ended)
                await self._teardown(conn, CLOSE_RECONNECTING, "reconnecting")
                if isinstance(cause, GatewayAuthError):
                    raise cause
                if not self.reconnect:
                    raise GatewayClosed(f"connection lost: {cause}", code=cause.code) from cause
                log.info("gateway connection lost (%s); reconnecting", cause)
                conn = await self._reconnect_with_backoff()
        except GatewayError as exc:
            log.warning("gateway client stopped: %s", exc)
            self._queue.close(exc)
        except Exception as exc:  # a bug: stop visibly rather than die silently
            log.exception("gateway client failed")
            self._queue.close(GatewayClosed(f"gateway client failed: {exc!r}"))

    async def _reconnect_with_backoff(self) -> _Connection:
        attempt = 0
        while True:
            if self.max_reconnects is not None and attempt >= self.max_reconnects:
                raise GatewayClosed(f"gave up after {attempt} reconnect attempts")
            delay = backoff_delay(attempt, cap=self.max_backoff, jitter=self._random.random())
            await asyncio.sleep(delay)
            attempt += 1
            try:
                conn = await self._establish()
            except GatewayAuthError:
                raise
            except GatewayError as exc:
                log.info("gateway reconnect attempt %d failed: %s", attempt, exc)
                continue
            self.reconnects += 1
            return conn

    async def _teardown(self, conn: _Connection, code: int, reason: str = "") -> None:
        if self._conn is conn:
            self._conn = None
        tasks = [t for t in (conn.reader, conn.heartbeat) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        conn.end(GatewayClosed("connection torn down"))
        try:
            await conn.ws.close(code, reason)  # bounded by close_timeout
        except Exception:  # noqa: S110 - the socket is discarded either way
            pass
        except BaseException:  # cancelled mid-close: do not leave the socket open
            conn.ws.transport.abort()
            raise
