"""One gateway connection as a sans-I/O state machine: bytes in, bytes and requests out.

Like ``websockets``' own protocol objects (its ``ServerProtocol`` answers the HTTP
handshake and its frame parser reads the frames, see ``miaou.gateway.wire``) it does no
I/O and reads no clock: the caller passes ``now`` (milliseconds) to every call, writes
what :meth:`GatewayConnection.data_to_send` returns, acts on
:meth:`GatewayConnection.requests` (IDENTIFY, RESUME and PRESENCE_UPDATE need the node),
and calls :meth:`GatewayConnection.handle_timer` at :attr:`GatewayConnection.deadline`. Every
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
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

from miaou.gateway.frames import CLOSE_REASONS, CloseCode, Op, op_frame, text_frame
from miaou.gateway.wire import (
    Failure,
    close_frame,
    close_payload,
    pong_frame,
    read_frames,
    split_handshake,
)

PATH = "/gateway"
MAX_FRAME_BYTES = 65_536
HANDSHAKE_TIMEOUT_MS = 10_000
IDENTIFY_TIMEOUT_MS = 20_000
# From IDENTIFY / RESUME to READY is the node's time (database, Redis): a client is not
# failed as "not authenticated" for a busy node, but a session stuck there still ends.
AUTHENTICATE_TIMEOUT_MS = 60_000
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


# A member lookup on an Enum class costs ~200 ns on CPython 3.11 (a descriptor call); the
# per-recipient paths (send, closed) compare with these instead.
_READY = State.READY
_CLOSED = State.CLOSED


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
        "_close_sent",
        "_fragments",
        "_out",
        "_pending",
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
        #: websockets' handshake, dropped once answered (frames are read by ``wire``).
        self.ws: ServerProtocol | None = ServerProtocol(max_size=MAX_FRAME_BYTES, logger=_quiet)
        self.heartbeat_ms = heartbeat_ms
        self.state = State.HANDSHAKE
        #: When :meth:`handle_timer` must next run (milliseconds), or None.
        self.deadline: int | None = now + HANDSHAKE_TIMEOUT_MS
        # Both None when empty: an empty list costs 56 bytes on every idle connection.
        self._out: list[bytes] | None = None
        self._requests: list[Request_] | None = None
        self._fragments: list[bytes] | None = None
        #: During the handshake the request's last bytes (to find its end across reads);
        #: after it, the bytes of an incomplete frame.
        self._pending = b""
        self._close_sent: int | None = None
        self._window_start = now
        self._window_count = 0
        self._presences = 0

    # -- input -------------------------------------------------------------------------
    def receive_data(self, data: bytes, now: int) -> None:
        if self.state is State.HANDSHAKE:
            self._receive_handshake(data, now)
        elif self.state is not State.CLOSED:
            self._receive_frames(data, now)

    def receive_eof(self, now: int) -> None:
        if self.ws is not None:
            self.ws.receive_eof()
            self._collect()
        self._closed()

    def _receive_handshake(self, data: bytes, now: int) -> None:
        ws = self.ws
        assert ws is not None
        cut = split_handshake(self._pending, data)
        head, rest = (data, b"") if cut is None else (data[:cut], data[cut:])
        self._pending = (self._pending + head)[-3:]
        ws.receive_data(head)
        for event in ws.events_received():
            if isinstance(event, Request):
                self._handshake(event, ws, now)
        self._collect()
        if self.state is State.WAITING:
            self.ws, self._pending = None, b""
            if rest:  # the client did not wait for the answer (RFC 6455 4.1 says it must)
                self._receive_frames(rest, now)

    def _handshake(self, request: Request, ws: ServerProtocol, now: int) -> None:
        if urlsplit(request.path).path != PATH:
            response = ws.reject(404, "Not Found\n")
        else:
            response = ws.accept(request)
        ws.send_response(response)
        self._collect()
        if response.status_code != 101:
            self._closed()
            return
        self.state = State.WAITING
        self.deadline = now + IDENTIFY_TIMEOUT_MS
        self._queue(op_frame(Op.HELLO, {"heartbeat_interval": self.heartbeat_ms}))

    def _receive_frames(self, data: bytes, now: int) -> None:
        frames, self._pending, failure = read_frames(self._pending + data, MAX_FRAME_BYTES)
        for frame in frames:
            try:
                self._frame(frame, now)
            except Failure as failed:
                failure = failed
                break
            if self.state is State.CLOSED:
                return
        if failure is not None:
            self._fail(failure)

    def _frame(self, frame: Frame, now: int) -> None:
        opcode = frame.opcode
        if opcode is Opcode.PING:
            if self.state is not State.CLOSING:
                self._queue(pong_frame(bytes(frame.data)))
            return
        if opcode is Opcode.PONG:
            return
        if opcode is Opcode.CLOSE:
            received = close_payload(bytes(frame.data))
            if self.state is not State.CLOSING:  # the client closes: echo it (RFC 6455 5.5.1)
                self._queue(Frame(Opcode.CLOSE, frame.data).serialize(mask=False))
                self._close_sent = None if received is None else received.code
            self._closed()  # the transport closes once the echo is written
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
        """Whole text messages, at most ``MAX_FRAME_BYTES`` in all; binary is refused."""
        opcode = frame.opcode
        if opcode is Opcode.CONT:
            if self._fragments is None:
                raise Failure(1002, "unexpected continuation frame")
            self._fragments.append(bytes(frame.data))
            if sum(map(len, self._fragments)) > MAX_FRAME_BYTES:
                raise Failure(1009, "message too big")
            if not frame.fin:
                return None
            whole, self._fragments = b"".join(self._fragments), None
            return whole
        if self._fragments is not None:
            raise Failure(1002, "expected a continuation frame")
        if opcode is Opcode.BINARY:
            raise Invalid(CloseCode.DECODE_ERROR)
        if frame.fin:
            return bytes(frame.data)
        self._fragments = [bytes(frame.data)]
        return None

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
            self._queue(op_frame(Op.HEARTBEAT_ACK))
            if self.state is State.READY:
                self.deadline = now + self.heartbeat_ms * 3 // 2
            return
        if op in (Op.IDENTIFY, Op.RESUME):
            if self.state is not State.WAITING:
                raise Invalid(CloseCode.ALREADY_AUTHENTICATED)
            request: Request_ = _identify(frame.d) if op == Op.IDENTIFY else _resume(frame.d)
            self.state = State.AUTHENTICATING
            self.deadline = now + AUTHENTICATE_TIMEOUT_MS
            self._request(request)
            return
        if op == Op.PRESENCE_UPDATE:
            if self.state is not State.READY:
                raise Invalid(CloseCode.NOT_AUTHENTICATED)
            self._presences += 1
            if self._presences > RATE_PRESENCE:
                raise Invalid(CloseCode.RATE_LIMITED)
            self._request(PresenceUpdate(_status(frame.d)))
            return
        if self.state is not State.READY:
            raise Invalid(CloseCode.NOT_AUTHENTICATED)
        raise Invalid(CloseCode.UNKNOWN_OPCODE)

    # -- what the node decides ---------------------------------------------------------
    def requests(self) -> list[Request_]:
        requests, self._requests = self._requests, None
        return requests or []

    def accept_session(self, ready: bytes, now: int) -> None:
        """The token was good: send READY (or RESUMED, a pre-built dispatch frame)."""
        if self.state is not State.AUTHENTICATING:
            return
        self.state = State.READY
        self.deadline = now + self.heartbeat_ms * 3 // 2
        self._queue(ready)

    def invalid_session(self, now: int) -> None:
        """RESUME could not be honoured: tell the client to IDENTIFY afresh."""
        if self.state is State.AUTHENTICATING:
            self._queue(op_frame(Op.INVALID_SESSION, False))
            self.state = State.WAITING
            self.deadline = now + IDENTIFY_TIMEOUT_MS

    def send(self, frame: bytes) -> None:
        """Queue a complete pre-encoded frame (a dispatch built once for many)."""
        if self.state is _READY:  # once per recipient of a broadcast: kept lean
            out = self._out
            if out is None:
                self._out = [frame]
            else:
                out.append(frame)

    def send_now(self, frame: bytes) -> bytes | None:
        """A pre-encoded frame to write at once, or None: dropped (not READY), or queued
        behind output not taken yet (:meth:`data_to_send` then has it, in order)."""
        if self.state is not _READY:
            return None
        out = self._out
        if out is None:
            return frame
        out.append(frame)
        return None

    def send_json(self, payload: bytes) -> None:
        if self.state is State.READY:
            self._queue(text_frame(payload))

    def reconnect(self, now: int) -> None:
        """The node is going away: ask the client to RESUME elsewhere, then close 1001."""
        if self.state in (State.WAITING, State.AUTHENTICATING, State.READY):
            self._queue(op_frame(Op.RECONNECT))
        self.close(CloseCode.GOING_AWAY, now)

    def close(self, code: CloseCode, now: int) -> None:
        if self.state in (State.CLOSING, State.CLOSED):
            return
        if self.state is State.HANDSHAKE:
            self._closed()
            return
        self._queue(close_frame(int(code), CLOSE_REASONS.get(code, "")))
        self._close_sent = int(code)
        self.state = State.CLOSING
        self.deadline = now + CLOSE_TIMEOUT_MS

    def _fail(self, failure: Failure) -> None:
        """A protocol error: send the close frame and end the connection at once."""
        self._queue(close_frame(failure.code, failure.reason[:100]))
        self._close_sent = failure.code
        self._closed()

    def _closed(self) -> None:
        self.state = State.CLOSED
        self.deadline = None
        self._fragments = None
        self._pending = b""

    def handle_timer(self, now: int) -> None:
        if self.deadline is None or now < self.deadline:
            return
        if self.state is State.CLOSING or self.state is State.HANDSHAKE:
            self._closed()  # the peer did not finish closing: drop the socket
        elif self.state is State.READY:
            self.close(CloseCode.SESSION_TIMED_OUT, now)
        elif self.state is State.WAITING:
            self.close(CloseCode.NOT_AUTHENTICATED, now)
        elif self.state is State.AUTHENTICATING:
            self.close(CloseCode.UNKNOWN_ERROR, now)

    # -- output ------------------------------------------------------------------------
    def _collect(self) -> None:
        """What websockets wrote during the handshake (the HTTP answer, or an end)."""
        assert self.ws is not None
        for data in self.ws.data_to_send():
            if data:
                self._queue(data)
            else:  # SEND_EOF: websockets refused the request
                self._closed()

    def _queue(self, data: bytes) -> None:
        if self._out is None:
            self._out = [data]
        else:
            self._out.append(data)

    def _request(self, request: Request_) -> None:
        if self._requests is None:
            self._requests = [request]
        else:
            self._requests.append(request)

    @property
    def takes_frames_now(self) -> bool:
        """READY with nothing queued: a broadcast frame written now goes out in order."""
        return self.state is _READY and self._out is None

    def data_to_send(self) -> list[bytes]:
        out, self._out = self._out, None
        return out or []

    @property
    def closed(self) -> bool:
        """The transport should be closed once what :meth:`data_to_send` gave is written."""
        return self.state is _CLOSED

    @property
    def close_code(self) -> int | None:
        """The code of the close frame this side sent, if any."""
        return self._close_sent


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
