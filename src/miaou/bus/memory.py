"""In-process bus: one node, every subscriber called in publish order.

Handlers run synchronously inside ``publish`` and must not block: the gateway's handler
only encodes the frame and queues bytes on transports. A handler that raises is logged and
does not stop delivery to the others.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import structlog

from miaou.bus.base import Event

log = structlog.get_logger("miaou.bus")


class _Subscription:
    def __init__(self, bus: MemoryBus, handler: Callable[[Event], None]) -> None:
        self._bus = bus
        self.handler = handler

    def close(self) -> None:
        self._bus._subscribers.discard(self)


class MemoryBus:
    def __init__(self) -> None:
        self._subscribers: set[_Subscription] = set()

    async def publish(self, events: Sequence[Event]) -> None:
        for event in events:
            for subscription in list(self._subscribers):
                try:
                    subscription.handler(event)
                except Exception:
                    log.exception("bus_handler_failed", event_type=event.type)

    def subscribe(self, handler: Callable[[Event], None]) -> _Subscription:
        subscription = _Subscription(self, handler)
        self._subscribers.add(subscription)
        return subscription

    async def close(self) -> None:
        self._subscribers.clear()
