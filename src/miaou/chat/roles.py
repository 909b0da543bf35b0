"""Role use cases: create, list, update, delete, reorder.

Role hierarchy (Discord's): a member manages only roles strictly below their highest role,
and cannot put on a role permissions they do not hold. ``@everyone`` (id = guild id) can be
edited but not deleted or moved.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import msgspec
from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from miaou import ids
from miaou.chat import audit
from miaou.chat.access import GuildAccess, guild_access
from miaou.chat.models import Role, RoleCreate, RolePatch, RolePosition
from miaou.chat.outbox import Outbox, guild_stream
from miaou.chat.permissions import (
    Permission,
    RoleInfo,
    can_grant,
    can_manage_role,
    parse_permissions,
)
from miaou.chat.tables import roles
from miaou.chat.views import role_view
from miaou.config import Settings
from miaou.errors import InvalidInput, NotFound
from miaou.ids import now_ms, parse_id

MAX_ROLES_PER_GUILD = 250


def clean_role_name(raw: str) -> str:
    name = unicodedata.normalize("NFKC", raw).strip()
    if not 1 <= len(name) <= 100 or any(unicodedata.category(c) == "Cc" for c in name):
        raise InvalidInput("Invalid role name.", errors={"name": ["1 to 100 characters"]})
    return name


def check_color(color: int) -> int:
    if not 0 <= color <= 0xFFFFFF:
        raise InvalidInput("Invalid colour.", errors={"color": ["an RGB integer 0..16777215"]})
    return color


def unknown_role() -> NotFound:
    return NotFound("No such role.", code="unknown_role")


class RoleService:
    def __init__(self, outbox: Outbox, settings: Settings) -> None:
        self.outbox = outbox
        self.db = outbox.db
        self.settings = settings

    async def all(self, user_id: int, guild_id: int) -> list[Role]:
        async with self.db.read() as conn:
            await guild_access(conn, guild_id, user_id, now_ms())
            rows = (
                await conn.execute(
                    select(roles)
                    .where(roles.c.guild_id == guild_id)
                    .order_by(roles.c.position, roles.c.id)
                )
            ).all()
        return [role_view(r) for r in rows]

    async def create(
        self, user_id: int, guild_id: int, body: RoleCreate, reason: str | None = None
    ) -> Role:
        name = clean_role_name(body.name)
        color = check_color(body.color)
        async with self.outbox.write() as (conn, events):
            access = await guild_access(conn, guild_id, user_id, now_ms())
            access.require(Permission.MANAGE_ROLES)
            permissions = Permission(0)
            if body.permissions is not msgspec.UNSET:
                permissions = parse_permissions(body.permissions)
                can_grant(access.permissions, int(permissions)).enforce()
            count = await conn.execute(
                select(func.count()).select_from(roles).where(roles.c.guild_id == guild_id)
            )
            if count.scalar_one() >= MAX_ROLES_PER_GUILD:
                raise InvalidInput(
                    f"A guild has at most {MAX_ROLES_PER_GUILD} roles.", code="max_roles"
                )
            # New roles go just above @everyone, like Discord's.
            await conn.execute(
                update(roles)
                .where(roles.c.guild_id == guild_id, roles.c.position >= 1)
                .values(position=roles.c.position + 1)
            )
            role_id = ids.new_id()
            await conn.execute(
                roles.insert().values(
                    id=role_id, guild_id=guild_id, name=name, color=color, position=1,
                    hoist=body.hoist, mentionable=body.mentionable,
                    permissions=int(permissions), created_at=now_ms(),
                )
            )  # fmt: skip
            role = role_view(await self._row(conn, guild_id, role_id))
            await audit.record(
                conn, guild_id=guild_id, actor_id=user_id, action=audit.AuditAction.ROLE_CREATE,
                target_id=role_id, changes=audit.diff({}, msgspec.to_builtins(role)),
                reason=reason,
            )  # fmt: skip
            events.append(self._event("GUILD_ROLE_CREATE", guild_id, role))
            await self._moved(conn, events, guild_id, 2)
        return role

    async def _row(self, conn: AsyncConnection, guild_id: int, role_id: int | None) -> Row[Any]:
        row = None
        if role_id is not None:
            row = (
                await conn.execute(
                    select(roles).where(roles.c.id == role_id, roles.c.guild_id == guild_id)
                )
            ).first()
        if row is None:
            raise unknown_role()
        return row

    def _may_manage(self, access: GuildAccess, role: Row[Any]) -> None:
        info = RoleInfo(id=role.id, position=role.position, permissions=role.permissions)
        can_manage_role(
            access.info, access.permissions, info, access.roles, access.everyone
        ).enforce()

    async def update(
        self, user_id: int, guild_id: int, role_ref: str, patch: RolePatch,
        reason: str | None = None,
    ) -> Role:  # fmt: skip
        async with self.outbox.write() as (conn, events):
            access = await guild_access(conn, guild_id, user_id, now_ms())
            row = await self._row(conn, guild_id, parse_id(role_ref))
            self._may_manage(access, row)
            values: dict[str, Any] = {}
            if patch.name is not msgspec.UNSET:
                if row.id == guild_id:
                    raise InvalidInput("@everyone cannot be renamed.", errors={"name": ["fixed"]})
                values["name"] = clean_role_name(patch.name)
            if patch.color is not msgspec.UNSET:
                values["color"] = check_color(patch.color)
            for flag in ("hoist", "mentionable"):
                if getattr(patch, flag) is not msgspec.UNSET:
                    values[flag] = getattr(patch, flag)
            if patch.permissions is not msgspec.UNSET:
                new = parse_permissions(patch.permissions)
                # Only the bits that change must be held by the actor.
                can_grant(access.permissions, int(new) ^ row.permissions).enforce()
                values["permissions"] = int(new)
            changes = audit.diff(row._asdict(), values)
            if changes:
                await conn.execute(update(roles).where(roles.c.id == row.id).values(**values))
                await audit.record(
                    conn, guild_id=guild_id, actor_id=user_id,
                    action=audit.AuditAction.ROLE_UPDATE, target_id=row.id, changes=changes,
                    reason=reason,
                )  # fmt: skip
            role = role_view(await self._row(conn, guild_id, row.id))
            if changes:
                events.append(self._event("GUILD_ROLE_UPDATE", guild_id, role))
        return role

    async def delete(
        self, user_id: int, guild_id: int, role_ref: str, reason: str | None = None
    ) -> None:
        async with self.outbox.write() as (conn, events):
            access = await guild_access(conn, guild_id, user_id, now_ms())
            row = await self._row(conn, guild_id, parse_id(role_ref))
            if row.id == guild_id:
                raise InvalidInput("@everyone cannot be deleted.", code="everyone_role")
            self._may_manage(access, row)
            await conn.execute(delete(roles).where(roles.c.id == row.id))
            await conn.execute(
                update(roles)
                .where(roles.c.guild_id == guild_id, roles.c.position > row.position)
                .values(position=roles.c.position - 1)
            )
            await audit.record(
                conn, guild_id=guild_id, actor_id=user_id, action=audit.AuditAction.ROLE_DELETE,
                target_id=row.id, changes={"name": {"old": row.name, "new": None}},
                reason=reason,
            )  # fmt: skip
            events.append(
                self.outbox.event(
                    "GUILD_ROLE_DELETE", guild_stream(guild_id),
                    {"guild_id": str(guild_id), "role_id": str(row.id)},
                )
            )  # fmt: skip
            await self._moved(conn, events, guild_id, row.position)

    async def reorder(self, user_id: int, guild_id: int, moves: list[RolePosition]) -> list[Role]:
        """Move roles; every role moved, and every target position, must be below the actor."""
        async with self.outbox.write() as (conn, events):
            access = await guild_access(conn, guild_id, user_id, now_ms())
            access.require(Permission.MANAGE_ROLES)
            ceiling = access.highest_position()
            for move in moves:
                row = await self._row(conn, guild_id, parse_id(move.id))
                if row.id == guild_id or move.position < 1:
                    raise InvalidInput(
                        "@everyone stays at position 0.", errors={"position": [">= 1"]}
                    )
                self._may_manage(access, row)
                if move.position >= ceiling:
                    raise InvalidInput(
                        "A role cannot be moved to or above your highest role.",
                        code="role_hierarchy",
                    )
                await conn.execute(
                    update(roles).where(roles.c.id == row.id).values(position=move.position)
                )
            rows = (
                await conn.execute(
                    select(roles)
                    .where(roles.c.guild_id == guild_id)
                    .order_by(roles.c.position, roles.c.id)
                )
            ).all()
            result = [role_view(r) for r in rows]
            for role in result:
                events.append(self._event("GUILD_ROLE_UPDATE", guild_id, role))
        return result

    async def _moved(
        self, conn: AsyncConnection, events: list[Any], guild_id: int, from_position: int
    ) -> None:
        """GUILD_ROLE_UPDATE for the roles a create or delete shifted by one (those now at
        ``from_position`` and above): clients keep positions from events."""
        moved = await conn.execute(
            select(roles)
            .where(roles.c.guild_id == guild_id, roles.c.position >= from_position)
            .order_by(roles.c.position, roles.c.id)
        )
        for row in moved.all():
            events.append(self._event("GUILD_ROLE_UPDATE", guild_id, role_view(row)))

    def _event(self, type_: str, guild_id: int, role: Role) -> Any:
        return self.outbox.event(
            type_,
            guild_stream(guild_id),
            {"guild_id": str(guild_id), "role": msgspec.to_builtins(role)},
        )
