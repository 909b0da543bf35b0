"""Hot statements run on the driver directly (sqlite3, asyncpg), past SQLAlchemy's
execution path.

SQLAlchemy's ``Connection.execute`` costs about 85 us of CPU per statement here on top of
the driver's own work, compiled form cached or not: it builds an execution context, runs the
event hooks, constructs the parameters, wraps the cursor in a result and each row in a
``Row``. A one-row select of a channel took 106 us through it and 20 us straight on
``sqlite3`` (bench: the same statement, warm and with the caches thrashed alike), and a send
runs about eight such statements: most of its database time.

So the statements of the hot paths are registered here (:func:`register`; every
:class:`miaou.db.keyed.Keyed` statement's one-key shape is), and
:class:`miaou.db.sqlite_inline.InlineConnection` (SQLite) and
:class:`miaou.db.asyncpg_direct.DirectConnection` (PostgreSQL) run them through a
:class:`Plan` made once per statement and dialect (and, for an INSERT, per set of
parameter names). A plan keeps what matters
of SQLAlchemy's work:

- the SQL, compiled by SQLAlchemy for the connection's dialect;
- bind processors (JSON, Boolean) on the parameters, result processors on the rows, which
  come as named tuples with the attribute names SQLAlchemy's rows have;
- driver errors wrapped as SQLAlchemy's (``DBAPIError`` and its subclasses), so callers and
  ``miaou.db.engine`` see the same exceptions;
- ``before_cursor_execute`` listeners are still called (tests count statements with them).

A statement that needs more falls back to SQLAlchemy: expanding ``IN`` lists (on
PostgreSQL a registered :func:`alternative` binds them as arrays instead), Python-side
column defaults, RETURNING over many parameter sets, result names a named tuple cannot
carry, or a connection outside a transaction (SQLAlchemy's autobegin).

Registered statements are built once, at import: they live as long as the process, so the
``id()`` that keys them stays theirs.
"""

from __future__ import annotations

import keyword
import sqlite3
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NoReturn, TypeVar

from sqlalchemy import exc
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql.dml import Insert

S = TypeVar("S")

_registered: dict[int, Any] = {}
_plans: dict[tuple[int, tuple[str, ...] | None, str], Plan | None] = {}
_MISSING = object()


_alternatives: dict[tuple[int, str], tuple[Any, Callable[[Any], Any]]] = {}


def alternative(
    statement: Any, dialect: str, instead: Any, parameters: Callable[[Any], Any]
) -> None:
    """On ``dialect``, run ``instead`` (registered) with ``parameters(given)`` where
    ``statement`` is asked for (``miaou.db.keyed``: arrays for PostgreSQL's ``IN`` lists)."""
    _alternatives[(id(statement), dialect)] = (instead, parameters)


def alternative_for(statement: Any, dialect: Dialect, parameters: Any) -> tuple[Any, Any]:
    """The statement and parameters to run on ``dialect``: the alternative, or as given."""
    found = _alternatives.get((id(statement), dialect.name))
    if found is None or not isinstance(parameters, Mapping):
        return statement, parameters
    instead, convert = found
    return instead, convert(parameters)


def planned(
    conn: Connection, statement: Any, parameters: Any, execution_options: Any
) -> tuple[Plan, Any] | None:
    """A plan to run ``statement`` directly in ``conn``'s open transaction, and the
    parameters to run it with; None where SQLAlchemy runs it."""
    if execution_options is not None or not conn.in_transaction():
        return None
    chosen, values = alternative_for(statement, conn.dialect, parameters)
    plan = plan_for(chosen, conn.dialect, values)
    return None if plan is None else (plan, values)


def register(statement: S) -> S:
    """Mark a statement built once as one to run directly where the engine allows."""
    _registered[id(statement)] = statement
    return statement


