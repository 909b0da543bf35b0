"""Connections that go back to the pool when their block ends, for both engines.

SQLAlchemy's ``AsyncConnection.__aexit__`` closes in a task of its own, shielded from
cancellation, and the caller goes on a loop pass before the connection is back. Under a
burst of requests every task meanwhile took another connection: on SQLite 747 were open at
once while 1,000 clients IDENTIFYed (each with its own page and statement caches); on
PostgreSQL the pool's bound makes them wait instead. Once the transaction is over, closing
does no I/O (SQLite's close runs inline; asyncpg's rollback on check-in is a no-op outside a
transaction), so it cannot be cut short and needs no task; with a transaction still open
the shielded close stays.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


class PromptConnection(AsyncConnection):
    async def __aexit__(self, type_: Any, value: Any, traceback: Any) -> None:
        if self.in_transaction():
            await super().__aexit__(type_, value, traceback)
        else:
            await self.close()


class PromptEngine(AsyncEngine):
    _connection_cls = PromptConnection

    def execution_options(self, **opt: Any) -> AsyncEngine:
        # The same class (and so the same connections) with the options.
        return type(self)(self.sync_engine.execution_options(**opt))
