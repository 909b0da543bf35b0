"""Guild channel use cases: create, list, read, update, delete, reorder, overwrites.

Text-like channel names are normalised the way Discord does (lowercase, spaces to dashes);
voice, stage and category names keep their case. Only channels the caller can view are
listed, and one they cannot view answers 404.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Protocol

import msgspec
from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from miaou import ids
from miaou.chat import audit
from miaou.chat.access import (
    ChannelAccess,
    GuildAccess,
    channel_access,
    channel_overwrites,
    guild_access,
    overwrites_by_channel,
    unknown_channel,
)
from miaou.chat.models import (
    GUILD_CHANNEL_TYPES,
    MAX_SLOWMODE,
    THREAD_TYPES,
    VOICE_TYPES,
    Channel,
    ChannelCreate,
    ChannelPatch,
    ChannelPosition,
    ChannelType,
    ForumTag,
    OverwriteBody,
)
from miaou.chat.outbox import Outbox, guild_stream
from miaou.chat.permissions import Permission, can_grant, parse_permissions
from miaou.chat.tables import channels, members, overwrites, roles
from miaou.chat.views import channel_view
from miaou.config import Settings
from miaou.errors import InvalidInput, NotFound
from miaou.ids import now_ms, parse_id

MAX_CHANNELS_PER_GUILD = 500
MAX_FORUM_TAGS = 20
_THREAD_FIELDS = {"archived", "locked", "auto_archive_duration", "applied_tags"}


class ThreadUpdater(Protocol):
    async def update(self, user_id: int, thread_id: int, patch: ChannelPatch) -> Channel: ...


TOPIC_MAX = 1024
FORUM_TOPIC_MAX = 4096
_SPACES = re.compile(r"\s+")
_TEXTLIKE = {ChannelType.GUILD_TEXT, ChannelType.GUILD_ANNOUNCEMENT, ChannelType.GUILD_FORUM}


def clean_channel_name(raw: str, channel_type: int) -> str:
    name = unicodedata.normalize("NFKC", raw).strip()
    if channel_type in _TEXTLIKE:
        name = _SPACES.sub("-", name.lower())
    if not 1 <= len(name) <= 100 or any(unicodedata.category(c) == "Cc" for c in name):
        raise InvalidInput(
            "Invalid channel name.", errors={"name": ["1 to 100 characters, no control characters"]}
        )
    return name


def _invalid(field: str, problem: str) -> InvalidInput:
    return InvalidInput(f"Invalid {field}.", errors={field: [problem]})


def validate_settings(channel_type: int, values: dict[str, Any]) -> None:
    """Range checks shared by create and update; ``values`` holds the fields being set."""
    if "rate_limit_per_user" in values and not 0 <= values["rate_limit_per_user"] <= MAX_SLOWMODE:
        raise _invalid("rate_limit_per_user", f"must be between 0 and {MAX_SLOWMODE} seconds")
    topic_max = FORUM_TOPIC_MAX if channel_type == ChannelType.GUILD_FORUM else TOPIC_MAX
    if values.get("topic") is not None and len(values["topic"]) > topic_max:
        raise _invalid("topic", f"at most {topic_max} characters")
    for key in ("bitrate", "user_limit"):
        if values.get(key) is not None and channel_type not in VOICE_TYPES:
            raise _invalid(key, "only voice and stage channels have it")
    if values.get("bitrate") is not None and not 8_000 <= values["bitrate"] <= 384_000:
        raise _invalid("bitrate", "must be between 8000 and 384000")
    if values.get("user_limit") is not None and not 0 <= values["user_limit"] <= 99:
        raise _invalid("user_limit", "must be between 0 and 99")


def forum_tags(channel: Row[Any], tags: list[ForumTag]) -> list[dict[str, Any]]:
    """A forum's tag list: existing tags keep their ids, new ones get one; at most 20."""
    if channel.type != ChannelType.GUILD_FORUM:
        raise _invalid("available_tags", "only forums have tags")
    if len(tags) > MAX_FORUM_TAGS:
        raise _invalid("available_tags", f"at most {MAX_FORUM_TAGS}")
    known = {t["id"] for t in channel.available_tags or []}
    out = []
    for tag in tags:
        name = tag.name.strip()
        if not 1 <= len(name) <= 20:
            raise _invalid("available_tags", "tag names are 1 to 20 characters")
        if tag.id is not None and tag.id not in known:
            raise _invalid("available_tags", f"unknown tag id {tag.id}")
        out.append({"id": tag.id or str(ids.new_id()), "name": name, "emoji": tag.emoji,
                    "moderated": tag.moderated})  # fmt: skip
    return out


