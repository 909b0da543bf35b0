"""The subscribers of one bus, and how events are handed to them (every backend alike).

Handlers are called synchronously, each event to every handler before the next event, in
publish order, and in the order the handlers subscribed. A handler must not block (the
gateway's only encodes the frame and queues bytes on transports). A handler that raises is
logged and does not stop delivery to the others, nor of the following events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import structlog

from miaou.bus.base import Event

log = structlog.get_logger("miaou.bus")

Handler = Callable[[Event], None]


class HandlerSubscription:
    """One subscribed handler; :meth:`close` stops its delivery (idempotent)."""

    __slots__ = ("_owner", "handler")

    def __init__(self, owner: Handlers, handler: Handler) -> None:
        self._owner = owner
        self.handler = handler

    def close(self) -> None:
        self._owner._subscriptions.pop(self, None)


class Handlers:
    """The subscriptions of a bus, in subscription order."""

    def __init__(self) -> None:
        # A dict as an ordered set: delivery follows subscription order.
        self._subscriptions: dict[HandlerSubscription, None] = {}

    def __len__(self) -> int:
        return len(self._subscriptions)

    def subscribe(self, handler: Handler) -> HandlerSubscription:
        subscription = HandlerSubscription(self, handler)
        self._subscriptions[subscription] = None
        return subscription

    def deliver(self, events: Iterable[Event]) -> None:
        """Call every handler with each event, in order; failures are logged."""
        for event in events:
            # A snapshot: a handler may subscribe or close (itself or another) meanwhile.
            for subscription in list(self._subscriptions):
                try:
                    subscription.handler(event)
                except Exception:
                    log.exception("bus_handler_failed", event_type=event.type)

    def clear(self) -> None:
        self._subscriptions.clear()
