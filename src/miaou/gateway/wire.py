"""WebSocket frames after the handshake, with no per-connection parser object.

websockets' ``ServerProtocol`` keeps a parser generator, a ``StreamReader`` and its own
state for the connection's life: about 1.6 KB per idle connection, half of a gateway
session's budget. Clients send the gateway a few small frames a minute (heartbeats), so a
connection keeps only the bytes of an incomplete frame (usually none) and each arrival is
parsed from its first byte with websockets' own :meth:`Frame.parse` (masking, lengths,
reserved bits, control-frame rules, ``max_size``). A frame split over several reads is
re-read from its start each time; it is at most ``max_size`` plus a 14-byte header, and
the gateway's frames are far smaller.
"""

from __future__ import annotations

from websockets.exceptions import PayloadTooBig, ProtocolError
from websockets.frames import Close, Frame, Opcode
from websockets.streams import StreamReader

HANDSHAKE_END = b"\r\n\r\n"


class Failure(Exception):
    """The peer broke the protocol: fail the connection with ``code`` (RFC 6455 7.4.1)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def read_frames(data: bytes, max_size: int) -> tuple[list[Frame], bytes, Failure | None]:
    """The complete frames at the start of ``data``, the bytes of an incomplete last one,
    and the failure that stopped the reading, if any (the frames before it stand)."""
    reader = StreamReader()
    reader.feed_data(data)
    frames: list[Frame] = []
    while left := len(reader.buffer):
        parser = Frame.parse(reader.read_exact, mask=True, max_size=max_size)
        try:
            next(parser)
        except StopIteration as done:
            frames.append(done.value)
            continue
        except PayloadTooBig as exc:
            return frames, b"", Failure(1009, str(exc))
        except ProtocolError as exc:
            return frames, b"", Failure(1002, str(exc))
        return frames, data[len(data) - left :], None
    return frames, b"", None


def close_payload(data: bytes) -> Close | None:
    """A received close frame's code and reason (None: it had none), or :class:`Failure`."""
    try:
        return Close.parse(data) if data else None
    except UnicodeDecodeError as exc:
        raise Failure(1007, "invalid UTF-8 in the close reason") from exc
    except ProtocolError as exc:
        raise Failure(1002, str(exc)) from exc


def close_frame(code: int | None, reason: str = "") -> bytes:
    """A server close frame; ``None`` answers a close that carried no code."""
    data = b"" if code is None else Close(code, reason).serialize()
    return Frame(Opcode.CLOSE, data).serialize(mask=False)


def pong_frame(data: bytes) -> bytes:
    return Frame(Opcode.PONG, data).serialize(mask=False)


def split_handshake(seen_tail: bytes, data: bytes) -> int | None:
    """Where the HTTP request ends in ``data`` (an index just past its blank line), given
    the last bytes of the request seen before it; None if not in ``data``."""
    at = (seen_tail + data).find(HANDSHAKE_END)
    return None if at < 0 else at + len(HANDSHAKE_END) - len(seen_tail)
