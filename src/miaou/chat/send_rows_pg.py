"""PostgreSQL: a send batch's rows written by one statement.

:func:`miaou.chat.sends.write_sends` writes a batch's new messages, claims their nonces and
bumps each channel's newest id and count: three statements in a row on SQLite. On
PostgreSQL one statement does all three, as data-modifying CTEs:

- ``claimed``: the nonces claimed (``ON CONFLICT DO NOTHING``: a claim another transaction
  holds waits for it, then loses if it committed);
- ``inserted``: the messages, except those whose claim was lost (they are never written);
- ``bumped``: each channel moved by what was inserted, in channel id order as the separate
  bump goes (should a plan not keep that order and two batches deadlock, PostgreSQL fails
  one, and the group commit retries its sends one at a time); and the statement fails,
  writing nothing (:class:`Late`), if a channel already holds a message at or after the
  batch's ids (see ``_WRITES``).

:func:`write_rows` returns the ids inserted; the caller answers a lost claim with the
winner's message, as the separate statements do. A claim's row names its message,
inserted by the same statement: the foreign key is checked at the statement's end, when
both exist. The caller uses this only when no item takes over an expired nonce (that path
updates the old claim after the insert and may withdraw the message, so it keeps the
separate statements). :func:`write_rows_logged` also stores the messages' events in the
stream log: the whole batch in autocommit, one round trip.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import msgspec
from sqlalchemy import BigInteger, String, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from miaou.bus import Event, log
from miaou.chat.tables import messages
from miaou.db import direct

_DIALECT: Any = postgresql.dialect  # (untyped in SQLAlchemy's stubs)
# The columns a send writes, in the order of the arrays, with their types as the table has
# them (PostgreSQL's names).
_COLUMNS = tuple(
    (name, messages.c[name].type.compile(dialect=_DIALECT()).lower())
    for name in (
        "id", "channel_id", "guild_id", "author_id", "type", "content", "reference_id",
        "mention_everyone", "mentions", "mention_roles", "mention_channels", "has_link",
        "has_attachments",
    )
)  # fmt: skip
_encode = msgspec.json.Encoder().encode
_JSON = tuple(name for name, kind in _COLUMNS if kind == "json")
_NAMES = ", ".join(name for name, _ in _COLUMNS)
# JSON travels as text (an array's element would otherwise be read as one more dimension).
_ARRAYS = ", ".join(
    f"CAST(:{name} AS {'text' if kind == 'json' else kind}[])" for name, kind in _COLUMNS
)
_PICKED = ", ".join(
    f"CAST(r.{name} AS json)" if kind == "json" else f"r.{name}" for name, kind in _COLUMNS
)


# Built from the constants above only: no value reaches the SQL text.
#
# ``bumped`` also keeps a channel's ids growing in commit order, whichever worker writes:
# it locks each channel row (until commit) and, if the channel already holds a message at
# or after the batch's first id there (another worker made its ids later but committed
# first), fails the statement with SQLSTATE MLATE (``miaou_late_message``, migration
# 0009) and nothing is written; the caller makes ids past that message and writes again.
# So a page read with ``after`` can never be passed by a later commit.
_WRITES = f"""
    claimed AS (
        INSERT INTO message_nonces (author_id, nonce, message_id, created_at)
        SELECT c.author_id, c.nonce, c.message_id, :now
        FROM unnest(
            CAST(:claim_authors AS bigint[]), CAST(:claim_nonces AS varchar[]),
            CAST(:claim_messages AS bigint[])
        ) AS c(author_id, nonce, message_id)
        ON CONFLICT DO NOTHING
        RETURNING message_id
    ), inserted AS (
        INSERT INTO messages ({_NAMES})
        SELECT {_PICKED}
        FROM unnest({_ARRAYS}, CAST(:claiming AS boolean[])) AS r({_NAMES}, claiming)
        WHERE NOT r.claiming OR r.id IN (SELECT message_id FROM claimed)
        RETURNING id, channel_id
    ), bumped AS (
        UPDATE channels AS ch SET
            last_message_id = CASE
                WHEN ch.last_message_id >= b.oldest
                THEN miaou_late_message(ch.last_message_id)
                WHEN ch.last_message_id IS NULL OR ch.last_message_id < b.newest
                THEN b.newest ELSE ch.last_message_id END,
            message_count = ch.message_count + b.added
        FROM (
            SELECT channel_id, min(id) AS oldest, max(id) AS newest, count(*) AS added
            FROM inserted GROUP BY channel_id ORDER BY channel_id
        ) AS b
        WHERE ch.id = b.channel_id
        RETURNING ch.id
    )"""  # noqa: S608

_WRITE = direct.register(
    text(f"WITH {_WRITES} SELECT id FROM inserted").columns(id=BigInteger)  # noqa: S608
)

# The writes and their events in the stream log (miaou.bus.log.append_ctes): the events
# of the messages inserted only, each naming its message (``event_messages``). The
# events wait for every channel to be bumped (the scalar subquery runs ``bumped`` to its
# end before the first event row): channels then heads, the order in which a
# transaction's writes and then its log lock them.
_WRITE_LOGGED = direct.register(
    text(
        f"""
        WITH {_WRITES}, created AS (
            SELECT e.* FROM {log.EVENT_ROWS}
            JOIN unnest(CAST(:event_messages AS bigint[])) WITH ORDINALITY AS m(id, ord)
                USING (ord)
            WHERE m.id IN (SELECT id FROM inserted) AND (SELECT count(*) FROM bumped) >= 0
        ), {log.append_ctes("created")}
        SELECT id, CAST(NULL AS varchar) AS stream, CAST(NULL AS bigint) AS position
        FROM inserted
        UNION ALL SELECT NULL, stream, position FROM heads
        """  # noqa: S608
    ).columns(id=BigInteger, stream=String, position=BigInteger)
)


def _values(
    rows: Sequence[Mapping[str, Any]], claims: Sequence[tuple[int, str] | None], now: int
) -> dict[str, Any]:
    claiming = {i: claim for i, claim in enumerate(claims) if claim is not None}
    values: dict[str, Any] = {name: [row[name] for row in rows] for name, _ in _COLUMNS}
    for name in _JSON:
        values[name] = [_encode(v).decode() for v in values[name]]
    values.update(
        claiming=[i in claiming for i in range(len(rows))],
        claim_authors=[author for author, _ in claiming.values()],
        claim_nonces=[nonce for _, nonce in claiming.values()],
        claim_messages=[rows[i]["id"] for i in claiming],
        now=now,
    )
    return values


async def write_rows(
    conn: AsyncConnection,
    rows: Sequence[Mapping[str, Any]],
    claims: Sequence[tuple[int, str] | None],
    now: int,
) -> set[int]:
    """Insert ``rows`` (message rows as ``write_sends`` builds them), each claiming the
    nonce ``claims[i]`` (author, nonce) if not None; bump the channels. Returns the ids
    inserted: a row whose claim was lost is not. :class:`Late` if a channel already
    holds a later message."""
    with _late_raised():
        result = await conn.execute(_WRITE, _values(rows, claims, now))
    return {row.id for row in result}


class Late(Exception):
    """Nothing was written: a channel holds a message at or after the batch's first id
    there (``newest``, its newest message's id)."""

    def __init__(self, newest: int) -> None:
        super().__init__(f"a channel's newest message is {newest}")
        self.newest = newest


@contextmanager
def _late_raised() -> Iterator[None]:
    """SQLSTATE MLATE (``miaou_late_message``) as :class:`Late`; other errors unchanged."""
    try:
        yield
    except DBAPIError as error:
        found = error.orig
        if found is None or getattr(found, "sqlstate", None) != "MLATE":
            raise
        # asyncpg's error, under the adapter's, carries the DETAIL.
        detail = getattr(found.__cause__, "detail", None)
        if detail is None or not detail.isdigit():
            raise
        raise Late(int(detail)) from error


async def write_rows_logged(
    conn: AsyncConnection,
    rows: Sequence[Mapping[str, Any]],
    claims: Sequence[tuple[int, str] | None],
    now: int,
    events: Sequence[Event],
) -> tuple[set[int], list[Event]]:
    """:func:`write_rows`, and ``events[i]`` (the event of ``rows[i]``) stored in the
    stream log if that row was inserted: (the ids inserted, their events positioned).
    :class:`Late`, with nothing written, if a channel already holds a later message."""
    values = _values(rows, claims, now)
    values.update(log.event_arrays(events), event_messages=values["id"], created_at=now)
    with _late_raised():
        result = (await conn.execute(_WRITE_LOGGED, values)).all()
    inserted = {r.id for r in result if r.id is not None}
    kept = [e for e, row in zip(events, rows, strict=True) if row["id"] in inserted]
    heads = [(r.stream, r.position) for r in result if r.id is None]
    return inserted, log.positioned(kept, heads)
