"""The event and the bus interface.

An event has a type, a stream, a position, an origin and a payload (DESIGN.md). Streams
name who may receive it: ``guild:<id>`` (members who can see the guild; the channel in the
payload narrows it), ``user:<id>`` (one user's private events), ``channel:<id>`` (a DM).
Positions are assigned by the durable stream log (``miaou.bus.log``) in the writing
transaction; ephemeral events (typing, presence) have none.

Services publish only after their transaction commits (``chat.service.Outbox``), so a
subscriber never sees an event for a write that was rolled back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import msgspec


class Event(msgspec.Struct, frozen=True, kw_only=True):
    type: str
    stream: str
    payload: Any
    origin: str = "local"
    position: int | None = None
    #: A stream the recipients follow from this event on (a guild joined, a DM opened).
    #: The log stamps the payload with where it starts (``miaou.bus.log.append``).
    follows: str | None = None


class Subscription(Protocol):
    def close(self) -> None: ...


class Bus(Protocol):
    async def publish(self, events: Sequence[Event]) -> None: ...

    def subscribe(self, handler: Callable[[Event], None]) -> Subscription: ...

    async def close(self) -> None: ...
