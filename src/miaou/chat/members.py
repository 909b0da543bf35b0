"""Membership use cases: join, leave, list, nickname, roles, timeout, kick, ban, unban.

Moderation follows Discord's hierarchy (``permissions.can_moderate``): nobody acts on the
owner; others need the permission and a highest role strictly above the target's. A ban
removes the member at once and, optionally, tombstones their recent messages.
"""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import and_, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from miaou.accounts.service import user_view
from miaou.chat import audit
from miaou.chat.access import GuildAccess, guild_access, is_banned
from miaou.chat.guilds import joined_guild
from miaou.chat.models import Ban, BanCreate, Member, MemberPatch
from miaou.chat.outbox import Outbox, guild_stream, user_stream
from miaou.chat.permissions import MemberInfo, Permission, can_manage_role, can_moderate
from miaou.chat.tables import attachments, bans, member_roles, members, messages
from miaou.chat.views import member_view
from miaou.config import Settings
from miaou.db.metadata import users
from miaou.errors import Forbidden, InvalidInput, NotFound
from miaou.ids import now_ms, parse_id, smallest_id_at

MAX_TIMEOUT_MS = 28 * 86_400_000
MAX_BAN_DELETE_SECONDS = 7 * 86_400


def unknown_member() -> NotFound:
    return NotFound("No such member.", code="unknown_member")


async def member_rows(
    conn: AsyncConnection, guild_id: int, user_ids: list[int] | None = None, *,
    after: int = 0, limit: int = 1000,
) -> list[Member]:  # fmt: skip
    query = select(members, users).join(users, users.c.id == members.c.user_id)
    query = query.where(members.c.guild_id == guild_id)
    if user_ids is not None:
        query = query.where(members.c.user_id.in_(user_ids))
    else:
        query = query.where(members.c.user_id > after).order_by(members.c.user_id).limit(limit)
    rows = (await conn.execute(query)).all()
    role_rows = (
        await conn.execute(
            select(member_roles.c.user_id, member_roles.c.role_id).where(
                member_roles.c.guild_id == guild_id,
                member_roles.c.user_id.in_([r.user_id for r in rows]),
            )
        )
    ).all()
    by_user: dict[int, list[int]] = {}
    for r in role_rows:
        by_user.setdefault(r.user_id, []).append(r.role_id)
    # Each joined row carries both tables' columns (no names collide): member and user at once.
    return [member_view(r, r, by_user.get(r.user_id, [])) for r in rows]


