"""The recipients of a stream's plain events, and the transports they are written to.

A message to a channel of 1,000 members is 1,000 socket writes, and its last recipients
wait for all the others: every microsecond spent per recipient beside the ``write`` shows
in the tail. Through :meth:`Session.write_now` each recipient costs two method calls and
three objects touched (the session, its protocol state, its transport); the raw
encode-once server of the benchmark touches one. So an :class:`Audience` (the recipient
list the hub keeps per channel, ``miaou.gateway.hub._audience``) also keeps the transports
of those of its sessions that take frames straight away, and writes to them in a loop
that touches nothing else; the others (holding frames, closing, output pending) go
through ``write_now`` as before.

Which sessions take frames straight away changes rarely (READY, a close, a lost
connection, a slow consumer cut off): each such change bumps :attr:`Audience.epoch`
(``Session._direct_is``), and an audience rebuilds its split on its next write when the
epoch moved. A session's ``direct`` transport is set only at the end of a write or flush
that left it READY with nothing queued, so a frame written through it cannot overtake
output of the session's own; the hub never writes through it while frames are queued in
the same pass (the several-frames path of ``Hub._flush`` goes through ``push``).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from miaou.gateway.transport import Session


class Audience(list["Session"]):
    """A list of sessions (the hub's recipients) that writes a frame to all of them."""

    __slots__ = ("_bound", "_epoch", "_others", "_transports")

    #: Bumped whenever a session starts or stops taking frames straight away.
    epoch: ClassVar[int] = 0

    def __init__(self, sessions: list[Session]) -> None:
        super().__init__(sessions)
        self._epoch = -1
        self._transports: list[asyncio.Transport] = []
        self._others: list[Session] = []
        self._bound = 0

    def write(self, frame: bytes) -> None:
        """``frame`` to every session: in one loop for those that take it now."""
        if self._epoch != Audience.epoch:
            self._split()
        bound = self._bound
        for transport in self._transports:
            transport.write(frame)
            if transport.get_write_buffer_size() > bound:
                self._cut_off(transport)
        for session in self._others:
            session.write_now(frame)

    def _split(self) -> None:
        self._epoch = Audience.epoch
        self._transports = [s.direct for s in self if s.direct is not None]
        self._others = [s for s in self if s.direct is None]
        self._bound = self[0].gateway.send_buffer_bytes if self else 0

    def _cut_off(self, transport: asyncio.Transport) -> None:
        for session in self:  # a slow consumer: rare enough to look for its session
            if session.direct is transport:
                session.cut_off(transport)
                return
