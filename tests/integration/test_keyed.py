"""Statements built once with key lists (``miaou.db.keyed``): both shapes find the same rows,
on both engines, for single columns and for pairs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from miaou.bus.log import stream_events
from miaou.db import migrate
from miaou.db.engine import Database
from miaou.db.keyed import Keyed

BY_POSITION = Keyed(
    lambda key: select(stream_events.c.type).where(key("at", stream_events.c.position))
)
BY_PAIR = Keyed(
    lambda key: select(stream_events.c.type).where(
        key("pairs", stream_events.c.stream, stream_events.c.position)
    )
)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await migrate.upgrade(database)
    async with database.write() as conn:
        await conn.execute(
            stream_events.insert(),
            [
                {"stream": s, "position": p, "type": f"{s}/{p}", "payload": b"{}", "created_at": 0}
                for s in ("a", "b")
                for p in (1, 2, 3)
            ],
        )
    yield database
    await database.close()


def test_one_key_per_list_binds_the_equality_shape() -> None:
    statement, params = BY_PAIR.bind(pairs=[("a", 2)])
    assert statement is BY_PAIR.one and params == {"pairs_0": "a", "pairs_1": 2}
    statement, params = BY_POSITION.bind(at={3})
    assert statement is BY_POSITION.one and params == {"at": 3}
    statement, params = BY_PAIR.bind(pairs=[("a", 2), ("b", 1)])
    assert statement is BY_PAIR.many and params == {"pairs": [("a", 2), ("b", 1)]}


async def test_both_shapes_find_the_same_rows(db: Database) -> None:
    async with db.read() as conn:

        async def types(statement: Any, params: dict[str, Any]) -> list[str]:
            return sorted((await conn.execute(statement, params)).scalars())

        assert await types(*BY_PAIR.bind(pairs=[("b", 2)])) == ["b/2"]
        assert await types(BY_PAIR.many, {"pairs": [("b", 2)]}) == ["b/2"]
        assert await types(*BY_PAIR.bind(pairs=[("a", 1), ("b", 3), ("c", 1)])) == ["a/1", "b/3"]
        assert await types(*BY_POSITION.bind(at=[2])) == ["a/2", "b/2"]
        assert await types(*BY_POSITION.bind(at=[1, 3])) == ["a/1", "a/3", "b/1", "b/3"]
