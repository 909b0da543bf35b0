"""One loop timer for every connection's deadline.

Each gateway connection has a deadline (heartbeat due, IDENTIFY due, close handshake due).
A loop ``TimerHandle`` per connection costs a few hundred bytes and a cancel plus a new
handle on every heartbeat. Here connections are filed in slots of ``SLOT_MS`` and one
timer wakes for the earliest slot. A deadline that moves later (every heartbeat moves it)
costs nothing: the connection stays in its slot and is filed again when the slot comes.
Only a deadline moved earlier than its slot files it again at once; the old filing is then
stale and skipped (each item remembers the slot it counts on).
"""

from __future__ import annotations

import asyncio
import heapq
from typing import Protocol

SLOT_MS = 100


class Timed(Protocol):
    def on_deadline(self, slot: int) -> None:
        """Called once the slot ``slot`` is due; a stale filing must ignore it."""


def slot_of(deadline_ms: int) -> int:
    """The first slot at or after ``deadline_ms``: never wakes a connection early."""
    return -(-deadline_ms // SLOT_MS)


def slot_start_ms(slot: int) -> int:
    return slot * SLOT_MS


class Deadlines:
    def __init__(self) -> None:
        self._slots: dict[int, list[Timed]] = {}
        self._heap: list[int] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_slot: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __len__(self) -> int:
        """Filings waiting, stale ones included (for tests and metrics)."""
        return sum(map(len, self._slots.values()))

    def file(self, item: Timed, deadline_ms: int) -> int:
        """File ``item`` for ``deadline_ms`` (loop time in ms); returns its slot."""
        slot = slot_of(deadline_ms)
        bucket = self._slots.get(slot)
        if bucket is not None:
            bucket.append(item)
            return slot
        self._slots[slot] = [item]
        heapq.heappush(self._heap, slot)
        if self._timer_slot is None or slot < self._timer_slot:
            self._schedule(slot)
        return slot

    def _schedule(self, slot: int) -> None:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        if self._timer is not None:
            self._timer.cancel()
        self._timer_slot = slot
        self._timer = self._loop.call_at(slot_start_ms(slot) / 1000, self._fire)

    def _fire(self) -> None:
        assert self._loop is not None
        self._timer, self._timer_slot = None, None
        now = int(self._loop.time() * 1000)
        while self._heap and slot_start_ms(self._heap[0]) <= now:
            slot = heapq.heappop(self._heap)
            for item in self._slots.pop(slot):
                item.on_deadline(slot)
        if self._heap:
            self._schedule(self._heap[0])

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_slot = None, None
        self._slots.clear()
        self._heap.clear()
