"""Who may do what: load a member's roles and a channel's overwrites, ask the pure rules.

Every chat endpoint goes through :func:`guild_access` or :func:`channel_access`. A user who
is not a member of a guild, or cannot view a channel, gets 404 (``unknown_guild`` /
``unknown_channel``), never 403: they must not learn that it exists. A member who can see
a thing but lacks the permission for an action gets 403 ``missing_permissions``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from miaou.accounts.models import User
from miaou.chat import access_reads
from miaou.chat import permissions as perms
from miaou.chat.models import THREAD_TYPES, ChannelType
from miaou.chat.permissions import Permission
from miaou.chat.tables import (
    bans,
    thread_members,
)
from miaou.errors import Forbidden, NotFound

# What each participant of a DM or group DM may do there. External emoji: any custom emoji
# of a guild the user is in (reactions still check that membership).
DM_PERMISSIONS = (
    Permission.USE_EXTERNAL_EMOJIS
    | Permission.VIEW_CHANNEL
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
        roles: dict[int, perms.RoleInfo],
        member_role_ids: frozenset[int],
        now_ms: int,
    ) -> None:
        """``roles``: all of the guild's (:func:`role_infos`), shared by its members."""
        self.guild = guild
        self.guild_id: int = guild.id
        self.user_id: int = member.user_id
        self.member = member
        self.roles = roles
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

    def profile(self) -> User | None:
        """The member's user view, if this standing was loaded with it (by
        :func:`guild_accesses`; :func:`miaou.chat.message_store.viewers` builds some
        without)."""
        row = self.member
        try:
            created_at = row.user_created_at
        except AttributeError:
            return None
        return User(
            id=str(self.user_id),
            username=row.username,
            display_name=row.display_name,
            bio=row.bio,
            created_at=created_at,
        )


def role_infos(rows: Iterable[Row[Any]]) -> dict[int, perms.RoleInfo]:
    """A guild's role rows as the permission rules take them, by id."""
    return {
        r.id: perms.RoleInfo(id=r.id, position=r.position, permissions=r.permissions) for r in rows
    }


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


Pair = tuple[int, int]


async def guild_access(
    conn: AsyncConnection, guild_id: int, user_id: int, now_ms: int
) -> GuildAccess:
    standing = await guild_accesses(conn, [(guild_id, user_id)], now_ms)
    found = standing.get((guild_id, user_id))
    if found is None:  # no such guild, or not a member: the same answer
        raise unknown_guild()
    return found


async def guild_accesses(
    conn: AsyncConnection, pairs: Collection[Pair], now_ms: int
) -> dict[Pair, GuildAccess]:
    """The standing of each (guild id, user id) that is a membership, in two queries
    whatever the number of pairs. Pairs missing from the answer are not members, or the
    guild does not exist."""
    wanted = list(set(pairs))
    if not wanted:
        return {}
    rows = (await conn.execute(*access_reads.STANDING.bind(pairs=wanted))).all()
    if not rows:
        return {}
    guild_ids = {r.guild_id for r in rows}
    user_ids = {r.user_id for r in rows}
    role_rows = (
        await conn.execute(*access_reads.ROLES.bind(guilds=guild_ids, users=user_ids))
    ).all()
    return standing_of(rows, role_rows, now_ms)


def standing_of(
    rows: Sequence[Row[Any]], role_rows: Sequence[Row[Any]], now_ms: int
) -> dict[Pair, GuildAccess]:
    """Each standing row as a :class:`GuildAccess`, with its guild's roles and its own."""
    rows_by_guild: dict[int, dict[int, Row[Any]]] = {r.guild_id: {} for r in rows}
    held: dict[Pair, set[int]] = {}
    for role in role_rows:
        rows_by_guild[role.guild_id][role.id] = role
        if role.held_by is not None:
            held.setdefault((role.guild_id, role.held_by), set()).add(role.id)
    # Built once per guild: a batch of sends checks many members of one guild.
    guild_roles = {g: role_infos(by_id.values()) for g, by_id in rows_by_guild.items()}
    return {
        (row.guild_id, row.user_id): GuildAccess(
            row,
            row,
            guild_roles[row.guild_id],
            frozenset(held.get((row.guild_id, row.user_id), ())),
            now_ms,
        )
        for row in rows
    }


