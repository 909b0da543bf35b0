"""PostgreSQL's hot statements on asyncpg directly, past SQLAlchemy's execution path.

Through SQLAlchemy's asyncpg dialect every statement starts a greenlet (11 us warm here, 72
us after a short pause: Python 3.11 maps a fresh frame stack for each) and runs
SQLAlchemy's execution machinery around the driver: ``SELECT 1`` cost ~185 us of CPU per
call that way against ~60 us on asyncpg itself (uvloop, docs/benchmarks.md). A send batch
is ten statements, so on PostgreSQL a transaction's fixed cost was most of a small batch's.

:class:`DirectConnection` runs the statements registered in :mod:`miaou.db.direct` (the
hot paths' statements, built once) through the same :class:`~miaou.db.direct.Plan` as on
SQLite: SQL compiled by SQLAlchemy for this dialect, its bind and result processors, its
listeners, its errors (asyncpg's, translated by SQLAlchemy's adapter and wrapped as
``DBAPIError``). It uses the adapter's own transaction: BEGIN is sent by the first
statement of a transaction, whichever path runs it, and COMMIT / ROLLBACK stay
SQLAlchemy's. A :class:`~miaou.db.keyed.Keyed` statement's ``IN`` list runs as its array
shape here (one SQL text for any length). Anything a plan cannot run goes through
SQLAlchemy as before.

This leans on private members of SQLAlchemy's asyncpg adapter (``_connection``,
``_transaction``, ``_start_transaction``, ``_execute_mutex``, ``_handle_exception``), as
its own cursor does: pyproject pins SQLAlchemy to 2.1.x, and tests/integration/
test_db_direct.py runs on PostgreSQL to catch a change.
"""

from __future__ import annotations

from typing import Any

from miaou.db import direct
from miaou.db.prompt_close import PromptConnection, PromptEngine


class DirectConnection(PromptConnection):
    async def execute(
        self,
        statement: Any,
        parameters: Any = None,
        *,
        execution_options: Any = None,
    ) -> Any:
        sync = self._proxied
        found = direct.planned(sync, statement, parameters, execution_options)
        if found is not None:
            result = await found[0].run_asyncpg(sync, found[1])
            if result is not None:
                return result
        return await super().execute(statement, parameters, execution_options=execution_options)


class DirectEngine(PromptEngine):
    _connection_cls = DirectConnection
