"""Alembic migrations driven from code: ``miaou migrate``, node start and ``/readyz``."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from miaou.db.engine import Database

_LOCK_KEY = 0x6D69616F75  # "miaou"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", "miaou.db:migrations")
    return config


def head_revisions() -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


async def upgrade(db: Database, revision: str = "head") -> None:
    def run(sync_conn: Any) -> None:
        config = alembic_config()
        config.attributes["connection"] = sync_conn
        command.upgrade(config, revision)

    async with db.write() as conn:
        if not db.is_sqlite:
            # Nodes starting together must not migrate twice; SQLite's BEGIN IMMEDIATE already
            # serialises writers. The lock ends with the transaction.
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        await conn.run_sync(run)


async def downgrade(db: Database, revision: str) -> None:
    def run(sync_conn: Any) -> None:
        config = alembic_config()
        config.attributes["connection"] = sync_conn
        command.downgrade(config, revision)

    async with db.write() as conn:
        await conn.run_sync(run)


async def current_revisions(db: Database) -> set[str]:
    """Revisions applied to the database (empty before the first migration)."""
    async with db.read() as conn:
        if not await conn.run_sync(lambda c: inspect(c).has_table("alembic_version")):
            return set()
        rows = await conn.execute(text("SELECT version_num FROM alembic_version"))
        return {row[0] for row in rows}


async def is_current(db: Database) -> bool:
    return await current_revisions(db) == head_revisions()
