"""Direct messages and group DMs: channels outside guilds, visible to their recipients.

Opening a DM with someone returns the existing one if there is one. Group DMs hold up to
10 people (the creator included) and are always new.
"""

from __future__ import annotations

import msgspec
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from miaou import ids
from miaou.chat.models import Channel, ChannelType, DMCreate
from miaou.chat.outbox import Outbox, user_stream
from miaou.chat.tables import channel_recipients, channels
from miaou.chat.views import channel_view
from miaou.db.metadata import users
from miaou.errors import InvalidInput, NotFound
from miaou.ids import now_ms, parse_id

MAX_GROUP = 10


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
                    return await self._view(conn, existing)
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
            result = await self._view(conn, channel_id)
            for recipient in recipients:
                events.append(
                    self.outbox.event(
                        "CHANNEL_CREATE", user_stream(recipient), msgspec.to_builtins(result)
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

    async def _view(self, conn: AsyncConnection, channel_id: int) -> Channel:
        row = (await conn.execute(select(channels).where(channels.c.id == channel_id))).one()
        people = (
            await conn.execute(
                select(users)
                .join(channel_recipients, channel_recipients.c.user_id == users.c.id)
                .where(channel_recipients.c.channel_id == channel_id)
                .order_by(users.c.id)
            )
        ).all()
        return channel_view(row, recipients=people)

    async def mine(self, user_id: int) -> list[Channel]:
        async with self.db.read() as conn:
            channel_ids = (
                await conn.execute(
                    select(channel_recipients.c.channel_id).where(
                        channel_recipients.c.user_id == user_id
                    )
                )
            ).scalars()
            return [await self._view(conn, cid) for cid in list(channel_ids)]
