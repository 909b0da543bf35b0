"""Hot statements straight on SQLite's driver (``miaou.db.direct``): the same answers, types
and errors as through SQLAlchemy, and SQLAlchemy's own path where a plan cannot run.

``before_cursor_execute`` listeners see both paths; the direct one passes no execution
context (SQLAlchemy always does), which is how these tests tell them apart.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, insert, select
from sqlalchemy.exc import IntegrityError, StatementError

from miaou import ids
from miaou.chat.access_reads import CHANNELS, STANDING
from miaou.chat.sends import _BUMP, _INSERT_MESSAGES
from miaou.chat.tables import channels, guilds, members, messages
from miaou.db import direct
from miaou.db.engine import Database
from miaou.db.metadata import users

# Both engines: SQLite through sqlite3, PostgreSQL through asyncpg (miaou.db.asyncpg_direct).


@contextlib.contextmanager
def executed(db: Database) -> Iterator[list[tuple[str, bool]]]:
    """(statement, ran directly) for each statement sent inside the block."""
    seen: list[tuple[str, bool]] = []

    def record(_conn: Any, _cursor: Any, statement: str, _p: Any, context: Any, _m: Any) -> None:
        seen.append((statement, context is None))

    engine = db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


AUTHOR = 7


async def a_channel(db: Database, **values: Any) -> int:
    """A forum channel (its tags are JSON) in a guild of its own, owned by user AUTHOR."""
    guild_id, channel_id = ids.new_id(), ids.new_id()
    async with db.write() as conn:
        known = await conn.execute(select(users.c.id).where(users.c.id == AUTHOR))
        if known.first() is None:
            await conn.execute(
                users.insert().values(id=AUTHOR, username="a", username_key="a",
                                      password_hash="x", created_at=1, updated_at=1)
            )  # fmt: skip
        await conn.execute(
            guilds.insert().values(
                id=guild_id, name="g", owner_id=AUTHOR, created_at=1, updated_at=1
            )
        )
        await conn.execute(
            channels.insert().values(
                id=channel_id, guild_id=guild_id, type=15, name="c", created_at=1, **values
            )
        )
    return channel_id


async def test_a_registered_select_gives_what_sqlalchemy_gives(db: Database) -> None:
    tags = [{"id": "1", "name": "bug", "moderated": False}]
    channel_id = await a_channel(db, nsfw=True, available_tags=tags)
    with executed(db) as seen:
        async with db.read() as conn:
            fast = (await conn.execute(*CHANNELS.bind(ids=[channel_id]))).one()
            slow = (await conn.execute(select(channels).where(channels.c.id == channel_id))).one()
    assert [ran_directly for _, ran_directly in seen] == [True, False]
    assert tuple(fast) == tuple(slow)
    assert fast._asdict() == dict(slow._mapping) == fast._mapping
    # Result processors ran: SQLite stores 1 and a JSON string.
    assert fast.nsfw is True and fast.archived is False
    assert fast.available_tags == tags and fast.applied_tags is None
    (channel_id_again, *_) = fast
    assert channel_id_again == fast.id == fast[0] == channel_id


async def test_inserts_and_updates_of_many_rows_process_their_values(db: Database) -> None:
    channel_id = await a_channel(db)
    rows = [
        dict(id=ids.new_id(), channel_id=channel_id, author_id=AUTHOR, content=f"m{i}", type=0,
             mention_everyone=i == 1, mentions=[str(i)], mention_roles=[], mention_channels=[],
             has_link=False, has_attachments=False)
        for i in range(3)
    ]  # fmt: skip
    with executed(db) as seen:
        async with db.write() as conn:
            await conn.execute(_INSERT_MESSAGES, rows)
            bumped = await conn.execute(
                _BUMP, [{"channel": channel_id, "newest": rows[-1]["id"], "added": 3}]
            )
    assert [ran_directly for _, ran_directly in seen] == [True, True]
    assert bumped.rowcount == 1
    async with db.read() as conn:
        stored = (await conn.execute(select(messages).order_by(messages.c.id))).all()
        channel = (await conn.execute(select(channels).where(channels.c.id == channel_id))).one()
    assert [(m.content, m.mentions, m.mention_everyone) for m in stored] == [
        ("m0", ["0"], False), ("m1", ["1"], True), ("m2", ["2"], False),
    ]  # fmt: skip
    assert (channel.last_message_id, channel.message_count) == (rows[-1]["id"], 3)


async def test_driver_errors_are_sqlalchemys_and_roll_back(db: Database) -> None:
    channel_id = await a_channel(db)
    row = dict(id=ids.new_id(), channel_id=channel_id, author_id=AUTHOR, content="x", type=0,
               mentions=[], mention_roles=[], mention_channels=[])  # fmt: skip
    with pytest.raises(IntegrityError):
        async with db.write() as conn:
            await conn.execute(_INSERT_MESSAGES, [row])
            await conn.execute(_INSERT_MESSAGES, [row])  # the same primary key
    async with db.read() as conn:
        assert (await conn.execute(select(messages.c.id))).all() == []


async def test_what_a_plan_cannot_run_goes_through_sqlalchemy(db: Database) -> None:
    channel_id = await a_channel(db)
    other = await a_channel(db)
    plain = select(channels.c.id).where(channels.c.id == channel_id)  # not registered
    with executed(db) as seen:
        async with db.read() as conn:
            listed = await conn.execute(*CHANNELS.bind(ids=[channel_id, other]))  # IN (...)
            assert {r.id for r in listed} == {channel_id, other}
            assert (await conn.execute(plain)).scalar_one() == channel_id
            with pytest.raises(StatementError, match="A value is required"):
                await conn.execute(CHANNELS.one, {})  # SQLAlchemy's own error
    # An IN list runs directly on PostgreSQL only, as its array shape (next test).
    assert [ran_directly for _, ran_directly in seen] == [db.dialect == "postgresql", False]

    # No transaction open: SQLAlchemy's autobegin decides, not the plan.
    async with db.engine.connect() as conn:
        with executed(db) as seen:
            assert (await conn.execute(*CHANNELS.bind(ids=[channel_id]))).one().id == channel_id
    assert seen[-1][1] is False


async def test_key_lists_give_what_the_in_lists_give(db: Database) -> None:
    """Lists of keys and of key pairs; on PostgreSQL they run as arrays on the driver."""
    first, second = await a_channel(db), await a_channel(db)
    async with db.read() as conn:
        guild_ids = [
            (await conn.execute(*CHANNELS.bind(ids=[c]))).one().guild_id for c in (first, second)
        ]
    async with db.write() as conn:
        for guild_id in guild_ids:
            await conn.execute(members.insert().values(guild_id=guild_id, user_id=AUTHOR,
                                                       joined_at=1))  # fmt: skip
    pairs = [(guild_ids[0], AUTHOR), (guild_ids[1], AUTHOR), (guild_ids[0], 999)]
    cases = [(CHANNELS, {"ids": [first, second, 12345]}), (STANDING, {"pairs": pairs})]
    for keyed, keys in cases:
        with executed(db) as seen:
            async with db.read() as conn:
                fast = (await conn.execute(*keyed.bind(**keys))).all()
                # SQLAlchemy's own run of the IN shape (options skip the direct path).
                slow = (await conn.execute(keyed.many, keys, execution_options={})).all()
        assert sorted(map(tuple, fast)) == sorted(map(tuple, slow))
        assert len(fast) == 2
        assert [directly for _, directly in seen] == [db.dialect == "postgresql", False]


async def test_an_insert_whose_columns_change_gets_a_plan_per_shape(db: Database) -> None:
    channel_id = await a_channel(db)
    base = dict(channel_id=channel_id, author_id=AUTHOR, content="x", type=0, mentions=[],
                mention_roles=[], mention_channels=[])  # fmt: skip
    async with db.write() as conn:
        await conn.execute(_INSERT_MESSAGES, [dict(base, id=ids.new_id())])
        await conn.execute(_INSERT_MESSAGES, [dict(base, id=ids.new_id(), has_link=True)])
    async with db.read() as conn:
        links = (await conn.execute(select(messages.c.has_link).order_by(messages.c.id))).all()
    assert [r.has_link for r in links] == [False, True]
    shapes = [k for k in direct._plans if k[0] == id(_INSERT_MESSAGES)]
    assert len(shapes) >= 2


def test_only_registered_statements_get_plans() -> None:
    statement = insert(messages)
    assert direct.plan_for(statement, None, [{}]) is None  # type: ignore[arg-type]
