"""Guild use cases: create, read, update, delete, transfer ownership, list mine.

A new guild has its creator as owner and only member, an ``@everyone`` role (id = guild id)
with Discord's default permissions, a "Text Channels" category and a ``#general`` channel
that is also the system channel.
"""

from __future__ import annotations

import unicodedata
from typing import Any, NamedTuple

import msgspec
from sqlalchemy import and_, bindparam, delete, func, literal_column, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from miaou import ids
from miaou.chat import audit
from miaou.chat.access import GuildAccess, guild_access, role_infos
from miaou.chat.models import (
    THREAD_TYPES,
    ChannelType,
    Guild,
    GuildCreate,
    GuildPatch,
    GuildWithChannels,
    JoinedGuild,
    Member,
    OwnershipTransfer,
)
from miaou.chat.outbox import Outbox, guild_stream, user_stream
from miaou.chat.permissions import DEFAULT_EVERYONE, Permission
from miaou.chat.tables import (
    channels,
    guilds,
    member_roles,
    members,
    overwrites,
    read_states,
    roles,
)
from miaou.chat.views import channel_view, guild_view
from miaou.config import Settings
from miaou.errors import Forbidden, InvalidInput, NotFound
from miaou.ids import now_ms, parse_id

MAX_GUILDS_PER_USER = 100
NAME_MIN, NAME_MAX = 2, 100
DESCRIPTION_MAX = 1000


def clean_guild_name(raw: str) -> str:
    name = unicodedata.normalize("NFKC", raw).strip()
    if not NAME_MIN <= len(name) <= NAME_MAX or any(unicodedata.category(c) == "Cc" for c in name):
        raise InvalidInput(
            "Invalid guild name.",
            errors={"name": [f"{NAME_MIN} to {NAME_MAX} characters, no control characters"]},
        )
    return name


def clean_description(raw: str) -> str:
    text = raw.strip()
    if len(text) > DESCRIPTION_MAX:
        raise InvalidInput(
            "Description too long.", errors={"description": [f"at most {DESCRIPTION_MAX}"]}
        )
    return text


async def load_guild(conn: AsyncConnection, guild_id: int) -> Guild:
    (guild,) = await load_guilds(conn, [guild_id])
    return guild


async def member_guild_ids(
    conn: AsyncConnection, user_id: int, *, limit: int | None = None
) -> list[int]:
    """The guilds ``user_id`` is a member of, in the order they joined them."""
    if limit is None:
        found = await conn.execute(_GUILD_IDS, {"user_id": user_id})
    else:
        found = await conn.execute(_FIRST_GUILD_IDS, {"user_id": user_id, "limit": limit})
    return list(found.scalars())


# READY and the read-state summary take all of a member's guilds at once, whatever their
# number, with these statements: built once, so SQLAlchemy reuses their compiled form.
_GUILD_IDS = (
    select(members.c.guild_id)
    .where(members.c.user_id == bindparam("user_id"))
    .order_by(members.c.joined_at)
)
_FIRST_GUILD_IDS = _GUILD_IDS.limit(bindparam("limit"))
_MEMBERSHIPS = (
    # The joined row carries both tables' columns (no names collide): guild and member at once.
    select(guilds, members)
    .join(members, members.c.guild_id == guilds.c.id)
    .where(
        members.c.user_id == bindparam("user_id"),
        members.c.guild_id.in_(bindparam("guild_ids", expanding=True)),
    )
)
_ROLES_HELD = (
    select(roles, member_roles.c.user_id.label("held_by"))
    .outerjoin(
        member_roles,
        and_(
            member_roles.c.guild_id == roles.c.guild_id,
            member_roles.c.role_id == roles.c.id,
            member_roles.c.user_id == bindparam("user_id"),
        ),
    )
    .where(roles.c.guild_id.in_(bindparam("guild_ids", expanding=True)))
)
_CHANNELS = (
    # A channel comes once per overwrite (or once, without one); no overwrite column's name
    # is a channel's, so each row serves as the channel and as one of its overwrites.
    select(
        channels,
        overwrites.c.target_id,
        overwrites.c.target_type,
        overwrites.c.allow,
        overwrites.c.deny,
        read_states.c.last_read_id,
    )
    .outerjoin(overwrites, overwrites.c.channel_id == channels.c.id)
    .outerjoin(
        read_states,
        and_(
            read_states.c.channel_id == channels.c.id,
            read_states.c.user_id == bindparam("user_id"),
        ),
    )
    .where(
        channels.c.guild_id.in_(bindparam("guild_ids", expanding=True)),
        # Constants in the SQL, not a list of parameters to expand on each execution.
        channels.c.type.not_in([literal_column(str(int(t))) for t in sorted(THREAD_TYPES)]),
    )
    .order_by(channels.c.position, channels.c.id, overwrites.c.target_id)
)


