"""Per-stream delivery state in one gateway process: order, window, subscribers.

Events reach a process from the bus in roughly, not strictly, position order (two nodes
publish independently; Redis pub/sub drops what arrives while a link is down). A
:class:`Stream` hands them on strictly in order, once each: an event past a gap waits in
``early`` until the gap is filled, from the bus or, after ``GAP_WAIT_MS``, from the durable
log. The last ``WINDOW`` encoded frames stay in memory, so most resumes need no database.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING

import msgspec

from miaou.bus import Event

if TYPE_CHECKING:
    from miaou.gateway.audience import Audience
    from miaou.gateway.channel_sight import ChannelBook
    from miaou.gateway.guild_view import GuildView
    from miaou.gateway.transport import Session

WINDOW = 256
MAX_EARLY = 10_000
GAP_WAIT_MS = 50


class Sent(msgspec.Struct, frozen=True, array_like=True):
    """A delivered event as the window keeps it."""

    position: int
    frame: bytes
    channel: int | None  # VIEW_CHANNEL on this channel gates it; None: every subscriber
    #: (stream, position) when the event makes its recipient follow that stream from there.
    follow: tuple[str, int] | None = None
    #: The event may have changed who sees which channel (``channel_sight``): a RESUME whose
    #: replay holds it tells the client to re-read the guild's channels.
    sight: bool = False


class Stream:
    __slots__ = (
        "audiences", "audiences_until", "book", "delivered", "early", "filling", "loaded", "name",
        "subscribers", "view", "window",
    )  # fmt: skip

    def __init__(self, name: str) -> None:
        self.name = name
        #: The position of the last event handed on (valid once ``loaded`` is done).
        self.delivered = 0
        self.subscribers: set[Session] = set()
        self.window: deque[Sent] = deque(maxlen=WINDOW)
        #: Events that arrived before their turn, by position.
        self.early: dict[int, Event] = {}
        #: Set when the starting position (and the guild view) are known.
        self.loaded: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.view: GuildView | None = None
        #: A guild's channels as READY lists them (loaded with the view).
        self.book: ChannelBook | None = None
        self.filling: asyncio.Task[None] | None = None
        #: Recipients of a guild stream's events that change no rule, per (scope, channel):
        #: kept until the subscribers or the rules change, or ``audiences_until`` (epoch ms,
        #: when a timeout ends), so that a message to 1,000 members asks the view once.
        self.audiences: dict[tuple[object, int | None], Audience] = {}
        self.audiences_until: int | None = None

    @property
    def ready(self) -> bool:
        return self.loaded.done() and self.loaded.exception() is None

    def take(self, event: Event) -> list[Event]:
        """Accept ``event`` from the bus; return what is now deliverable, in order."""
        position = event.position
        assert position is not None
        if self.ready and position <= self.delivered:
            return []  # already delivered: a duplicate
        if len(self.early) < MAX_EARLY:
            self.early[position] = event
        if not self.ready:
            return []
        return self.drain()

    def drain(self) -> list[Event]:
        out: list[Event] = []
        for stale in [p for p in self.early if p <= self.delivered]:
            del self.early[stale]
        while (event := self.early.pop(self.delivered + 1, None)) is not None:
            out.append(event)
            self.delivered += 1
        return out

    def missing(self) -> tuple[int, int] | None:
        """The gap ``(after, up_to)`` the log must fill, if events wait past one."""
        if not self.early or not self.ready:
            return None
        first = min(self.early)
        return (self.delivered, first - 1) if first > self.delivered + 1 else None

    def window_after(self, position: int) -> list[Sent] | None:
        """The window's frames after ``position``, or None if it does not reach back that far."""
        if position >= self.delivered:
            return []
        if not self.window or self.window[0].position > position + 1:
            return None
        return [sent for sent in self.window if sent.position > position]
