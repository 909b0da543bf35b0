"""Read state: how far each user has read each channel, and what is unread.

Acknowledging only moves forward (an old ack arriving late changes nothing). Unread and
mention counts are computed when asked, from the newest ``COUNT_CAP`` messages after the
read position (the unread count is capped there; clients show "99+"), so they are always
consistent with edits and deletes and cost nothing on the send path. Channels with nothing
new are not counted at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from sqlalchemy import BigInteger, and_, bindparam, func, or_, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from miaou.chat.access import channel_access, guild_accesses
from miaou.chat.dms import MY_DMS
from miaou.chat.guilds import guild_channels, member_guild_ids
from miaou.chat.models import ChannelType
from miaou.chat.outbox import Outbox, user_stream
from miaou.chat.permissions import Permission
from miaou.chat.tables import channels, messages, read_states
from miaou.errors import InvalidInput
from miaou.ids import now_ms, parse_id

COUNT_CAP = 1000
# Guild channels that hold messages (threads are listed by their own endpoints).
GUILD_MESSAGE_TYPES = frozenset(
    int(t)
    for t in (
        ChannelType.GUILD_TEXT,
        ChannelType.GUILD_ANNOUNCEMENT,
        ChannelType.GUILD_VOICE,
        ChannelType.GUILD_STAGE_VOICE,
    )
)


class ReadState(msgspec.Struct, kw_only=True):
    channel_id: str
    guild_id: str | None
    last_message_id: str | None
    last_read_id: str
    unread_count: int
    mention_count: int


def _mentions_me(dialect: str) -> Any:
    """SQL: the message (a row of the ``recent`` window below) mentions the user
    (``:user_id``) directly, by a role they hold in the message's guild, or everyone."""
    if dialect == "sqlite":
        direct = (
            "EXISTS (SELECT 1 FROM json_each(recent.mentions) WHERE json_each.value = :user_id)"
        )
        by_role = (
            "EXISTS (SELECT 1 FROM json_each(recent.mention_roles) AS mentioned"
            " JOIN member_roles ON member_roles.role_id = mentioned.value"
            " WHERE member_roles.guild_id = recent.guild_id"
            " AND member_roles.user_id = :user_id)"
        )
    else:
        direct = "recent.mentions::jsonb @> to_jsonb(ARRAY[CAST(:user_id AS bigint)])"
        by_role = (
            "EXISTS (SELECT 1 FROM member_roles WHERE member_roles.guild_id = recent.guild_id"
            " AND member_roles.user_id = :user_id"
            " AND recent.mention_roles::jsonb @> to_jsonb(ARRAY[member_roles.role_id]))"
        )
    user_id = bindparam("user_id", type_=BigInteger)
    return or_(
        text("recent.mention_everyone"),
        text(direct).bindparams(user_id),
        text(by_role).bindparams(user_id),
    )


def _counts(dialect: str) -> Any:
    """Unread and mention counts of the channels ``:channel_ids``, in one query. Both look
    at the newest ``COUNT_CAP`` unread messages only (found backwards on the channel's id
    index): a busy channel the user never reads costs that many rows, not its history. So
    the unread count is capped, and past the cap the mentions are those of the newest
    ``COUNT_CAP`` unread messages."""
    last_read = func.coalesce(read_states.c.last_read_id, 0)
    recent = (
        select(
            messages.c.id, messages.c.guild_id, messages.c.mention_everyone,
            messages.c.mentions, messages.c.mention_roles,
        )
        .where(
            messages.c.channel_id == channels.c.id,
            messages.c.id > last_read,
            messages.c.deleted_at.is_(None),
            messages.c.author_id != bindparam("user_id"),
        )
        .order_by(messages.c.id.desc())
        .limit(COUNT_CAP)
        .correlate(channels, read_states)
    )  # fmt: skip

    def count(*where: Any) -> Any:
        window = recent.subquery("recent")
        return select(func.count()).select_from(window).where(*where).scalar_subquery()

    return (
        select(channels.c.id, count(), count(_mentions_me(dialect)))
        .outerjoin(
            read_states,
            and_(
                read_states.c.channel_id == channels.c.id,
                read_states.c.user_id == bindparam("user_id"),
            ),
        )
        .where(channels.c.id.in_(bindparam("channel_ids", expanding=True)))
    )


# Built once per engine: SQLAlchemy then reuses their compiled form.
_COUNTS = {"sqlite": _counts("sqlite"), "postgresql": _counts("postgresql")}


class ReadStateService:
    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self.db = outbox.db

    async def ack(self, user_id: int, channel_id: int, message_ref: str) -> None:
        message_id = parse_id(message_ref)
        if message_id is None:
            raise InvalidInput("Not a message id.", errors={"message_id": ["not an id"]})
        async with self.outbox.write() as (conn, events):
            await channel_access(conn, channel_id, user_id, now_ms())
            values = {"user_id": user_id, "channel_id": channel_id, "last_read_id": message_id,
                      "mention_count": 0}  # fmt: skip
            insert = (sqlite_insert if self.db.is_sqlite else pg_insert)(read_states).values(
                **values
            )
            # Only forward: the greater of the stored and the new position wins.
            await conn.execute(
                insert.on_conflict_do_update(
                    index_elements=["user_id", "channel_id"],
                    set_={"last_read_id": func.max(read_states.c.last_read_id, message_id)
                          if self.db.is_sqlite
                          else func.greatest(read_states.c.last_read_id, message_id)},
                )
            )  # fmt: skip
            events.append(
                self.outbox.event(
                    "MESSAGE_ACK", user_stream(user_id),
                    {"channel_id": str(channel_id), "message_id": str(message_id)},
                )
            )  # fmt: skip

    async def summary(self, user_id: int) -> list[ReadState]:
        """Read state of every channel the user can see, in all their guilds and DMs."""
        now = now_ms()
        async with self.db.read() as conn:
            guild_ids = await member_guild_ids(conn, user_id)
            standing = await guild_accesses(conn, [(g, user_id) for g in guild_ids], now)
            seen = [
                row
                for row, channel_overwrites in await guild_channels(conn, user_id, guild_ids)
                if row.type in GUILD_MESSAGE_TYPES
                and (access := standing.get((row.guild_id, user_id))) is not None
                and Permission.VIEW_CHANNEL in access.in_channel(channel_overwrites)
            ]
            seen.extend(await conn.execute(MY_DMS, {"user_id": user_id}))
            return await self.states(conn, user_id, seen)

    async def states(
        self, conn: AsyncConnection, user_id: int, rows: Sequence[Row[Any]]
    ) -> list[ReadState]:
        """The read state of each channel row (with ``last_read_id``: the user's read
        position, None if never read), in the caller's transaction. Only channels with
        messages past that position are counted, all in one query."""
        stale = [
            r.id for r in rows
            if r.last_message_id is not None and r.last_message_id > (r.last_read_id or 0)
        ]  # fmt: skip
        counts: dict[int, tuple[int, int]] = {}
        if stale:
            query = _COUNTS[conn.dialect.name]
            for channel_id, unread, mentions in await conn.execute(
                query, {"user_id": user_id, "channel_ids": stale}
            ):
                counts[channel_id] = (unread, mentions)
        out = []
        for row in rows:
            unread, mentions = counts.get(row.id, (0, 0))
            out.append(
                ReadState(
                    channel_id=str(row.id),
                    guild_id=str(row.guild_id) if row.guild_id is not None else None,
                    last_message_id=str(row.last_message_id) if row.last_message_id else None,
                    last_read_id=str(row.last_read_id or 0),
                    unread_count=unread,
                    mention_count=mentions,
                )
            )
        return out