class Membership(NamedTuple):
    """A guild of a member: its row joined with the member's, and its roles' rows, each
    with ``held_by`` (the member's id if they hold it, else None)."""

    row: Row[Any]
    roles: list[Row[Any]]

    def role_ids(self) -> list[int]:
        return [r.id for r in self.roles if r.held_by is not None]


async def memberships(
    conn: AsyncConnection, user_id: int, guild_ids: list[int]
) -> list[Membership]:
    """Those of ``guild_ids`` the user is a member of, in that order, in two queries."""
    if not guild_ids:
        return []
    params = {"user_id": user_id, "guild_ids": guild_ids}
    rows = {r.id: r for r in await conn.execute(_MEMBERSHIPS, params)}
    found = {g: Membership(rows[g], []) for g in guild_ids if g in rows}
    for role in await conn.execute(_ROLES_HELD, params):
        if role.guild_id in found:
            found[role.guild_id].roles.append(role)
    return list(found.values())


async def guild_channels(
    conn: AsyncConnection, user_id: int, guild_ids: list[int]
) -> list[tuple[Row[Any], list[Row[Any]]]]:
    """The channels (not threads) of ``guild_ids`` in display order, each with its
    overwrites, in one query. Each row also carries ``last_read_id``, the user's read
    position there (None if they never read it)."""
    found: dict[int, tuple[Row[Any], list[Row[Any]]]] = {}
    if guild_ids:
        for row in await conn.execute(_CHANNELS, {"user_id": user_id, "guild_ids": guild_ids}):
            _, listed = found.setdefault(row.id, (row, []))
            if row.target_id is not None:
                listed.append(row)
    return list(found.values())


async def joined_guild(
    conn: AsyncConnection, guild_id: int, member: Member, now: int
) -> JoinedGuild:
    """The guild as READY lists it for ``member`` (its fields, roles and ``member_count``,
    the channels the member may view with their overwrites, and the member), read in the
    caller's transaction: what GUILD_JOIN carries."""
    user_id = int(member.user.id)
    (found,) = await memberships(conn, user_id, [guild_id])
    count = await conn.execute(
        select(func.count()).select_from(members).where(members.c.guild_id == guild_id)
    )
    role_ids = frozenset(found.role_ids())
    access = GuildAccess(found.row, found.row, role_infos(found.roles), role_ids, now)
    return JoinedGuild(
        **msgspec.structs.asdict(guild_view(found.row, found.roles, count.scalar_one())),
        channels=[
            channel_view(row, channel_overwrites)
            for row, channel_overwrites in await guild_channels(conn, user_id, [guild_id])
            if Permission.VIEW_CHANNEL in access.in_channel(channel_overwrites)
        ],
        member=member,
    )


async def load_guilds(conn: AsyncConnection, guild_ids: list[int]) -> list[Guild]:
    """The guilds of ``guild_ids`` (which must exist), in that order, in three queries
    however many there are (a user's guild list)."""
    if not guild_ids:
        return []
    rows = {r.id: r for r in (await conn.execute(select(guilds).where(guilds.c.id.in_(guild_ids))))}
    role_rows: dict[int, list[Row[Any]]] = {gid: [] for gid in guild_ids}
    for role in await conn.execute(select(roles).where(roles.c.guild_id.in_(guild_ids))):
        role_rows[role.guild_id].append(role)
    counted = await conn.execute(
        select(members.c.guild_id, func.count())
        .where(members.c.guild_id.in_(guild_ids))
        .group_by(members.c.guild_id)
    )
    counts: dict[int, int] = {gid: n for gid, n in counted.all()}
    return [guild_view(rows[gid], role_rows[gid], counts.get(gid, 0)) for gid in guild_ids]


