"""Group commit: many callers' writes done in one transaction, each told its own outcome.

A transaction has a fixed cost (BEGIN, COMMIT, on SQLite the write lock, on PostgreSQL a
WAL flush) that dwarfs one small insert. Callers :meth:`GroupCommit.submit` an item and
wait; one drain task takes the items queued meanwhile and hands them to the ``handler``
together, which writes them in one transaction and returns one outcome per item, in order.
While a batch is being written the next one gathers, so batches grow with the load and
an idle node pays one loop pass of delay.

Outcomes are values: a handler returns an exception *instance* for an item it refuses (a
permission error, say), which is raised to that caller only. If the handler itself raises,
the batch is retried one item at a time, so one item's fault reaches only its caller.

A caller that is cancelled while waiting does not withdraw its item: it may still be
committed (as a request whose client went away after sending it).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

Handler = Callable[[Sequence[T]], Awaitable[Sequence[R | BaseException]]]


class GroupCommit(Generic[T, R]):
    def __init__(self, handler: Handler[T, R], *, max_batch: int = 100) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._handler = handler
        self._max_batch = max_batch
        self._queue: deque[tuple[T, asyncio.Future[R]]] = deque()
        self._drainer: asyncio.Task[None] | None = None
        #: Batches written so far and the items in them, for metrics and tests.
        self.batches = 0
        self.items = 0
        #: Told each written batch's size (a metrics hook).
        self.on_batch: Callable[[int], None] | None = None

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._drainer is None:
            self._drainer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            # One loop pass, so that the requests read in this pass join the first batch.
            await asyncio.sleep(0)
            while self._queue:
                size = min(len(self._queue), self._max_batch)
                batch = [self._queue.popleft() for _ in range(size)]
                await self._write(batch)
        except BaseException as exc:
            # Shutting down (cancelled): nobody is left to write what is queued.
            for _, future in self._queue:
                if not future.done():
                    future.set_exception(exc)
            self._queue.clear()
            raise
        finally:
            self._drainer = None

    async def _write(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            outcomes = await self._handler([item for item, _ in batch])
            if len(outcomes) != len(batch):
                raise RuntimeError(f"{len(outcomes)} outcomes for {len(batch)} items")
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][1], exc)
                return
            for one in batch:
                await self._write([one])
            return
        self.batches += 1
        self.items += len(batch)
        if self.on_batch is not None:
            self.on_batch(len(batch))
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            _settle(future, outcome)


def _settle(future: asyncio.Future[R], outcome: R | BaseException) -> None:
    if future.done():  # the caller was cancelled
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
