"""Downloads: the original upload (lossless when it was) or an MP3 made on demand.

Allowed to anyone who may see the track when its owner made it ``downloadable``, and to
the owner always. The MP3 (320 kb/s, tagged) is made from the original the first time
someone asks for it, in a child process, and kept as a file of that version: later
downloads are served straight from the store.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from typing import TYPE_CHECKING, Any, Literal

from litestar import Controller, Response, get
from litestar.params import FromPath, FromQuery
from sqlalchemy import insert, select
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from miaou.audio import media_files
from miaou.audio.tables import track_files
from miaou.audio.track_store import visible_track
from miaou.audio.work import make_mp3
from miaou.errors import Forbidden
from miaou.http.auth import node_of, optional_user
from miaou.http.params import AnyRequest, path_id

if TYPE_CHECKING:
    from miaou.app import Node

MP3_NAME = "download.mp3"
ORIGINAL_TYPES = {
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "flac": "audio/flac",
    "aiff": "audio/aiff",
    "ogg": "audio/ogg",
    "m4a": "audio/mp4",
}
CACHE = "private, max-age=3600"
_UNSAFE = re.compile(r"[^\w .()\[\]-]+")


def download_not_allowed() -> Forbidden:
    return Forbidden(
        "The owner does not allow downloads of this track.", code="download_not_allowed"
    )


def _filename(row: Row[Any], extension: str) -> str:
    stem = _UNSAFE.sub("_", row.title).strip(" ._") or "track"
    return f"{stem[:100]}.{extension}"


class DownloadsController(Controller):
    path = "/api/v1/tracks/{track_id:str}"
    tags = ["tracks"]

    @get("/download", summary="Download a track: the original, or an MP3 (if allowed)")
    async def download(
        self,
        request: AnyRequest,
        track_id: FromPath[str],
        format: FromQuery[Literal["original", "mp3"]] = "original",
        secret: FromQuery[str | None] = None,
    ) -> Response[Any]:
        """For anyone who may see the track when it is `downloadable`, and for its owner;
        otherwise 403 `download_not_allowed`. `format=mp3` is made on first request (a
        few seconds for a long track)."""
        node = node_of(request)
        viewer = await optional_user(request)
        async with node.db.read() as conn:
            row = await visible_track(
                conn, path_id(track_id, "track"), viewer, node.tracks.clock(), secret
            )
        if not row.downloadable and viewer != row.owner_id:
            raise download_not_allowed()
        if format == "original":
            extension = row.container
            return media_files.media_response(
                request,
                node,
                row.original_sha256,
                f"original.{extension}",
                _filename(row, extension),
                CACHE,
                disposition="attachment",
                media_type=ORIGINAL_TYPES.get(extension, "application/octet-stream"),
            )
        sha256 = await _mp3(node, row)
        return media_files.media_response(
            request,
            node,
            sha256,
            MP3_NAME,
            _filename(row, "mp3"),
            CACHE,
            disposition="attachment",
            media_type="audio/mpeg",
        )


async def _mp3(node: Node, row: Row[Any]) -> str:
    """The version's MP3 blob, made now if it does not exist yet (one at a time in this
    process: a second request for the same one waits and finds it made)."""
    existing = await _stored_mp3(node, row)
    if existing is not None:
        return existing
    async with node.tracks.mp3_turn:
        existing = await _stored_mp3(node, row)
        return existing if existing is not None else await _make_mp3(node, row)


async def _stored_mp3(node: Node, row: Row[Any]) -> str | None:
    statement = select(track_files.c.sha256).where(
        track_files.c.track_id == row.id,
        track_files.c.version == row.version,
        track_files.c.name == MP3_NAME,
    )
    async with node.db.read() as conn:
        found = (await conn.execute(statement)).scalar_one_or_none()
    return None if found is None else str(found)


async def _make_mp3(node: Node, row: Row[Any]) -> str:
    work = node.blobs.temp_dir(f"mp3-{row.id}-")
    try:
        dest = work / MP3_NAME
        tags = {
            "title": row.title,
            "artist": row.artist or "",
            "album": row.album or "",
            "genre": row.genre or "",
            "date": str(row.year or ""),
        }
        await node.processes.run(
            make_mp3,
            str(node.blobs.path(row.original_sha256)),
            str(dest),
            {k: v for k, v in tags.items() if v},
        )
        size = dest.stat().st_size
        sha256 = await node.blobs.put_file(dest)
        try:
            async with node.db.write() as conn:
                await conn.execute(
                    insert(track_files).values(
                        track_id=row.id,
                        version=row.version,
                        name=MP3_NAME,
                        sha256=sha256,
                        size=size,
                        content_type="audio/mpeg",
                    )
                )
        except IntegrityError:
            pass  # another node made it at the same time: same audio, either will do
        finally:
            node.blobs.release([sha256])
        return sha256
    finally:
        await asyncio.to_thread(shutil.rmtree, work, True)


routes = [DownloadsController]
