"""The durable stream log: every published event's position, and the events a resume needs.

Each stream (``guild:<id>``, ``user:<id>``, ``channel:<id>``) has a head, the position of
its latest event. :func:`append` runs inside the writing transaction, just before commit: it
moves each head forward by the number of new events and stores them. Because the head row is
updated in that transaction:

- positions are gapless and never reused (a rolled-back write rolls its positions back too);
- on PostgreSQL the head row stays locked until commit, so two writers to one stream commit
  in position order, and every node agrees on every position (no coordination beyond the
  database the writes share anyway);
- the log and the rows it describes commit together: an acknowledged write is always in the
  log, which is what lets a client that missed a live event get it back (``read_after``).

Heads are updated in sorted stream order, so two transactions touching the same streams
cannot deadlock on them. On PostgreSQL one statement moves the heads and stores the events
(one round trip), unless an event follows a stream, whose head must be read first.
Events are kept ``retention`` long (:func:`prune`); the heads stay.

An event that makes its recipients follow another stream (``Event.follows``: GUILD_CREATE,
GUILD_JOIN, a DM's CHANNEL_CREATE) gets ``"follow": {"stream", "position"}`` in its payload:
the followed stream's head before this transaction. Its events after that position are the
ones the recipients may not have: a gateway session replays them when it starts following,
and a client puts the position in its RESUME if no event of that stream came yet.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    LargeBinary,
    String,
    Table,
    delete,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from miaou.bus.base import Event
from miaou.db import direct
from miaou.db.metadata import metadata

MAX_STREAM_NAME = 64
MAX_READ = 1000  # events per read_after call

stream_heads = Table(
    "stream_heads",
    metadata,
    Column("stream", String(MAX_STREAM_NAME), primary_key=True),
    Column("position", BigInteger, nullable=False),
)

stream_events = Table(
    "stream_events",
    metadata,
    Column("stream", String(MAX_STREAM_NAME), primary_key=True),
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    Column("type", String(64), nullable=False),
    # The payload as JSON bytes, exactly as dispatched.
    Column("payload", LargeBinary, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index(None, "created_at"),
)

_encoder = msgspec.json.Encoder()


class LoggedEvent(msgspec.Struct, frozen=True):
    """One stored event: what a replay sends."""

    stream: str
    position: int
    type: str
    payload: msgspec.Raw  # JSON, unparsed


def _advance_statement(dialect: Any) -> Any:
    """Move a stream's head by ``position`` (the count of new events); return the new head."""
    insert = dialect.insert(stream_heads)
    return insert.on_conflict_do_update(
        index_elements=[stream_heads.c.stream],
        set_={"position": stream_heads.c.position + insert.excluded.position},
    ).returning(stream_heads.c.position)


# Built once per dialect: each write transaction runs them (miaou.db.keyed says why).
_ADVANCE = {
    name: direct.register(_advance_statement(d))
    for name, d in (("postgresql", postgresql), ("sqlite", sqlite))
}
_INSERT_EVENTS = direct.register(stream_events.insert())


def append_ctes(source: str) -> str:
    """PostgreSQL: the CTEs that store the events of CTE ``source`` and move their streams'
    heads, for a statement that logs what it writes (``source`` has columns ``stream``,
    ``type``, ``payload`` and ``ord``, the events' order). Each event lands ``back``
    positions before its stream's new head. The heads are inserted in stream order (two
    statements lock the heads they share in the same order); the events' insert reads the
    heads' RETURNING, so it runs after it. The statement binds ``:created_at`` and selects
    from ``heads`` (``stream``, ``position``: each new head) for :func:`positioned`."""
    if not source.isidentifier():  # a CTE's name, from this code only
        raise ValueError(f"not a CTE name: {source!r}")
    return f"""
        logged AS (
            SELECT stream, type, payload,
                count(*) OVER w - row_number() OVER (w ORDER BY ord) AS back
            FROM {source} WINDOW w AS (PARTITION BY stream)
        ), heads AS (
            INSERT INTO stream_heads AS h (stream, position)
            SELECT stream, count(*) FROM logged GROUP BY stream ORDER BY stream
            ON CONFLICT (stream) DO UPDATE SET position = h.position + excluded.position
            RETURNING h.stream, h.position
        ), stored AS (
            INSERT INTO stream_events (stream, position, type, payload, created_at)
            SELECT e.stream, heads.position - e.back, e.type, e.payload, :created_at
            FROM logged AS e JOIN heads ON heads.stream = e.stream
        )"""  # noqa: S608


def event_arrays(events: Sequence[Event]) -> dict[str, list[Any]]:
    """``events`` as the arrays a one-statement append takes (:data:`EVENT_ROWS`)."""
    for event in events:
        if len(event.stream) > MAX_STREAM_NAME:
            raise ValueError(f"stream name too long: {event.stream!r}")
    return {
        "event_streams": [e.stream for e in events],
        "event_types": [e.type for e in events],
        "event_payloads": [_encoder.encode(e.payload) for e in events],
    }


#: The events of :func:`event_arrays` as rows, with their order (``ord``).
EVENT_ROWS = """unnest(
    CAST(:event_streams AS varchar[]), CAST(:event_types AS varchar[]),
    CAST(:event_payloads AS bytea[])
) WITH ORDINALITY AS e(stream, type, payload, ord)"""

