"""The database handle: one async engine, with transactions shaped for each engine.

SQLite runs in WAL mode with foreign keys on and a busy timeout, its calls inline on the
event loop (:mod:`miaou.db.sqlite_inline` says why and what that requires). Its driver's
implicit transactions are turned off so that we emit BEGIN ourselves: read transactions use
a plain (deferred) BEGIN, write transactions ``BEGIN IMMEDIATE``, which takes the write lock
up front. Without that, two transactions that read and then write deadlock on the lock
upgrade and one fails with "database is locked" whatever the busy timeout. This process's
write transactions queue on an asyncio lock first, so an inline BEGIN IMMEDIATE never waits
for another transaction of the same process, and share one connection, kept open between
them (outside a transaction it holds no lock and no snapshot).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from miaou.db import sqlite_inline
from miaou.db.asyncpg_direct import DirectEngine
from miaou.db.prompt_close import PromptEngine
from miaou.db.wal_checkpoint import WalCheckpointer
from miaou.errors import Unavailable

_WRITE = "miaou_write"


class Database:
    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {}
        # One process's SQLite writers take turns here rather than in a blocking BEGIN.
        self._sqlite_writers: asyncio.Lock | None = None
        #: SQLite: the connection the writers share, open from the first write on.
        self._writer: AsyncConnection | None = None
        #: SQLite in a file: checkpoints the WAL in the background once started (a node).
        self.checkpointer: WalCheckpointer | None = None
        self.engine: AsyncEngine
        if self.dialect == "sqlite":
            path = parsed.database or ":memory:"
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            # Opening one costs more than a small query (the pragmas): keep enough open for
            # the requests in flight, rather than closing the overflow after each.
            self.engine = sqlite_inline.engine(parsed, pool_size=4 * pool_size)
            self._sqlite_writers = asyncio.Lock()
            if path != ":memory:":
                self.checkpointer = WalCheckpointer(path)
        else:
            # No pre-ping: it doubles the round trips of every checkout. A connection found
            # dead fails its request with Unavailable and is replaced by the pool.
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_recycle=3600)
            sync = create_async_engine(url, **kwargs).sync_engine
            # The hot statements straight on asyncpg (miaou.db.asyncpg_direct).
            engine_cls = DirectEngine if sync.dialect.driver == "asyncpg" else PromptEngine
            self.engine = engine_cls(sync)
        # The same pool, its connections marked for writing from the start: setting the
        # option per transaction cost a round of SQLAlchemy's machinery on every write.
        self._write_engine = self.engine.execution_options(**{_WRITE: True})
        # PostgreSQL: each statement its own transaction (see autocommit()).
        self._autocommit_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        if self.dialect == "sqlite":
            _install_sqlite_hooks(self.engine)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def read(
        self, *, offload: bool = False, snapshot: bool = False
    ) -> AsyncIterator[AsyncConnection]:
        """A transaction for reading.

        ``offload``: the statements may take long (a search over a large table); on SQLite
        they then run on a worker thread instead of holding up the event loop.
        ``snapshot``: every statement sees the same committed state (REPEATABLE READ on
        PostgreSQL, whose default gives each statement its own; SQLite's read transactions
        are snapshots already).
        """
        async with _translated(), self.engine.connect() as conn:
            if snapshot and not self.is_sqlite:
                await conn.execution_options(isolation_level="REPEATABLE READ")
            if offload and isinstance(conn, sqlite_inline.InlineConnection):
                conn.offload = True
            async with conn.begin():
                yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that writes; committed when the block exits without error."""
        if self._sqlite_writers is None:
            async with _translated(), self._write_engine.connect() as conn, conn.begin():
                yield conn
            return
        async with _translated(), self._sqlite_writers:
            # SQLite's writers take turns, so one connection serves them all, kept open
            # between transactions: a pool checkout and return per transaction was most of
            # an empty one's cost (36 us warm, against 14 us for its BEGIN and COMMIT).
            if self._writer is None:
                self._writer = await self._write_engine.connect()
            conn = self._writer
            try:
                async with conn.begin():
                    yield conn
            except BaseException:
                # Whatever state a failed transaction left, the next one starts afresh.
                self._writer = None
                await conn.close()
                raise

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """PostgreSQL: a connection on which each statement commits on its own, with no
        BEGIN or COMMIT round trip: for a write that one statement does whole, after reads
        that need no snapshot shared with it (at READ COMMITTED a transaction's statements
        each see their own anyway). Not for SQLite, whose writers take turns in write()."""
        if self.is_sqlite:
            raise RuntimeError("autocommit() is for PostgreSQL; SQLite writes use write()")
        async with _translated(), self._autocommit_engine.connect() as conn, conn.begin():
            # (The adapter sends no BEGIN in autocommit: begin() only lets the registered
            # statements run directly, miaou.db.direct.planned.)
            yield conn

    async def ping(self) -> None:
        async with self.read() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        if self.checkpointer is not None:
            await self.checkpointer.stop()
        if self._writer is not None:
            writer, self._writer = self._writer, None
            await writer.close()
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
    except (OSError, ConnectionError, sqlite3.OperationalError) as exc:
        # sqlite3's own error: from our BEGIN, which runs outside SQLAlchemy's wrapping
        # ("database is locked" when another process held the write lock too long).
        raise Unavailable("The database is unavailable; try again.") from exc


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    # Connections come configured from sqlite_inline.creator (pragmas, no implicit
    # transactions); here each transaction gets the BEGIN it needs.
    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get(_WRITE, False)
        # Straight to the driver: through exec_driver_sql it cost a tenth of a short read.
        conn.connection.driver_connection.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