def plan_for(statement: Any, dialect: Dialect, parameters: Any) -> Plan | None:
    """The statement's plan, or None: not registered, or one SQLAlchemy must run."""
    key_id = id(statement)
    if key_id not in _registered:
        return None
    names: tuple[str, ...] | None = None
    if isinstance(statement, Insert):
        first = parameters[0] if isinstance(parameters, list) and parameters else parameters
        names = tuple(first) if isinstance(first, Mapping) else ()
    # Per dialect too: a process may hold engines of both kinds (tests do).
    key = (key_id, names, dialect.name)
    try:
        return _plans[key]
    except KeyError:
        found = _plans[key] = Plan.build(statement, dialect, names)
        return found


class Plan:
    """One statement compiled for SQLite, run on its ``sqlite3`` connection."""

    __slots__ = ("binds", "row", "row_procs", "sql", "static")

    def __init__(
        self,
        sql: str,
        binds: list[tuple[str, Callable[[Any], Any] | None]],
        static: dict[str, Any],
        row: type[tuple[Any, ...]] | None,
        row_procs: list[Callable[[Any], Any] | None] | None,
    ) -> None:
        self.sql = sql
        self.binds = binds
        self.static = static
        self.row = row
        self.row_procs = row_procs

    @classmethod
    def build(cls, statement: Any, dialect: Dialect, names: tuple[str, ...] | None) -> Plan | None:
        compiled = statement.compile(dialect=dialect, column_keys=list(names or ()) or None)
        if (
            compiled.insert_prefetch
            or compiled.update_prefetch
            or compiled.literal_execute_params
            or compiled.post_compile_params
            or any(b.expanding for b in compiled.binds.values())
            or compiled.positiontup is None
        ):
            return None
        processors = compiled._bind_processors
        binds = [(name, processors.get(name)) for name in compiled.positiontup]
        static = {
            name: bind.effective_value
            for name, bind in compiled.binds.items()
            if not bind.required and not callable(bind.value)
        }
        row, row_procs = None, None
        if compiled._result_columns:
            if isinstance(statement, Insert) and not names:
                return None
            columns = compiled._result_columns
            keys = [c.keyname for c in columns]
            if len(set(keys)) != len(keys) or not all(_plain_name(k) for k in keys):
                return None
            row = row_class(tuple(keys))
            found = [c.type._cached_result_processor(dialect, None) for c in columns]
            row_procs = found if any(found) else None
        return cls(compiled.string, binds, static, row, row_procs)

    def run(self, conn: Connection, parameters: Any) -> DirectResult | None:
        """Execute on ``conn``'s ``sqlite3`` connection; None when SQLAlchemy must (a value
        it would report missing, or parameter sets of unequal shape)."""
        prepared = self._prepare(conn, parameters)
        if prepared is None:
            return None
        many, args = prepared
        driver: Any = conn.connection.driver_connection
        try:
            cursor = (
                driver.executemany(self.sql, args) if many else driver.execute(self.sql, args[0])
            )
            raw = cursor.fetchall() if self.row is not None else ()
        except sqlite3.Error as error:
            raise exc.DBAPIError.instance(
                self.sql, args, error, sqlite3.Error, dialect=conn.dialect
            ) from error
        return DirectResult(self._rows(raw), cursor.rowcount)

    async def run_asyncpg(self, conn: Connection, parameters: Any) -> DirectResult | None:
        """Execute on ``conn``'s asyncpg connection, in the transaction SQLAlchemy's adapter
        keeps (begun here if no statement has begun it yet, as the adapter does); None as
        for :meth:`run`."""
        prepared = self._prepare(conn, parameters)
        if prepared is None:
            return None
        many, args = prepared
        adapter: Any = conn.connection.dbapi_connection
        driver = adapter._connection
        rowcount = -1
        try:
            async with adapter._execute_mutex:
                if adapter._transaction is None:
                    await adapter._start_transaction()
                if many and len(args) > 1:  # one set runs as one, as SQLAlchemy does
                    await driver.executemany(self.sql, args)
                    raw: Sequence[Any] = ()
                elif self.row is not None:
                    raw = await driver.fetch(self.sql, *args[0])
                    rowcount = len(raw)
                else:
                    status = await driver.execute(self.sql, *args[0])
                    raw, rowcount = (), _rowcount(status)
        except Exception as error:
            _raise_as_sqlalchemy(adapter, conn, self.sql, args, error)
        return DirectResult(self._rows(raw), rowcount)

    def _prepare(
        self, conn: Connection, parameters: Any
    ) -> tuple[bool, list[tuple[Any, ...]]] | None:
        """(many, one argument tuple per parameter set), the listeners told; or None."""
        many = isinstance(parameters, list)
        if many and self.row is not None:
            return None
        sets = parameters if many else [parameters or {}]
        if not all(isinstance(one, Mapping) for one in sets):
            return None
        try:
            args = [self._args(one) for one in sets]
        except KeyError:
            return None
        dispatch = conn.dispatch.before_cursor_execute
        if dispatch:
            for listener in dispatch:
                listener(conn, None, self.sql, args if many else args[0], None, many)
        return many, args

    def _args(self, given: Mapping[str, Any]) -> tuple[Any, ...]:
        out = []
        static = self.static
        for name, process in self.binds:
            value = given.get(name, _MISSING)
            if value is _MISSING:
                value = static[name]  # KeyError: a required value is missing
            out.append(value if process is None or value is None else process(value))
        return tuple(out)

    def _rows(self, raw: Sequence[tuple[Any, ...]]) -> list[Any]:
        row = self.row
        if row is None:
            return []
        procs = self.row_procs
        if procs is None:
            return [row._make(r) for r in raw]  # type: ignore[attr-defined]
        return [
            row._make(v if p is None or v is None else p(v) for p, v in zip(procs, r, strict=True))  # type: ignore[attr-defined]
            for r in raw
        ]


