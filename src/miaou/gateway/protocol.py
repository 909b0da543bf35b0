"""One gateway connection as a sans-I/O state machine: bytes in, bytes and requests out.

Like ``websockets``' own protocol objects (which it wraps for the HTTP handshake and frame
parsing) it does no I/O and reads no clock: the caller passes ``now`` (milliseconds) to every
call, writes what :meth:`GatewayConnection.data_to_send` returns, acts on
:meth:`GatewayConnection.requests` (IDENTIFY, RESUME and PRESENCE_UPDATE need the node), and
calls :meth:`GatewayConnection.handle_timer` at :attr:`GatewayConnection.deadline`. Every
rule of docs/gateway.md about frames, heartbeats, rate limits and close codes is here, tested
with bytes alone.

States: HANDSHAKE (HTTP upgrade) -> WAITING (HELLO sent; IDENTIFY or RESUME expected) ->
AUTHENTICATING (the node checks the token) -> READY (events flow) -> CLOSING -> CLOSED.
"""

from __future__ import annotations

import enum
import logging
from typing import Any
from urllib.parse import urlsplit

import msgspec
from websockets.datastructures import Headers
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State as WsState
from websockets.server import ServerProtocol

from miaou.gateway.frames import CLOSE_REASONS, CloseCode, Op, op_frame, text_frame

PATH = "/gateway"
MAX_FRAME_BYTES = 65_536
HANDSHAKE_TIMEOUT_MS = 10_000
IDENTIFY_TIMEOUT_MS = 20_000
CLOSE_TIMEOUT_MS = 5_000
RATE_FRAMES = 120
RATE_WINDOW_MS = 60_000
RATE_PRESENCE = 5  # PRESENCE_UPDATE frames per window: each one goes to every guild
MAX_TOKEN = 256
MAX_POSITIONS = 2_000
MAX_STREAM = 64
STATUSES = frozenset({"online", "idle", "dnd", "invisible"})

_quiet = logging.getLogger("miaou.gateway.ws")
_quiet.setLevel(logging.WARNING)


class State(enum.Enum):
    HANDSHAKE = 0
    WAITING = 1
    AUTHENTICATING = 2
    READY = 3
    CLOSING = 4
    CLOSED = 5


class Identify(msgspec.Struct, frozen=True):
    token: str
    status: str = "online"


class Resume(msgspec.Struct, frozen=True):
    token: str
    positions: dict[str, int]


class PresenceUpdate(msgspec.Struct, frozen=True):
    status: str


Request_ = Identify | Resume | PresenceUpdate


class _ClientFrame(msgspec.Struct):
    op: int
    d: Any = None


_decode_frame = msgspec.json.Decoder(_ClientFrame).decode


class Invalid(Exception):
    def __init__(self, code: CloseCode) -> None:
        self.code = code