class ChannelService:
    def __init__(self, outbox: Outbox, settings: Settings) -> None:
        self.outbox = outbox
        self.db = outbox.db
        self.settings = settings
        # Set by the node: PATCH /channels/{id} on a thread is the thread service's.
        self.threads: ThreadUpdater | None = None

    async def _is_thread(self, channel_id: int) -> bool:
        async with self.db.read() as conn:
            kind = (
                await conn.execute(select(channels.c.type).where(channels.c.id == channel_id))
            ).scalar()
        return kind in THREAD_TYPES

    # -- reading ----------------------------------------------------------------------------
    async def visible(self, user_id: int, guild_id: int) -> list[Channel]:
        async with self.db.read() as conn:
            access = await guild_access(conn, guild_id, user_id, now_ms())
            rows = (
                await conn.execute(
                    select(channels)
                    .where(
                        channels.c.guild_id == guild_id,
                        channels.c.type.not_in([int(t) for t in THREAD_TYPES]),
                    )
                    .order_by(channels.c.position, channels.c.id)
                )
            ).all()
            by_channel = await overwrites_by_channel(conn, [r.id for r in rows])
        return [
            channel_view(row, by_channel[row.id])
            for row in rows
            if Permission.VIEW_CHANNEL in access.in_channel(by_channel[row.id])
        ]

    async def get(self, user_id: int, channel_id: int) -> Channel:
        async with self.db.read() as conn:
            access = await channel_access(conn, channel_id, user_id, now_ms())
            return await self._view(conn, access.channel)

    async def _view(self, conn: AsyncConnection, row: Row[Any]) -> Channel:
        if row.guild_id is None:
            return channel_view(row)
        return channel_view(row, await channel_overwrites(conn, row.id))

    # -- writing ----------------------------------------------------------------------------
    async def create(
        self, user_id: int, guild_id: int, body: ChannelCreate, reason: str | None = None
    ) -> Channel:
        if body.type not in GUILD_CHANNEL_TYPES:
            raise _invalid("type", "must be a guild channel type (0, 2, 4, 5, 13, 15)")
        name = clean_channel_name(body.name, body.type)
        values: dict[str, Any] = {
            "topic": body.topic, "nsfw": body.nsfw, "rate_limit_per_user": body.rate_limit_per_user,
            "bitrate": body.bitrate, "user_limit": body.user_limit,
        }  # fmt: skip
        validate_settings(body.type, values)
        async with self.outbox.write() as (conn, events):
            access = await guild_access(conn, guild_id, user_id, now_ms())
            access.require(Permission.MANAGE_CHANNELS)
            count = await conn.execute(
                select(func.count()).select_from(channels).where(channels.c.guild_id == guild_id)
            )
            if count.scalar_one() >= MAX_CHANNELS_PER_GUILD:
                raise InvalidInput(
                    f"A guild has at most {MAX_CHANNELS_PER_GUILD} channels.", code="max_channels"
                )
            parent_id = await self._parent(conn, guild_id, body.type, body.parent_id)
            position = body.position
            if position is None:
                top = await conn.execute(
                    select(func.max(channels.c.position)).where(channels.c.guild_id == guild_id)
                )
                position = (top.scalar() or 0) + 1
            channel_id = ids.new_id()
            await conn.execute(
                channels.insert().values(
                    id=channel_id, guild_id=guild_id, type=body.type, name=name,
                    position=position, parent_id=parent_id, created_at=now_ms(),
                    available_tags=[] if body.type == ChannelType.GUILD_FORUM else None, **values,
                )
            )  # fmt: skip
            for ow in body.permission_overwrites:
                await self._put_overwrite(conn, access, channel_id, ow)
            row = (await conn.execute(select(channels).where(channels.c.id == channel_id))).one()
            result = await self._view(conn, row)
            await audit.record(
                conn, guild_id=guild_id, actor_id=user_id, action=audit.AuditAction.CHANNEL_CREATE,
                target_id=channel_id, changes={"name": {"old": None, "new": name}}, reason=reason,
            )  # fmt: skip
            events.append(self._event("CHANNEL_CREATE", result))
        return result

    async def _parent(
        self, conn: AsyncConnection, guild_id: int, channel_type: int, raw: str | None
    ) -> int | None:
        if raw is None:
            return None
        if channel_type == ChannelType.GUILD_CATEGORY:
            raise _invalid("parent_id", "a category cannot have a parent")
        parent_id = parse_id(raw)
        row = None
        if parent_id is not None:
            row = (
                await conn.execute(
                    select(channels.c.type).where(
                        channels.c.id == parent_id, channels.c.guild_id == guild_id
                    )
                )
            ).first()
        if row is None or row.type != ChannelType.GUILD_CATEGORY:
            raise _invalid("parent_id", "is not a category of this guild")
        return parent_id

    async def update(
        self, user_id: int, channel_id: int, patch: ChannelPatch, reason: str | None = None
    ) -> Channel:
        if self.threads is not None and await self._is_thread(channel_id):
            return await self.threads.update(user_id, channel_id, patch)
        async with self.outbox.write() as (conn, events):
            access = await self._managed(conn, channel_id, user_id)
            row = access.channel
            values = {
                k: v
                for k, v in msgspec.structs.asdict(patch).items()
                if v is not msgspec.UNSET and k not in ("parent_id", "available_tags")
            }
            for field in _THREAD_FIELDS & set(values):
                raise _invalid(field, "only threads have it")
            if patch.available_tags is not msgspec.UNSET:
                values["available_tags"] = forum_tags(row, patch.available_tags)
            if "name" in values:
                values["name"] = clean_channel_name(values["name"], row.type)
            validate_settings(row.type, values)
            if patch.parent_id is not msgspec.UNSET:
                values["parent_id"] = await self._parent(
                    conn, row.guild_id, row.type, patch.parent_id
                )
            changes = audit.diff(row._asdict(), values)
            if changes:
                await conn.execute(
                    update(channels).where(channels.c.id == channel_id).values(**values)
                )
                await audit.record(
                    conn, guild_id=row.guild_id, actor_id=user_id,
                    action=audit.AuditAction.CHANNEL_UPDATE, target_id=channel_id,
                    changes=changes, reason=reason,
                )  # fmt: skip
            fresh = (await conn.execute(select(channels).where(channels.c.id == channel_id))).one()
            result = await self._view(conn, fresh)
            if changes:
                events.append(self._event("CHANNEL_UPDATE", result))
        return result

    async def delete(self, user_id: int, channel_id: int, reason: str | None = None) -> Channel:
        async with self.outbox.write() as (conn, events):
            access = await self._managed(conn, channel_id, user_id)
            result = await self._view(conn, access.channel)
            # Children of a deleted category stay, uncategorised (as Discord does).
            await conn.execute(
                update(channels)
                .where(channels.c.parent_id == channel_id, channels.c.type.not_in(
                    [int(t) for t in THREAD_TYPES]))
                .values(parent_id=None)
            )  # fmt: skip
            await conn.execute(delete(channels).where(channels.c.parent_id == channel_id))
            await conn.execute(delete(channels).where(channels.c.id == channel_id))
            await audit.record(
                conn, guild_id=access.channel.guild_id, actor_id=user_id,
                action=audit.AuditAction.CHANNEL_DELETE, target_id=channel_id,
                changes={"name": {"old": access.channel.name, "new": None}}, reason=reason,
            )  # fmt: skip
            events.append(self._event("CHANNEL_DELETE", result))
        return result

    async def _managed(self, conn: AsyncConnection, channel_id: int, user_id: int) -> ChannelAccess:
        access = await channel_access(conn, channel_id, user_id, now_ms())
        if access.guild is None or access.channel.type in THREAD_TYPES:
            raise unknown_channel()  # DMs and threads have their own routes
        access.require(Permission.MANAGE_CHANNELS)
        return access

    async def reorder(
        self, user_id: int, guild_id: int, moves: list[ChannelPosition]
    ) -> list[Channel]:
        async with self.outbox.write() as (conn, events):
            access = await guild_access(conn, guild_id, user_id, now_ms())
            access.require(Permission.MANAGE_CHANNELS)
            for move in moves:
                channel_id = parse_id(move.id)
                row = None
                if channel_id is not None:
                    row = (
                        await conn.execute(
                            select(channels).where(
                                channels.c.id == channel_id, channels.c.guild_id == guild_id
                            )
                        )
                    ).first()
                if row is None:
                    raise _invalid("id", f"{move.id} is not a channel of this guild")
                values: dict[str, Any] = {"position": move.position}
                if move.parent_id is not msgspec.UNSET:
                    values["parent_id"] = await self._parent(
                        conn, guild_id, row.type, move.parent_id
                    )
                await conn.execute(update(channels).where(channels.c.id == row.id).values(**values))
            rows = (
                await conn.execute(
                    select(channels).where(channels.c.guild_id == guild_id).order_by(
                        channels.c.position, channels.c.id)
                )
            ).all()  # fmt: skip
            listed = [r for r in rows if r.type not in THREAD_TYPES]
            # Whole channels, overwrites included: the gateway's views read them from here.
            by_channel = await overwrites_by_channel(conn, [r.id for r in listed])
            result = [channel_view(r, by_channel[r.id]) for r in listed]
            for channel in result:
                events.append(self._event("CHANNEL_UPDATE", channel))
        return result

    # -- permission overwrites ------------------------------------------------------------
    async def put_overwrite(
        self, user_id: int, channel_id: int, body: OverwriteBody, reason: str | None = None
    ) -> None:
        async with self.outbox.write() as (conn, events):
            access = await self._overwrites_access(conn, channel_id, user_id)
            assert access.guild is not None
            existed = await self._put_overwrite(conn, access.guild, channel_id, body, access)
            action = (
                audit.AuditAction.CHANNEL_OVERWRITE_UPDATE
                if existed
                else audit.AuditAction.CHANNEL_OVERWRITE_CREATE
            )
            await audit.record(
                conn, guild_id=access.guild.guild_id, actor_id=user_id, action=action,
                target_id=channel_id,
                changes={"overwrite": {"old": None, "new": msgspec.to_builtins(body)}},
                reason=reason,
            )  # fmt: skip
            events.append(self._event("CHANNEL_UPDATE", await self._view(conn, access.channel)))

    async def delete_overwrite(
        self, user_id: int, channel_id: int, target: str, reason: str | None = None
    ) -> None:
        target_id = parse_id(target)
        async with self.outbox.write() as (conn, events):
            access = await self._overwrites_access(conn, channel_id, user_id)
            assert access.guild is not None
            result = await conn.execute(
                delete(overwrites).where(
                    overwrites.c.channel_id == channel_id, overwrites.c.target_id == target_id
                )
            )
            if not result.rowcount:
                raise NotFound("No such overwrite.", code="unknown_overwrite")
            await audit.record(
                conn, guild_id=access.guild.guild_id, actor_id=user_id,
                action=audit.AuditAction.CHANNEL_OVERWRITE_DELETE, target_id=channel_id,
                changes={"overwrite": {"old": str(target_id), "new": None}}, reason=reason,
            )  # fmt: skip
            events.append(self._event("CHANNEL_UPDATE", await self._view(conn, access.channel)))

    async def _overwrites_access(
        self, conn: AsyncConnection, channel_id: int, user_id: int
    ) -> ChannelAccess:
        access = await channel_access(conn, channel_id, user_id, now_ms())
        if access.guild is None or access.channel.type in THREAD_TYPES:
            raise unknown_channel()
        # Discord: MANAGE_ROLES in the channel lets one edit its overwrites.
        access.require(Permission.MANAGE_ROLES)
        return access

    async def _put_overwrite(
        self,
        conn: AsyncConnection,
        guild: GuildAccess,
        channel_id: int,
        body: OverwriteBody,
        channel: ChannelAccess | None = None,
    ) -> bool:
        """Insert or replace one overwrite; True if it replaced one."""
        target_id = parse_id(body.id)
        if body.type not in (0, 1) or target_id is None:
            raise _invalid("permission_overwrites", "type must be 0 (role) or 1 (member)")
        allow = parse_permissions(body.allow, field="allow")
        deny = parse_permissions(body.deny, field="deny")
        table, column = (roles, roles.c.id) if body.type == 0 else (members, members.c.user_id)
        exists = (
            await conn.execute(
                select(column).where(column == target_id, table.c.guild_id == guild.guild_id)
            )
        ).first()
        if exists is None:
            raise _invalid("id", "is not a role or member of this guild")
        # One cannot hand out (or withhold) what one does not have in this channel.
        held = channel.permissions if channel is not None else guild.permissions
        can_grant(held, int(allow) | int(deny)).enforce()
        replaced = await conn.execute(
            delete(overwrites).where(
                overwrites.c.channel_id == channel_id, overwrites.c.target_id == target_id
            )
        )
        await conn.execute(
            overwrites.insert().values(
                channel_id=channel_id, target_id=target_id, target_type=body.type,
                allow=int(allow), deny=int(deny),
            )
        )  # fmt: skip
        return bool(replaced.rowcount)

    def _event(self, type_: str, channel: Channel) -> Any:
        assert channel.guild_id is not None
        return self.outbox.event(
            type_, guild_stream(int(channel.guild_id)), msgspec.to_builtins(channel)
        )
