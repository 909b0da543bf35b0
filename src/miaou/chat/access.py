"""Who may do what: load a member's roles and a channel's overwrites, ask the pure rules.

Every chat endpoint goes through :func:`guild_access` or :func:`channel_access`. A user who
is not a member of a guild, or cannot view a channel, gets 404 (``unknown_guild`` /
``unknown_channel``), never 403: they must not learn that it exists. A member who can see
a thing but lacks the permission for an action gets 403 ``missing_permissions``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from miaou.accounts.models import User
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
from miaou.db.keyed import Keyed
from miaou.db.metadata import users
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

# The queries of every request's permission check, built once (miaou.db.keyed says why).
# The joined row carries both tables' columns (no names collide): it serves as both. It
# also carries the member's public profile (:meth:`GuildAccess.profile`), which a send
# shows as its author: one query fewer per send, for a primary-key lookup here.
_STANDING = Keyed(
    lambda key: (
        select(
            guilds,
            members,
            users.c.username,
            users.c.display_name,
            users.c.bio,
            users.c.created_at.label("user_created_at"),
        )
        .join(members, members.c.guild_id == guilds.c.id)
        .join(users, users.c.id == members.c.user_id)
        .where(key("pairs", members.c.guild_id, members.c.user_id))
    )
)
# Each role once per member of ours who holds it, or once with no holder.
_ROLES = Keyed(
    lambda key: (
        select(roles, member_roles.c.user_id.label("held_by"))
        .outerjoin(
            member_roles,
            (member_roles.c.role_id == roles.c.id) & key("users", member_roles.c.user_id),
        )
        .where(key("guilds", roles.c.guild_id))
    )
)
_OVERWRITES = Keyed(lambda key: select(overwrites).where(key("ids", overwrites.c.channel_id)))
_CHANNELS = Keyed(lambda key: select(channels).where(key("ids", channels.c.id)))
_RECIPIENTS = Keyed(
    lambda key: select(channel_recipients.c.channel_id, channel_recipients.c.user_id).where(
        key("pairs", channel_recipients.c.channel_id, channel_recipients.c.user_id)
    )
)
_THREAD_MEMBERS = Keyed(
    lambda key: select(thread_members.c.channel_id, thread_members.c.user_id).where(
        key("pairs", thread_members.c.channel_id, thread_members.c.user_id)
    )
)


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
    whatever the number of pairs (a batch of sends checks all its senders at once).
    Pairs missing from the answer are not members, or the guild does not exist."""
    wanted = list(set(pairs))
    if not wanted:
        return {}
    rows = (await conn.execute(*_STANDING.bind(pairs=wanted))).all()
    if not rows:
        return {}
    guild_ids = {r.guild_id for r in rows}
    user_ids = {r.user_id for r in rows}
    role_rows = (await conn.execute(*_ROLES.bind(guilds=guild_ids, users=user_ids))).all()
    rows_by_guild: dict[int, dict[int, Row[Any]]] = {g: {} for g in guild_ids}
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
        for row in await conn.execute(*_OVERWRITES.bind(ids=channel_ids)):
            found[row.channel_id].append(row)
    return found


async def channel_overwrites(conn: AsyncConnection, channel_id: int) -> list[Row[Any]]:
    return list((await conn.execute(*_OVERWRITES.bind(ids=[channel_id]))).all())


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
    fixed number of queries whatever the number of pairs. A pair missing from the answer
    is a channel that does not exist or that its user cannot see: both are 404."""
    wanted = list(set(pairs))
    if not wanted:
        return {}
    channel_rows = (await conn.execute(*_CHANNELS.bind(ids={c for c, _ in wanted}))).all()
    by_id = {row.id: row for row in channel_rows}
    wanted = [(c, u) for c, u in wanted if c in by_id]
    found: dict[Pair, ChannelAccess] = {}

    dm_pairs = [(c, u) for c, u in wanted if by_id[c].guild_id is None]
    if dm_pairs:
        recipients = await conn.execute(*_RECIPIENTS.bind(pairs=dm_pairs))
        for channel_id, user_id in recipients.all():
            found[(channel_id, user_id)] = ChannelAccess(by_id[channel_id], None, DM_PERMISSIONS)

    guild_pairs = [(c, u) for c, u in wanted if by_id[c].guild_id is not None]
    standing = await guild_accesses(conn, {(by_id[c].guild_id, u) for c, u in guild_pairs}, now_ms)
    guild_pairs = [(c, u) for c, u in guild_pairs if (by_id[c].guild_id, u) in standing]
    # Threads take their parent channel's overwrites.
    source = {c: by_id[c].parent_id if by_id[c].type in THREAD_TYPES else c for c, _ in guild_pairs}
    overwrite_rows = await overwrites_by_channel(conn, list(set(source.values())))
    computed: dict[Pair, Permission] = {}
    for channel_id, user_id in guild_pairs:
        guild = standing[(by_id[channel_id].guild_id, user_id)]
        rows = overwrite_rows[source[channel_id]]
        is_thread = by_id[channel_id].type in THREAD_TYPES
        computed[(channel_id, user_id)] = (
            guild.in_thread(rows) if is_thread else guild.in_channel(rows)
        )
    # A private thread is visible to its members and to those who manage threads.
    private = [
        pair
        for pair, permissions in computed.items()
        if by_id[pair[0]].type == ChannelType.PRIVATE_THREAD
        and Permission.MANAGE_THREADS not in permissions
    ]
    if private:
        joined = await conn.execute(*_THREAD_MEMBERS.bind(pairs=private))
        inside = {(c, u) for c, u in joined.all()}
        for pair in private:
            if pair not in inside:
                computed[pair] = Permission(0)
    for (channel_id, user_id), permissions in computed.items():
        if Permission.VIEW_CHANNEL in permissions:
            guild = standing[(by_id[channel_id].guild_id, user_id)]
            found[(channel_id, user_id)] = ChannelAccess(by_id[channel_id], guild, permissions)
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