class MemberService:
    def __init__(self, outbox: Outbox, settings: Settings) -> None:
        self.outbox = outbox
        self.db = outbox.db
        self.settings = settings

    # -- reading ----------------------------------------------------------------------------
    async def page(
        self, user_id: int, guild_id: int, *, after: int = 0, limit: int = 100
    ) -> list[Member]:
        if not 1 <= limit <= 1000:
            raise InvalidInput("limit must be between 1 and 1000.", errors={"limit": ["1..1000"]})
        async with self.db.read() as conn:
            await guild_access(conn, guild_id, user_id, now_ms())
            return await member_rows(conn, guild_id, after=after, limit=limit)

    async def get(self, user_id: int, guild_id: int, target: str) -> Member:
        async with self.db.read() as conn:
            await guild_access(conn, guild_id, user_id, now_ms())
            return await self._member(conn, guild_id, parse_id(target))

    async def _member(self, conn: AsyncConnection, guild_id: int, target: int | None) -> Member:
        found = await member_rows(conn, guild_id, [target]) if target is not None else []
        if not found:
            raise unknown_member()
        return found[0]

    # -- joining and leaving ----------------------------------------------------------------
    async def add(
        self, conn: AsyncConnection, events: list[Any], guild_id: int, user_id: int,
        *, temporary: bool = False,
    ) -> bool:  # fmt: skip
        """Make ``user_id`` a member inside the caller's transaction; False if already one."""
        if await is_banned(conn, guild_id, user_id):
            raise Forbidden("You are banned from this guild.", code="banned")
        existing = (
            await conn.execute(
                select(members.c.user_id).where(
                    members.c.guild_id == guild_id, members.c.user_id == user_id
                )
            )
        ).first()
        if existing is not None:
            return False
        await conn.execute(
            members.insert().values(
                guild_id=guild_id, user_id=user_id, joined_at=now_ms(), temporary=temporary
            )
        )
        member = await self._member(conn, guild_id, user_id)
        events.append(self._member_event("GUILD_MEMBER_ADD", guild_id, member))
        # The guild as READY would list it for them, so that a client shows it at once.
        joined = await joined_guild(conn, guild_id, member, now_ms())
        events.append(
            self.outbox.event(
                "GUILD_JOIN", user_stream(user_id), msgspec.to_builtins(joined),
                follows=guild_stream(guild_id),
            )
        )  # fmt: skip
        return True

    async def leave(self, user_id: int, guild_id: int) -> None:
        async with self.outbox.write() as (conn, events):
            access = await guild_access(conn, guild_id, user_id, now_ms())
            if access.is_owner:
                raise InvalidInput(
                    "The owner cannot leave; transfer ownership or delete the guild.",
                    code="owner_cannot_leave",
                )
            await self._remove(conn, events, guild_id, user_id)

    async def remove_temporary(self, user_id: int) -> list[int]:
        """The user went offline: leave every guild they joined through a temporary invite
        and were given no role in since (Discord's rule). Returns those guilds' ids.

        Asked for every user whose last session ends: most have no such guild, and a write
        transaction (on SQLite, the one write lock) for each would hold up sends when many
        clients leave at once. So a read asks first; the write reads again, under its lock."""
        async with self.db.read() as conn:
            if not await self._temporary_guilds(conn, user_id):
                return []
        async with self.outbox.write() as (conn, events):
            guild_ids = await self._temporary_guilds(conn, user_id)
            for guild_id in guild_ids:
                await self._remove(conn, events, guild_id, user_id)
        return guild_ids

    @staticmethod
    async def _temporary_guilds(conn: AsyncConnection, user_id: int) -> list[int]:
        with_roles = select(member_roles.c.guild_id).where(member_roles.c.user_id == user_id)
        found = await conn.execute(
            select(members.c.guild_id).where(
                members.c.user_id == user_id,
                members.c.temporary.is_(True),
                members.c.guild_id.not_in(with_roles),
            )
        )
        return list(found.scalars())

    async def _remove(
        self, conn: AsyncConnection, events: list[Any], guild_id: int, user_id: int
    ) -> None:
        await conn.execute(
            delete(members).where(members.c.guild_id == guild_id, members.c.user_id == user_id)
        )
        events.append(
            self.outbox.event(
                "GUILD_MEMBER_REMOVE", guild_stream(guild_id),
                {"guild_id": str(guild_id), "user": {"id": str(user_id)}},
            )
        )  # fmt: skip
        events.append(
            self.outbox.event("GUILD_DELETE", user_stream(user_id), {"id": str(guild_id)})
        )

    # -- moderation -------------------------------------------------------------------------
    async def _target(
        self, conn: AsyncConnection, access: GuildAccess, target_id: int | None
    ) -> MemberInfo:
        if target_id is None:
            raise unknown_member()
        row = (
            await conn.execute(
                select(members.c.user_id).where(
                    members.c.guild_id == access.guild_id, members.c.user_id == target_id
                )
            )
        ).first()
        if row is None:
            raise unknown_member()
        role_ids = (
            await conn.execute(
                select(member_roles.c.role_id).where(
                    member_roles.c.guild_id == access.guild_id, member_roles.c.user_id == target_id
                )
            )
        ).scalars()
        return MemberInfo(
            user_id=target_id,
            role_ids=frozenset(role_ids),
            is_owner=access.guild.owner_id == target_id,
        )

    def _may(self, action: Any, access: GuildAccess, target: MemberInfo) -> None:
        can_moderate(
            action, access.info, target, access.permissions, access.roles, access.everyone
        ).enforce()

    async def kick(
        self, user_id: int, guild_id: int, target: str, reason: str | None = None
    ) -> None:
        async with self.outbox.write() as (conn, events):
            access = await guild_access(conn, guild_id, user_id, now_ms())
            info = await self._target(conn, access, parse_id(target))
            self._may("kick", access, info)
            await self._remove(conn, events, guild_id, info.user_id)
            await audit.record(
                conn, guild_id=guild_id, actor_id=user_id, action=audit.AuditAction.MEMBER_KICK,
                target_id=info.user_id, reason=reason,
            )  # fmt: skip

    async def ban(
        self, user_id: int, guild_id: int, target: str, body: BanCreate, reason: str | None = None
    ) -> None:
        if not 0 <= body.delete_message_seconds <= MAX_BAN_DELETE_SECONDS:
            raise InvalidInput(
                "delete_message_seconds must be between 0 and 604800.",
                errors={"delete_message_seconds": ["0..604800"]},
            )
        target_id = parse_id(target)
        async with self.outbox.write() as (conn, events):
            access = await guild_access(conn, guild_id, user_id, now_ms())
            if (
                target_id is None
                or (await conn.execute(select(users.c.id).where(users.c.id == target_id))).first()
                is None
            ):
                raise NotFound("No such user.", code="unknown_user")
            is_member = (
                await conn.execute(
                    select(members.c.user_id).where(
                        members.c.guild_id == guild_id, members.c.user_id == target_id
                    )
                )
            ).first() is not None
            if is_member:
                self._may("ban", access, await self._target(conn, access, target_id))
            else:  # banning someone who is not here (yet): the permission is enough
                access.require(Permission.BAN_MEMBERS)
                if target_id == user_id:
                    raise Forbidden("You cannot do this to yourself.", code="target_is_self")
            await conn.execute(
                delete(bans).where(bans.c.guild_id == guild_id, bans.c.user_id == target_id)
            )
            text = body.reason or reason
            await conn.execute(
                bans.insert().values(
                    guild_id=guild_id, user_id=target_id, reason=text and text[:512],
                    moderator_id=user_id, created_at=now_ms(),
                )
            )  # fmt: skip
            if is_member:
                await self._remove(conn, events, guild_id, target_id)
            if body.delete_message_seconds:
                await self._tombstone_recent(conn, events, guild_id, target_id,
                                             body.delete_message_seconds)  # fmt: skip
            await audit.record(
                conn, guild_id=guild_id, actor_id=user_id,
                action=audit.AuditAction.MEMBER_BAN_ADD, target_id=target_id, reason=text,
            )  # fmt: skip
            events.append(
                self.outbox.event(
                    "GUILD_BAN_ADD", guild_stream(guild_id),
                    {"guild_id": str(guild_id), "user": {"id": str(target_id)}},
                )
            )  # fmt: skip

    async def _tombstone_recent(
        self, conn: AsyncConnection, events: list[Any], guild_id: int, author_id: int,
        seconds: int,
    ) -> None:  # fmt: skip
        since = smallest_id_at(now_ms() - seconds * 1000)
        condition = and_(
            messages.c.guild_id == guild_id,
            messages.c.author_id == author_id,
            messages.c.id >= since,
            messages.c.deleted_at.is_(None),
        )
        gone = (
            await conn.execute(select(messages.c.id, messages.c.channel_id).where(condition))
        ).all()
        await conn.execute(
            update(messages).where(condition).values(deleted_at=now_ms(), content="")
        )
        # Their files go with them (the blobs themselves are collected by the sweeper).
        await conn.execute(
            delete(attachments).where(attachments.c.message_id.in_([r.id for r in gone]))
        )
        for row in gone:
            events.append(
                self.outbox.event(
                    "MESSAGE_DELETE", guild_stream(guild_id),
                    {"id": str(row.id), "channel_id": str(row.channel_id),
                     "guild_id": str(guild_id)},
                )
            )  # fmt: skip

    async def unban(
        self, user_id: int, guild_id: int, target: str, reason: str | None = None
    ) -> None:
        target_id = parse_id(target)
        async with self.outbox.write() as (conn, events):
            access = await guild_access(conn, guild_id, user_id, now_ms())
            access.require(Permission.BAN_MEMBERS)
            result = await conn.execute(
                delete(bans).where(bans.c.guild_id == guild_id, bans.c.user_id == target_id)
            )
            if not result.rowcount:
                raise NotFound("No such ban.", code="unknown_ban")
            await audit.record(
                conn, guild_id=guild_id, actor_id=user_id,
                action=audit.AuditAction.MEMBER_BAN_REMOVE, target_id=target_id, reason=reason,
            )  # fmt: skip
            events.append(
                self.outbox.event(
                    "GUILD_BAN_REMOVE", guild_stream(guild_id),
                    {"guild_id": str(guild_id), "user": {"id": str(target_id)}},
                )
            )  # fmt: skip

    async def bans(
        self, user_id: int, guild_id: int, *, after: int = 0, limit: int = 100
    ) -> list[Ban]:
        if not 1 <= limit <= 1000:
            raise InvalidInput("limit must be between 1 and 1000.", errors={"limit": ["1..1000"]})
        async with self.db.read() as conn:
            access = await guild_access(conn, guild_id, user_id, now_ms())
            access.require(Permission.BAN_MEMBERS)
            rows = (
                await conn.execute(
                    select(bans.c.reason, users)
                    .join(users, users.c.id == bans.c.user_id)
                    .where(bans.c.guild_id == guild_id, bans.c.user_id > after)
                    .order_by(bans.c.user_id)
                    .limit(limit)
                )
            ).all()
        return [Ban(user=user_view(r), reason=r.reason) for r in rows]

    # -- member settings ----------------------------------------------------------------------
    async def update(
        self, user_id: int, guild_id: int, target: str, patch: MemberPatch,
        reason: str | None = None,
    ) -> Member:  # fmt: skip
        target_id = user_id if target == "@me" else parse_id(target)
        async with self.outbox.write() as (conn, events):
            access = await guild_access(conn, guild_id, user_id, now_ms())
            info = await self._target(conn, access, target_id)
            changes: dict[str, Any] = {}
            values: dict[str, Any] = {}
            if patch.nick is not msgspec.UNSET:
                self._may("nickname", access, info)
                nick = (patch.nick or "").strip() or None
                if nick is not None and len(nick) > 32:
                    raise InvalidInput("Nickname too long.", errors={"nick": ["at most 32"]})
                values["nick"] = nick
            if patch.communication_disabled_until is not msgspec.UNSET:
                self._may("timeout", access, info)
                until = patch.communication_disabled_until
                if until is not None and not 0 < until - now_ms() <= MAX_TIMEOUT_MS:
                    raise InvalidInput(
                        "A timeout ends in the future, at most 28 days from now.",
                        errors={"communication_disabled_until": ["0 < until - now <= 28 days"]},
                    )
                values["communication_disabled_until"] = until
            if values:
                before = (
                    await conn.execute(
                        select(members).where(
                            members.c.guild_id == guild_id, members.c.user_id == info.user_id
                        )
                    )
                ).one()
                changes.update(audit.diff(before._asdict(), values))
                await conn.execute(
                    update(members)
                    .where(members.c.guild_id == guild_id, members.c.user_id == info.user_id)
                    .values(**values)
                )
            if patch.roles is not msgspec.UNSET:
                changes.update(await self._set_roles(conn, access, info, patch.roles))
            if changes:
                await audit.record(
                    conn, guild_id=guild_id, actor_id=user_id,
                    action=(audit.AuditAction.MEMBER_ROLE_UPDATE if "roles" in changes
                            else audit.AuditAction.MEMBER_UPDATE),
                    target_id=info.user_id, changes=changes, reason=reason,
                )  # fmt: skip
            member = await self._member(conn, guild_id, info.user_id)
            if changes:
                events.append(self._member_event("GUILD_MEMBER_UPDATE", guild_id, member))
        return member

    async def _set_roles(
        self, conn: AsyncConnection, access: GuildAccess, target: MemberInfo, wanted: list[str]
    ) -> dict[str, Any]:
        wanted_ids = {parse_id(r) for r in wanted}
        if None in wanted_ids or access.guild_id in wanted_ids:
            raise InvalidInput("Unknown role.", errors={"roles": ["not a role of this guild"]})
        wanted_set = {r for r in wanted_ids if r is not None}
        unknown = wanted_set - set(access.roles)
        if unknown:
            raise InvalidInput("Unknown role.", errors={"roles": ["not a role of this guild"]})
        added, removed = wanted_set - target.role_ids, target.role_ids - wanted_set
        for role_id in added | removed:
            role = access.roles[role_id]
            can_manage_role(
                access.info, access.permissions, role, access.roles, access.everyone
            ).enforce()
        if removed:
            await conn.execute(
                delete(member_roles).where(
                    member_roles.c.guild_id == access.guild_id,
                    member_roles.c.user_id == target.user_id,
                    member_roles.c.role_id.in_(removed),
                )
            )
        if added:
            await conn.execute(
                member_roles.insert(),
                [{"guild_id": access.guild_id, "user_id": target.user_id, "role_id": r}
                 for r in added],
            )  # fmt: skip
        if not (added or removed):
            return {}
        return {
            "roles": {"old": sorted(map(str, target.role_ids)), "new": sorted(map(str, wanted_set))}
        }

    async def set_role(
        self, user_id: int, guild_id: int, target: str, role_ref: str, present: bool,
        reason: str | None = None,
    ) -> None:  # fmt: skip
        async with self.outbox.write() as (conn, events):
            access = await guild_access(conn, guild_id, user_id, now_ms())
            info = await self._target(conn, access, parse_id(target))
            role_id = parse_id(role_ref)
            if role_id is None or role_id not in access.roles or role_id == guild_id:
                raise NotFound("No such role.", code="unknown_role")
            wanted = set(info.role_ids) | {role_id} if present else set(info.role_ids) - {role_id}
            changes = await self._set_roles(conn, access, info, [str(r) for r in wanted])
            if changes:
                await audit.record(
                    conn, guild_id=guild_id, actor_id=user_id,
                    action=audit.AuditAction.MEMBER_ROLE_UPDATE, target_id=info.user_id,
                    changes=changes, reason=reason,
                )  # fmt: skip
                member = await self._member(conn, guild_id, info.user_id)
                events.append(self._member_event("GUILD_MEMBER_UPDATE", guild_id, member))

    def _member_event(self, type_: str, guild_id: int, member: Member) -> Any:
        payload = {"guild_id": str(guild_id), **msgspec.to_builtins(member)}
        return self.outbox.event(type_, guild_stream(guild_id), payload)
