"""Attachment rows: written with their message, turned into wire shapes, found for serving,
and named to the blob store so it keeps their files."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from sqlalchemy import delete, exists, or_, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from miaou.chat.media import StoredFile
from miaou.chat.message_models import Attachment
from miaou.chat.tables import attachments, guild_emojis, messages

API = "/api/v1/channels"


def file_url(channel_id: int, attachment_id: int, filename: str) -> str:
    return f"{API}/{channel_id}/attachments/{attachment_id}/{quote(filename, safe='')}"


def thumbnail_url(channel_id: int, attachment_id: int) -> str:
    return f"{API}/{channel_id}/attachments/{attachment_id}/thumbnail"


async def insert_attachments(
    conn: AsyncConnection,
    files: Sequence[StoredFile],
    *,
    message_id: int,
    channel_id: int,
    uploader_id: int,
    now: int,
) -> list[Attachment]:
    """Rows for ``files`` of a new message, in the order given; returns their views."""
    if not files:
        return []
    rows = [
        {
            "id": f.id, "message_id": message_id, "channel_id": channel_id,
            "uploader_id": uploader_id, "filename": f.filename, "content_type": f.content_type,
            "size": f.size, "sha256": f.sha256, "width": f.width, "height": f.height,
            "thumbnail_sha256": f.thumbnail_sha256, "created_at": now,
        }
        for f in files
    ]  # fmt: skip
    await conn.execute(attachments.insert(), rows)
    return [attachment_view(r) for r in rows]


def attachment_view(row: Row[Any] | dict[str, Any]) -> Attachment:
    get = row.__getitem__ if isinstance(row, dict) else row._mapping.__getitem__
    channel_id, attachment_id = get("channel_id"), get("id")
    return Attachment(
        id=str(attachment_id),
        filename=get("filename"),
        size=get("size"),
        content_type=get("content_type"),
        width=get("width"),
        height=get("height"),
        url=file_url(channel_id, attachment_id, get("filename")),
        proxy_url=thumbnail_url(channel_id, attachment_id) if get("thumbnail_sha256") else None,
    )


async def attachments_of(
    conn: AsyncConnection, message_ids: Sequence[int]
) -> dict[int, list[Attachment]]:
    """Per message id, its attachments in upload order (ids are time-ordered)."""
    if not message_ids:
        return {}
    query = (
        select(attachments)
        .where(attachments.c.message_id.in_(list(message_ids)))
        .order_by(attachments.c.message_id, attachments.c.id)
    )
    found: dict[int, list[Attachment]] = {}
    for row in (await conn.execute(query)).all():
        found.setdefault(row.message_id, []).append(attachment_view(row))
    return found


async def find_attachment(
    conn: AsyncConnection, channel_id: int, attachment_id: int
) -> Row[Any] | None:
    """An attachment of a live message of this channel."""
    query = (
        select(attachments)
        .join(messages, messages.c.id == attachments.c.message_id)
        .where(
            attachments.c.id == attachment_id,
            attachments.c.channel_id == channel_id,
            messages.c.channel_id == channel_id,
            messages.c.deleted_at.is_(None),
        )
    )
    return (await conn.execute(query)).first()


async def named_blobs(conn: AsyncConnection, candidates: list[str]) -> set[str]:
    """Which of ``candidates`` an attachment (file or thumbnail) or a custom emoji names:
    the chat wing's referrer for the blob store."""
    rows = await conn.execute(
        select(attachments.c.sha256, attachments.c.thumbnail_sha256).where(
            or_(
                attachments.c.sha256.in_(candidates),
                attachments.c.thumbnail_sha256.in_(candidates),
            )
        )
    )
    named = {h for row in rows.all() for h in row if h}
    emoji_images = await conn.execute(
        select(guild_emojis.c.sha256).where(guild_emojis.c.sha256.in_(candidates))
    )
    named.update(emoji_images.scalars())
    return named


async def purge_tombstoned(conn: AsyncConnection) -> None:
    """Drop the attachment rows of tombstoned messages that a delete path left behind (a
    ban's message purge does), so a blob collection can take their files."""
    await conn.execute(
        delete(attachments).where(
            exists().where(
                messages.c.id == attachments.c.message_id,
                messages.c.deleted_at.is_not(None),
            )
        )
    )
