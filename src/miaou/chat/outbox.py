"""Write transactions that publish their events after commit (Zulip's rule).

    async with outbox.write() as (conn, events):
        ... write rows ...
        events.append(Event(...))
    # committed here; the events are now on the bus

If the block raises, the transaction rolls back and nothing is published. Just before commit
the events get their stream positions and are stored in the durable log (``miaou.bus.log``),
in the same transaction as the rows they describe.

Ephemeral events (typing, presence) are not written anywhere: :meth:`Outbox.announce`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from miaou.bus import Bus, Event, log
from miaou.db.engine import Database
from miaou.errors import Unavailable
from miaou.ids import now_ms

logger = structlog.get_logger("miaou.outbox")


class Outbox:
    def __init__(self, db: Database, bus: Bus, origin: str = "local") -> None:
        self.db = db
        self.bus = bus
        self.origin = origin

    @asynccontextmanager
    async def write(self) -> AsyncIterator[tuple[AsyncConnection, list[Event]]]:
        events: list[Event] = []
        async with self.db.write() as conn:
            yield conn, events
            if events:
                events[:] = await log.append(conn, events, now_ms())
        await self.publish_logged(events)

    async def publish_logged(self, events: list[Event]) -> None:
        """Publish events that a committed statement already logged (positioned), as
        :meth:`write` publishes its own after commit."""
        if events:
            await self._publish(events)

    async def _publish(self, events: list[Event]) -> None:
        """After commit the write stands whatever happens here: a bus failure (Redis down)
        is logged, not raised; other nodes' gateways recover the events from the stream log
        (on the stream's next event or when their bus reconnects)."""
        try:
            await self.bus.publish(events)
        except Unavailable:
            logger.warning("publish_failed", events=len(events))

    async def announce(self, event: Event) -> None:
        """Publish an ephemeral event: no position, not logged, not replayed on resume."""
        await self._publish([event])

    def event(
        self, type_: str, stream: str, payload: object, *, follows: str | None = None
    ) -> Event:
        """``follows``: a stream the recipients start following (see ``miaou.bus.log``)."""
        return Event(
            type=type_, stream=stream, payload=payload, origin=self.origin, follows=follows
        )


def guild_stream(guild_id: int) -> str:
    return f"guild:{guild_id}"


def guild_id_of(stream: str) -> int | None:
    """The guild of a ``guild:`` stream (:func:`guild_stream`'s inverse); None for others."""
    kind, _, ident = stream.partition(":")
    return int(ident) if kind == "guild" else None


def user_stream(user_id: int) -> str:
    return f"user:{user_id}"


def channel_stream(channel_id: int) -> str:
    return f"channel:{channel_id}"
