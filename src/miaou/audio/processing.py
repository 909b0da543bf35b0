"""The track processing job: renditions made in a child process become blobs and rows.

The pipeline writes into a temporary directory on the media filesystem; each file then
moves into the content-addressed store and gets a ``track_files`` row, and the track turns
``ready`` with its measurements, all in one transaction. A job for a version that is no
longer current (the owner uploaded a new one, or deleted the track) stores nothing.

A job killed half-way (kill -9 of the node or the worker) leaves a temporary directory
that the blob store's collection removes, and its lease expires: another worker runs it
again from the start.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import delete, insert, select, update

from miaou.audio.pipeline.process import ProcessResult
from miaou.audio.service import PROCESS_KIND
from miaou.audio.tables import track_files, tracks
from miaou.audio.track_store import find_track
from miaou.audio.work import process_track
from miaou.db.engine import Database
from miaou.jobs.processes import ProcessPool
from miaou.jobs.queue import Job
from miaou.storage.blobs import BlobStore

log = structlog.get_logger("miaou.audio")
Report = Callable[[float], Awaitable[Any]]

CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mp4": "audio/mp4",
    ".m4s": "audio/mp4",
    ".m4a": "audio/mp4",
    ".json": "application/json",
    ".dat": "application/octet-stream",
}


class TrackProcessor:
    """The handler of ``audio.process`` jobs."""

    kind = PROCESS_KIND

    def __init__(self, db: Database, blobs: BlobStore, pool: ProcessPool) -> None:
        self.db = db
        self.blobs = blobs
        self.pool = pool

    async def __call__(self, job: Job, report: Report) -> dict[str, Any]:
        track_id, version = int(job.payload["track_id"]), int(job.payload["version"])
        async with self.db.read() as conn:
            row = await find_track(conn, track_id)
        if row is None or row.version != version:
            return {"superseded": True}
        source = self.blobs.path(row.original_sha256)
        out_dir = self.blobs.temp_dir(f"track-{track_id}-")
        held: list[str] = []
        try:
            result: ProcessResult = await self.pool.run(
                process_track, str(source), str(out_dir), progress=report
            )
            files = await self._store(out_dir, held)
            stored, replaced = await self._commit(track_id, version, result, files)
        finally:
            self.blobs.release(held)
            await asyncio.to_thread(shutil.rmtree, out_dir, True)
        if not stored:
            # Superseded while it ran: what it stored is named by no row.
            await self.blobs.discard(self.db, [f[1] for f in files], held=False)
            return {"superseded": True}
        if replaced:
            await self.blobs.discard(self.db, replaced, held=False)
        log.info("track_processed", track_id=track_id, version=version, files=len(files))
        return {"files": len(files), "duration": result.duration}

    async def _store(self, out_dir: Path, held: list[str]) -> list[tuple[str, str, int, str]]:
        """(name, sha256, size, content type) of every file the pipeline made."""
        files = []
        paths = await asyncio.to_thread(
            lambda: sorted(p for p in out_dir.rglob("*") if p.is_file())
        )
        for path in paths:
            name = path.relative_to(out_dir).as_posix()
            size = path.stat().st_size
            content_type = CONTENT_TYPES.get(path.suffix, "application/octet-stream")
            sha256 = await self.blobs.put_file(path)
            held.append(sha256)
            files.append((name, sha256, size, content_type))
        return files

    async def _commit(
        self,
        track_id: int,
        version: int,
        result: ProcessResult,
        files: list[tuple[str, str, int, str]],
    ) -> tuple[bool, list[str]]:
        """Store the version's files and measurements; False if it is no longer current.
        Also drops the files of earlier versions, returning their hashes."""
        async with self.db.write() as conn:
            row = await find_track(conn, track_id)
            if row is None or row.version != version:
                return False, []
            earlier = track_files.c.track_id == track_id, track_files.c.version < version
            replaced = list(
                (await conn.execute(select(track_files.c.sha256).where(*earlier))).scalars()
            )
            await conn.execute(delete(track_files).where(*earlier))
            await conn.execute(
                insert(track_files),
                [
                    {
                        "track_id": track_id,
                        "version": version,
                        "name": name,
                        "sha256": sha256,
                        "size": size,
                        "content_type": content_type,
                    }
                    for name, sha256, size, content_type in files
                ],
            )
            loudness = result.loudness
            await conn.execute(
                update(tracks)
                .where(tracks.c.id == track_id)
                .values(
                    state="ready",
                    error=None,
                    playable_version=version,
                    duration_ms=round(result.duration * 1000),
                    loudness_lufs=loudness.integrated_lufs,
                    true_peak_dbtp=loudness.true_peak_dbtp,
                    replaygain_db=loudness.replaygain_track_gain_db,
                    replaygain_peak=loudness.replaygain_track_peak,
                    bpm=result.bpm,
                )
            )
        return True, replaced