async def overwrites_by_channel(
    conn: AsyncConnection, channel_ids: list[int]
) -> dict[int, list[Row[Any]]]:
    """The overwrites of many channels in one query (listing a guild's channels)."""
    found: dict[int, list[Row[Any]]] = {cid: [] for cid in channel_ids}
    if channel_ids:
        for row in await conn.execute(*access_reads.OVERWRITES.bind(ids=channel_ids)):
            found[row.channel_id].append(row)
    return found


async def channel_overwrites(conn: AsyncConnection, channel_id: int) -> list[Row[Any]]:
    return list((await conn.execute(*access_reads.OVERWRITES.bind(ids=[channel_id]))).all())


async def channel_access(
    conn: AsyncConnection, channel_id: int, user_id: int, now_ms: int
) -> ChannelAccess:
    """The caller's permissions in a channel; 404 if they cannot view it."""
    found = (await channel_accesses(conn, [(channel_id, user_id)], now_ms)).get(
        (channel_id, user_id)
    )
    if found is None:
        raise unknown_channel()
    return found


async def channel_accesses(
    conn: AsyncConnection, pairs: Collection[Pair], now_ms: int
) -> dict[Pair, ChannelAccess]:
    """Permissions of each (channel id, user id) whose user can view the channel, with a
    fixed number of queries whatever the number of pairs (on PostgreSQL, one). A pair
    missing from the answer is a channel that does not exist or that its user cannot see:
    both are 404."""
    wanted = list(set(pairs))
    if not wanted:
        return {}
    return accesses_from(await access_reads.read(conn, wanted), wanted, now_ms)


def accesses_from(
    reads: access_reads.AccessReads, wanted: Sequence[Pair], now_ms: int
) -> dict[Pair, ChannelAccess]:
    """:func:`channel_accesses`' answer from what it read."""
    by_id = {row.id: row for row in reads.channels}
    wanted = [(c, u) for c, u in wanted if c in by_id]
    found: dict[Pair, ChannelAccess] = {}
    for channel_id, user_id in wanted:
        if by_id[channel_id].guild_id is None and (channel_id, user_id) in reads.recipients:
            found[(channel_id, user_id)] = ChannelAccess(by_id[channel_id], None, DM_PERMISSIONS)
    standing = standing_of(reads.standing, reads.roles, now_ms)
    guild_pairs = [
        (c, u) for c, u in wanted
        if by_id[c].guild_id is not None and (by_id[c].guild_id, u) in standing
    ]  # fmt: skip
    overwrite_rows: dict[int, list[Row[Any]]] = {}
    for row in reads.overwrites:
        overwrite_rows.setdefault(row.channel_id, []).append(row)
    for channel_id, user_id in guild_pairs:
        channel = by_id[channel_id]
        guild = standing[(channel.guild_id, user_id)]
        # Threads take their parent channel's overwrites.
        rows = overwrite_rows.get(access_reads.source_of(channel), [])
        is_thread = channel.type in THREAD_TYPES
        permissions = guild.in_thread(rows) if is_thread else guild.in_channel(rows)
        # A private thread is visible to its members and to those who manage threads.
        if (
            channel.type == ChannelType.PRIVATE_THREAD
            and Permission.MANAGE_THREADS not in permissions
            and (channel_id, user_id) not in reads.thread_members
        ):
            continue
        if Permission.VIEW_CHANNEL in permissions:
            found[(channel_id, user_id)] = ChannelAccess(channel, guild, permissions)
    return found


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
