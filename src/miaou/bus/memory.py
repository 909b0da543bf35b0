"""In-process bus: one node, every subscriber called in publish order.

Handlers run synchronously inside ``publish`` and must not block: the gateway's handler
only encodes the frame and queues bytes on transports. A handler that raises is logged and
does not stop delivery to the others (``miaou.bus.handlers``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from miaou.bus.base import Event
from miaou.bus.handlers import Handlers, HandlerSubscription


class MemoryBus:
    def __init__(self) -> None:
        self._handlers = Handlers()

    async def publish(self, events: Sequence[Event]) -> None:
        self._handlers.deliver(events)

    def subscribe(self, handler: Callable[[Event], None]) -> HandlerSubscription:
        return self._handlers.subscribe(handler)

    async def close(self) -> None:
        self._handlers.clear()
