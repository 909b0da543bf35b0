"""The durable stream log: gapless positions assigned in the writing transaction, on both
engines, concurrent writers included; reads after a position; pruning makes a gap."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest
import sqlalchemy

from miaou.bus import Event, MemoryBus, log
from miaou.chat.outbox import Outbox
from miaou.db.engine import Database


def event(stream: str, n: int) -> Event:
    return Event(type="TEST", stream=stream, payload={"n": n})


def published(db: Database) -> tuple[Outbox, list[Event]]:
    """An outbox on a memory bus, and the list of what it publishes."""
    bus = MemoryBus()
    seen: list[Event] = []
    bus.subscribe(seen.append)
    return Outbox(db, bus), seen


async def test_positions_are_gapless_per_stream_and_published_with_the_events(
    db: Database,
) -> None:
    outbox, seen = published(db)
    async with outbox.write() as (_conn, events):
        events += [event("guild:1", 1), event("user:2", 1), event("guild:1", 2)]
    async with outbox.write() as (_conn, events):
        events.append(event("guild:1", 3))
    assert [(e.stream, e.position, e.payload["n"]) for e in seen] == [
        ("guild:1", 1, 1),
        ("user:2", 1, 1),
        ("guild:1", 2, 2),
        ("guild:1", 3, 3),
    ]
    async with db.read() as conn:
        assert await log.heads(conn, ["guild:1", "user:2", "guild:9"]) == {
            "guild:1": 3,
            "user:2": 1,
            "guild:9": 0,
        }
        stored = await log.read_after(conn, "guild:1", 1, 3)
    assert [(s.position, msgspec.json.decode(s.payload)) for s in stored] == [
        (2, {"n": 2}),
        (3, {"n": 3}),
    ]


async def test_an_event_that_follows_a_stream_is_stamped_with_where_it_starts(
    db: Database,
) -> None:
    outbox, seen = published(db)
    async with outbox.write() as (_conn, events):
        events += [event("guild:1", 1), event("guild:1", 2)]
    async with outbox.write() as (_conn, events):
        # Written in the same transaction: the head before it, so its own events count.
        events.append(event("guild:1", 3))
        events.append(outbox.event("GUILD_JOIN", "user:2", {"id": "1"}, follows="guild:1"))
        # Not written here: its head as read; a stream with no event yet starts at 0.
        events.append(outbox.event("CHANNEL_CREATE", "user:2", {"id": "9"}, follows="channel:9"))
    with pytest.raises(TypeError, match="payload must be an object"):
        async with outbox.write() as (_conn, events):
            events.append(outbox.event("GUILD_JOIN", "user:2", ["1"], follows="guild:1"))
    joined, created = seen[-2:]
    assert joined.payload == {"id": "1", "follow": {"stream": "guild:1", "position": 2}}
    assert created.payload == {"id": "9", "follow": {"stream": "channel:9", "position": 0}}
    async with db.read() as conn:
        stored = await log.read_after(conn, "user:2", 0, 2)
    # The log keeps the stamped payload: a replay carries it too.
    assert [msgspec.json.decode(s.payload)["follow"]["position"] for s in stored] == [2, 0]


async def test_a_rolled_back_write_uses_no_position(db: Database) -> None:
    outbox, seen = published(db)
    with pytest.raises(RuntimeError):
        async with outbox.write() as (_conn, events):
            events.append(event("guild:1", 1))
            raise RuntimeError("refused")
    async with outbox.write() as (_conn, events):
        events.append(event("guild:1", 2))
    assert [(e.position, e.payload["n"]) for e in seen] == [(1, 2)]


async def test_concurrent_writers_get_distinct_gapless_positions(db: Database) -> None:
    outbox, seen = published(db)

    async def write(n: int) -> None:
        async with outbox.write() as (_conn, events):
            events += [event("guild:1", n), event(f"user:{n % 3}", n)]

    await asyncio.gather(*(write(n) for n in range(40)))
    positions = [e.position for e in seen if e.stream == "guild:1"]
    # Publication may come slightly out of order (PostgreSQL commits finish in any order);
    # the gateway's streams put it back in order (tests/unit/test_gateway_streams.py).
    assert sorted(positions) == list(range(1, 41))
    async with db.read() as conn:
        stored = await log.read_after(conn, "guild:1", 0, 40)
    by_position = {s.position: msgspec.json.decode(s.payload)["n"] for s in stored}
    assert by_position == {e.position: e.payload["n"] for e in seen if e.stream == "guild:1"}


@pytest.mark.database_kinds("postgres")
async def test_postgresql_stores_a_transactions_events_in_one_direct_statement(
    db: Database,
) -> None:
    """Every head moved and every event stored in one round trip (``log._APPEND_PG``), on
    asyncpg directly, with the positions the statement-per-stream path would give."""
    outbox, seen = published(db)
    async with outbox.write() as (_conn, events):
        events.append(event("user:5", 0))
    statements: list[tuple[str, bool]] = []

    def record(_conn: Any, _cursor: Any, statement: str, _p: Any, context: Any, _m: Any) -> None:
        statements.append((statement, context is None))

    sync_engine = db.engine.sync_engine
    sqlalchemy.event.listen(sync_engine, "before_cursor_execute", record)
    try:
        async with outbox.write() as (_conn, events):
            events += [event(s, n) for n, s in enumerate(["user:5", "guild:1", "user:5", "a:1"])]
    finally:
        sqlalchemy.event.remove(sync_engine, "before_cursor_execute", record)
    assert len(statements) == 1 and statements[0][1], statements
    assert [(e.stream, e.position) for e in seen[1:]] == [
        ("user:5", 2), ("guild:1", 1), ("user:5", 3), ("a:1", 1),
    ]  # fmt: skip
    async with db.read() as conn:
        assert await log.heads(conn, ["user:5", "guild:1", "a:1"]) == {
            "user:5": 3, "guild:1": 1, "a:1": 1,
        }  # fmt: skip
        stored = await log.read_after(conn, "user:5", 0, 3)
    assert [(s.position, s.type, msgspec.json.decode(s.payload)) for s in stored] == [
        (1, "TEST", {"n": 0}), (2, "TEST", {"n": 0}), (3, "TEST", {"n": 2}),
    ]  # fmt: skip


async def test_pruned_positions_are_a_gap(db: Database) -> None:
    outbox = Outbox(db, MemoryBus())
    for n in range(3):
        async with outbox.write() as (_conn, events):
            events.append(event("guild:1", n))
    async with db.write() as conn:
        assert await log.prune(conn, before_ms=2**62) == 3
    async with db.read() as conn:
        with pytest.raises(log.Gap):
            await log.read_after(conn, "guild:1", 1, 3)
        assert await log.read_after(conn, "guild:1", 3, 3) == []
        assert (await log.heads(conn, ["guild:1"]))["guild:1"] == 3  # heads stay
