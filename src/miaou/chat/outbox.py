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

from sqlalchemy.ext.asyncio import AsyncConnection

from miaou.bus import Bus, Event, log
from miaou.db.engine import Database
from miaou.ids import now_ms


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
        if events:
            await self.bus.publish(events)

    async def announce(self, event: Event) -> None:
        """Publish an ephemeral event: no position, not logged, not replayed on resume."""
        await self.bus.publish([event])

    def event(self, type_: str, stream: str, payload: object) -> Event:
        return Event(type=type_, stream=stream, payload=payload, origin=self.origin)


def guild_stream(guild_id: int) -> str:
    return f"guild:{guild_id}"


def user_stream(user_id: int) -> str:
    return f"user:{user_id}"


def channel_stream(channel_id: int) -> str:
    return f"channel:{channel_id}"
