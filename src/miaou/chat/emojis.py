"""Custom guild emoji (Discord API v10): list, read, create, rename, delete, and their images.

An emoji has a name (2-32 of ``[A-Za-z0-9_]``; not unique in a guild, as in Discord, since
the id is what a reaction or a message names) and an image sent as a data URI: PNG, JPEG,
GIF or WEBP by its bytes, at most 256 KiB and 4,096 px a side (``emojis_media``). A guild
holds at most 50 static and 50 animated emoji.

Images live in the node's content-addressed media store, beside attachments: a file goes
when the last row naming it (attachment or emoji) goes, and the hourly garbage collection
takes what a deleted guild's emoji leave behind.

Creating takes CREATE_GUILD_EXPRESSIONS or MANAGE_GUILD_EXPRESSIONS; renaming and deleting
take MANAGE_GUILD_EXPRESSIONS, or CREATE_GUILD_EXPRESSIONS for one's own emoji. Every write
is audited and publishes ``GUILD_EMOJIS_UPDATE`` with the guild's whole list.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from typing import Any

import msgspec
import structlog
from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from miaou import ids
from miaou.accounts.models import Strict, User
from miaou.bus import Event
from miaou.chat import audit
from miaou.chat.access import GuildAccess, guild_access, missing
from miaou.chat.emojis_media import DECODERS, decode_data_uri, inspect_image, sniff_image
from miaou.chat.message_store import users_by_id
from miaou.chat.outbox import Outbox, guild_stream
from miaou.chat.permissions import Permission
from miaou.chat.tables import guild_emojis, guilds
from miaou.errors import InvalidInput, NotFound
from miaou.ids import now_ms
from miaou.storage.blobs import BlobStore

MAX_STATIC = MAX_ANIMATED = 50
_NAME = re.compile(r"[A-Za-z0-9_]{2,32}")
log = structlog.get_logger("miaou.emojis")


class EmojiCreate(Strict):
    name: str
    image: str
    # Discord's role restriction is not supported: accepted (clients send []) only empty.
    roles: list[str] | None = None


class EmojiPatch(Strict):
    name: str | msgspec.UnsetType = msgspec.UNSET
    roles: list[str] | None = None


class GuildEmoji(msgspec.Struct, kw_only=True):
    id: str
    name: str
    animated: bool
    user: User | None  # the creator; None once their account is gone
    roles: list[str] = msgspec.field(default_factory=list)
    require_colons: bool = True
    managed: bool = False
    available: bool = True


class GuildEmojisUpdate(msgspec.Struct, kw_only=True):
    guild_id: str
    emojis: list[GuildEmoji]


def unknown_emoji() -> NotFound:
    return NotFound("No such emoji.", code="unknown_emoji")


def clean_emoji_name(raw: str) -> str:
    if not _NAME.fullmatch(raw):
        raise InvalidInput(
            "Invalid emoji name.", errors={"name": ["2 to 32 characters of A-Z, a-z, 0-9 and _"]}
        )
    return raw


def _no_roles(roles: list[str] | None) -> None:
    if roles:
        raise InvalidInput(
            "Emoji restricted to roles are not supported.",
            errors={"roles": ["must be empty: every member may use a guild's emoji"]},
        )


def _may_create(access: GuildAccess) -> None:
    if not (
        access.has(Permission.CREATE_GUILD_EXPRESSIONS)
        or access.has(Permission.MANAGE_GUILD_EXPRESSIONS)
    ):
        raise missing(Permission.CREATE_GUILD_EXPRESSIONS)


def _may_manage(access: GuildAccess, row: Row[Any]) -> None:
    if access.has(Permission.MANAGE_GUILD_EXPRESSIONS):
        return
    if row.user_id != access.user_id or not access.has(Permission.CREATE_GUILD_EXPRESSIONS):
        raise missing(Permission.MANAGE_GUILD_EXPRESSIONS)


async def _views(conn: AsyncConnection, rows: Sequence[Row[Any]]) -> list[GuildEmoji]:
    people = await users_by_id(conn, {r.user_id for r in rows if r.user_id is not None})
    return [
        GuildEmoji(id=str(r.id), name=r.name, animated=r.animated, user=people.get(r.user_id))
        for r in rows
    ]


class EmojiService:
    def __init__(self, outbox: Outbox, blobs: BlobStore) -> None:
        self.outbox = outbox
        self.db = outbox.db
        self.blobs = blobs
        self._decoders = asyncio.Semaphore(DECODERS)

    async def all(self, user_id: int, guild_id: int) -> list[GuildEmoji]:
        async with self.db.read() as conn:
            await guild_access(conn, guild_id, user_id, now_ms())
            return await _views(conn, await _rows(conn, guild_id))

    async def get(self, user_id: int, guild_id: int, emoji_id: int) -> GuildEmoji:
        async with self.db.read() as conn:
            await guild_access(conn, guild_id, user_id, now_ms())
            return (await _views(conn, [await _row(conn, guild_id, emoji_id)]))[0]

    async def image(self, emoji_id: int) -> Row[Any]:
        """Any emoji's row, for its image (``sha256``, ``content_type``): for anyone."""
        query = select(guild_emojis).where(guild_emojis.c.id == emoji_id)
        async with self.db.read() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            raise unknown_emoji()
        return row

    async def create(
        self, user_id: int, guild_id: int, body: EmojiCreate, reason: str | None = None
    ) -> GuildEmoji:
        name = clean_emoji_name(body.name)
        _no_roles(body.roles)
        data = decode_data_uri(body.image)
        # Outsiders and members without the permission cannot make the node decode anything.
        async with self.db.read() as conn:
            _may_create(await guild_access(conn, guild_id, user_id, now_ms()))
        content_type = sniff_image(data)
        async with self._decoders:
            animated = await asyncio.to_thread(inspect_image, data, content_type)
        sha256 = await self.blobs.put_bytes(data)  # held until the row is written or not
        try:
            async with self.outbox.write() as (conn, events):
                _may_create(await guild_access(conn, guild_id, user_id, now_ms()))
                # One creation at a time per guild, so the limits hold under concurrency.
                await conn.execute(
                    select(guilds.c.id).where(guilds.c.id == guild_id).with_for_update()
                )
                await _check_room(conn, guild_id, animated=animated)
                emoji_id = ids.new_id()
                await conn.execute(
                    guild_emojis.insert().values(
                        id=emoji_id, guild_id=guild_id, name=name, user_id=user_id,
                        sha256=sha256, content_type=content_type, animated=animated,
                        created_at=now_ms(),
                    )
                )  # fmt: skip
                await audit.record(
                    conn, guild_id=guild_id, actor_id=user_id,
                    action=audit.AuditAction.EMOJI_CREATE, target_id=emoji_id,
                    changes={"name": {"old": None, "new": name}}, reason=reason,
                )  # fmt: skip
                result = (await _views(conn, [await _row(conn, guild_id, emoji_id)]))[0]
                events.append(await self._update_event(conn, guild_id))
        finally:
            await self._discard([sha256], held=True)
        return result

    async def update(
        self, user_id: int, guild_id: int, emoji_id: int, patch: EmojiPatch,
        reason: str | None = None,
    ) -> GuildEmoji:  # fmt: skip
        name = None if isinstance(patch.name, msgspec.UnsetType) else clean_emoji_name(patch.name)
        _no_roles(patch.roles)
        async with self.outbox.write() as (conn, events):
            access = await guild_access(conn, guild_id, user_id, now_ms())
            row = await _row(conn, guild_id, emoji_id)
            _may_manage(access, row)
            if name is not None and name != row.name:
                await conn.execute(
                    update(guild_emojis).where(guild_emojis.c.id == emoji_id).values(name=name)
                )
                await audit.record(
                    conn, guild_id=guild_id, actor_id=user_id,
                    action=audit.AuditAction.EMOJI_UPDATE, target_id=emoji_id,
                    changes={"name": {"old": row.name, "new": name}}, reason=reason,
                )  # fmt: skip
                events.append(await self._update_event(conn, guild_id))
                row = await _row(conn, guild_id, emoji_id)
            return (await _views(conn, [row]))[0]

    async def delete(
        self, user_id: int, guild_id: int, emoji_id: int, reason: str | None = None
    ) -> None:
        """Existing reactions with the emoji stay, as in Discord."""
        async with self.outbox.write() as (conn, events):
            access = await guild_access(conn, guild_id, user_id, now_ms())
            row = await _row(conn, guild_id, emoji_id)
            _may_manage(access, row)
            await conn.execute(delete(guild_emojis).where(guild_emojis.c.id == emoji_id))
            await audit.record(
                conn, guild_id=guild_id, actor_id=user_id, action=audit.AuditAction.EMOJI_DELETE,
                target_id=emoji_id, changes={"name": {"old": row.name, "new": None}},
                reason=reason,
            )  # fmt: skip
            events.append(await self._update_event(conn, guild_id))
        await self._discard([row.sha256], held=False)

    async def _update_event(self, conn: AsyncConnection, guild_id: int) -> Event:
        payload = GuildEmojisUpdate(
            guild_id=str(guild_id), emojis=await _views(conn, await _rows(conn, guild_id))
        )
        return self.outbox.event("GUILD_EMOJIS_UPDATE", guild_stream(guild_id), payload)

    async def _discard(self, hashes: list[str], *, held: bool) -> None:
        """Remove the images nothing names any more (an attachment may share one)."""
        try:
            await self.blobs.discard(self.db, hashes, held=held)
        except Exception:  # the write's outcome matters more; the GC takes the file later
            log.exception("emoji_image_cleanup_failed")


async def _rows(conn: AsyncConnection, guild_id: int) -> Sequence[Row[Any]]:
    query = select(guild_emojis).where(guild_emojis.c.guild_id == guild_id)
    return (await conn.execute(query.order_by(guild_emojis.c.id))).all()


async def _row(conn: AsyncConnection, guild_id: int, emoji_id: int) -> Row[Any]:
    query = select(guild_emojis).where(
        guild_emojis.c.id == emoji_id, guild_emojis.c.guild_id == guild_id
    )
    row = (await conn.execute(query)).first()
    if row is None:
        raise unknown_emoji()
    return row


async def _check_room(conn: AsyncConnection, guild_id: int, *, animated: bool) -> None:
    query = (
        select(func.count())
        .select_from(guild_emojis)
        .where(guild_emojis.c.guild_id == guild_id, guild_emojis.c.animated == animated)
    )
    if (await conn.execute(query)).scalar_one() >= (MAX_ANIMATED if animated else MAX_STATIC):
        kind = "animated" if animated else "static"
        raise InvalidInput(
            f"A guild has at most {MAX_STATIC} static and {MAX_ANIMATED} animated emoji; "
            f"it has no room for another {kind} one.",
            code="max_emojis",
        )
