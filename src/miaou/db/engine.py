"""The database handle: one async engine, with transactions shaped for each engine.

SQLite runs in WAL mode with foreign keys on and a busy timeout. Its driver's implicit
transactions are turned off so that we emit BEGIN ourselves: read transactions use a plain
(deferred) BEGIN, write transactions ``BEGIN IMMEDIATE``, which takes the write lock up front.
Without that, two transactions that read and then write deadlock on the lock upgrade and one
fails with "database is locked" whatever the busy timeout.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from miaou.errors import Unavailable

_WRITE = "miaou_write"


class Database:
    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {}
        if self.dialect == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 10}
        else:
            # No pre-ping: it doubles the round trips of every checkout. A connection found
            # dead fails its request with Unavailable and is replaced by the pool.
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_recycle=3600)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.dialect == "sqlite":
            _install_sqlite_hooks(self.engine)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A transaction for reading: one consistent snapshot."""
        async with _translated(), self.engine.connect() as conn, conn.begin():
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that writes; committed when the block exits without error."""
        async with _translated(), self.engine.connect() as conn:
            await conn.execution_options(**{_WRITE: True})
            async with conn.begin():
                yield conn

    async def ping(self) -> None:
        async with self.read() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        await self.engine.dispose()


@asynccontextmanager
async def _translated() -> AsyncIterator[None]:
    """Connection failures become :class:`Unavailable`; other DB errors stay bugs (500)."""
    try:
        yield
    except (OperationalError, DBAPIError) as exc:
        if exc.connection_invalidated or isinstance(exc, OperationalError):
            raise Unavailable("The database is unavailable; try again.") from exc
        raise
    except (OSError, ConnectionError) as exc:
        raise Unavailable("The database is unavailable; try again.") from exc


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver (see module docstring).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            "foreign_keys=ON",
            "busy_timeout=10000",
            # With WAL, NORMAL loses nothing on a process crash (kill -9): committed pages
            # are in the OS cache. Only a power loss may drop the last transactions.
            "synchronous=NORMAL",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
