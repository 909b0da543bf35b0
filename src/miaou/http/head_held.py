"""One write per small HTTP answer: the head is held until the body's first part.

uvicorn's ``RequestResponseCycle`` writes the status line and headers when the app sends
``http.response.start`` and the body when it sends ``http.response.body``, each with its
own ``transport.write``: two system calls, and with TCP_NODELAY two segments that the
client reads separately, for an answer of a few hundred bytes. The node's HTTP protocol
(``miaou.audio.segment_protocol``) gives each cycle a :class:`HeadHeldTransport` instead of
the socket's transport: the head waits and goes out with the first body part in one write;
if no part comes in the same loop pass (a streamed answer that computes its first part),
or the cycle closes the connection first, the head goes out alone then. Writes before the
head (``100 Continue``) and after the first body part pass straight through.

What is relied on in uvicorn's internal cycle (its version range is pinned in
pyproject.toml): it writes through its ``transport`` attribute, sets ``response_started``
before writing the head, and otherwise calls only ``close`` and ``is_closing``.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

# A held head is joined to a body part below this size (one small copy); a larger part
# goes out as a second buffer of the same write.
_JOIN_BELOW: Final = 64 * 1024

_WAITING, _HELD, _SENT = 0, 1, 2


class HeadHeldTransport:
    """The transport as one request's cycle sees it."""

    __slots__ = ("_cycle", "_head", "_state", "_transport")

    def __init__(self, transport: asyncio.Transport, cycle: Any) -> None:
        self._transport = transport
        self._cycle = cycle
        self._head = b""
        self._state = _WAITING

    def write(self, data: bytes) -> None:
        state = self._state
        if state == _HELD:
            self._state = _SENT
            head, self._head = self._head, b""
            if len(data) < _JOIN_BELOW:
                self._transport.write(head + data)
            else:
                self._transport.writelines((head, data))
        elif state == _WAITING and self._cycle.response_started:
            self._state = _HELD
            self._head = data
            asyncio.get_running_loop().call_soon(self.flush)
        else:
            self._transport.write(data)

    def flush(self) -> None:
        """Write a head still held (no-op otherwise)."""
        if self._state == _HELD:
            self._state = _SENT
            head, self._head = self._head, b""
            self._transport.write(head)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()
