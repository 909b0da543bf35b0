"""Storage: migrations, schema, engine settings and account queries, on every database kind."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import delete, func, select, text

from miaou import ids
from miaou.accounts import store
from miaou.db import migrate
from miaou.db.engine import Database
from miaou.db.metadata import registration_invites, sessions, users
from miaou.db.schema import metadata
from miaou.errors import Conflict


def user_values(name: str, **extra: object) -> dict[str, object]:
    return {
        "id": ids.new_id(),
        "username": name,
        "username_key": name.casefold(),
        "display_name": None,
        "bio": "",
        "password_hash": "x",
        "created_at": 1,
        "updated_at": 1,
        **extra,
    }


async def test_fresh_database_is_not_current_until_migrated(empty_database_url: str) -> None:
    database = Database(empty_database_url)
    try:
        assert await migrate.current_revisions(database) == set()
        assert not await migrate.is_current(database)
        await migrate.upgrade(database)
        assert await migrate.is_current(database)
        await migrate.upgrade(database)  # idempotent
        assert await migrate.current_revisions(database) == migrate.head_revisions()
    finally:
        await database.close()


def not_search_index(obj: object, name: str | None, type_: str, *_: object) -> bool:
    """The same filter as migrations/env.py: search objects are not in the metadata."""
    if type_ == "table":
        return not (name or "").startswith("messages_fts")
    return name not in ("search_vector", "ix_messages_search_vector")


async def test_migrated_schema_matches_the_tables_in_code(db: Database) -> None:
    def diff(sync_conn: object) -> list[object]:
        opts = {"compare_type": True, "include_object": not_search_index}
        context = MigrationContext.configure(sync_conn, opts=opts)
        return list(compare_metadata(context, metadata))

    async with db.read() as conn:
        differences = await conn.run_sync(diff)
    assert differences == []


async def test_downgrade_then_upgrade_round_trips(db: Database) -> None:
    await migrate.downgrade(db, "base")
    assert await migrate.current_revisions(db) == set()
    await migrate.upgrade(db)
    assert await migrate.is_current(db)


async def test_sqlite_runs_in_wal_with_foreign_keys(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'pragmas.db'}")
    try:
        async with db.read() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
            assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() == 10000
    finally:
        await db.close()


async def test_username_key_is_unique_in_the_database(db: Database) -> None:
    async with db.write() as conn:
        await store.insert_user(conn, **user_values("alice"))
    with pytest.raises(Conflict):
        async with db.write() as conn:
            await store.insert_user(conn, **user_values("alice"))
    async with db.read() as conn:
        count = (await conn.execute(select(func.count()).select_from(users))).scalar()
    assert count == 1


async def test_deleting_a_user_deletes_their_sessions(db: Database) -> None:
    values = user_values("bob")
    async with db.write() as conn:
        await store.insert_user(conn, **values)
        await store.insert_session(
            conn,
            id=ids.new_id(),
            user_id=values["id"],
            token_hash=b"h" * 32,
            created_at=1,
            last_used_at=1,
        )
    async with db.write() as conn:
        await conn.execute(delete(users).where(users.c.id == values["id"]))
    async with db.read() as conn:
        left = (await conn.execute(select(func.count()).select_from(sessions))).scalar()
    assert left == 0


async def test_prune_keeps_the_newest_sessions_and_drops_idle_ones(db: Database) -> None:
    values = user_values("carol")
    async with db.write() as conn:
        await store.insert_user(conn, **values)
        for i in range(6):
            await store.insert_session(
                conn,
                id=ids.new_id(),
                user_id=values["id"],
                token_hash=bytes([i]) * 32,
                created_at=i,
                last_used_at=100 + i,
            )
    async with db.write() as conn:
        dropped = await store.prune_sessions(conn, values["id"], keep_newest=3, idle_before=104)
    async with db.read() as conn:
        kept = sorted(r.last_used_at for r in await store.list_sessions(conn, values["id"]))
    assert dropped == 4
    assert kept == [104, 105]


async def test_invite_seats_are_never_oversold_under_concurrency(db: Database) -> None:
    async with db.write() as conn:
        await store.insert_invite(
            conn, code="seats", created_by=None, max_uses=3, uses=0, expires_at=None, created_at=1
        )

    async def take() -> bool:
        async with db.write() as conn:
            return await store.consume_invite(conn, "seats", now=2)

    results = await asyncio.gather(*(take() for _ in range(12)))
    assert results.count(True) == 3
    async with db.read() as conn:
        uses = (await conn.execute(select(registration_invites.c.uses))).scalar()
    assert uses == 3


async def test_expired_invite_is_refused(db: Database) -> None:
    async with db.write() as conn:
        await store.insert_invite(
            conn, code="old", created_by=None, max_uses=None, uses=0, expires_at=10, created_at=1
        )
        assert not await store.consume_invite(conn, "old", now=10)
        assert await store.consume_invite(conn, "old", now=9)
        assert not await store.consume_invite(conn, "missing", now=9)


async def test_concurrent_read_then_write_transactions_all_commit(db: Database) -> None:
    """Read-for-update then write from many tasks: no update is lost and none fails.

    On SQLite a plain BEGIN would deadlock on the lock upgrade ("database is locked");
    on PostgreSQL the row lock orders the transactions.
    """
    values = user_values("dora", bio="0")
    async with db.write() as conn:
        await store.insert_user(conn, **values)

    async def increment() -> None:
        async with db.write() as conn:
            row = await store.user_by_id(conn, int(values["id"]), lock=True)  # type: ignore[arg-type]
            assert row is not None
            await asyncio.sleep(0)  # let the others start their transactions
            await store.update_user(conn, row.id, bio=str(int(row.bio) + 1))

    await asyncio.gather(*(increment() for _ in range(20)))
    async with db.read() as conn:
        row = await store.user_by_id(conn, int(values["id"]))  # type: ignore[arg-type]
    assert row is not None and row.bio == "20"
