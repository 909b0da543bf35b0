"""One loop timer for every connection's deadline (``miaou.gateway.deadlines``)."""

from __future__ import annotations

import asyncio

from miaou.gateway.deadlines import SLOT_MS, Deadlines, slot_of, slot_start_ms


class Item:
    def __init__(self, name: str, calls: list[tuple[str, int]]) -> None:
        self.name = name
        self.calls = calls
        self.slot: int | None = None

    def on_deadline(self, slot: int) -> None:
        if slot == self.slot:  # a stale filing is ignored, as sessions do
            self.calls.append((self.name, slot))


def test_a_slot_never_starts_before_its_deadline() -> None:
    for deadline in (0, 1, SLOT_MS - 1, SLOT_MS, SLOT_MS + 1, 123_456):
        assert deadline <= slot_start_ms(slot_of(deadline)) < deadline + SLOT_MS


async def test_items_wake_in_deadline_order_and_stale_filings_are_skipped() -> None:
    loop = asyncio.get_running_loop()
    now = int(loop.time() * 1000)
    calls: list[tuple[str, int]] = []
    wheel = Deadlines()
    late, early, moved = Item("late", calls), Item("early", calls), Item("moved", calls)
    # Deadlines two slots apart at least: where ``now`` falls in its slot must not put two
    # of them in one slot (within a slot, items wake in filing order).
    late.slot = wheel.file(late, now + 4 * SLOT_MS)
    early.slot = wheel.file(early, now + 2 * SLOT_MS)
    stale = wheel.file(moved, now + 3 * SLOT_MS)
    moved.slot = wheel.file(moved, now + 10)  # its deadline moved earlier: filed again
    assert len(wheel) == 4
    await asyncio.sleep(6 * SLOT_MS / 1000)
    assert calls == [("moved", moved.slot), ("early", early.slot), ("late", late.slot)]
    assert stale not in [slot for _, slot in calls]
    assert len(wheel) == 0
    woken_at = int(loop.time() * 1000)
    assert woken_at >= now + 4 * SLOT_MS


async def test_an_item_filed_while_slots_fire_is_woken_too() -> None:
    loop = asyncio.get_running_loop()
    calls: list[tuple[str, int]] = []
    wheel = Deadlines()
    second = Item("second", calls)

    class First(Item):
        def on_deadline(self, slot: int) -> None:
            super().on_deadline(slot)
            second.slot = wheel.file(second, int(loop.time() * 1000) + SLOT_MS)

    first = First("first", calls)
    first.slot = wheel.file(first, int(loop.time() * 1000) + 10)
    await asyncio.sleep(4 * SLOT_MS / 1000)
    assert [name for name, _ in calls] == ["first", "second"]
    wheel.close()
