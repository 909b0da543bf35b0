"""What a session follows and what READY tells it.

READY is read after the session is subscribed and holding, so it is at least as new as the
positions it names; who sees which channel comes from the hub's guild views, the rules that
filter the session's live events too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from miaou.accounts.service import AccountService, Principal
from miaou.chat.access import overwrites_by_channel
from miaou.chat.dms import DMService
from miaou.chat.guilds import load_guilds, member_guild_ids
from miaou.chat.members import member_rows
from miaou.chat.models import THREAD_TYPES
from miaou.chat.outbox import channel_stream, guild_stream, user_stream
from miaou.chat.read_states import ReadStateService
from miaou.chat.tables import channel_recipients, channels, members
from miaou.chat.views import channel_view
from miaou.db.engine import Database
from miaou.gateway.guild_view import GuildView
from miaou.ids import now_ms

MAX_STREAMS = 2_000  # guilds + DMs a session follows; more are left for REST


class ReadyReader:
    def __init__(
        self,
        db: Database,
        accounts: AccountService,
        dms: DMService,
        read_states: ReadStateService,
    ) -> None:
        self.db = db
        self.accounts = accounts
        self.dms = dms
        self.read_states = read_states

    async def streams(self, user_id: int) -> list[str]:
        """The user's own stream, their guilds', their DMs'."""
        async with self.db.read() as conn:
            guild_ids = await member_guild_ids(conn, user_id, limit=MAX_STREAMS)
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
        self,
        principal: Principal,
        session_id: str,
        positions: dict[str, int],
        views: Mapping[int, GuildView],
    ) -> dict[str, Any]:
        """READY in one read transaction. Which channels the user sees comes from the hub's
        guild views (``views``, by guild id: current as of ``positions``), so no permission
        is computed from rows here; a guild without a view is read but shows no channel."""
        user_id = principal.user_id
        me = await self.accounts.me(principal)
        guild_ids = [int(name.partition(":")[2]) for name in positions if name.startswith("guild:")]
        now = now_ms()
        async with self.db.read() as conn:
            found = await load_guilds(conn, await _existing(conn, user_id, guild_ids))
            rows = (
                await conn.execute(
                    select(channels)
                    .where(
                        channels.c.guild_id.in_([int(g.id) for g in found]),
                        channels.c.type.not_in([int(t) for t in THREAD_TYPES]),
                    )
                    .order_by(channels.c.position, channels.c.id)
                )
            ).all()
            seen = [
                r for r in rows
                if (view := views.get(r.guild_id)) is not None
                and view.can_view(user_id, r.id, now)
            ]  # fmt: skip
            by_channel = await overwrites_by_channel(conn, [r.id for r in seen])
            listed: dict[int, list[Any]] = {int(g.id): [] for g in found}
            for row in seen:
                listed[row.guild_id].append(
                    msgspec.to_builtins(channel_view(row, by_channel[row.id]))
                )
            guilds = []
            for guild in found:
                mine = await member_rows(conn, int(guild.id), [user_id])
                guilds.append(
                    {
                        **msgspec.to_builtins(guild),
                        "channels": listed[int(guild.id)],
                        "member": msgspec.to_builtins(mine[0]) if mine else None,
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


async def _existing(conn: AsyncConnection, user_id: int, guild_ids: list[int]) -> list[int]:
    """Those of ``guild_ids`` the user is still a member of, in that order (one may have
    been left between following its stream and reading READY)."""
    if not guild_ids:
        return []
    result = await conn.execute(
        select(members.c.guild_id).where(
            members.c.user_id == user_id, members.c.guild_id.in_(guild_ids)
        )
    )
    present = set(result.scalars())
    return [g for g in guild_ids if g in present]
