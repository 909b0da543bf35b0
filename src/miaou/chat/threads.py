"""Threads: started from a message or standalone, forum posts with tags, members, archiving.

A thread is a channel whose ``parent_id`` is the text, announcement or forum channel it lives
in; its permissions are its parent's (``access.channel_access``). Threads archive themselves
after ``auto_archive_duration`` minutes without a message (:meth:`ThreadService.archive_idle`,
run periodically by the node); a new message in an archived, unlocked thread reopens it.
A locked thread only moves with MANAGE_THREADS.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import msgspec
from sqlalchemy import delete, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from miaou import ids
from miaou.chat.access import ChannelAccess, channel_access, is_thread_member, unknown_channel
from miaou.chat.message_models import MessageCreate
from miaou.chat.message_store import find_message, message_views, stream_of
from miaou.chat.messages import MessageService
from miaou.chat.models import THREAD_TYPES, Channel, ChannelPatch, ChannelType
from miaou.chat.outbox import Outbox, guild_stream
from miaou.chat.permissions import Permission
from miaou.chat.send_batch import clean_content
from miaou.chat.tables import channels, messages, thread_members
from miaou.chat.views import channel_view
from miaou.errors import Forbidden, InvalidInput, NotFound
from miaou.ids import id_time_ms, now_ms, parse_id, smallest_id_at

ARCHIVE_MINUTES = (60, 1440, 4320, 10080)
MAX_TAGS = 20
MAX_APPLIED_TAGS = 5
_PARENTS = {ChannelType.GUILD_TEXT, ChannelType.GUILD_ANNOUNCEMENT, ChannelType.GUILD_FORUM}


class ThreadCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str
    type: int = ChannelType.PUBLIC_THREAD
    auto_archive_duration: int = 1440
    rate_limit_per_user: int = 0
    # Forum posts: the first message and the forum tags it carries.
    message: MessageCreate | None = None
    applied_tags: list[str] = msgspec.field(default_factory=list)


class ThreadMember(msgspec.Struct, kw_only=True):
    user_id: str
    join_timestamp: int


def clean_thread_name(raw: str) -> str:
    name = unicodedata.normalize("NFKC", raw).strip()
    if not 1 <= len(name) <= 100 or any(unicodedata.category(c) == "Cc" for c in name):
        raise InvalidInput("Invalid thread name.", errors={"name": ["1 to 100 characters"]})
    return name


def check_archive_minutes(minutes: int) -> int:
    if minutes not in ARCHIVE_MINUTES:
        raise InvalidInput(
            "Invalid auto-archive duration.",
            errors={"auto_archive_duration": [f"one of {', '.join(map(str, ARCHIVE_MINUTES))}"]},
        )
    return minutes


def last_activity_ms(row: Row[Any]) -> int:
    """When the thread last saw a message (or was made, or reopened)."""
    latest = row.created_at
    if row.last_message_id is not None:
        latest = max(latest, id_time_ms(row.last_message_id))
    if row.archive_timestamp is not None:
        latest = max(latest, row.archive_timestamp)
    return int(latest)


def _idle(row: Row[Any], now: int) -> bool:
    minutes: int = row.auto_archive_duration
    return last_activity_ms(row) + minutes * 60_000 <= now


class ThreadService:
    def __init__(self, outbox: Outbox, messages_service: MessageService) -> None:
        self.outbox = outbox
        self.db = outbox.db
        self.messages = messages_service

    # -- creating ---------------------------------------------------------------------------
    async def create(
        self, user_id: int, parent_id: int, body: ThreadCreate, *, from_message: str | None = None
    ) -> Channel:
        name = clean_thread_name(body.name)
        minutes = check_archive_minutes(body.auto_archive_duration)
        first_message = body.message
        if first_message is not None:
            clean_content(first_message.content)  # refuse before anything is written
        async with self.outbox.write() as (conn, events):
            parent = await channel_access(conn, parent_id, user_id, now_ms())
            kind = self._kind(parent, body, from_message is not None)
            message_id = await self._starter(conn, parent, from_message)
            tags = self._tags(parent.channel, body.applied_tags)
            thread_id = ids.new_id()
            now = now_ms()
            await conn.execute(
                channels.insert().values(
                    id=thread_id, guild_id=parent.channel.guild_id, type=int(kind), name=name,
                    parent_id=parent_id, owner_id=user_id, auto_archive_duration=minutes,
                    archive_timestamp=now, rate_limit_per_user=body.rate_limit_per_user,
                    applied_tags=tags, created_at=now,
                )
            )  # fmt: skip
            await conn.execute(
                thread_members.insert().values(channel_id=thread_id, user_id=user_id, joined_at=now)
            )
            result = await self._view(conn, thread_id)
            events.append(self._event("THREAD_CREATE", result))
            if message_id is not None:
                await conn.execute(
                    update(messages).where(messages.c.id == message_id).values(thread_id=thread_id)
                )
                # The starter now names its thread, for those who have it on screen.
                starter = await find_message(conn, parent_id, message_id)
                (view,) = await message_views(conn, [starter], None)
                events.append(self.outbox.event("MESSAGE_UPDATE", stream_of(parent.channel), view))
        if first_message is not None:
            try:
                await self.messages.send(user_id, thread_id, first_message)
            except Exception:
                await self._discard(thread_id)  # a forum post without its message is no post
                raise
            async with self.db.read() as conn:
                result = await self._view(conn, thread_id)
        return result

    def _kind(self, parent: ChannelAccess, body: ThreadCreate, from_message: bool) -> ChannelType:
        if parent.guild is None or parent.channel.type not in _PARENTS:
            raise InvalidInput("Threads live in text, announcement or forum channels.",
                               code="invalid_channel_type")  # fmt: skip
        if parent.channel.type == ChannelType.GUILD_FORUM:
            if from_message or body.message is None:
                raise InvalidInput("A forum post starts with a message.",
                                   errors={"message": ["is required in a forum"]})  # fmt: skip
            parent.require(Permission.SEND_MESSAGES)
            return ChannelType.PUBLIC_THREAD
        if body.message is not None:
            raise InvalidInput("Only forum posts carry a first message.",
                               errors={"message": ["only in forums"]})  # fmt: skip
        if parent.channel.type == ChannelType.GUILD_ANNOUNCEMENT:
            parent.require(Permission.CREATE_PUBLIC_THREADS)
            return ChannelType.ANNOUNCEMENT_THREAD
        if body.type == ChannelType.PRIVATE_THREAD and not from_message:
            parent.require(Permission.CREATE_PRIVATE_THREADS)
            return ChannelType.PRIVATE_THREAD
        if body.type not in (ChannelType.PUBLIC_THREAD, ChannelType.PRIVATE_THREAD):
            raise InvalidInput("Invalid thread type.", errors={"type": ["11 or 12"]})
        parent.require(Permission.CREATE_PUBLIC_THREADS)
        return ChannelType.PUBLIC_THREAD

    async def _starter(
        self, conn: AsyncConnection, parent: ChannelAccess, raw: str | None
    ) -> int | None:
        if raw is None:
            return None
        parent.require(Permission.READ_MESSAGE_HISTORY)
        message_id = parse_id(raw)
        row = None
        if message_id is not None:
            row = (
                await conn.execute(
                    select(messages.c.thread_id).where(
                        messages.c.id == message_id,
                        messages.c.channel_id == parent.channel_id,
                        messages.c.deleted_at.is_(None),
                    )
                )
            ).first()
        if row is None:
            raise NotFound("No such message.", code="unknown_message")
        if row.thread_id is not None:
            raise InvalidInput("This message already has a thread.", code="thread_exists")
        return message_id

    def _tags(self, parent: Row[Any], wanted: list[str]) -> list[str] | None:
        if parent.type != ChannelType.GUILD_FORUM:
            if wanted:
                raise InvalidInput("Tags are for forum posts.", errors={"applied_tags": ["forum"]})
            return None
        available = {t["id"] for t in parent.available_tags or []}
        chosen = list(dict.fromkeys(wanted))
        if len(chosen) > MAX_APPLIED_TAGS or not set(chosen) <= available:
            raise InvalidInput(
                "Unknown or too many tags.",
                errors={"applied_tags": [f"at most {MAX_APPLIED_TAGS} of the forum's tags"]},
            )
        return chosen

    async def _discard(self, thread_id: int) -> None:
        async with self.outbox.write() as (conn, events):
            thread = await self._view(conn, thread_id)
            await conn.execute(delete(channels).where(channels.c.id == thread_id))
            await conn.execute(
                update(messages).where(messages.c.thread_id == thread_id).values(thread_id=None)
            )
            # THREAD_CREATE went out already: say that the post is gone.
            events.append(self._event("THREAD_DELETE", thread))

    # -- reading ----------------------------------------------------------------------------
    async def _view(self, conn: AsyncConnection, thread_id: int) -> Channel:
        row = (await conn.execute(select(channels).where(channels.c.id == thread_id))).one()
        return channel_view(row)

    async def _thread(self, conn: AsyncConnection, thread_id: int, user_id: int) -> ChannelAccess:
        access = await channel_access(conn, thread_id, user_id, now_ms())
        if access.channel.type not in THREAD_TYPES:
            raise unknown_channel()
        return access

    async def in_channel(
        self, user_id: int, parent_id: int, *, archived: bool, before: int | None, limit: int
    ) -> list[Channel]:
        """Threads of a channel the caller can see, newest first."""
        if not 1 <= limit <= 100:
            raise InvalidInput("limit must be between 1 and 100.", errors={"limit": ["1..100"]})
        async with self.db.read() as conn:
            parent = await channel_access(conn, parent_id, user_id, now_ms())
            query = select(channels).where(
                channels.c.parent_id == parent_id,
                channels.c.type.in_([int(t) for t in THREAD_TYPES]),
                channels.c.archived == archived,
            )
            if before is not None:
                query = query.where(channels.c.id < before)
            rows = (await conn.execute(query.order_by(channels.c.id.desc()).limit(limit))).all()
            visible = []
            for row in rows:
                if row.type == ChannelType.PRIVATE_THREAD and not (
                    parent.has(Permission.MANAGE_THREADS)
                    or await is_thread_member(conn, row.id, user_id)
                ):
                    continue
                visible.append(channel_view(row))
        return visible

    async def members(self, user_id: int, thread_id: int) -> list[ThreadMember]:
        async with self.db.read() as conn:
            await self._thread(conn, thread_id, user_id)
            rows = (
                await conn.execute(
                    select(thread_members)
                    .where(thread_members.c.channel_id == thread_id)
                    .order_by(thread_members.c.joined_at)
                )
            ).all()
        return [ThreadMember(user_id=str(r.user_id), join_timestamp=r.joined_at) for r in rows]

    # -- changing ---------------------------------------------------------------------------
    async def update(self, user_id: int, thread_id: int, patch: ChannelPatch) -> Channel:
        async with self.outbox.write() as (conn, events):
            access = await self._thread(conn, thread_id, user_id)
            row = access.channel
            moderator = access.has(Permission.MANAGE_THREADS)
            if not moderator and row.owner_id != user_id:
                raise Forbidden("Only the thread's creator or a moderator may change it.",
                                code="missing_permissions")  # fmt: skip
            if row.locked and not moderator:
                raise Forbidden("This thread is locked.", code="thread_locked")
            values: dict[str, Any] = {}
            for field in ("topic", "position", "parent_id", "nsfw", "bitrate", "user_limit",
                          "available_tags"):  # fmt: skip
                if getattr(patch, field) is not msgspec.UNSET:
                    raise InvalidInput(
                        "Threads do not have this.", errors={field: ["not a thread field"]}
                    )
            if patch.rate_limit_per_user is not msgspec.UNSET:
                if not moderator:
                    raise Forbidden("Slow mode takes MANAGE_THREADS.", code="missing_permissions")
                values["rate_limit_per_user"] = patch.rate_limit_per_user
            if patch.name is not msgspec.UNSET:
                values["name"] = clean_thread_name(patch.name)
            if patch.auto_archive_duration is not msgspec.UNSET:
                values["auto_archive_duration"] = check_archive_minutes(patch.auto_archive_duration)
            if patch.locked is not msgspec.UNSET:
                if not moderator:
                    raise Forbidden("Locking takes MANAGE_THREADS.", code="missing_permissions")
                values["locked"] = patch.locked
            if patch.archived is not msgspec.UNSET and patch.archived != row.archived:
                values["archived"] = patch.archived
                values["archive_timestamp"] = now_ms()
            if patch.applied_tags is not msgspec.UNSET:
                parent = (
                    await conn.execute(select(channels).where(channels.c.id == row.parent_id))
                ).one()
                values["applied_tags"] = self._tags(parent, patch.applied_tags)
            if values:
                await conn.execute(
                    update(channels).where(channels.c.id == thread_id).values(**values)
                )
            result = await self._view(conn, thread_id)
            if values:
                events.append(self._event("THREAD_UPDATE", result))
        return result

    async def join(self, user_id: int, thread_id: int, member_ref: str = "@me") -> None:
        target = user_id if member_ref == "@me" else parse_id(member_ref)
        if target is None:
            raise NotFound("No such member.", code="unknown_member")
        async with self.outbox.write() as (conn, events):
            access = await self._thread(conn, thread_id, user_id)
            if target != user_id:
                access.require(Permission.SEND_MESSAGES_IN_THREADS)
                # They must see the parent; a private thread is opened to them by this very add.
                await channel_access(conn, access.channel.parent_id, target, now_ms())
            if access.channel.archived:
                raise InvalidInput("This thread is archived.", code="thread_archived")
            if await is_thread_member(conn, thread_id, target):
                return
            await conn.execute(
                thread_members.insert().values(
                    channel_id=thread_id, user_id=target, joined_at=now_ms()
                )
            )
            events.append(self._members_event(access.channel, added=[target], removed=[]))

    async def leave(self, user_id: int, thread_id: int, member_ref: str = "@me") -> None:
        target = user_id if member_ref == "@me" else parse_id(member_ref)
        if target is None:
            raise NotFound("No such member.", code="unknown_member")
        async with self.outbox.write() as (conn, events):
            access = await self._thread(conn, thread_id, user_id)
            if target != user_id:
                access.require(Permission.MANAGE_THREADS)
            result = await conn.execute(
                delete(thread_members).where(
                    thread_members.c.channel_id == thread_id, thread_members.c.user_id == target
                )
            )
            if result.rowcount:
                events.append(self._members_event(access.channel, added=[], removed=[target]))

    async def archive_idle(self, now: int | None = None) -> int:
        """Archive every thread idle past its auto-archive duration; returns how many.

        Candidates are found in a read transaction, skipping in SQL every thread active
        within the shortest duration; the write transaction (which holds the database's
        write lock on SQLite) re-checks only those, since a message may have come since.
        """
        now = now_ms() if now is None else now
        quiet_since = now - min(ARCHIVE_MINUTES) * 60_000
        open_threads = (
            channels.c.type.in_([int(t) for t in THREAD_TYPES]),
            channels.c.archived.is_(False),
        )
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(channels).where(
                        *open_threads,
                        channels.c.created_at <= quiet_since,
                        or_(
                            channels.c.last_message_id.is_(None),
                            channels.c.last_message_id < smallest_id_at(quiet_since),
                        ),
                        or_(
                            channels.c.archive_timestamp.is_(None),
                            channels.c.archive_timestamp <= quiet_since,
                        ),
                    )
                )
            ).all()
        candidates = [r.id for r in rows if _idle(r, now)]
        if not candidates:
            return 0
        async with self.outbox.write() as (conn, events):
            rows = (
                await conn.execute(
                    select(channels).where(*open_threads, channels.c.id.in_(candidates))
                )
            ).all()
            idle = [r for r in rows if _idle(r, now)]
            for row in idle:
                await conn.execute(
                    update(channels)
                    .where(channels.c.id == row.id)
                    .values(archived=True, archive_timestamp=now)
                )
                events.append(self._event("THREAD_UPDATE", await self._view(conn, row.id)))
        return len(idle)

    def _event(self, type_: str, thread: Channel) -> Any:
        assert thread.guild_id is not None
        return self.outbox.event(
            type_, guild_stream(int(thread.guild_id)), msgspec.to_builtins(thread)
        )

    def _members_event(self, thread: Row[Any], *, added: list[int], removed: list[int]) -> Any:
        return self.outbox.event(
            "THREAD_MEMBERS_UPDATE", guild_stream(thread.guild_id),
            {"id": str(thread.id), "guild_id": str(thread.guild_id),
             "added_member_ids": [str(a) for a in added],
             "removed_member_ids": [str(r) for r in removed]},
        )  # fmt: skip
