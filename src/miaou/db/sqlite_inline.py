"""SQLite for SQLAlchemy's async engine, run on the event loop's own thread.

aiosqlite runs every call (execute, fetch, close, commit) on a worker thread and wakes the
event loop with the result. Here each of those hand-offs costs 100-150 us of wall time and
more of CPU in thread switches, while the statements themselves take a few microseconds:
a read transaction of one indexed SELECT measured 2,230 us of CPU through aiosqlite and
433 us through this module (``bench/`` and docs/benchmarks.md). So the node runs SQLite
calls inline, as the ``sqlite3`` module would in a synchronous program, behind the
awaitable interface that SQLAlchemy's aiosqlite dialect drives (it is given these objects
through ``create_async_engine(async_creator=...)``; the dialect, its type handling and its
error translation are unchanged).

Inline calls must never wait, or the whole node waits with them:

- Writers could wait on each other's lock. :class:`miaou.db.engine.Database` queues this
  process's write transactions on an asyncio lock, so BEGIN IMMEDIATE only ever waits for
  another *process* (a CLI command): one SQLite node is one serving process; several
  workers or nodes need PostgreSQL.
- Readers never wait in WAL mode.
- A statement known to be long (a search over a large table) is moved to a thread by
  setting :attr:`Connection.offload` for the transaction (``Database.read(offload=True)``).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

PRAGMAS = (
    "journal_mode=WAL",
    "foreign_keys=ON",
    "busy_timeout=10000",
    # With WAL, NORMAL loses nothing on a process crash (kill -9): committed pages are in
    # the OS cache. Only a power loss may drop the last transactions.
    "synchronous=NORMAL",
)


class Cursor:
    """The subset of ``aiosqlite.Cursor`` that SQLAlchemy's adapter uses."""

    __slots__ = ("_cursor", "_owner")

    def __init__(self, owner: Connection, cursor: sqlite3.Cursor) -> None:
        self._owner = owner
        self._cursor = cursor

    async def __aenter__(self) -> Cursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._cursor.close()

    async def execute(self, operation: str, parameters: Sequence[Any] = ()) -> Cursor:
        await self._owner.call(self._cursor.execute, operation, parameters)
        return self

    async def executemany(self, operation: str, rows: Iterable[Sequence[Any]]) -> Cursor:
        await self._owner.call(self._cursor.executemany, operation, rows)
        return self

    async def fetchall(self) -> list[Any]:
        return await self._owner.call(self._cursor.fetchall)

    async def fetchone(self) -> Any:
        return await self._owner.call(self._cursor.fetchone)

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        if size is None:
            return await self._owner.call(self._cursor.fetchmany)
        return await self._owner.call(self._cursor.fetchmany, size)

    async def close(self) -> None:
        self._cursor.close()

    async def nextset(self) -> None:
        return None

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class Connection:
    """The subset of ``aiosqlite.Connection`` that SQLAlchemy's adapter uses."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        # The adapter checks this attribute to know whether the connection is still open.
        self._connection: sqlite3.Connection | None = conn
        #: Run calls on a worker thread instead of inline (for long statements).
        self.offload = False

    async def call(self, function: Callable[..., T], *args: Any) -> T:
        if self.offload:
            return await asyncio.to_thread(function, *args)
        return function(*args)

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def begin(self, *, immediate: bool) -> None:
        """BEGIN (deferred, for reads) or BEGIN IMMEDIATE (takes the write lock now)."""
        self._conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")

    def cursor(self) -> Cursor:
        return Cursor(self, self._conn.cursor())

    async def commit(self) -> None:
        await self.call(self._conn.commit)

    async def rollback(self) -> None:
        await self.call(self._conn.rollback)

    async def close(self) -> None:
        self._connection = None
        self._conn.close()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    def stop(self) -> None:
        """Forced close (SQLAlchemy's terminate); nothing runs elsewhere to stop."""
        self._connection = None
        self._conn.close()


def connector(path: str) -> Callable[[], Awaitable[Connection]]:
    """An ``async_creator`` for ``create_async_engine``: one configured connection per call."""

    async def connect() -> Connection:
        # isolation_level=None: we emit BEGIN ourselves (see miaou.db.engine).
        # check_same_thread=False: an offloaded statement runs on a worker thread; the
        # engine's pool still hands the connection to one task at a time.
        conn = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
        for pragma in PRAGMAS:
            conn.execute(f"PRAGMA {pragma}")
        return Connection(conn)

    return connect
