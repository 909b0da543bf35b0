"""Message use cases: send, edit (with kept versions), delete, read, history and pins.

Each write is one transaction through the outbox: check, write, commit, then publish. The
events go to the guild's stream (the channel id is in the payload) or, for a DM, to the
channel's stream. Sends share transactions (group commit, :mod:`miaou.chat.sends`, where
the nonce rules are); reactions are in :mod:`miaou.chat.reactions`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgspec
from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from miaou import ids
from miaou.bus import Event
from miaou.chat import attachment_rows, audit, mentions
from miaou.chat.access import channel_access, missing
from miaou.chat.media import MediaInspector, StoredFile
from miaou.chat.message_models import (
    HISTORY_LIMIT_MAX,
    UNSET,
    Message,
    MessageCreate,
    MessageDeleted,
    MessagePatch,
    MessageVersion,
    PinsUpdate,
)
from miaou.chat.message_store import (
    find_message,
    lock_channel,
    message_views,
    resolve_mentions,
    stream_of,
)
from miaou.chat.outbox import Outbox
from miaou.chat.permissions import Permission
from miaou.chat.reactions import ReactionService
from miaou.chat.send_batch import (
    Outcome,
    SendDraft,
    check_allowed_mentions,
    clean_content,
    draft,
    invalid_field,
)
from miaou.chat.sends import write_sends
from miaou.chat.tables import (
    attachments,
    channels,
    message_nonces,
    message_versions,
    messages,
    reactions,
)
from miaou.config import Settings
from miaou.db.group_commit import GroupCommit
from miaou.errors import Forbidden, InvalidInput
from miaou.ids import now_ms
from miaou.storage.blobs import BlobStore

MAX_PINS = 50
PIN_PERMISSIONS = Permission.MANAGE_MESSAGES | Permission.PIN_MESSAGES


def history_limit(limit: int) -> int:
    if not 1 <= limit <= HISTORY_LIMIT_MAX:
        raise invalid_field("limit", f"must be between 1 and {HISTORY_LIMIT_MAX}")
    return limit


class MessageService:
    def __init__(self, outbox: Outbox, settings: Settings, blobs: BlobStore) -> None:
        self.outbox = outbox
        self.db = outbox.db
        self.settings = settings
        # Wall clock in Unix ms; replaceable so tests can step past windows.
        self.clock: Callable[[], int] = now_ms
        self.reactions = ReactionService(outbox, lambda: self.clock())
        # Attachment files; the rows are written with their message, in send().
        self.blobs = blobs
        blobs.add_referrer(attachment_rows.named_blobs, attachment_rows.purge_tombstoned)
        self.media = MediaInspector(self.blobs)
        self.sends: GroupCommit[SendDraft, Message] = GroupCommit(self._write_sends)
        #: Told when a batch is written again behind another worker's commit (a metric).
        self.on_late_batch: Callable[[], None] | None = None

    def _event(self, type_: str, channel: Row[Any], payload: object) -> Event:
        return self.outbox.event(type_, stream_of(channel), payload)

    # -- send ---------------------------------------------------------------------------
    async def send(
        self,
        user_id: int,
        channel_id: int,
        body: MessageCreate,
        files: Sequence[StoredFile] = (),
    ) -> Message:
        """``files`` are already in the blob store (``miaou.chat.uploads``); their rows are
        written in this message's transaction, so a refused send leaves none. Concurrent
        sends share transactions (:mod:`miaou.chat.sends`); this returns once this one is
        committed."""
        return await self.sends.submit(draft(user_id, channel_id, body, files))

    async def _write_sends(self, items: Sequence[SendDraft]) -> list[Outcome]:
        if not self.db.is_sqlite:
            # Two round trips and no transaction, for the batches that need none.
            logged: list[Event] = []
            async with self.db.autocommit() as conn:
                done = await write_sends(
                    conn, logged, items, self.clock(), self._event, at_once=True,
                    on_late=self.on_late_batch,
                )  # fmt: skip
            if done is not None:
                await self.outbox.publish_logged(logged)
                return done
        async with self.outbox.write() as (conn, events):
            done = await write_sends(conn, events, items, self.clock(), self._event)
            assert done is not None
            return done

    # -- edit ---------------------------------------------------------------------------
    async def edit(
        self, user_id: int, channel_id: int, message_id: int, body: MessagePatch
    ) -> Message:
        # Emptied text is allowed only on a message whose attachments remain (checked below).
        content = clean_content(body.content, allow_empty=True)
        check_allowed_mentions(body.allowed_mentions)
        parsed = mentions.parse(content)
        now = self.clock()
        async with self.outbox.write() as (conn, events):
            access = await channel_access(conn, channel_id, user_id, now)
            row = await find_message(conn, channel_id, message_id, lock=True)
            if row.author_id != user_id:
                raise Forbidden("Only its author can edit a message.", code="not_author")
            if not content and not row.has_attachments:
                clean_content(content)  # raises invalid_content
            if row.content == content:
                return (await message_views(conn, [row], user_id))[0]
            latest = await conn.execute(
                select(func.max(message_versions.c.version)).where(
                    message_versions.c.message_id == message_id
                )
            )
            await conn.execute(
                message_versions.insert().values(
                    message_id=message_id,
                    version=(latest.scalar() or 0) + 1,
                    content=row.content,
                    replaced_at=now,
                )
            )
            # A reply keeps pinging its parent's author if it did; the rest follows the text.
            replied = await self._replied_author(conn, row)
            found = await resolve_mentions(
                conn, access, parsed, body.allowed_mentions, now,
                replied_author=replied if replied in row.mentions else None,
            )  # fmt: skip
            await conn.execute(
                update(messages)
                .where(messages.c.id == message_id)
                .values(
                    content=content, edited_at=now, mention_everyone=found.everyone,
                    mentions=found.users, mention_roles=found.roles,
                    mention_channels=found.channels, has_link=parsed.has_link,
                )
            )  # fmt: skip
            row = await find_message(conn, channel_id, message_id)
            result = (await message_views(conn, [row], user_id))[0]
            event_view = msgspec.structs.replace(result, reactions=UNSET)
            events.append(self._event("MESSAGE_UPDATE", access.channel, event_view))
        return result

    async def _replied_author(self, conn: AsyncConnection, row: Row[Any]) -> int | None:
        if row.reference_id is None:
            return None
        query = select(messages.c.author_id).where(messages.c.id == row.reference_id)
        author: int | None = (await conn.execute(query)).scalar()
        return author

    async def versions(
        self, user_id: int, channel_id: int, message_id: int
    ) -> list[MessageVersion]:
        """Previous contents of a message, oldest first (the current one is the message)."""
        async with self.db.read() as conn:
            access = await channel_access(conn, channel_id, user_id, self.clock())
            access.require(Permission.READ_MESSAGE_HISTORY)
            row = await find_message(conn, channel_id, message_id)
            rows = (
                await conn.execute(
                    select(message_versions)
                    .where(message_versions.c.message_id == message_id)
                    .order_by(message_versions.c.version)
                )
            ).all()
        written = ids.id_time_ms(row.id)
        result = []
        for version in rows:
            result.append(
                MessageVersion(
                    version=version.version,
                    content=version.content,
                    created_at=written,
                    replaced_at=version.replaced_at,
                )
            )
            written = version.replaced_at
        return result

    # -- delete -------------------------------------------------------------------------
    async def delete(
        self, user_id: int, channel_id: int, message_id: int, reason: str | None = None
    ) -> None:
        """Tombstone: the row stays (replies, audit), its content and reactions go."""
        now = self.clock()
        async with self.outbox.write() as (conn, events):
            access = await channel_access(conn, channel_id, user_id, now)
            row = await find_message(conn, channel_id, message_id, lock=True)
            by_moderator = row.author_id != user_id
            if by_moderator:
                access.require(Permission.MANAGE_MESSAGES)
            await conn.execute(
                update(messages)
                .where(messages.c.id == message_id)
                .values(
                    deleted_at=now, content="", mentions=[], mention_roles=[],
                    mention_channels=[], mention_everyone=False, has_link=False, pinned_at=None,
                    has_attachments=False,
                )
            )  # fmt: skip
            # Earlier versions would keep the deleted text readable; a nonce retry after a
            # delete sends anew rather than answering with a tombstone. Attachment files
            # that no row names any more go with BlobStore.collect_garbage().
            for table in (reactions, message_versions, message_nonces, attachments):
                await conn.execute(delete(table).where(table.c.message_id == message_id))
            await conn.execute(
                update(channels)
                .where(channels.c.id == channel_id, channels.c.message_count > 0)
                .values(message_count=channels.c.message_count - 1)
            )
            channel = access.channel
            if by_moderator and channel.guild_id is not None:
                await audit.record(
                    conn, guild_id=channel.guild_id, actor_id=user_id,
                    action=audit.AuditAction.MESSAGE_DELETE, target_id=row.author_id,
                    changes={"channel_id": str(channel_id), "message_id": str(message_id)},
                    reason=reason,
                )  # fmt: skip
            payload = MessageDeleted(
                id=str(message_id), channel_id=str(channel_id), guild_id=_sid(channel.guild_id)
            )
            events.append(self._event("MESSAGE_DELETE", channel, payload))
            if row.pinned_at is not None:
                events.append(await self._pins_event(conn, channel))

    # -- read ---------------------------------------------------------------------------
    async def get(self, user_id: int, channel_id: int, message_id: int) -> Message:
        async with self.db.read() as conn:
            access = await channel_access(conn, channel_id, user_id, self.clock())
            access.require(Permission.READ_MESSAGE_HISTORY)
            row = await find_message(conn, channel_id, message_id)
            return (await message_views(conn, [row], user_id))[0]

    async def history(
        self,
        user_id: int,
        channel_id: int,
        *,
        before: int | None = None,
        after: int | None = None,
        around: int | None = None,
        limit: int = 50,
    ) -> list[Message]:
        """Newest first. ``before``/``after`` exclude the given id; ``around`` takes up to
        half the page newer than it and the rest from it backwards (it included)."""
        history_limit(limit)
        if sum(x is not None for x in (before, after, around)) > 1:
            raise invalid_field("before", "before, after and around exclude each other")
        async with self.db.read() as conn:
            access = await channel_access(conn, channel_id, user_id, self.clock())
            access.require(Permission.READ_MESSAGE_HISTORY)
            live = select(messages).where(
                messages.c.channel_id == channel_id, messages.c.deleted_at.is_(None)
            )
            newest_first = messages.c.id.desc()
            if after is not None:
                query = live.where(messages.c.id > after).order_by(messages.c.id).limit(limit)
                rows = list(reversed((await conn.execute(query)).all()))
            elif around is not None:
                newer_query = (
                    live.where(messages.c.id > around).order_by(messages.c.id).limit(limit // 2)
                )
                newer = list(reversed((await conn.execute(newer_query)).all()))
                older_query = (
                    live.where(messages.c.id <= around)
                    .order_by(newest_first)
                    .limit(limit - len(newer))
                )
                rows = newer + list((await conn.execute(older_query)).all())
            else:
                query = live.order_by(newest_first).limit(limit)
                if before is not None:
                    query = query.where(messages.c.id < before)
                rows = list((await conn.execute(query)).all())
            return await message_views(conn, rows, user_id)

    # -- pins ---------------------------------------------------------------------------
    async def pins(self, user_id: int, channel_id: int) -> list[Message]:
        """Pinned messages, most recently pinned first."""
        async with self.db.read() as conn:
            access = await channel_access(conn, channel_id, user_id, self.clock())
            access.require(Permission.READ_MESSAGE_HISTORY)
            query = (
                select(messages)
                .where(
                    messages.c.channel_id == channel_id,
                    messages.c.pinned_at.is_not(None),
                    messages.c.deleted_at.is_(None),
                )
                .order_by(messages.c.pinned_at.desc(), messages.c.id.desc())
            )
            rows = (await conn.execute(query)).all()
            return await message_views(conn, rows, user_id)

    async def pin(
        self, user_id: int, channel_id: int, message_id: int, reason: str | None = None
    ) -> None:
        await self._set_pinned(user_id, channel_id, message_id, True, reason)

    async def unpin(
        self, user_id: int, channel_id: int, message_id: int, reason: str | None = None
    ) -> None:
        await self._set_pinned(user_id, channel_id, message_id, False, reason)

    async def _set_pinned(
        self, user_id: int, channel_id: int, message_id: int, pinned: bool, reason: str | None
    ) -> None:
        now = self.clock()
        async with self.outbox.write() as (conn, events):
            access = await channel_access(conn, channel_id, user_id, now)
            # In a DM every participant may pin, as in Discord.
            if access.guild is not None and not access.permissions & PIN_PERMISSIONS:
                raise missing(Permission.MANAGE_MESSAGES)
            # Two concurrent pins must not both see 49 and make 51.
            await lock_channel(conn, channel_id)
            row = await find_message(conn, channel_id, message_id, lock=True)
            if (row.pinned_at is not None) == pinned:
                return  # already so: nothing to change or announce
            if pinned:
                count = await conn.execute(
                    select(func.count())
                    .select_from(messages)
                    .where(
                        messages.c.channel_id == channel_id,
                        messages.c.pinned_at.is_not(None),
                        messages.c.deleted_at.is_(None),
                    )
                )
                if count.scalar_one() >= MAX_PINS:
                    raise InvalidInput(
                        f"A channel has at most {MAX_PINS} pinned messages.", code="max_pins"
                    )
            await conn.execute(
                update(messages)
                .where(messages.c.id == message_id)
                .values(pinned_at=now if pinned else None)
            )
            channel = access.channel
            if channel.guild_id is not None:
                action = (
                    audit.AuditAction.MESSAGE_PIN if pinned else audit.AuditAction.MESSAGE_UNPIN
                )
                await audit.record(
                    conn, guild_id=channel.guild_id, actor_id=user_id, action=action,
                    target_id=row.author_id,
                    changes={"channel_id": str(channel_id), "message_id": str(message_id)},
                    reason=reason,
                )  # fmt: skip
            row = await find_message(conn, channel_id, message_id)
            view = (await message_views(conn, [row], None))[0]
            events.append(self._event("MESSAGE_UPDATE", channel, view))
            events.append(await self._pins_event(conn, channel))

    async def _pins_event(self, conn: AsyncConnection, channel: Row[Any]) -> Event:
        latest = await conn.execute(
            select(func.max(messages.c.pinned_at)).where(
                messages.c.channel_id == channel.id, messages.c.deleted_at.is_(None)
            )
        )
        payload = PinsUpdate(
            channel_id=str(channel.id),
            guild_id=_sid(channel.guild_id),
            last_pin_timestamp=latest.scalar(),
        )
        return self._event("CHANNEL_PINS_UPDATE", channel, payload)


def _sid(value: int | None) -> str | None:
    return str(value) if value is not None else None
