"""SQLite calls run inline on the event loop, in the caller's greenlet (no greenlet per
statement), except in transactions marked ``offload``."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import greenlet
import pytest
from sqlalchemy import text

from miaou.db.engine import Database

# About a quarter of a second of SQLite work on this machine, with no table needed.
LONG_QUERY = text(
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500000) "
    "SELECT count(*) FROM n"
)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'inline.db'}")
    yield database
    await database.close()


async def thread_of_statements(db: Database, *, offload: bool) -> int:
    async with db.read(offload=offload) as conn:
        raw = await conn.get_raw_connection()
        raw.driver_connection.create_function(  # type: ignore[union-attr]
            "thread_ident", 0, threading.get_ident
        )
        return int((await conn.execute(text("SELECT thread_ident()"))).scalar_one())


async def test_statements_run_in_the_callers_greenlet(db: Database) -> None:
    """SQLAlchemy's async engine would start a greenlet per statement (a fresh frame stack
    mapped and unmapped each time); inline there is nothing to wait for, so none."""
    caller = greenlet.getcurrent()
    async with db.write() as conn:
        raw = await conn.get_raw_connection()
        raw.driver_connection.create_function(  # type: ignore[union-attr]
            "in_caller", 0, lambda: int(greenlet.getcurrent() is caller)
        )
        assert (await conn.execute(text("SELECT in_caller()"))).scalar_one() == 1
        await conn.execute(text("CREATE TABLE t (n INTEGER)"))
        await conn.execute(text("INSERT INTO t VALUES (1), (2)"))
    async with db.read() as conn:
        assert (await conn.execute(text("SELECT sum(n) FROM t"))).scalar_one() == 3


async def test_statements_run_on_the_event_loop_thread(db: Database) -> None:
    assert await thread_of_statements(db, offload=False) == threading.get_ident()


async def test_offloaded_statements_run_elsewhere_and_the_connection_returns_inline(
    db: Database,
) -> None:
    assert await thread_of_statements(db, offload=True) != threading.get_ident()
    # The pool hands out the same connection again: it must be back to inline.
    assert await thread_of_statements(db, offload=False) == threading.get_ident()


async def test_a_long_offloaded_query_leaves_the_loop_free(db: Database) -> None:
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        deadline = time.monotonic() + 30
        while not stop.is_set() and time.monotonic() < deadline:
            ticks += 1
            await asyncio.sleep(0.005)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    started = time.monotonic()
    async with db.read(offload=True) as conn:
        assert (await conn.execute(LONG_QUERY)).scalar_one() == 1_500_000
    took = time.monotonic() - started
    stop.set()
    await task
    # Inline, the ticker could not have run at all while the query did.
    assert ticks >= max(3, int(took / 0.005 / 4))


async def test_writers_of_one_process_queue_instead_of_blocking(db: Database) -> None:
    """A write transaction that yields to the loop mid-way does not stall the next one
    in an inline BEGIN IMMEDIATE (which would block the loop until the busy timeout)."""
    async with db.write() as conn:
        await conn.execute(text("CREATE TABLE counter (n INTEGER NOT NULL)"))
        await conn.execute(text("INSERT INTO counter VALUES (0)"))

    async def increment() -> None:
        async with db.write() as conn:
            n = (await conn.execute(text("SELECT n FROM counter"))).scalar_one()
            await asyncio.sleep(0.01)
            await conn.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})

    started = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(increment() for _ in range(10))), timeout=9)
    assert time.monotonic() - started < 5
    async with db.read() as conn:
        assert (await conn.execute(text("SELECT n FROM counter"))).scalar_one() == 10


async def test_writers_share_one_connection_and_a_failed_transaction_leaves_nothing(
    db: Database,
) -> None:
    pool = db.engine.sync_engine.pool
    async with db.write() as conn:
        await conn.execute(text("CREATE TABLE t (n INTEGER NOT NULL)"))
    assert pool.checkedout() == 1  # not back in the pool: kept for the next writer
    async with db.write() as conn:
        await conn.execute(text("INSERT INTO t VALUES (1)"))
    async with db.read():
        assert pool.checkedout() == 2  # a reader takes another

    with pytest.raises(RuntimeError):
        async with db.write() as conn:
            await conn.execute(text("INSERT INTO t VALUES (2)"))
            raise RuntimeError("refused half-way")
    with pytest.raises(asyncio.CancelledError):
        async with db.write() as conn:
            await conn.execute(text("INSERT INTO t VALUES (3)"))
            raise asyncio.CancelledError
    assert pool.checkedout() == 0  # the failed transactions' connection went back

    async with db.write() as conn:  # a fresh start after each failure
        await conn.execute(text("INSERT INTO t VALUES (4)"))
    async with db.read() as conn:
        assert (await conn.execute(text("SELECT n FROM t ORDER BY n"))).scalars().all() == [1, 4]
