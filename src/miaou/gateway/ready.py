"""What a session follows and what READY tells it.

READY is read after the session is subscribed and holding, so it is at least as new as the
positions it names; who sees which channel comes from the hub's guild views, the rules that
filter the session's live events too.

Every connection reads READY, so it costs a fixed handful of queries (built once, so
SQLAlchemy reuses their compiled form) whatever the number of guilds, channels and DMs:
the user; their guilds with their member rows; the guilds' roles; the guilds' channels with
overwrites and read positions; their DMs with recipients and read positions; and, only if
some channel has messages past its read position, the unread and mention counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from sqlalchemy import bindparam, select
from sqlalchemy.engine import Row

from miaou.accounts.service import AccountService, Principal, me_view
from miaou.chat.dms import DMService
from miaou.chat.guilds import guild_channels, member_guild_ids, memberships
from miaou.chat.models import Channel
from miaou.chat.outbox import channel_stream, guild_id_of, guild_stream, user_stream
from miaou.chat.read_states import GUILD_MESSAGE_TYPES, ReadStateService
from miaou.chat.tables import channel_recipients
from miaou.chat.views import channel_view, guild_view, member_view
from miaou.db.engine import Database
from miaou.gateway.guild_view import GuildView
from miaou.ids import now_ms

MAX_STREAMS = 2_000  # guilds + DMs a session follows; more are left for REST
_DM_IDS = (
    select(channel_recipients.c.channel_id)
    .where(channel_recipients.c.user_id == bindparam("user_id"))
    .limit(MAX_STREAMS)
)


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
            dm_ids = (await conn.execute(_DM_IDS, {"user_id": user_id})).scalars()
            names.extend(channel_stream(c) for c in dm_ids)
        return names[: MAX_STREAMS + 1]

    async def ready(
        self,
        principal: Principal,
        session_id: str,
        positions: dict[str, int],
        views: Mapping[int, GuildView],
    ) -> dict[str, Any]:
        """READY in one read transaction, in a fixed number of queries whatever the number
        of guilds and channels. Which channels the user sees, and how many members a guild
        has, come from the hub's guild views (``views``, by guild id: current as of
        ``positions``), so no permission is computed from rows here. Every followed guild
        stream carries a view (the hub loads one with it); a guild without one is left out.

        The payload holds structs, encoded once by the gateway."""
        user_id = principal.user_id
        guild_ids = [
            guild_id
            for name in positions
            if (guild_id := guild_id_of(name)) is not None and guild_id in views
        ]
        now = now_ms()
        async with self.db.read() as conn:
            me = await self.accounts.user_row(conn, principal)
            found = await memberships(conn, user_id, guild_ids)
            listed: dict[int, list[Channel]] = {m.row.id: [] for m in found}
            # Read states: the visible channels that hold messages, guild by guild, then DMs.
            readable: dict[int, list[Row[Any]]] = {m.row.id: [] for m in found}
            for row, channel_overwrites in await guild_channels(conn, user_id, list(listed)):
                if views[row.guild_id].can_view(user_id, row.id, now):
                    listed[row.guild_id].append(channel_view(row, channel_overwrites))
                    if row.type in GUILD_MESSAGE_TYPES:
                        readable[row.guild_id].append(row)
            dms = await self.dms.channels(conn, user_id)
            rows = [row for in_guild in readable.values() for row in in_guild]
            rows.extend(row for row, _ in dms)
            states = await self.read_states.states(conn, user_id, rows)
        guilds = [
            {
                **msgspec.structs.asdict(guild_view(m.row, m.roles, views[m.row.id].member_count)),
                "channels": listed[m.row.id],
                "member": member_view(m.row, me, m.role_ids()),
            }
            for m in found
        ]
        return {
            "session_id": session_id,
            "user": me_view(me),
            "guilds": guilds,
            "private_channels": [channel for _, channel in dms],
            "read_states": states,
            "positions": positions,
        }
