"""Group commit: batching, per-item outcomes, fallback to one at a time (no database)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from miaou.db.group_commit import GroupCommit


class Refused(Exception):
    pass


class Recorder:
    """A handler that records its batches; odd numbers are refused, 13 breaks the batch."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    async def __call__(self, items: Sequence[int]) -> list[int | BaseException]:
        self.batches.append(list(items))
        await asyncio.sleep(0.001)  # like a transaction: others queue meanwhile
        if 13 in items:
            raise RuntimeError("the whole batch failed")
        return [Refused(i) if i % 2 else i * 10 for i in items]


async def test_concurrent_items_share_batches_and_get_their_own_outcomes() -> None:
    handler = Recorder()
    group: GroupCommit[int, int] = GroupCommit(handler)
    items = [i for i in range(41) if i != 13]
    results = await asyncio.gather(*(group.submit(i) for i in items), return_exceptions=True)
    for i, result in zip(items, results, strict=True):
        if i % 2:
            assert isinstance(result, Refused) and result.args == (i,)
        else:
            assert result == i * 10
    assert len(handler.batches) < 10
    assert sorted(i for batch in handler.batches for i in batch) == items
    assert (group.batches, group.items) == (len(handler.batches), 40)


async def test_batches_respect_the_bound_and_keep_order() -> None:
    handler = Recorder()
    group: GroupCommit[int, int] = GroupCommit(handler, max_batch=8)
    await asyncio.gather(*(group.submit(i * 2) for i in range(30)))
    assert all(len(batch) <= 8 for batch in handler.batches)
    assert [i for batch in handler.batches for i in batch] == [i * 2 for i in range(30)]


async def test_a_failing_batch_is_retried_one_by_one() -> None:
    handler = Recorder()
    group: GroupCommit[int, int] = GroupCommit(handler)
    results = await asyncio.gather(
        *(group.submit(i) for i in (2, 4, 13, 6)), return_exceptions=True
    )
    assert results[0] == 20 and results[1] == 40 and results[3] == 60
    assert isinstance(results[2], RuntimeError)
    assert [2, 4, 13, 6] in handler.batches  # tried together first
    assert [13] in handler.batches and [2] in handler.batches  # then alone


async def test_a_cancelled_caller_does_not_disturb_the_others() -> None:
    handler = Recorder()
    group: GroupCommit[int, int] = GroupCommit(handler)
    first = asyncio.create_task(group.submit(2))
    second = asyncio.create_task(group.submit(4))
    await asyncio.sleep(0)
    first.cancel()
    assert await second == 40
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_an_idle_group_starts_again_on_the_next_submit() -> None:
    handler = Recorder()
    group: GroupCommit[int, int] = GroupCommit(handler)
    assert await group.submit(2) == 20
    await asyncio.sleep(0.01)
    assert await group.submit(4) == 40
    assert handler.batches == [[2], [4]]


def test_the_bound_must_be_positive() -> None:
    with pytest.raises(ValueError):
        GroupCommit(Recorder(), max_batch=0)