def _rowcount(status: str) -> int:
    """Rows a command touched, from asyncpg's status ("UPDATE 3", "INSERT 0 1")."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else -1


def _raise_as_sqlalchemy(
    adapter: Any, conn: Connection, sql: str, args: Any, error: Exception
) -> NoReturn:
    """Raise an asyncpg error as SQLAlchemy would: its adapter's DB-API error (an
    ``IntegrityError`` for a unique violation, ...) wrapped in ``DBAPIError``; anything the
    adapter does not translate propagates as it came."""
    dbapi_error = conn.dialect.loaded_dbapi.Error
    try:
        adapter._handle_exception(error)  # always raises: the adapter's translation
    except dbapi_error as translated:
        raise exc.DBAPIError.instance(
            sql, args, translated, dbapi_error, dialect=conn.dialect
        ) from error
    raise AssertionError("unreachable")  # pragma: no cover


def _plain_name(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name) and not name.startswith("_")


def row_class(keys: tuple[str, ...]) -> type[tuple[Any, ...]]:
    base = namedtuple("Row", keys)  # type: ignore[misc]

    class Row(base):
        """A row as SQLAlchemy's ``Row`` is used here: attributes, indexes, ``_mapping``."""

        __slots__ = ()

        @property
        def _mapping(self) -> dict[str, Any]:
            return self._asdict()

    return Row


class DirectResult:
    """The part of SQLAlchemy's ``Result`` API that the registered statements' callers use."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def all(self) -> list[Any]:
        return self._rows

    fetchall = all

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def one(self) -> Any:
        if len(self._rows) != 1:
            raise (exc.NoResultFound if not self._rows else exc.MultipleResultsFound)(
                "One row was expected."
            )
        return self._rows[0]

    def one_or_none(self) -> Any:
        if len(self._rows) > 1:
            raise exc.MultipleResultsFound("At most one row was expected.")
        return self._rows[0] if self._rows else None

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def scalar_one(self) -> Any:
        return self.one()[0]

    def scalar_one_or_none(self) -> Any:
        row = self.one_or_none()
        return None if row is None else row[0]

    def scalars(self) -> DirectResult:
        return DirectResult([row[0] for row in self._rows], self.rowcount)
