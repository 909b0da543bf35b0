"""Track rows: found, checked against the visibility rules, turned into wire shapes, listed.

A track the viewer may not see is answered exactly like a track that does not exist
(404 ``unknown_track``): its existence is private too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from miaou.audio.models import Loudness, Track, TrackAccess, TrackOwner, can_see
from miaou.audio.tables import track_files, track_shares, tracks
from miaou.db.metadata import users
from miaou.errors import NotFound

LIST_LIMIT_MAX = 100
COVER_SIZES = (80, 300, 1000)


def unknown_track() -> NotFound:
    """Missing, not visible to the caller, or (for media) not playable: the same answer,
    so that a guess learns nothing about tracks it may not see."""
    return NotFound("No such track.", code="unknown_track")


def access_of(row: Row[Any]) -> TrackAccess:
    return TrackAccess(row.owner_id, row.visibility, row.secret, row.release_at)


async def find_track(conn: AsyncConnection, track_id: int) -> Row[Any] | None:
    return (await conn.execute(select(tracks).where(tracks.c.id == track_id))).one_or_none()


async def is_shared(conn: AsyncConnection, track_id: int, user_id: int | None) -> bool:
    if user_id is None:
        return False
    statement = select(track_shares.c.track_id).where(
        track_shares.c.track_id == track_id, track_shares.c.user_id == user_id
    )
    return (await conn.execute(statement)).first() is not None


async def visible_track(
    conn: AsyncConnection, track_id: int, viewer: int | None, now: int, secret: str | None
) -> Row[Any]:
    """The track if ``viewer`` may see it; 404 otherwise."""
    row = await find_track(conn, track_id)
    if row is None:
        raise unknown_track()
    access = access_of(row)
    shared = access.visibility == "private" and await is_shared(conn, track_id, viewer)
    if not can_see(access, viewer, now, secret=secret, shared=shared):
        raise unknown_track()
    return row


async def owned_track(conn: AsyncConnection, track_id: int, owner_id: int) -> Row[Any]:
    """The track if ``owner_id`` owns it; 404 otherwise (others learn nothing)."""
    row = await find_track(conn, track_id)
    if row is None or row.owner_id != owner_id:
        raise unknown_track()
    return row


async def version_files(conn: AsyncConnection, track_id: int, version: int) -> list[Row[Any]]:
    statement = select(track_files).where(
        track_files.c.track_id == track_id, track_files.c.version == version
    )
    return list((await conn.execute(statement)).all())


async def owners(conn: AsyncConnection, rows: Iterable[Row[Any]]) -> dict[int, TrackOwner]:
    """Who the tracks of ``rows`` are by, by user id."""
    wanted = {row.owner_id for row in rows}
    if not wanted:
        return {}
    columns = users.c.id, users.c.username, users.c.display_name
    found = await conn.execute(select(*columns).where(users.c.id.in_(wanted)))
    return {
        row.id: TrackOwner(id=str(row.id), username=row.username, display_name=row.display_name)
        for row in found
    }


def tag_list(text: str) -> list[str]:
    return text.split() if text else []


def track_view(row: Row[Any]) -> Track:
    """The public fields of a track; the service adds media URLs and the owner's extras."""
    loudness = None
    if row.replaygain_peak is not None:  # measured
        loudness = Loudness(
            integrated_lufs=row.loudness_lufs,
            true_peak_dbtp=row.true_peak_dbtp,
            replaygain_track_gain_db=row.replaygain_db,
            replaygain_track_peak=row.replaygain_peak,
        )
    return Track(
        id=str(row.id),
        owner_id=str(row.owner_id),
        title=row.title,
        artist=row.artist,
        album=row.album,
        genre=row.genre,
        year=row.year,
        track_number=row.track_number,
        description=row.description,
        tags=tag_list(row.tags),
        visibility=row.visibility,
        release_at=row.release_at,
        downloadable=row.downloadable,
        version=row.version,
        media_version=row.playable_version,
        state=row.state,
        duration_ms=row.duration_ms,
        container=row.container,
        codec=row.codec,
        sample_rate=row.sample_rate,
        channels=row.channels,
        lossless=row.lossless,
        original_size=row.original_size,
        bpm=row.bpm,
        loudness=loudness,
        plays=row.plays,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def list_tracks(
    conn: AsyncConnection,
    viewer: int | None,
    now: int,
    *,
    owner_id: int | None,
    query: str | None,
    genre: str | None,
    tag: str | None,
    before: int | None,
    limit: int,
) -> list[Row[Any]]:
    """Newest first: public released tracks, plus the viewer's own (any visibility), plus
    private tracks shared with the viewer. Unlisted tracks of others never appear."""
    listed = and_(
        tracks.c.visibility == "public",
        or_(tracks.c.release_at.is_(None), tracks.c.release_at <= now),
    )
    allowed = listed
    if viewer is not None:
        shared = exists().where(
            track_shares.c.track_id == tracks.c.id, track_shares.c.user_id == viewer
        )
        private_shared = and_(
            tracks.c.visibility == "private",
            shared,
            or_(tracks.c.release_at.is_(None), tracks.c.release_at <= now),
        )
        allowed = or_(listed, tracks.c.owner_id == viewer, private_shared)
    statement = select(tracks).where(allowed)
    if owner_id is not None:
        statement = statement.where(tracks.c.owner_id == owner_id)
    if genre:
        statement = statement.where(tracks.c.genre == genre)
    if tag:
        # Tags are stored space-separated: pad so a tag matches whole.
        statement = statement.where((" " + tracks.c.tags + " ").contains(f" {tag.lower()} "))
    if query:
        for word in query.lower().split()[:8]:
            pattern = f"%{_escape_like(word)}%"
            statement = statement.where(
                or_(
                    tracks.c.title.ilike(pattern, escape="\\"),
                    tracks.c.artist.ilike(pattern, escape="\\"),
                    tracks.c.genre.ilike(pattern, escape="\\"),
                    tracks.c.tags.ilike(pattern, escape="\\"),
                )
            )
    if before is not None:
        statement = statement.where(tracks.c.id < before)
    statement = statement.order_by(tracks.c.id.desc()).limit(limit)
    return list((await conn.execute(statement)).all())


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def named_blobs(conn: AsyncConnection, candidates: list[str]) -> set[str]:
    """Which of ``candidates`` a track (original, cover) or a track file names: the audio
    wing's referrer for the blob store."""
    named = set(
        (
            await conn.execute(
                select(track_files.c.sha256).where(track_files.c.sha256.in_(candidates))
            )
        ).scalars()
    )
    columns = (tracks.c.original_sha256, tracks.c.cover_80, tracks.c.cover_300, tracks.c.cover_1000)
    for column in columns:
        found = await conn.execute(select(column).where(column.in_(candidates)))
        named.update(found.scalars())
    return named
