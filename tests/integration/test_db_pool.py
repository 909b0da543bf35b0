"""A transaction's connection is back in the pool when its block ends, on both engines."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import event, text

from miaou.db.engine import Database


async def test_a_transaction_starts_no_task(db: Database) -> None:
    """SQLAlchemy closes a connection in a task of its own (shielded from cancellation);
    ours close in place, so a transaction costs no task and no extra loop pass."""
    loop = asyncio.get_running_loop()
    made: list[object] = []
    default = loop.get_task_factory()

    def factory(loop_: asyncio.AbstractEventLoop, coro: Any, **kw: Any) -> asyncio.Future[Any]:
        made.append(coro)
        if default is not None:
            return default(loop_, coro, **kw)  # type: ignore[arg-type]
        return asyncio.Task(coro, loop=loop_, **kw)

    loop.set_task_factory(factory)  # type: ignore[arg-type]
    try:
        for _ in range(3):
            async with db.read() as conn:
                await conn.execute(text("SELECT 1"))
            async with db.write() as conn:
                await conn.execute(text("SELECT 1"))
    finally:
        loop.set_task_factory(default)
    assert made == []


@pytest.mark.database_kinds("sqlite")
async def test_readers_inline_share_one_connection(db: Database) -> None:
    """On SQLite (statements inline, nothing to wait for) many tasks reading at once share
    one connection. When the connection came back a loop pass late, every task took another
    meanwhile: a burst of 1,000 IDENTIFYs opened 747, each with its own page and statement
    caches."""
    await db.engine.dispose()  # the migration's connections: count from none
    opened = 0

    def count(*_: object) -> None:
        nonlocal opened
        opened += 1

    event.listen(db.engine.sync_engine, "connect", count)

    async def reader() -> None:
        for _ in range(5):
            async with db.read() as conn:
                assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
            await asyncio.sleep(0)

    await asyncio.gather(*(reader() for _ in range(50)))
    assert opened == 1


async def test_a_write_that_fails_gives_its_connection_back(db: Database) -> None:
    await db.engine.dispose()
    for _ in range(3):
        try:
            async with db.write() as conn:
                await conn.execute(text("SELECT 1"))
                raise KeyError("the caller's own error")
        except KeyError:
            pass
    async with db.read() as conn:
        assert (await conn.execute(text("SELECT 2"))).scalar_one() == 2
    pool = db.engine.sync_engine.pool
    assert pool.checkedout() == 0  # type: ignore[attr-defined]