# PostgreSQL: every head moved and every event stored by one statement, one round trip (a
# write transaction's last, so the heads are locked the shortest time).
_APPEND_PG = direct.register(
    text(
        f"""
        WITH given AS (SELECT * FROM {EVENT_ROWS}), {append_ctes("given")}
        SELECT stream, position FROM heads
        """  # noqa: S608 (constants only)
    ).columns(stream=String, position=BigInteger)
)


def positioned(events: Sequence[Event], heads: Iterable[tuple[str, int]]) -> list[Event]:
    """``events`` (all logged by one statement) with their positions, from their streams'
    new ``heads``: a stream's events are the last positions up to its head, in order."""
    by_stream: dict[str, list[int]] = defaultdict(list)
    for index, event in enumerate(events):
        by_stream[event.stream].append(index)
    out = list(events)
    for stream, head in heads:
        indexes = by_stream[stream]
        for position, index in enumerate(indexes, start=int(head) - len(indexes) + 1):
            out[index] = msgspec.structs.replace(events[index], position=position)
    return out


async def append(conn: AsyncConnection, events: Sequence[Event], now_ms: int) -> list[Event]:
    """Give ``events`` their positions and store them; returns them positioned, in order.

    Call inside the write transaction, after its last write (the head rows stay locked on
    PostgreSQL until commit, so the shorter that stretch, the better).
    """
    if conn.dialect.name == "postgresql" and all(e.follows is None for e in events):
        return await _append_pg(conn, events, now_ms)  # (event_arrays checks the names)
    by_stream: dict[str, list[int]] = defaultdict(list)
    for index, event in enumerate(events):
        if len(event.stream) > MAX_STREAM_NAME:
            raise ValueError(f"stream name too long: {event.stream!r}")
        by_stream[event.stream].append(index)
    positioned = list(events)
    rows: list[dict[str, Any]] = []
    advance = _ADVANCE[conn.dialect.name]
    before: dict[str, int] = {}
    for stream in sorted(by_stream):
        advanced = await conn.execute(
            advance, {"stream": stream, "position": len(by_stream[stream])}
        )
        before[stream] = int(advanced.scalar_one()) - len(by_stream[stream])
    followed = {e.follows for e in events if e.follows is not None} - before.keys()
    if followed:
        # Not written here: their head as this transaction reads it. A write to them that
        # commits after this one gets a later position, so nothing after it is left out.
        before.update(await heads(conn, sorted(followed)))
    for stream in sorted(by_stream):
        indexes = by_stream[stream]
        for position, index in enumerate(indexes, start=before[stream] + 1):
            event = events[index]
            if event.follows is not None:
                event = _stamped(event, before[event.follows])
            positioned[index] = msgspec.structs.replace(event, position=position)
            rows.append(
                {
                    "stream": stream,
                    "position": position,
                    "type": event.type,
                    "payload": _encoder.encode(event.payload),
                    "created_at": now_ms,
                }
            )
    await conn.execute(_INSERT_EVENTS, rows)
    return positioned


async def _append_pg(conn: AsyncConnection, events: Sequence[Event], now_ms: int) -> list[Event]:
    """:func:`append` in one statement (no event follows a stream: none needs a head read
    before its payload is written)."""
    heads = await conn.execute(_APPEND_PG, {**event_arrays(events), "created_at": now_ms})
    return positioned(events, heads.all())


def _stamped(event: Event, position: int) -> Event:
    if not isinstance(event.payload, dict):
        raise TypeError(f"{event.type} follows a stream: its payload must be an object")
    follow = {"stream": event.follows, "position": position}
    return msgspec.structs.replace(event, payload={**event.payload, "follow": follow})


async def heads(conn: AsyncConnection, streams: Sequence[str]) -> dict[str, int]:
    """The current position of each stream (0 for a stream with no event yet)."""
    found: dict[str, int] = dict.fromkeys(streams, 0)
    for start in range(0, len(streams), 500):
        chunk = list(streams[start : start + 500])
        result = await conn.execute(
            select(stream_heads.c.stream, stream_heads.c.position).where(
                stream_heads.c.stream.in_(chunk)
            )
        )
        for stream, position in result:
            found[stream] = int(position)
    return found


class Gap(Exception):
    """The log no longer holds the events after this position (pruned): no resume."""


async def read_after(
    conn: AsyncConnection, stream: str, after: int, up_to: int, *, limit: int = MAX_READ
) -> list[LoggedEvent]:
    """Events ``after < position <= up_to`` in order (at most ``limit``); :class:`Gap` if
    the first of them was pruned."""
    if up_to <= after:
        return []
    result = await conn.execute(
        select(stream_events.c.position, stream_events.c.type, stream_events.c.payload)
        .where(
            stream_events.c.stream == stream,
            stream_events.c.position > after,
            stream_events.c.position <= up_to,
        )
        .order_by(stream_events.c.position)
        .limit(limit)
    )
    found = [
        LoggedEvent(stream, int(position), type_, msgspec.Raw(bytes(payload)))
        for position, type_, payload in result
    ]
    if not found or found[0].position != after + 1:
        raise Gap(f"{stream} no longer holds position {after + 1}")
    return found


async def prune(conn: AsyncConnection, before_ms: int) -> int:
    """Drop events stored before ``before_ms``; returns how many."""
    result = await conn.execute(delete(stream_events).where(stream_events.c.created_at < before_ms))
    return int(result.rowcount or 0)
