"""SQLite behind SQLAlchemy's async API, run on the event loop's own thread, without greenlets.

aiosqlite runs every call on a worker thread and wakes the event loop with the result: each
hand-off cost 100-150 us here, while the statements take a few microseconds. So the node
runs SQLite calls inline, as a synchronous program would (a read transaction of one indexed
SELECT: 2,230 us of CPU through aiosqlite, 433 us inline).

Inline, nothing ever waits, so SQLAlchemy's async machinery has nothing to do: it would still
start a greenlet per statement (in Python 3.11 each one maps and unmaps a fresh 16 KiB frame
stack, several system calls and page faults per statement) and pass every driver call
through an awaitable adapter. Here the engine is a synchronous one (SQLAlchemy's own
``pysqlite`` dialect and queue pool) behind :class:`InlineEngine`, whose
:class:`InlineConnection` calls the synchronous connection directly: the same
``AsyncConnection`` API for the code above, SQLAlchemy's statements, types, pool and error
translation unchanged.

Inline calls must never wait, or the whole node waits with them:

- Writers could wait on each other's lock. :class:`miaou.db.engine.Database` queues this
  process's write transactions on an asyncio lock, so BEGIN IMMEDIATE only ever waits for
  another *process* (a CLI command): one SQLite node is one serving process; several
  workers or nodes need PostgreSQL.
- Readers never wait in WAL mode.
- The pool never waits for a connection: past its size it opens more (``max_overflow=-1``).
- A statement known to be long (a search over a large table) runs on a worker thread when
  the connection's :attr:`InlineConnection.offload` is set (``Database.read(offload=True)``).

The hot statements skip SQLAlchemy's execution too, straight to ``sqlite3``
(:mod:`miaou.db.direct`).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.engine import URL, Engine
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction
from sqlalchemy.pool import QueuePool, StaticPool

from miaou.db import direct
from miaou.db.prompt_close import PromptConnection, PromptEngine
from miaou.db.wal_checkpoint import AUTOCHECKPOINT_PAGES

PRAGMAS = (
    "journal_mode=WAL",
    "foreign_keys=ON",
    "busy_timeout=10000",
    # With WAL, NORMAL loses nothing on a process crash (kill -9): committed pages are in
    # the OS cache. Only a power loss may drop the last transactions.
    "synchronous=NORMAL",
    # A serving node checkpoints in the background (miaou.db.wal_checkpoint); a commit
    # does it itself only past this many pages.
    f"wal_autocheckpoint={AUTOCHECKPOINT_PAGES}",
)


def engine(url: URL, pool_size: int) -> AsyncEngine:
    """An async engine running SQLite inline, for ``sqlite+<any driver>`` URLs."""
    path = url.database or ":memory:"
    # An in-memory database is one connection (each new one would be another database);
    # otherwise the pool never waits: past its size it opens more.
    sync = create_engine(
        url.set(drivername="sqlite+pysqlite"),
        creator=creator(path),
        **(
            {"poolclass": StaticPool}
            if path == ":memory:"
            else {"poolclass": QueuePool, "pool_size": pool_size, "max_overflow": -1}
        ),
    )
    return InlineEngine(sync)


def creator(path: str) -> Callable[[], DBAPIConnection]:
    """One configured ``sqlite3`` connection per call."""

    def connect() -> DBAPIConnection:
        # isolation_level=None: we emit BEGIN ourselves (see miaou.db.engine).
        # check_same_thread=False: an offloaded statement runs on a worker thread; the pool
        # still hands the connection to one task at a time.
        conn = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
        for pragma in PRAGMAS:
            conn.execute(f"PRAGMA {pragma}")
        return conn  # type: ignore[return-value]

    return connect


class InlineConnection(PromptConnection):
    """An ``AsyncConnection`` whose calls run the synchronous connection in place."""

    #: Run statements on a worker thread instead of inline (for long statements).
    offload = False

    async def start(self, is_ctxmanager: bool = False) -> AsyncConnection:
        self.sync_connection = self._assign_proxied(self.sync_engine.connect())
        return self

    async def execute(
        self,
        statement: Any,
        parameters: Any = None,
        *,
        execution_options: Any = None,
    ) -> Any:
        if self.offload:
            # The rows are fetched on the thread too: stepping a query is where it works.
            options = {**(execution_options or {}), "prebuffer_rows": True}
            return await asyncio.to_thread(
                self._proxied.execute, statement, parameters, execution_options=options
            )
        sync = self._proxied
        found = direct.planned(sync, statement, parameters, execution_options)
        if found is not None:
            result = found[0].run(sync, found[1])
            if result is not None:
                return result
        return sync.execute(statement, parameters, execution_options=execution_options)

    async def get_raw_connection(self) -> Any:
        return self._proxied.connection

    async def close(self) -> None:
        self._proxied.close()

    def begin(self) -> AsyncTransaction:
        return InlineTransaction(self)

    def begin_nested(self) -> AsyncTransaction:
        return InlineTransaction(self, nested=True)


class InlineTransaction(AsyncTransaction):
    async def start(self, is_ctxmanager: bool = False) -> AsyncTransaction:
        conn = self.connection._proxied
        self.sync_transaction = self._assign_proxied(
            conn.begin_nested() if self.nested else conn.begin()
        )
        if is_ctxmanager:
            self.sync_transaction.__enter__()
        return self

    async def commit(self) -> None:
        self._proxied.commit()

    async def rollback(self) -> None:
        self._proxied.rollback()

    async def close(self) -> None:
        self._proxied.close()

    async def __aexit__(self, type_: Any, value: Any, traceback: Any) -> None:
        self._proxied.__exit__(type_, value, traceback)


class InlineEngine(PromptEngine):
    _connection_cls = InlineConnection

    def __init__(self, sync_engine: Engine) -> None:
        # AsyncEngine refuses a synchronous driver, which its greenlets would have to wait
        # on; this engine's connections never hand the driver to a greenlet.
        self.sync_engine = self._assign_proxied(sync_engine)