class GuildService:
    def __init__(self, outbox: Outbox, settings: Settings) -> None:
        self.outbox = outbox
        self.db = outbox.db
        self.settings = settings

    async def create(self, user_id: int, body: GuildCreate) -> GuildWithChannels:
        name = clean_guild_name(body.name)
        description = clean_description(body.description)
        now = now_ms()
        guild_id, category_id, general_id = ids.new_id(), ids.new_id(), ids.new_id()
        async with self.outbox.write() as (conn, events):
            joined = await conn.execute(
                select(func.count()).select_from(members).where(members.c.user_id == user_id)
            )
            if joined.scalar_one() >= MAX_GUILDS_PER_USER:
                raise InvalidInput(
                    f"You are in {MAX_GUILDS_PER_USER} guilds already.", code="max_guilds"
                )
            await conn.execute(
                guilds.insert().values(
                    id=guild_id, name=name, description=description, owner_id=user_id,
                    system_channel_id=general_id, created_at=now, updated_at=now,
                )
            )  # fmt: skip
            await conn.execute(
                roles.insert().values(
                    id=guild_id, guild_id=guild_id, name="@everyone", position=0,
                    permissions=int(DEFAULT_EVERYONE), created_at=now,
                )
            )  # fmt: skip
            await conn.execute(
                members.insert().values(guild_id=guild_id, user_id=user_id, joined_at=now)
            )
            await conn.execute(
                channels.insert(),
                [
                    {"id": category_id, "guild_id": guild_id, "name": "Text Channels",
                     "type": int(ChannelType.GUILD_CATEGORY), "position": 0, "parent_id": None,
                     "created_at": now},
                    {"id": general_id, "guild_id": guild_id, "name": "general",
                     "type": int(ChannelType.GUILD_TEXT), "position": 0,
                     "parent_id": category_id, "created_at": now},
                ],
            )  # fmt: skip
            result = await self._with_channels(conn, guild_id)
            events.append(
                self.outbox.event(
                    "GUILD_CREATE",
                    user_stream(user_id),
                    msgspec.to_builtins(result),
                    follows=guild_stream(guild_id),
                )
            )
        return result

    async def _with_channels(self, conn: AsyncConnection, guild_id: int) -> GuildWithChannels:
        guild = await load_guild(conn, guild_id)
        query = select(channels).where(
            channels.c.guild_id == guild_id, channels.c.type.not_in([int(t) for t in THREAD_TYPES])
        )
        rows = (await conn.execute(query)).all()
        return GuildWithChannels(
            **msgspec.structs.asdict(guild),
            channels=[channel_view(r, overwrites=[]) for r in sorted(rows, key=_order)],
        )

    async def get(self, user_id: int, guild_id: int) -> Guild:
        async with self.db.read() as conn:
            await guild_access(conn, guild_id, user_id, now_ms())
            return await load_guild(conn, guild_id)

    async def mine(self, user_id: int) -> list[Guild]:
        async with self.db.read() as conn:
            return await load_guilds(conn, await member_guild_ids(conn, user_id))

    async def update(
        self, user_id: int, guild_id: int, patch: GuildPatch, reason: str | None = None
    ) -> Guild:
        async with self.outbox.write() as (conn, events):
            access = await guild_access(conn, guild_id, user_id, now_ms())
            access.require(Permission.MANAGE_GUILD)
            values: dict[str, Any] = {}
            if patch.name is not msgspec.UNSET:
                values["name"] = clean_guild_name(patch.name)
            if patch.description is not msgspec.UNSET:
                values["description"] = clean_description(patch.description)
            if patch.icon is not msgspec.UNSET:
                values["icon"] = patch.icon
            if patch.system_channel_id is not msgspec.UNSET:
                values["system_channel_id"] = await self._system_channel(
                    conn, guild_id, patch.system_channel_id
                )
            before = access.guild._asdict()
            if values:
                values["updated_at"] = now_ms()
                await conn.execute(update(guilds).where(guilds.c.id == guild_id).values(**values))
                changes = audit.diff(before, {k: v for k, v in values.items() if k != "updated_at"})
                if changes:
                    await audit.record(
                        conn, guild_id=guild_id, actor_id=user_id,
                        action=audit.AuditAction.GUILD_UPDATE, target_id=guild_id,
                        changes=changes, reason=reason,
                    )  # fmt: skip
            result = await load_guild(conn, guild_id)
            events.append(
                self.outbox.event(
                    "GUILD_UPDATE", guild_stream(guild_id), msgspec.to_builtins(result)
                )
            )
        return result

    async def _system_channel(
        self, conn: AsyncConnection, guild_id: int, raw: str | None
    ) -> int | None:
        if raw is None:
            return None
        channel_id = parse_id(raw)
        row = None
        if channel_id is not None:
            row = (
                await conn.execute(
                    select(channels.c.type).where(
                        channels.c.id == channel_id, channels.c.guild_id == guild_id
                    )
                )
            ).first()
        if row is None or row.type != ChannelType.GUILD_TEXT:
            raise InvalidInput(
                "The system channel must be a text channel of this guild.",
                errors={"system_channel_id": ["is not a text channel of this guild"]},
            )
        return channel_id

    async def delete(self, user_id: int, guild_id: int) -> None:
        async with self.outbox.write() as (conn, events):
            access = await guild_access(conn, guild_id, user_id, now_ms())
            if not access.is_owner:
                raise Forbidden("Only the owner can delete a guild.", code="owner_only")
            await conn.execute(delete(guilds).where(guilds.c.id == guild_id))
            events.append(
                self.outbox.event("GUILD_DELETE", guild_stream(guild_id), {"id": str(guild_id)})
            )

    async def transfer(self, user_id: int, guild_id: int, body: OwnershipTransfer) -> Guild:
        new_owner = parse_id(body.owner_id)
        async with self.outbox.write() as (conn, events):
            access = await guild_access(conn, guild_id, user_id, now_ms())
            if not access.is_owner:
                raise Forbidden("Only the owner can transfer ownership.", code="owner_only")
            target = None
            if new_owner is not None:
                target = (
                    await conn.execute(
                        select(members.c.user_id).where(
                            members.c.guild_id == guild_id, members.c.user_id == new_owner
                        )
                    )
                ).first()
            if target is None:
                raise NotFound("The new owner must be a member.", code="unknown_member")
            await conn.execute(
                update(guilds)
                .where(guilds.c.id == guild_id)
                .values(owner_id=new_owner, updated_at=now_ms())
            )
            await audit.record(
                conn, guild_id=guild_id, actor_id=user_id, action=audit.AuditAction.GUILD_UPDATE,
                target_id=guild_id,
                changes={"owner_id": {"old": str(user_id), "new": str(new_owner)}},
            )  # fmt: skip
            result = await load_guild(conn, guild_id)
            events.append(
                self.outbox.event(
                    "GUILD_UPDATE", guild_stream(guild_id), msgspec.to_builtins(result)
                )
            )
        return result


async def read_audit_log(
    db: Any,
    user_id: int,
    guild_id: int,
    *,
    actor_id: int | None = None,
    action: int | None = None,
    before: int | None = None,
    limit: int = 50,
) -> list[audit.AuditEntry]:
    if not 1 <= limit <= 100:
        raise InvalidInput("limit must be between 1 and 100.", errors={"limit": ["1 to 100"]})
    try:
        kind = audit.AuditAction(action) if action is not None else None
    except ValueError:
        raise InvalidInput("Unknown action type.", errors={"action_type": ["unknown"]}) from None
    async with db.read() as conn:
        access = await guild_access(conn, guild_id, user_id, now_ms())
        access.require(Permission.VIEW_AUDIT_LOG)
        rows = await audit.entries(
            conn, guild_id, actor_id=actor_id, action=kind, before=before, limit=limit
        )
    return [audit.entry_view(r) for r in rows]


def _order(row: Row[Any]) -> tuple[int, int, int]:
    # Categories first by position, then channels by position; ids break ties.
    return (0 if row.type == ChannelType.GUILD_CATEGORY else 1, row.position, row.id)
