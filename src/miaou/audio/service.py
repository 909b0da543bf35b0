"""Track use cases: upload, read, edit, replace the audio, share, delete.

An upload is checked before anything is kept: the file is probed and decoded whole in a
child process (``work.inspect_upload``); a refusal discards its blob at once, so a bad file
leaves nothing behind. An accepted upload becomes the track row and its processing job in
one transaction; the job (``processing.py``) makes the renditions.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
import structlog
from sqlalchemy import delete, exists, insert, select, update
from sqlalchemy.engine import Row

from miaou import ids
from miaou.audio import quota, track_store
from miaou.audio.models import (
    DESCRIPTION_MAX,
    GENRE_MAX,
    TAG_MAX,
    TAGS_MAX,
    TITLE_MAX,
    MediaUrls,
    Processing,
    Track,
    TrackCreate,
    TrackOwner,
    TrackUpdate,
)
from miaou.audio.shares import TrackShares
from miaou.audio.tables import track_files, tracks
from miaou.audio.track_store import COVER_SIZES, owned_track, track_view
from miaou.audio.upload import StoredUpload, TrackUpload
from miaou.audio.work import Inspected, inspect_upload, make_covers
from miaou.config import Settings
from miaou.db.engine import Database
from miaou.errors import Conflict, InvalidInput
from miaou.jobs.processes import ProcessPool
from miaou.jobs.queue import FAILED, JobQueue
from miaou.jobs.tables import jobs as jobs_table
from miaou.storage.blobs import BlobStore

log = structlog.get_logger("miaou.audio")
PROCESS_KIND = "audio.process"


@dataclass(frozen=True, slots=True)
class Playable:
    """A track as its media URLs see it: ``version`` is the one that plays."""

    id: int
    version: int
    visibility: str
    release_at: int | None

    @classmethod
    def of(cls, row: Row[Any]) -> Playable:
        return cls(row.id, row.playable_version, row.visibility, row.release_at)


# Hands out media URLs for a playable track: set by the playback module at assembly.
MediaUrlMaker = Callable[[Playable], Awaitable[MediaUrls]]


def subject_of(track_id: int) -> str:
    return f"track:{track_id}"


def _field(name: str, problem: str) -> InvalidInput:
    return InvalidInput(f"Invalid {name}: {problem}.", errors={name: [problem]})


def _text(name: str, value: str | None, cap: int, *, required: bool = False) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if required and not value:
        raise _field(name, "must not be empty")
    if len(value) > cap:
        raise _field(name, f"must be at most {cap} characters")
    return value or None


def _tags(values: list[str]) -> str:
    if len(values) > TAGS_MAX:
        raise _field("tags", f"at most {TAGS_MAX} tags")
    cleaned: list[str] = []
    for raw in values:
        tag = "-".join(raw.lower().split())
        if not tag or len(tag) > TAG_MAX:
            raise _field("tags", f"each tag 1 to {TAG_MAX} characters")
        if tag not in cleaned:
            cleaned.append(tag)
    return " ".join(cleaned)


class TrackService:
    def __init__(
        self, db: Database, blobs: BlobStore, jobs: JobQueue, pool: ProcessPool, settings: Settings
    ) -> None:
        self.db = db
        self.blobs = blobs
        self.jobs = jobs
        self.pool = pool
        self.settings = settings
        self.clock: Callable[[], int] = ids.now_ms
        self.media_urls: MediaUrlMaker | None = None
        self.shares = TrackShares(db, lambda: self.clock())
        # MP3 downloads are made one at a time (downloads.py).
        self.mp3_turn = asyncio.Lock()

    # -- upload ---------------------------------------------------------------------------
    async def inspect(self, upload: TrackUpload) -> Inspected:
        """Probe and decode the upload in a child process; refusals raise InvalidInput."""
        assert upload.audio is not None
        path = str(self.blobs.path(upload.audio.sha256))
        result: Inspected = await self.pool.run(
            inspect_upload, path, float(self.settings.max_track_seconds), upload.cover
        )
        return result

    async def usage(self, owner_id: int) -> quota.TrackUsage:
        async with self.db.read() as conn:
            return await quota.usage(conn, self.settings, owner_id)

    async def create(self, owner_id: int, upload: TrackUpload, body: TrackCreate) -> Track:
        """A new track from an upload the caller has read; the caller discards the upload's
        blobs afterwards unless this returned (then the rows name them)."""
        audio = upload.audio
        assert audio is not None
        await self._refuse_duplicate(owner_id, audio.sha256)
        title = _text("title", body.title, TITLE_MAX, required=True)
        description = _text("description", body.description, DESCRIPTION_MAX)
        genre = _text("genre", body.genre, GENRE_MAX)
        tags = _tags(body.tags or [])
        found = await self.inspect(upload)
        covers = await self._store_covers(found.covers, upload.held)
        now = self.clock()
        track_id = ids.new_id()
        fallback = (audio.filename or "Untitled").rsplit(".", 1)[0][:TITLE_MAX] or "Untitled"
        row = {
            "id": track_id,
            "owner_id": owner_id,
            "title": title or found.tags.title or fallback,
            "artist": found.tags.artist,
            "album": found.tags.album,
            "genre": genre or found.tags.genre,
            "year": found.tags.year,
            "track_number": found.tags.track_number,
            "description": description or found.tags.description or "",
            "tags": tags,
            "visibility": body.visibility,
            "secret": secrets.token_urlsafe(16),
            "release_at": body.release_at,
            "downloadable": body.downloadable,
            "version": 1,
            "created_at": now,
            **covers,
        }
        async with self.db.write() as conn:
            await self._refuse_duplicate(owner_id, audio.sha256, conn)
            held = await quota.hold(conn, self.settings, owner_id)
            quota.refuse_if_over(held, adding_tracks=1, adding_bytes=audio.size)
            await conn.execute(insert(tracks).values(**row, **self._source(audio, found, now)))
            job_id = await self._enqueue(conn, track_id, 1)
            await conn.execute(update(tracks).where(tracks.c.id == track_id).values(job_id=job_id))
        self.jobs.wake()
        log.info("track_created", track_id=track_id, owner_id=owner_id, size=audio.size)
        return await self.get(owner_id, track_id)

    async def replace_audio(self, owner_id: int, track_id: int, upload: TrackUpload) -> Track:
        """A new version of the audio: the id, counts and metadata stay; playback switches
        to the new version once it is processed."""
        audio = upload.audio
        assert audio is not None
        async with self.db.read() as conn:
            await owned_track(conn, track_id, owner_id)
        found = await self.inspect(upload)
        covers = await self._store_covers(found.covers, upload.held) if upload.cover else {}
        now = self.clock()
        async with self.db.write() as conn:
            current = await owned_track(conn, track_id, owner_id)
            held = await quota.hold(conn, self.settings, owner_id)
            # The new original takes the place of the current one.
            growth = audio.size - current.original_size
            quota.refuse_if_over(held, adding_tracks=0, adding_bytes=growth)
            version = current.version + 1
            await self.jobs.cancel(subject_of(track_id), conn=conn)
            job_id = await self._enqueue(conn, track_id, version)
            await conn.execute(
                update(tracks)
                .where(tracks.c.id == track_id)
                .values(version=version, job_id=job_id, **self._source(audio, found, now), **covers)
            )
        self.jobs.wake()
        return await self.get(owner_id, track_id)

    async def _enqueue(self, conn: Any, track_id: int, version: int) -> int:
        payload = {"track_id": track_id, "version": version}
        return await self.jobs.enqueue(conn, PROCESS_KIND, subject_of(track_id), payload)

    @staticmethod
    def _source(audio: StoredUpload, found: Inspected, now: int) -> dict[str, Any]:
        source = found.source
        return {
            "state": "processing",
            "error": None,
            "original_sha256": audio.sha256,
            "original_size": audio.size,
            "original_filename": (audio.filename or "audio")[:255],
            "container": source.container,
            "codec": source.codec[:32],
            "sample_rate": source.sample_rate,
            "channels": source.channels,
            "lossless": source.lossless,
            "duration_ms": round(source.duration * 1000),
            "updated_at": now,
        }

    async def _refuse_duplicate(self, owner_id: int, sha256: str, conn: Any = None) -> None:
        statement = select(tracks.c.id).where(
            tracks.c.owner_id == owner_id, tracks.c.original_sha256 == sha256
        )
        if conn is None:
            async with self.db.read() as own:
                existing = (await own.execute(statement)).scalar_one_or_none()
        else:
            existing = (await conn.execute(statement)).scalar_one_or_none()
        if existing is not None:
            raise Conflict(
                "You have already uploaded this audio.",
                code="duplicate_track",
                errors={"file": [f"same audio as track {existing}"]},
            )

    async def _store_covers(
        self, covers: dict[int, bytes] | None, held: list[str]
    ) -> dict[str, Any]:
        if not covers:
            return {}
        stored: dict[str, Any] = {}
        for size in COVER_SIZES:
            if size in covers:
                sha256 = await self.blobs.put_bytes(covers[size])
                held.append(sha256)
                stored[f"cover_{size}"] = sha256
        return stored

    async def set_cover(self, owner_id: int, track_id: int, image: bytes) -> Track:
        async with self.db.read() as conn:
            await owned_track(conn, track_id, owner_id)
        covers: dict[int, bytes] = await self.pool.run(make_covers, image)
        held: list[str] = []
        try:
            values = await self._store_covers(covers, held)
            async with self.db.write() as conn:
                await owned_track(conn, track_id, owner_id)
                await conn.execute(
                    update(tracks)
                    .where(tracks.c.id == track_id)
                    .values(**values, updated_at=self.clock())
                )
        finally:
            self.blobs.release(held)
        return await self.get(owner_id, track_id)

    # -- reading --------------------------------------------------------------------------
    async def get(self, viewer: int | None, track_id: int, secret: str | None = None) -> Track:
        now = self.clock()
        async with self.db.read() as conn:
            row = await track_store.visible_track(conn, track_id, viewer, now, secret)
            owners = await track_store.owners(conn, [row])
        return await self.view(row, viewer, owners)

    async def view(
        self, row: Row[Any], viewer: int | None, owners: Mapping[int, TrackOwner]
    ) -> Track:
        track = track_view(row)
        track.owner = owners.get(row.owner_id)
        if row.cover_80 is not None:
            track.cover = {str(size): self.cover_url(row, size) for size in COVER_SIZES}
        if row.playable_version is not None and self.media_urls is not None:
            track.media = await self.media_urls(Playable.of(row))
        if viewer is None or viewer != row.owner_id:
            return track
        if row.visibility == "unlisted":
            track.secret = row.secret
            track.secret_url = f"/api/v1/tracks/{row.id}?secret={row.secret}"
        if row.state == "processing":
            job = await self.jobs.latest_for(subject_of(row.id))
            if job is not None:
                track.processing = Processing(
                    state=job.state, progress=job.progress, attempts=job.attempts, error=job.error
                )
                if job.state == FAILED:
                    track.state, track.error = "failed", job.error
        elif row.state == "failed":
            track.error = row.error
        return track

    def cover_url(self, row: Row[Any], size: int) -> str:
        # Content-addressed: a new cover is a new URL, so browsers may cache these forever.
        return f"/api/v1/tracks/{row.id}/cover/{size}?v={getattr(row, f'cover_{size}')[:12]}"

    async def listing(self, viewer: int | None, **filters: Any) -> list[Track]:
        now = self.clock()
        async with self.db.read() as conn:
            rows = await track_store.list_tracks(conn, viewer, now, **filters)
            owners = await track_store.owners(conn, rows)
        return [await self.view(row, viewer, owners) for row in rows]

    # -- editing --------------------------------------------------------------------------
    async def update(self, owner_id: int, track_id: int, body: TrackUpdate) -> Track:
        changes = {k: v for k, v in msgspec.structs.asdict(body).items() if v is not msgspec.UNSET}
        caps = {
            "title": TITLE_MAX,
            "artist": TITLE_MAX,
            "album": TITLE_MAX,
            "genre": GENRE_MAX,
            "description": DESCRIPTION_MAX,
        }
        for name, cap in caps.items():
            if name in changes:
                cleaned = _text(name, changes[name], cap, required=name == "title")
                changes[name] = "" if name == "description" and cleaned is None else cleaned
        if "tags" in changes:
            changes["tags"] = _tags(changes["tags"])
        for name, low, high in (("year", 0, 9999), ("track_number", 0, 9999)):
            value = changes.get(name)
            if value is not None and not low <= value <= high:
                raise _field(name, f"must be in {low}..{high}")
        async with self.db.write() as conn:
            await owned_track(conn, track_id, owner_id)
            if changes:
                changes["updated_at"] = self.clock()
                await conn.execute(update(tracks).where(tracks.c.id == track_id).values(**changes))
        return await self.get(owner_id, track_id)

    async def delete(self, owner_id: int, track_id: int) -> None:
        async with self.db.write() as conn:
            row = await owned_track(conn, track_id, owner_id)
            files = await conn.execute(
                select(track_files.c.sha256).where(track_files.c.track_id == track_id)
            )
            hashes = [*files.scalars(), row.original_sha256]
            hashes += [h for h in (row.cover_80, row.cover_300, row.cover_1000) if h]
            await self.jobs.cancel(subject_of(track_id), conn=conn)
            await conn.execute(delete(tracks).where(tracks.c.id == track_id))
        await self.blobs.discard(self.db, hashes, held=False)
        log.info("track_deleted", track_id=track_id)

    async def settle_failed(self) -> int:
        """Mark tracks whose processing job failed for good as failed, with its error, so
        that they say so after finished jobs are pruned. Returns how many."""
        failed_job = (jobs_table.c.id == tracks.c.job_id) & (jobs_table.c.state == FAILED)
        error = select(jobs_table.c.error).where(failed_job).scalar_subquery()
        async with self.db.write() as conn:
            result = await conn.execute(
                update(tracks)
                .where(tracks.c.state == "processing", exists().where(failed_job))
                .values(state="failed", error=error, updated_at=self.clock())
            )
        return int(result.rowcount or 0)
