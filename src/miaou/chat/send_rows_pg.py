"""PostgreSQL: a send batch's rows written by one statement.

:func:`miaou.chat.sends.write_sends` writes a batch's new messages, claims their nonces and
bumps each channel's newest id and count: three statements in a row, each a round trip
(and the nonce claims may withdraw messages after their insert). On PostgreSQL one
statement does all three, as data-modifying CTEs:

- ``claimed``: the nonces claimed (``ON CONFLICT DO NOTHING``: a claim another transaction
  holds waits for it, then loses if it committed);
- ``inserted``: the messages, except those whose claim was lost (they are never written);
- ``bumped``: each channel moved by what was inserted (never backwards: concurrent batches
  may commit out of id order), in channel id order as the separate bump goes (should a
  plan not keep that order and two batches deadlock, PostgreSQL fails one, and the group
  commit retries its sends one at a time).

It returns the ids inserted; the caller answers a lost claim with the winner's message, as
the separate statements do. A claim's row names its message, inserted by the same
statement: the foreign key is checked at the statement's end, when both exist. The caller
uses this only when no item takes over an expired nonce (that path updates the old claim
after the insert and may withdraw the message, so it keeps the separate statements).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from sqlalchemy import BigInteger, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

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
_WRITE = direct.register(
    text(
        f"""
        WITH claimed AS (
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
                    WHEN ch.last_message_id IS NULL OR ch.last_message_id < b.newest
                    THEN b.newest ELSE ch.last_message_id END,
                message_count = ch.message_count + b.added
            FROM (
                SELECT channel_id, max(id) AS newest, count(*) AS added
                FROM inserted GROUP BY channel_id ORDER BY channel_id
            ) AS b
            WHERE ch.id = b.channel_id
        )
        SELECT id FROM inserted
        """  # noqa: S608
    ).columns(id=BigInteger)
)


async def write_rows(
    conn: AsyncConnection,
    rows: Sequence[Mapping[str, Any]],
    claims: Sequence[tuple[int, str] | None],
    now: int,
) -> set[int]:
    """Insert ``rows`` (message rows as ``write_sends`` builds them), each claiming the
    nonce ``claims[i]`` (author, nonce) if not None; bump the channels. Returns the ids
    inserted: a row whose claim was lost is not."""
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
    result = await conn.execute(_WRITE, values)
    return {row.id for row in result}
