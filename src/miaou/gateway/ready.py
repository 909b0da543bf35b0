"""What a session follows and what READY tells it, read through the chat services.

READY goes through the same services as REST (the same permission checks), after the
session is subscribed and holding, so it is at least as new as the positions it names.
"""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import select

from miaou.accounts.service import AccountService, Principal
from miaou.chat.channels import ChannelService
from miaou.chat.dms import DMService
from miaou.chat.guilds import GuildService
from miaou.chat.members import MemberService
from miaou.chat.outbox import channel_stream, guild_stream, user_stream
from miaou.chat.read_states import ReadStateService
from miaou.chat.tables import channel_recipients, members
from miaou.db.engine import Database

MAX_STREAMS = 2_000  # guilds + DMs a session follows; more are left for REST


class ReadyReader:
    def __init__(
        self,
        db: Database,
        accounts: AccountService,
        guilds: GuildService,
        channels: ChannelService,
        dms: DMService,
        read_states: ReadStateService,
        members: MemberService,
    ) -> None:
        self.db = db
        self.accounts = accounts
        self.guilds = guilds
        self.channels = channels
        self.dms = dms
        self.read_states = read_states
        self.members = members

    async def streams(self, user_id: int) -> list[str]:
        """The user's own stream, their guilds', their DMs'."""
        async with self.db.read() as conn:
            guild_ids = (
                await conn.execute(
                    select(members.c.guild_id)
                    .where(members.c.user_id == user_id)
                    .order_by(members.c.joined_at)
                    .limit(MAX_STREAMS)
                )
            ).scalars()
            names = [user_stream(user_id), *(guild_stream(g) for g in guild_ids)]
            dm_ids = (
                await conn.execute(
                    select(channel_recipients.c.channel_id)
                    .where(channel_recipients.c.user_id == user_id)
                    .limit(MAX_STREAMS)
                )
            ).scalars()
            names.extend(channel_stream(c) for c in dm_ids)
        return names[: MAX_STREAMS + 1]

    async def ready(
        self, principal: Principal, session_id: str, positions: dict[str, int]
    ) -> dict[str, Any]:
        user_id = principal.user_id
        me = await self.accounts.me(principal)
        guilds = []
        for guild in await self.guilds.mine(user_id):
            guild_id = int(guild.id)
            visible = await self.channels.visible(user_id, guild_id)
            member = await self.members.get(user_id, guild_id, str(user_id))
            guilds.append(
                {
                    **msgspec.to_builtins(guild),
                    "channels": msgspec.to_builtins(visible),
                    "member": msgspec.to_builtins(member),
                }
            )
        return {
            "session_id": session_id,
            "user": msgspec.to_builtins(me),
            "guilds": guilds,
            "private_channels": msgspec.to_builtins(await self.dms.mine(user_id)),
            "read_states": msgspec.to_builtins(await self.read_states.summary(user_id)),
            "positions": positions,
        }
