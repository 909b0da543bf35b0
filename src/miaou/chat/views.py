"""Rows to wire shapes: one place that decides how a stored object is shown."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy.engine import Row

from miaou.accounts.models import User
from miaou.accounts.service import user_view
from miaou.chat.models import Ban, Channel, Guild, Invite, Member, Overwrite, Role


def _sid(value: int | None) -> str | None:
    return str(value) if value is not None else None


def role_view(row: Row[Any]) -> Role:
    return Role(
        id=str(row.id),
        name=row.name,
        color=row.color,
        position=row.position,
        hoist=bool(row.hoist),
        mentionable=bool(row.mentionable),
        permissions=str(row.permissions),
    )


def overwrite_view(row: Row[Any]) -> Overwrite:
    return Overwrite(
        id=str(row.target_id), type=row.target_type, allow=str(row.allow), deny=str(row.deny)
    )


def channel_view(
    row: Row[Any],
    overwrites: Iterable[Row[Any]] | None = None,
    recipients: list[User] | None = None,
) -> Channel:
    thread_metadata = None
    if row.auto_archive_duration is not None:
        thread_metadata = {
            "archived": bool(row.archived),
            "locked": bool(row.locked),
            "auto_archive_duration": row.auto_archive_duration,
            "archive_timestamp": row.archive_timestamp,
        }
    return Channel(
        id=str(row.id),
        type=row.type,
        guild_id=_sid(row.guild_id),
        name=row.name,
        topic=row.topic,
        position=row.position,
        parent_id=_sid(row.parent_id),
        nsfw=bool(row.nsfw),
        rate_limit_per_user=row.rate_limit_per_user,
        bitrate=row.bitrate,
        user_limit=row.user_limit,
        last_message_id=_sid(row.last_message_id),
        owner_id=_sid(row.owner_id),
        permission_overwrites=(
            [overwrite_view(o) for o in overwrites] if overwrites is not None else None
        ),
        recipients=recipients,
        thread_metadata=thread_metadata,
        message_count=row.message_count if thread_metadata is not None else None,
        available_tags=row.available_tags,
        applied_tags=row.applied_tags,
    )


def recipient_view(row: Row[Any]) -> User:
    """A DM recipient, from a row whose user columns are ``recipient_id``, ``username``,
    ``display_name``, ``bio`` and ``recipient_created_at`` (beside the channel's)."""
    return User(
        id=str(row.recipient_id),
        username=row.username,
        display_name=row.display_name,
        bio=row.bio,
        created_at=row.recipient_created_at,
    )


def member_view(member: Row[Any], user: Row[Any], role_ids: Iterable[int]) -> Member:
    return Member(
        user=user_view(user),
        nick=member.nick,
        roles=sorted(str(r) for r in role_ids),
        joined_at=member.joined_at,
        temporary=bool(member.temporary),
        communication_disabled_until=member.communication_disabled_until,
    )


def guild_view(row: Row[Any], roles: Iterable[Row[Any]], member_count: int) -> Guild:
    return Guild(
        id=str(row.id),
        name=row.name,
        description=row.description,
        icon=row.icon,
        owner_id=str(row.owner_id),
        system_channel_id=_sid(row.system_channel_id),
        roles=[role_view(r) for r in sorted(roles, key=lambda r: (r.position, r.id))],
        member_count=member_count,
        created_at=row.created_at,
    )


def invite_view(row: Row[Any]) -> Invite:
    return Invite(
        code=row.code,
        guild_id=str(row.guild_id),
        channel_id=str(row.channel_id),
        inviter_id=_sid(row.inviter_id),
        max_uses=row.max_uses,
        uses=row.uses,
        expires_at=row.expires_at,
        temporary=bool(row.temporary),
        created_at=row.created_at,
    )


def ban_view(ban: Row[Any], user: Row[Any]) -> Ban:
    return Ban(user=user_view(user), reason=ban.reason)
