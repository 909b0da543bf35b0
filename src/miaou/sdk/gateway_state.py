"""The gateway client's bookkeeping, without sockets: frames in, actions out.

:class:`GatewayState` decides what to send after which frame (HELLO, READY, RESUMED,
INVALID_SESSION, RECONNECT), keeps the per-stream positions and drops replayed duplicates;
:class:`EventQueue` holds events for the application within a bound. The socket side is
:class:`miaou.sdk.gateway.GatewayClient`.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Final, TypeAlias
from urllib.parse import urljoin, urlsplit, urlunsplit

import msgspec

from miaou.sdk.errors import GatewayClosed, GatewayError
from miaou.sdk.models import GatewayEvent

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
        follow = d.get("follow") if isinstance(d, dict) else None
        if isinstance(follow, dict):
            # A guild joined or a DM opened: the node follows that stream for us from
            # ``position``; a RESUME before its first event must still ask from there.
            followed, start = follow.get("stream"), follow.get("position")
            if isinstance(followed, str) and type(start) is int and followed not in self.positions:
                self.positions[followed] = start
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
