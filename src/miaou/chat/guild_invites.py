"""Guild invites: codes that let people join a guild, with seats, expiry and temporary joins.

Using an invite spends a seat with one conditional UPDATE, so two people cannot both take
the last seat; a banned user is refused and the seat is not spent.
"""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from miaou.chat import audit
from miaou.chat.access import channel_access, guild_access
from miaou.chat.guilds import load_guild
from miaou.chat.members import MemberService
from miaou.chat.models import THREAD_TYPES, Guild, Invite, InviteCreate
from miaou.chat.outbox import Outbox, guild_stream
from miaou.chat.permissions import Permission
from miaou.chat.tables import channels, guild_invites
from miaou.chat.views import invite_view
from miaou.config import Settings
from miaou.errors import InvalidInput, NotFound
from miaou.ids import invite_code, now_ms

MAX_AGE = 7 * 86_400
MAX_USES = 100
MAX_INVITES_PER_GUILD = 1000


class InvitePreview(msgspec.Struct, kw_only=True):
    code: str
    guild_id: str
    guild_name: str
    channel_id: str
    channel_name: str | None
    member_count: int
    expires_at: int | None


def unknown_invite() -> NotFound:
    return NotFound("This invite is invalid or has expired.", code="unknown_invite")


def _usable(now: int) -> Any:
    inv = guild_invites.c
    return and_(
        or_(inv.expires_at.is_(None), inv.expires_at > now),
        or_(inv.max_uses == 0, inv.uses < inv.max_uses),
    )


class GuildInviteService:
    def __init__(self, outbox: Outbox, members: MemberService, settings: Settings) -> None:
        self.outbox = outbox
        self.db = outbox.db
        self.members = members
        self.settings = settings

    async def create(
        self, user_id: int, channel_id: int, body: InviteCreate, reason: str | None = None
    ) -> Invite:
        problems = {}
        if not 0 <= body.max_age <= MAX_AGE:
            problems["max_age"] = [f"0 (never) to {MAX_AGE} seconds"]
        if not 0 <= body.max_uses <= MAX_USES:
            problems["max_uses"] = [f"0 (unlimited) to {MAX_USES}"]
        if problems:
            raise InvalidInput("Invalid invite settings.", errors=problems)
        now = now_ms()
        async with self.outbox.write() as (conn, events):
            access = await channel_access(conn, channel_id, user_id, now)
            if access.guild is None or access.channel.type in THREAD_TYPES:
                raise InvalidInput("Invites are made for guild channels.", code="invalid_channel")
            access.require(Permission.CREATE_INSTANT_INVITE)
            guild_id = access.guild.guild_id
            count = await conn.execute(
                select(guild_invites.c.code).where(guild_invites.c.guild_id == guild_id)
            )
            if len(count.all()) >= MAX_INVITES_PER_GUILD:
                raise InvalidInput("Too many invites in this guild.", code="max_invites")
            values = {
                "code": invite_code(10), "guild_id": guild_id, "channel_id": channel_id,
                "inviter_id": user_id, "max_uses": body.max_uses, "uses": 0,
                "expires_at": now + body.max_age * 1000 if body.max_age else None,
                "temporary": body.temporary, "created_at": now,
            }  # fmt: skip
            await conn.execute(guild_invites.insert().values(**values))
            invite = invite_view(
                (
                    await conn.execute(
                        select(guild_invites).where(guild_invites.c.code == values["code"])
                    )
                ).one()
            )
            await audit.record(
                conn, guild_id=guild_id, actor_id=user_id, action=audit.AuditAction.INVITE_CREATE,
                changes={"code": {"old": None, "new": invite.code}}, reason=reason,
            )  # fmt: skip
            events.append(
                self.outbox.event(
                    "INVITE_CREATE", guild_stream(guild_id), msgspec.to_builtins(invite)
                )
            )
        return invite

    async def of_guild(self, user_id: int, guild_id: int) -> list[Invite]:
        async with self.db.read() as conn:
            access = await guild_access(conn, guild_id, user_id, now_ms())
            access.require(Permission.MANAGE_GUILD)
            rows = (
                await conn.execute(
                    select(guild_invites)
                    .where(guild_invites.c.guild_id == guild_id)
                    .order_by(guild_invites.c.created_at.desc())
                )
            ).all()
        return [invite_view(r) for r in rows]

    async def preview(self, code: str) -> InvitePreview:
        """What anyone holding the code may see before joining."""
        async with self.db.read() as conn:
            row = await self._usable_row(conn, code, now_ms())
            guild = await load_guild(conn, row.guild_id)
            channel_name = (
                await conn.execute(select(channels.c.name).where(channels.c.id == row.channel_id))
            ).scalar()
        return InvitePreview(
            code=row.code, guild_id=guild.id, guild_name=guild.name,
            channel_id=str(row.channel_id), channel_name=channel_name,
            member_count=guild.member_count, expires_at=row.expires_at,
        )  # fmt: skip

    async def _usable_row(self, conn: AsyncConnection, code: str, now: int) -> Any:
        row = (
            await conn.execute(
                select(guild_invites).where(guild_invites.c.code == code, _usable(now))
            )
        ).first()
        if row is None:
            raise unknown_invite()
        return row

    async def accept(self, user_id: int, code: str) -> Guild:
        now = now_ms()
        async with self.outbox.write() as (conn, events):
            row = await self._usable_row(conn, code, now)
            joined = await self.members.add(
                conn, events, row.guild_id, user_id, temporary=bool(row.temporary)
            )
            if joined:  # a member following a link again spends no seat
                spent = await conn.execute(
                    update(guild_invites)
                    .where(guild_invites.c.code == code, _usable(now))
                    .values(uses=guild_invites.c.uses + 1)
                )
                if not spent.rowcount:
                    raise unknown_invite()  # the last seat went meanwhile: roll back the join
            return await load_guild(conn, row.guild_id)

    async def delete(self, user_id: int, code: str, reason: str | None = None) -> None:
        async with self.outbox.write() as (conn, events):
            row = (
                await conn.execute(select(guild_invites).where(guild_invites.c.code == code))
            ).first()
            if row is None:
                raise unknown_invite()
            try:
                access = await channel_access(conn, row.channel_id, user_id, now_ms())
            except NotFound:
                raise unknown_invite() from None
            if row.inviter_id != user_id and not (
                access.has(Permission.MANAGE_CHANNELS)
                or (access.guild is not None and access.guild.has(Permission.MANAGE_GUILD))
            ):
                access.require(Permission.MANAGE_CHANNELS)
            await conn.execute(delete(guild_invites).where(guild_invites.c.code == code))
            await audit.record(
                conn, guild_id=row.guild_id, actor_id=user_id,
                action=audit.AuditAction.INVITE_DELETE,
                changes={"code": {"old": code, "new": None}}, reason=reason,
            )  # fmt: skip
            events.append(
                self.outbox.event(
                    "INVITE_DELETE", guild_stream(row.guild_id),
                    {"code": code, "guild_id": str(row.guild_id),
                     "channel_id": str(row.channel_id)},
                )
            )  # fmt: skip
