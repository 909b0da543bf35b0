"""The guild audit log: who changed what, with before/after and a reason.

Actions use Discord's audit log event names and numbers, so bots can read them.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from miaou import ids
from miaou.chat.models import AuditEntry

__all__ = ["AuditAction", "AuditEntry", "diff", "entries", "entry_view", "record"]
from miaou.chat.tables import audit_log


class AuditAction(enum.IntEnum):
    GUILD_UPDATE = 1
    CHANNEL_CREATE = 10
    CHANNEL_UPDATE = 11
    CHANNEL_DELETE = 12
    CHANNEL_OVERWRITE_CREATE = 13
    CHANNEL_OVERWRITE_UPDATE = 14
    CHANNEL_OVERWRITE_DELETE = 15
    MEMBER_KICK = 20
    MEMBER_BAN_ADD = 22
    MEMBER_BAN_REMOVE = 23
    MEMBER_UPDATE = 24
    MEMBER_ROLE_UPDATE = 25
    ROLE_CREATE = 30
    ROLE_UPDATE = 31
    ROLE_DELETE = 32
    INVITE_CREATE = 40
    INVITE_DELETE = 42
    EMOJI_CREATE = 60
    EMOJI_UPDATE = 61
    EMOJI_DELETE = 62
    MESSAGE_DELETE = 72
    MESSAGE_PIN = 74
    MESSAGE_UNPIN = 75
    THREAD_CREATE = 110
    THREAD_UPDATE = 111
    THREAD_DELETE = 112


REASON_MAX = 512


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Only the keys whose value changed, as {"key": {"old": ..., "new": ...}}."""
    return {
        key: {"old": before.get(key), "new": value}
        for key, value in after.items()
        if before.get(key) != value
    }


async def record(
    conn: AsyncConnection,
    *,
    guild_id: int,
    actor_id: int | None,
    action: AuditAction,
    target_id: int | None = None,
    changes: dict[str, Any] | None = None,
    reason: str | None = None,
) -> None:
    await conn.execute(
        audit_log.insert().values(
            id=ids.new_id(),
            guild_id=guild_id,
            actor_id=actor_id,
            action=int(action),
            target_id=target_id,
            changes=changes or None,
            reason=(reason or None) and reason[:REASON_MAX],
        )
    )


async def entries(
    conn: AsyncConnection,
    guild_id: int,
    *,
    actor_id: int | None = None,
    action: AuditAction | None = None,
    target_id: int | None = None,
    before: int | None = None,
    limit: int = 50,
) -> Sequence[Row[Any]]:
    conditions = [audit_log.c.guild_id == guild_id]
    if actor_id is not None:
        conditions.append(audit_log.c.actor_id == actor_id)
    if action is not None:
        conditions.append(audit_log.c.action == int(action))
    if target_id is not None:
        conditions.append(audit_log.c.target_id == target_id)
    if before is not None:
        conditions.append(audit_log.c.id < before)
    query = select(audit_log).where(and_(*conditions)).order_by(audit_log.c.id.desc())
    return (await conn.execute(query.limit(limit))).all()


def entry_view(row: Row[Any]) -> AuditEntry:
    return AuditEntry(
        id=str(row.id),
        action=AuditAction(row.action).name,
        actor_id=str(row.actor_id) if row.actor_id is not None else None,
        target_id=str(row.target_id) if row.target_id is not None else None,
        changes=row.changes,
        reason=row.reason,
    )