class GatewayConnection:
    __slots__ = (
        "_fragments",
        "_out",
        "_presences",
        "_requests",
        "_window_count",
        "_window_start",
        "deadline",
        "heartbeat_ms",
        "state",
        "ws",
    )

    def __init__(self, now: int, *, heartbeat_ms: int = 41_250) -> None:
        self.ws = ServerProtocol(max_size=MAX_FRAME_BYTES, logger=_quiet)
        self.heartbeat_ms = heartbeat_ms
        self.state = State.HANDSHAKE
        #: When :meth:`handle_timer` must next run (milliseconds), or None.
        self.deadline: int | None = now + HANDSHAKE_TIMEOUT_MS
        self._out: list[bytes] = []
        self._requests: list[Request_] = []
        self._fragments: list[bytes] | None = None
        self._window_start = now
        self._window_count = 0
        self._presences = 0

    # -- input -------------------------------------------------------------------------
    def receive_data(self, data: bytes, now: int) -> None:
        self.ws.receive_data(data)
        self._process(now)

    def receive_eof(self, now: int) -> None:
        self.ws.receive_eof()
        self._process(now)

    def _process(self, now: int) -> None:
        for event in self.ws.events_received():
            if isinstance(event, Request):
                self._handshake(event, now)
            elif isinstance(event, Frame):
                self._frame(event, now)
        if self.ws.state is WsState.CLOSING and self.state not in (State.CLOSING, State.CLOSED):
            # websockets failed the connection itself (a frame over the size limit, a
            # protocol error) and has queued its close frame.
            self.state = State.CLOSING
            self.deadline = now + CLOSE_TIMEOUT_MS
        self._collect()

    def _handshake(self, request: Request, now: int) -> None:
        if urlsplit(request.path).path != PATH:
            response = self.ws.reject(404, "Not Found\n")
        else:
            response = self.ws.accept(request)
        self.ws.send_response(response)
        # websockets' parser generator keeps the request alive for the connection's life;
        # its headers (~2 KB) are not needed once answered.
        request.headers = Headers()
        self._collect()
        if response.status_code != 101:
            self.state = State.CLOSED
            self.deadline = None
            return
        self.state = State.WAITING
        self.deadline = now + IDENTIFY_TIMEOUT_MS
        self._out.append(op_frame(Op.HELLO, {"heartbeat_interval": self.heartbeat_ms}))

    def _frame(self, frame: Frame, now: int) -> None:
        if frame.opcode in (Opcode.PING, Opcode.PONG):
            return  # websockets answers pings itself
        if frame.opcode is Opcode.CLOSE:
            if self.state is not State.CLOSED:
                self.state = State.CLOSING  # websockets echoed the close frame
                self.deadline = now + CLOSE_TIMEOUT_MS
            return
        if self.state not in (State.WAITING, State.AUTHENTICATING, State.READY):
            return
        try:
            payload = self._assemble(frame)
            if payload is None:
                return
            self._count(now)
            self._message(payload, now)
        except Invalid as problem:
            self.close(problem.code, now)

    def _assemble(self, frame: Frame) -> bytes | None:
        """Whole text messages; binary is refused (websockets bounds the total size)."""
        if frame.opcode is Opcode.BINARY:
            raise Invalid(CloseCode.DECODE_ERROR)
        if frame.opcode is Opcode.TEXT:
            if frame.fin:
                return bytes(frame.data)
            self._fragments = [bytes(frame.data)]
            return None
        assert frame.opcode is Opcode.CONT
        if self._fragments is None:  # pragma: no cover - websockets rejects this first
            raise Invalid(CloseCode.DECODE_ERROR)
        self._fragments.append(bytes(frame.data))
        if not frame.fin:
            return None
        whole, self._fragments = b"".join(self._fragments), None
        return whole

    def _count(self, now: int) -> None:
        if now - self._window_start >= RATE_WINDOW_MS:
            self._window_start, self._window_count, self._presences = now, 0, 0
        self._window_count += 1
        if self._window_count > RATE_FRAMES:
            raise Invalid(CloseCode.RATE_LIMITED)

    def _message(self, payload: bytes, now: int) -> None:
        try:
            frame = _decode_frame(payload)
        except (msgspec.DecodeError, msgspec.ValidationError):
            raise Invalid(CloseCode.DECODE_ERROR) from None
        op = frame.op
        if op == Op.HEARTBEAT:
            self._out.append(op_frame(Op.HEARTBEAT_ACK))
            if self.state is State.READY:
                self.deadline = now + self.heartbeat_ms * 3 // 2
            return
        if op in (Op.IDENTIFY, Op.RESUME):
            if self.state is not State.WAITING:
                raise Invalid(CloseCode.ALREADY_AUTHENTICATED)
            request: Request_ = _identify(frame.d) if op == Op.IDENTIFY else _resume(frame.d)
            self.state = State.AUTHENTICATING
            self._requests.append(request)
            return
        if op == Op.PRESENCE_UPDATE:
            if self.state is not State.READY:
                raise Invalid(CloseCode.NOT_AUTHENTICATED)
            self._presences += 1
            if self._presences > RATE_PRESENCE:
                raise Invalid(CloseCode.RATE_LIMITED)
            self._requests.append(PresenceUpdate(_status(frame.d)))
            return
        if self.state is not State.READY:
            raise Invalid(CloseCode.NOT_AUTHENTICATED)
        raise Invalid(CloseCode.UNKNOWN_OPCODE)

    # -- what the node decides ---------------------------------------------------------
    def requests(self) -> list[Request_]:
        requests, self._requests = self._requests, []
        return requests

    def accept_session(self, ready: bytes, now: int) -> None:
        """The token was good: send READY (or RESUMED, a pre-built dispatch frame)."""
        if self.state is not State.AUTHENTICATING:
            return
        self.state = State.READY
        self.deadline = now + self.heartbeat_ms * 3 // 2
        self._out.append(ready)

    def invalid_session(self, now: int) -> None:
        """RESUME could not be honoured: tell the client to IDENTIFY afresh."""
        if self.state is State.AUTHENTICATING:
            self._out.append(op_frame(Op.INVALID_SESSION, False))
            self.state = State.WAITING
            self.deadline = now + IDENTIFY_TIMEOUT_MS

    def send(self, frame: bytes) -> None:
        """Queue a complete pre-encoded frame (a dispatch built once for many)."""
        if self.state is State.READY:
            self._out.append(frame)

    def send_json(self, payload: bytes) -> None:
        if self.state is State.READY:
            self._out.append(text_frame(payload))

    def reconnect(self, now: int) -> None:
        """The node is going away: ask the client to RESUME elsewhere, then close 1001."""
        if self.state in (State.WAITING, State.AUTHENTICATING, State.READY):
            self._out.append(op_frame(Op.RECONNECT))
        self.close(CloseCode.GOING_AWAY, now)

    def close(self, code: CloseCode, now: int) -> None:
        if self.state in (State.CLOSING, State.CLOSED):
            return
        if self.state is State.HANDSHAKE or self.ws.state is not WsState.OPEN:
            self.state = State.CLOSED
            self.deadline = None
            return
        self.ws.send_close(int(code), CLOSE_REASONS.get(code, ""))
        self.state = State.CLOSING
        self.deadline = now + CLOSE_TIMEOUT_MS
        self._collect()

    def handle_timer(self, now: int) -> None:
        if self.deadline is None or now < self.deadline:
            return
        if self.state is State.CLOSING or self.state is State.HANDSHAKE:
            self.state = State.CLOSED  # the peer did not finish closing: drop the socket
            self.deadline = None
        elif self.state is State.READY:
            self.close(CloseCode.SESSION_TIMED_OUT, now)
        elif self.state in (State.WAITING, State.AUTHENTICATING):
            self.close(CloseCode.NOT_AUTHENTICATED, now)

    # -- output ------------------------------------------------------------------------
    def _collect(self) -> None:
        for data in self.ws.data_to_send():
            if data:
                self._out.append(data)
            else:  # SEND_EOF: websockets is done with the connection
                self.state = State.CLOSED
                self.deadline = None
        if self.ws.state is WsState.CLOSED:
            self.state = State.CLOSED
            self.deadline = None

    def data_to_send(self) -> list[bytes]:
        out, self._out = self._out, []
        return out

    @property
    def closed(self) -> bool:
        """The transport should be closed once what :meth:`data_to_send` gave is written."""
        return self.state is State.CLOSED

    @property
    def close_code(self) -> int | None:
        sent = self.ws.close_sent
        return None if sent is None else sent.code


