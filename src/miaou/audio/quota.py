"""How much audio one user may keep: a number of tracks and the bytes of their originals.

An original is kept whole for lossless downloads, so it is what a user's uploads cost the
node's disk (the renditions made from it are a fraction of a lossless original). Each
limit is a setting (``track_quota_count``, ``track_quota_bytes``; 0: none).

An upload is refused twice over: before its body is read when the user is already at a
limit (the cheap answer to someone uploading in a loop), and in the transaction that
stores it, with its real size, under a lock on the user's row (on PostgreSQL two uploads
of one user could otherwise both pass; SQLite writers take turns already).
"""

from __future__ import annotations

import msgspec
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from miaou.audio.tables import tracks
from miaou.config import Settings
from miaou.db.metadata import users
from miaou.errors import Forbidden


class TrackUsage(msgspec.Struct, kw_only=True):
    """What a user keeps and may keep (a limit of null: none)."""

    tracks: int
    track_limit: int | None
    bytes: int
    byte_limit: int | None


async def usage(conn: AsyncConnection, settings: Settings, owner_id: int) -> TrackUsage:
    statement = select(func.count(), func.coalesce(func.sum(tracks.c.original_size), 0)).where(
        tracks.c.owner_id == owner_id
    )
    count, size = (await conn.execute(statement)).one()
    return TrackUsage(
        tracks=int(count),
        track_limit=settings.track_quota_count or None,
        bytes=int(size),
        byte_limit=settings.track_quota_bytes or None,
    )


def refuse_if_over(found: TrackUsage, *, adding_tracks: int, adding_bytes: int) -> None:
    """Raise 403 if keeping ``adding_*`` more would pass a limit."""
    if found.track_limit is not None and found.tracks + adding_tracks > found.track_limit:
        raise Forbidden(
            f"You have reached the limit of {found.track_limit} tracks; delete some first.",
            code="track_limit_reached",
        )
    if found.byte_limit is not None and found.bytes + adding_bytes > found.byte_limit:
        left = max(0, found.byte_limit - found.bytes)
        raise Forbidden(
            f"This upload would pass your storage quota ({left} of "
            f"{found.byte_limit} bytes left); delete some tracks first.",
            code="storage_quota_exceeded",
        )


async def hold(conn: AsyncConnection, settings: Settings, owner_id: int) -> TrackUsage:
    """The user's usage, read under a lock on their row until the transaction ends."""
    await conn.execute(select(users.c.id).where(users.c.id == owner_id).with_for_update())
    return await usage(conn, settings, owner_id)
