"""SQLite's WAL is copied into the database file by the node's background checkpointer,
not by the commit that happens to take the WAL past 1,000 pages (which then answered its
request late: the p99 of an isolated send)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text

from miaou.db.engine import Database

BLOB = 100_000  # bytes per row: 60 rows are ~1,500 pages, past SQLite's default threshold


async def write_rows(db: Database, count: int) -> None:
    for _ in range(count):
        async with db.write() as conn:
            await conn.execute(text("INSERT INTO blobs VALUES (randomblob(:n))"), {"n": BLOB})


async def test_commits_leave_the_copy_to_the_background_checkpointer(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    assert db.checkpointer is not None
    db.checkpointer.every_s = 0.05
    try:
        async with db.write() as conn:
            await conn.execute(text("CREATE TABLE blobs (b BLOB)"))
        await write_rows(db, 60)
        # Everything is still in the -wal file: no commit copied it over.
        assert path.stat().st_size < BLOB
        db.checkpointer.start()
        for _ in range(200):  # up to 10 s
            # The thread writes the file a moment before the loop counts its round.
            if path.stat().st_size >= 60 * BLOB and db.checkpointer.rounds >= 1:
                break
            await asyncio.sleep(0.05)
        assert path.stat().st_size >= 60 * BLOB
        assert db.checkpointer.rounds >= 1
        rounds = db.checkpointer.rounds
        await asyncio.sleep(0.3)  # nothing committed since: no round
        assert db.checkpointer.rounds == rounds
        async with db.read() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM blobs"))).scalar_one() == 60
    finally:
        await db.close()


async def test_an_in_memory_database_has_no_checkpointer() -> None:
    db = Database("sqlite+aiosqlite:///:memory:")
    try:
        assert db.checkpointer is None
    finally:
        await db.close()
