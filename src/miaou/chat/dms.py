"""Direct messages and group DMs: channels outside guilds, visible to their recipients.

Opening a DM with someone returns the existing one if there is one. Group DMs hold up to
10 people (the creator included) and are always new.
"""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import Select, and_, bindparam, func, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from miaou import ids
from miaou.accounts.models import User
from miaou.chat.models import Channel, ChannelType, DMCreate
from miaou.chat.outbox import Outbox, channel_stream, user_stream
from miaou.chat.tables import channel_recipients, channels, read_states
from miaou.chat.views import channel_view, recipient_view
from miaou.db.metadata import users
from miaou.errors import InvalidInput, NotFound
from miaou.ids import now_ms, parse_id

MAX_GROUP = 10

_RECIPIENT = channel_recipients.alias("recipient")


def _with_read_position(*columns: Any) -> Select[Any]:
    """``columns`` of the user's (``:user_id``) DMs, and the user's read position there."""
    return (
        select(*columns, read_states.c.last_read_id)
        .select_from(channel_recipients)
        .join(channels, channels.c.id == channel_recipients.c.channel_id)
        .outerjoin(
            read_states,
            and_(
                read_states.c.channel_id == channels.c.id,
                read_states.c.user_id == channel_recipients.c.user_id,
            ),
        )
        .where(channel_recipients.c.user_id == bindparam("user_id"))
    )


#: The user's DMs with their read position, oldest first (read states need no recipients).
MY_DMS = _with_read_position(channels).order_by(channels.c.id)
# The user's DMs, oldest first, in one query however many: a row per recipient (by id),
# carrying the channel's columns, the recipient's, and the user's read position there.
_MINE = (
    _with_read_position(
        channels,
        users.c.id.label("recipient_id"),
        users.c.username,
        users.c.display_name,
        users.c.bio,
        users.c.created_at.label("recipient_created_at"),
    )
    .join(_RECIPIENT, _RECIPIENT.c.channel_id == channels.c.id)
    .join(users, users.c.id == _RECIPIENT.c.user_id)
    .order_by(channels.c.id, users.c.id)
)
_ONE = _MINE.where(channels.c.id == bindparam("channel_id"))


class DMService:
    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self.db = outbox.db

    async def open(self, user_id: int, body: DMCreate) -> Channel:
        one = body.recipient_id is not msgspec.UNSET
        many = body.recipient_ids is not msgspec.UNSET
        if one == many:
            raise InvalidInput(
                "Give recipient_id (a DM) or recipient_ids (a group DM).",
                errors={"recipient_id": ["exactly one of recipient_id, recipient_ids"]},
            )
        raw: list[str] = []
        if isinstance(body.recipient_id, str):
            raw.append(body.recipient_id)
        if isinstance(body.recipient_ids, list):
            raw.extend(body.recipient_ids)
        others = {parse_id(r) for r in raw}
        if None in others:
            raise NotFound("No such user.", code="unknown_user")
        others.discard(user_id)
        recipients = sorted({user_id, *(o for o in others if o is not None)})
        if one and len(recipients) != 2:
            raise InvalidInput("A DM is with someone else.", errors={"recipient_id": ["is you"]})
        if len(recipients) > MAX_GROUP:
            raise InvalidInput(f"A group DM has at most {MAX_GROUP} people.", code="max_recipients")
        async with self.outbox.write() as (conn, events):
            found = (await conn.execute(select(users.c.id).where(users.c.id.in_(recipients)))).all()
            if len(found) != len(recipients):
                raise NotFound("No such user.", code="unknown_user")
            if one:
                existing = await self._existing_dm(conn, recipients)
                if existing is not None:
                    return await self._view(conn, user_id, existing)
            channel_id = ids.new_id()
            await conn.execute(
                channels.insert().values(
                    id=channel_id,
                    guild_id=None,
                    type=int(ChannelType.DM if one else ChannelType.GROUP_DM),
                    name=None if one else (body.name or None),
                    owner_id=None if one else user_id,
                    created_at=now_ms(),
                )
            )
            await conn.execute(
                channel_recipients.insert(),
                [{"channel_id": channel_id, "user_id": r} for r in recipients],
            )
            result = await self._view(conn, user_id, channel_id)
            for recipient in recipients:
                events.append(
                    self.outbox.event(
                        "CHANNEL_CREATE",
                        user_stream(recipient),
                        msgspec.to_builtins(result),
                        follows=channel_stream(channel_id),
                    )
                )
        return result

    async def _existing_dm(self, conn: AsyncConnection, pair: list[int]) -> int | None:
        query = (
            select(channel_recipients.c.channel_id)
            .join(channels, channels.c.id == channel_recipients.c.channel_id)
            .where(channels.c.type == int(ChannelType.DM), channel_recipients.c.user_id.in_(pair))
            .group_by(channel_recipients.c.channel_id)
            .having(func.count() == 2)
        )
        return (await conn.execute(query)).scalar()

    async def _view(self, conn: AsyncConnection, user_id: int, channel_id: int) -> Channel:
        ((_, channel),) = await _listed(conn, _ONE, {"user_id": user_id, "channel_id": channel_id})
        return channel

    async def channels(self, conn: AsyncConnection, user_id: int) -> list[tuple[Row[Any], Channel]]:
        """The user's DMs, oldest first, in the caller's transaction: each its row (with
        ``last_read_id``, the user's read position, None if never read) and wire shape."""
        return await _listed(conn, _MINE, {"user_id": user_id})

    async def mine(self, user_id: int) -> list[Channel]:
        async with self.db.read() as conn:
            return [channel for _, channel in await self.channels(conn, user_id)]


async def _listed(
    conn: AsyncConnection, query: Any, params: dict[str, int]
) -> list[tuple[Row[Any], Channel]]:
    grouped: dict[int, tuple[Row[Any], list[User]]] = {}
    for row in await conn.execute(query, params):
        grouped.setdefault(row.id, (row, []))[1].append(recipient_view(row))
    return [(row, channel_view(row, recipients=people)) for row, people in grouped.values()]