def _identify(data: Any) -> Identify:
    if not isinstance(data, dict) or not isinstance(data.get("token"), str):
        raise Invalid(CloseCode.DECODE_ERROR)
    token = data["token"]
    if not 0 < len(token) <= MAX_TOKEN:
        raise Invalid(CloseCode.AUTHENTICATION_FAILED)
    presence = data.get("presence")
    status = "online"
    if presence is not None:
        if not isinstance(presence, dict):
            raise Invalid(CloseCode.DECODE_ERROR)
        status = _status(presence)
    return Identify(token=token, status=status)


def _resume(data: Any) -> Resume:
    if not isinstance(data, dict) or not isinstance(data.get("token"), str):
        raise Invalid(CloseCode.DECODE_ERROR)
    token, positions = data["token"], data.get("positions")
    if not 0 < len(token) <= MAX_TOKEN:
        raise Invalid(CloseCode.AUTHENTICATION_FAILED)
    if not isinstance(positions, dict) or len(positions) > MAX_POSITIONS:
        raise Invalid(CloseCode.DECODE_ERROR)
    for stream, position in positions.items():
        valid = (
            isinstance(stream, str)
            and 0 < len(stream) <= MAX_STREAM
            and type(position) is int
            and 0 <= position < 2**63
        )
        if not valid:
            raise Invalid(CloseCode.DECODE_ERROR)
    return Resume(token=token, positions=positions)


def _status(data: Any) -> str:
    status = data.get("status") if isinstance(data, dict) else None
    if status not in STATUSES:
        raise Invalid(CloseCode.DECODE_ERROR)
    return str(status)
