"""Read state: how far each user has read each channel, and what is unread.

Acknowledging only moves forward (an old ack arriving late changes nothing). Unread and
mention counts are computed when asked, from the messages after the read position, and
capped at ``COUNT_CAP`` (clients show "99+"), so they are always consistent with edits and
deletes and cost nothing on the send path. Channels with nothing new are not counted at all.
"""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import and_, func, literal, or_, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from miaou.chat.access import channel_access, guild_access, overwrites_by_channel
from miaou.chat.models import ChannelType
from miaou.chat.outbox import Outbox, user_stream
from miaou.chat.permissions import Permission
from miaou.chat.tables import channel_recipients, channels, members, messages, read_states
from miaou.errors import InvalidInput
from miaou.ids import now_ms, parse_id

COUNT_CAP = 1000
# Guild channels that hold messages (threads are listed by their own endpoints).
_GUILD_MESSAGE_TYPES = (
    ChannelType.GUILD_TEXT,
    ChannelType.GUILD_ANNOUNCEMENT,
    ChannelType.GUILD_VOICE,
    ChannelType.GUILD_STAGE_VOICE,
)


class ReadState(msgspec.Struct, kw_only=True):
    channel_id: str
    guild_id: str | None
    last_message_id: str | None
    last_read_id: str
    unread_count: int
    mention_count: int


_CONTAINS = {
    # Does the JSON array in the column hold the value? Column names come from this module.
    "sqlite": "EXISTS (SELECT 1 FROM json_each(messages.{column}) WHERE json_each.value = :{name})",
    "postgresql": "messages.{column}::jsonb @> to_jsonb(ARRAY[CAST(:{name} AS bigint)])",
}


def _mentions_me(dialect: str, user_id: int, role_ids: list[int]) -> Any:
    """SQL: this message mentions ``user_id`` (directly, by one of their roles, or all)."""
    template = _CONTAINS["sqlite" if dialect == "sqlite" else "postgresql"]

    def contains(column: str, name: str, value: int) -> Any:
        return text(template.format(column=column, name=name)).bindparams(**{name: value})

    conditions = [messages.c.mention_everyone, contains("mentions", "me", user_id)]
    conditions += [contains("mention_roles", f"r{i}", r) for i, r in enumerate(role_ids[:50])]
    return or_(*conditions)


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
        out: list[ReadState] = []
        async with self.db.read() as conn:
            positions = dict(
                (
                    await conn.execute(
                        select(read_states.c.channel_id, read_states.c.last_read_id).where(
                            read_states.c.user_id == user_id
                        )
                    )
                ).all()
            )
            guild_ids = (
                await conn.execute(select(members.c.guild_id).where(members.c.user_id == user_id))
            ).scalars()
            for guild_id in list(guild_ids):
                access = await guild_access(conn, guild_id, user_id, now)
                role_ids = sorted(access.info.role_ids)
                rows = (
                    await conn.execute(
                        select(channels).where(
                            channels.c.guild_id == guild_id,
                            channels.c.type.in_([int(t) for t in _GUILD_MESSAGE_TYPES]),
                        )
                    )
                ).all()
                by_channel = await overwrites_by_channel(conn, [r.id for r in rows])
                for row in rows:
                    if Permission.VIEW_CHANNEL not in access.in_channel(by_channel[row.id]):
                        continue
                    out.append(await self._state(conn, row, positions.get(row.id, 0), user_id,
                                                 role_ids))  # fmt: skip
            dm_rows = (
                await conn.execute(
                    select(channels)
                    .join(channel_recipients, channel_recipients.c.channel_id == channels.c.id)
                    .where(channel_recipients.c.user_id == user_id)
                )
            ).all()
            for row in dm_rows:
                out.append(await self._state(conn, row, positions.get(row.id, 0), user_id, []))
        return out

    async def _state(
        self, conn: AsyncConnection, channel: Any, last_read: int, user_id: int,
        role_ids: list[int],
    ) -> ReadState:  # fmt: skip
        unread = mentions = 0
        if channel.last_message_id is not None and channel.last_message_id > last_read:
            after = and_(
                messages.c.channel_id == channel.id,
                messages.c.id > last_read,
                messages.c.deleted_at.is_(None),
                messages.c.author_id != user_id,
            )
            capped = select(literal(1)).where(after).limit(COUNT_CAP).subquery()
            unread = int(
                (await conn.execute(select(func.count()).select_from(capped))).scalar_one()
            )
            if unread:
                mention_rows = (
                    select(literal(1))
                    .where(after, _mentions_me(self.db.dialect, user_id, role_ids))
                    .limit(COUNT_CAP)
                    .subquery()
                )
                mentions = int(
                    (
                        await conn.execute(select(func.count()).select_from(mention_rows))
                    ).scalar_one()
                )
        return ReadState(
            channel_id=str(channel.id),
            guild_id=str(channel.guild_id) if channel.guild_id is not None else None,
            last_message_id=str(channel.last_message_id) if channel.last_message_id else None,
            last_read_id=str(last_read),
            unread_count=unread,
            mention_count=mentions,
        )
