"""Who may do what: load a member's roles and a channel's overwrites, ask the pure rules.

Every chat endpoint goes through :func:`guild_access` or :func:`channel_access`. A user who
is not a member of a guild, or cannot view a channel, gets 404 (``unknown_guild`` /
``unknown_channel``), never 403: they must not learn that it exists. A member who can see
a thing but lacks the permission for an action gets 403 ``missing_permissions``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from miaou.chat import permissions as perms
from miaou.chat.models import THREAD_TYPES, ChannelType
from miaou.chat.permissions import Permission
from miaou.chat.tables import (
    bans,
    channel_recipients,
    channels,
    guilds,
    member_roles,
    members,
    overwrites,
    roles,
    thread_members,
)
from miaou.errors import Forbidden, NotFound

# What each participant of a DM or group DM may do there.
DM_PERMISSIONS = (
    Permission.VIEW_CHANNEL
    | Permission.SEND_MESSAGES
    | Permission.READ_MESSAGE_HISTORY
    | Permission.ADD_REACTIONS
    | Permission.ATTACH_FILES
    | Permission.EMBED_LINKS
)


def unknown_guild() -> NotFound:
    return NotFound("No such guild.", code="unknown_guild")


def unknown_channel() -> NotFound:
    return NotFound("No such channel.", code="unknown_channel")


def missing(permission: Permission) -> Forbidden:
    return Forbidden(f"You lack the {permission.name} permission here.", code="missing_permissions")


class GuildAccess:
    """One user's standing in one guild, loaded once per request."""

    def __init__(
        self,
        guild: Row[Any],
        member: Row[Any],
        role_rows: list[Row[Any]],
        member_role_ids: frozenset[int],
        now_ms: int,
    ) -> None:
        self.guild = guild
        self.guild_id: int = guild.id
        self.user_id: int = member.user_id
        self.member = member
        self.roles = {
            r.id: perms.RoleInfo(id=r.id, position=r.position, permissions=r.permissions)
            for r in role_rows
        }
        self.everyone = self.roles[self.guild_id]
        self.info = perms.MemberInfo(
            user_id=self.user_id,
            role_ids=member_role_ids,
            is_owner=guild.owner_id == self.user_id,
        )
        until = member.communication_disabled_until
        self.timed_out = until is not None and until > now_ms
        # Guild-level permissions, with a timeout applied: what guild-wide actions may use.
        # Channel computations start from the unmasked base and apply the timeout themselves.
        self.base = perms.base_permissions(self.info, self.everyone, self.roles)
        self.permissions = perms.apply_timeout(self.base) if self.timed_out else self.base

    @property
    def is_owner(self) -> bool:
        return self.info.is_owner

    def has(self, permission: Permission) -> bool:
        return permission in self.permissions

    def require(self, permission: Permission) -> None:
        if not self.has(permission):
            raise missing(permission)

    def in_channel(self, channel_overwrites: list[Row[Any]]) -> Permission:
        return perms.channel_permissions(
            self.base,
            self.info,
            self.guild_id,
            _overwrites(channel_overwrites),
            timed_out=self.timed_out,
        )

    def in_thread(self, parent_overwrites: list[Row[Any]]) -> Permission:
        """Permissions in a thread, from its parent channel's overwrites."""
        return perms.channel_permissions(
            self.base,
            self.info,
            self.guild_id,
            _overwrites(parent_overwrites),
            timed_out=self.timed_out,
            thread=True,
        )

    def highest_position(self) -> float:
        return perms.highest_position(self.info, self.roles, self.everyone)


def _overwrites(rows: list[Row[Any]]) -> list[perms.Overwrite]:
    return [
        perms.Overwrite(id=o.target_id, type=o.target_type, allow=o.allow, deny=o.deny)
        for o in rows
    ]


class ChannelAccess:
    def __init__(
        self, channel: Row[Any], guild: GuildAccess | None, permissions: Permission
    ) -> None:
        self.channel = channel
        self.channel_id: int = channel.id
        self.guild = guild
        self.permissions = permissions

    def has(self, permission: Permission) -> bool:
        return permission in self.permissions

    def require(self, permission: Permission) -> None:
        if not self.has(permission):
            raise missing(permission)


