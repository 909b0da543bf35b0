"""Gateway opcodes, close codes and frame encoding (docs/gateway.md).

A dispatch is encoded once into a complete WebSocket frame: the gateway JSON around the
already-encoded payload, then the frame header. Server frames are never masked and the
server negotiates no compression, so the same bytes are valid on every connection.
"""

from __future__ import annotations

import enum
from typing import Any

import msgspec
from websockets.frames import Frame, Opcode

_encoder = msgspec.json.Encoder()


class Op(enum.IntEnum):
    DISPATCH = 0
    HEARTBEAT = 1
    IDENTIFY = 2
    PRESENCE_UPDATE = 3
    RESUME = 6
    RECONNECT = 7
    INVALID_SESSION = 9
    HELLO = 10
    HEARTBEAT_ACK = 11


class CloseCode(enum.IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001
    MESSAGE_TOO_BIG = 1009
    UNKNOWN_ERROR = 4000
    UNKNOWN_OPCODE = 4001
    DECODE_ERROR = 4002
    NOT_AUTHENTICATED = 4003
    AUTHENTICATION_FAILED = 4004
    ALREADY_AUTHENTICATED = 4005
    RATE_LIMITED = 4008
    SESSION_TIMED_OUT = 4009
    SLOW_CONSUMER = 4010


CLOSE_REASONS = {
    CloseCode.UNKNOWN_ERROR: "unknown error",
    CloseCode.UNKNOWN_OPCODE: "unknown opcode",
    CloseCode.DECODE_ERROR: "decode error",
    CloseCode.NOT_AUTHENTICATED: "not authenticated",
    CloseCode.AUTHENTICATION_FAILED: "authentication failed",
    CloseCode.ALREADY_AUTHENTICATED: "already authenticated",
    CloseCode.RATE_LIMITED: "rate limited",
    CloseCode.SESSION_TIMED_OUT: "session timed out",
    CloseCode.SLOW_CONSUMER: "slow consumer",
    CloseCode.GOING_AWAY: "going away",
}


def text_frame(payload: bytes) -> bytes:
    """One unmasked, final TEXT frame carrying ``payload`` (UTF-8 JSON)."""
    return Frame(Opcode.TEXT, payload).serialize(mask=False, extensions=[])


def dispatch_payload(type_: str, data: bytes, position: int | None, stream: str | None) -> bytes:
    """The gateway JSON of a dispatch, around ``data`` (the event's JSON, not re-encoded)."""
    head = b'{"op":0,"t":' + _encoder.encode(type_)
    head += b',"s":' + (b"null" if position is None else str(position).encode())
    head += b',"st":' + (b"null" if stream is None else _encoder.encode(stream))
    return head + b',"d":' + data + b"}"


def dispatch_frame(type_: str, data: bytes, position: int | None, stream: str | None) -> bytes:
    return text_frame(dispatch_payload(type_, data, position, stream))


def encode(value: Any) -> bytes:
    return _encoder.encode(value)


def op_frame(op: Op, data: Any = None) -> bytes:
    """A non-dispatch frame (HELLO, HEARTBEAT_ACK, RECONNECT, INVALID_SESSION)."""
    head = b'{"op":' + str(int(op)).encode() + b',"t":null,"s":null,"d":'
    return text_frame(head + _encoder.encode(data) + b"}")
