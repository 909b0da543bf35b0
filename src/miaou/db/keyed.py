"""Hot statements built once, filtered on lists of keys bound at execution.

SQLAlchemy caches a statement's compiled form under a cache key that it derives by walking
the statement; built anew at each call, a query pays that walk and its own construction
every time. A statement object built once, at import, with its values as ``bindparam``\\ s
memoises its cache key and result metadata: a one-row select by primary key measured 86 us
of CPU built per call (116 with an IN list) and 31 us built once, on SQLite inline (138 and
51 us on PostgreSQL).

A list of keys is bound as an expanding ``IN``, which SQLAlchemy re-renders for the list's
length at each execution. For the usual single key (one sender, one channel) a second
shape of the same statement compares with ``=`` instead and is cheaper:
:class:`Keyed` holds both and :meth:`Keyed.bind` picks. On PostgreSQL through asyncpg a
third shape takes the ``IN`` one's place: each list bound as one array (``= ANY($1)``, and
``IN (SELECT * FROM unnest($1, $2))`` for tuples), one SQL text whatever the length, so
that it runs on the driver directly (:mod:`miaou.db.asyncpg_direct`) and its prepared
statement is reused.

    CHANNELS = Keyed(lambda key: select(channels).where(key("ids", channels.c.id)))
    rows = await conn.execute(*CHANNELS.bind(ids=[7]))
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import and_, any_, bindparam, func, select, tuple_
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.elements import ColumnElement

from miaou.db import direct

S = TypeVar("S")


class KeyFilter(Protocol):
    def __call__(self, name: str, *columns: Any) -> ColumnElement[bool]: ...


def _one(name: str, *columns: Any) -> ColumnElement[bool]:
    if len(columns) == 1:
        return columns[0] == bindparam(name)  # type: ignore[no-any-return]
    return and_(*(c == bindparam(f"{name}_{i}") for i, c in enumerate(columns)))


def _many(name: str, *columns: Any) -> ColumnElement[bool]:
    target = columns[0] if len(columns) == 1 else tuple_(*columns)
    return target.in_(bindparam(name, expanding=True))


def _arrays(name: str, *columns: Any) -> ColumnElement[bool]:
    if len(columns) == 1:
        column = columns[0]
        return column == any_(bindparam(name, type_=ARRAY(column.type)))  # type: ignore[no-any-return]
    parts = [bindparam(f"{name}_{i}", type_=ARRAY(c.type)) for i, c in enumerate(columns)]
    keys = (
        func.unnest(*parts)
        .table_valued(*(f"k{i}" for i in range(len(columns))))
        .render_derived(name="keys")
    )
    return tuple_(*columns).in_(select(*keys.c))


def _as_arrays(parameters: dict[str, Any]) -> dict[str, Any]:
    """``many``'s parameters for the array shape: a list of tuples becomes one list per
    position."""
    out: dict[str, Any] = {}
    for name, values in parameters.items():
        if values and isinstance(values[0], tuple):
            for i, column in enumerate(zip(*values, strict=True)):
                out[f"{name}_{i}"] = list(column)
        else:
            out[name] = values
    return out


class Keyed(Generic[S]):
    """A statement in two shapes: every key list of one value (``=``), or any (``IN``).

    ``build`` gets ``key(name, *columns)``, the condition "``columns`` match one of the
    keys bound as ``name``"; with several columns, each key is a tuple of their values.
    """

    def __init__(self, build: Callable[[KeyFilter], S]) -> None:
        # The one-key shape runs on SQLite's driver directly (the IN shape's SQL depends on
        # the list's length).
        self.one = direct.register(build(_one))
        self.many = build(_many)
        direct.alternative(self.many, "postgresql", direct.register(build(_arrays)), _as_arrays)

    def bind(self, **keys: Collection[Any]) -> tuple[S, dict[str, Any]]:
        """The shape for these key lists (none empty) and its parameters."""
        params: dict[str, Any] = {}
        for name, values in keys.items():
            if len(values) != 1:
                return self.many, {name: list(values) for name, values in keys.items()}
            (value,) = values
            if isinstance(value, tuple):
                for i, part in enumerate(value):
                    params[f"{name}_{i}"] = part
            else:
                params[name] = value
        return self.one, params