async def guild_access(
    conn: AsyncConnection, guild_id: int, user_id: int, now_ms: int
) -> GuildAccess:
    # Two queries on every authorised request: guild with membership, roles with mine marked.
    # The joined row carries both tables' columns (no names collide): it serves as both.
    row = (
        await conn.execute(
            select(guilds, members)
            .join(members, members.c.guild_id == guilds.c.id)
            .where(guilds.c.id == guild_id, members.c.user_id == user_id)
        )
    ).first()
    if row is None:  # no such guild, or not a member: the same answer
        raise unknown_guild()
    held = member_roles.c.user_id.label("held_by_member")
    role_rows = list(
        (
            await conn.execute(
                select(roles, held)
                .outerjoin(
                    member_roles,
                    (member_roles.c.role_id == roles.c.id) & (member_roles.c.user_id == user_id),
                )
                .where(roles.c.guild_id == guild_id)
            )
        ).all()
    )
    mine = frozenset(r.id for r in role_rows if r.held_by_member is not None)
    return GuildAccess(row, row, role_rows, mine, now_ms)


async def overwrites_by_channel(
    conn: AsyncConnection, channel_ids: list[int]
) -> dict[int, list[Row[Any]]]:
    """The overwrites of many channels in one query (listing a guild's channels)."""
    found: dict[int, list[Row[Any]]] = {cid: [] for cid in channel_ids}
    if channel_ids:
        rows = await conn.execute(
            select(overwrites).where(overwrites.c.channel_id.in_(channel_ids))
        )
        for row in rows:
            found[row.channel_id].append(row)
    return found


async def channel_overwrites(conn: AsyncConnection, channel_id: int) -> list[Row[Any]]:
    query = select(overwrites).where(overwrites.c.channel_id == channel_id)
    return list((await conn.execute(query)).all())


async def channel_access(
    conn: AsyncConnection, channel_id: int, user_id: int, now_ms: int
) -> ChannelAccess:
    """The caller's permissions in a channel; 404 if they cannot view it."""
    channel = (await conn.execute(select(channels).where(channels.c.id == channel_id))).first()
    if channel is None:
        raise unknown_channel()
    if channel.guild_id is None:  # DM or group DM
        recipient = (
            await conn.execute(
                select(channel_recipients.c.user_id).where(
                    channel_recipients.c.channel_id == channel_id,
                    channel_recipients.c.user_id == user_id,
                )
            )
        ).first()
        if recipient is None:
            raise unknown_channel()
        return ChannelAccess(channel, None, DM_PERMISSIONS)
    try:
        guild = await guild_access(conn, channel.guild_id, user_id, now_ms)
    except NotFound:
        raise unknown_channel() from None
    if channel.type in THREAD_TYPES:
        permissions = guild.in_thread(await channel_overwrites(conn, channel.parent_id))
        if (
            channel.type == ChannelType.PRIVATE_THREAD
            and Permission.MANAGE_THREADS not in permissions
            and not await is_thread_member(conn, channel_id, user_id)
        ):
            permissions = Permission(0)
    else:
        permissions = guild.in_channel(await channel_overwrites(conn, channel_id))
    if Permission.VIEW_CHANNEL not in permissions:
        raise unknown_channel()
    return ChannelAccess(channel, guild, permissions)


async def is_thread_member(conn: AsyncConnection, channel_id: int, user_id: int) -> bool:
    row = (
        await conn.execute(
            select(thread_members.c.user_id).where(
                thread_members.c.channel_id == channel_id, thread_members.c.user_id == user_id
            )
        )
    ).first()
    return row is not None


async def is_banned(conn: AsyncConnection, guild_id: int, user_id: int) -> bool:
    row = (
        await conn.execute(
            select(bans.c.user_id).where(bans.c.guild_id == guild_id, bans.c.user_id == user_id)
        )
    ).first()
    return row is not None
