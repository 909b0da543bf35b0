"""The content-addressed file store behind every wing's media (attachments, emoji, tracks).

A blob lives at ``<media_dir>/ab/cd/<sha256>``. An upload streams into a temporary file under
``<media_dir>/tmp`` (same filesystem) while it is hashed, is fsynced, and is renamed into
place, so a blob path only ever names complete content. Identical content is stored once: a
second upload of it drops its temporary file and touches the existing blob.

Blobs are shared between rows of any wing, so one is removed only when no row names it: each
wing registers a *referrer* (a query answering which of some hashes its rows name) and, if
it keeps rows that only wait to be dropped, a *purge* run before a collection. Two rules
keep a removal from racing an upload that is about to reference it:

- an upload *holds* its hashes (an in-process count) from just before its blob is put in
  place until its write has committed or failed; holds are taken and checked on the event
  loop, with no ``await`` between the last check and the unlink;
- :meth:`BlobStore.collect_garbage` only removes blobs untouched for ``grace_seconds`` (an
  upload touches a blob it reuses), which covers uploads on other nodes sharing the
  directory, and stale temporary files left by a crash.

A refused upload calls :meth:`BlobStore.discard` on its own blobs right away, so a failed
upload leaves nothing behind on this node.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from typing import IO

from sqlalchemy.ext.asyncio import AsyncConnection

from miaou.db.engine import Database
from miaou.errors import PayloadTooLarge

# Bytes gathered on the event loop before a worker thread hashes and writes them.
FLUSH_BYTES = 256 * 1024
GC_GRACE_SECONDS = 3600
_GC_BATCH = 500
_HASH = re.compile(r"[0-9a-f]{64}")
_READ_CHUNK = 1024 * 1024

# Which of the given hashes rows of one wing name.
Referrer = Callable[[AsyncConnection, list[str]], Awaitable[set[str]]]
# Drops rows that only wait to be dropped (and so still name blobs), before a collection.
Purge = Callable[[AsyncConnection], Awaitable[None]]


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"
        self._holds: Counter[str] = Counter()
        self._referrers: list[Referrer] = []
        self._purges: list[Purge] = []

    def add_referrer(self, referrer: Referrer, purge: Purge | None = None) -> None:
        """A wing's rows name blobs: none of them is removed while a row names it."""
        self._referrers.append(referrer)
        if purge is not None:
            self._purges.append(purge)

    def path(self, sha256: str) -> Path:
        if not _HASH.fullmatch(sha256):
            raise ValueError("not a sha256 hex digest")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def writer(self, limit: int, *, part: str = "files") -> BlobWriter:
        """A new upload of at most ``limit`` bytes (413 ``payload_too_large`` past it,
        naming the form ``part`` it came in)."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        return BlobWriter(self, limit, part)

    async def put_file(self, source: Path) -> str:
        """Move a finished file (on the media filesystem, e.g. under ``tmp``) into the
        store; held like an upload. The source is gone afterwards."""
        sha256 = await asyncio.to_thread(_hash_file, source)
        self.hold(sha256)
        try:
            await asyncio.to_thread(_place, source, self.path(sha256))
        except BaseException:
            self.release([sha256])
            raise
        return sha256

    def temp_dir(self, prefix: str) -> Path:
        """A new directory under ``tmp`` for work whose results become blobs."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(dir=self.tmp, prefix=prefix))

    async def put_bytes(self, data: bytes) -> str:
        """Store small content made here (thumbnails); held like an upload."""
        writer = self.writer(len(data))
        await writer.write(data)
        return await writer.finish()

    # -- holds --------------------------------------------------------------------------
    def hold(self, sha256: str) -> None:
        self._holds[sha256] += 1

    def release(self, hashes: Iterable[str]) -> None:
        for sha256 in hashes:
            self._holds[sha256] -= 1
            if self._holds[sha256] <= 0:
                del self._holds[sha256]

    def held(self, sha256: str) -> bool:
        return self._holds[sha256] > 0

    # -- removal ------------------------------------------------------------------------
    async def discard(self, db: Database, hashes: Iterable[str], *, held: bool = True) -> int:
        """Release ``hashes`` (held by a finished upload, unless ``held`` is false) and
        remove those no row names."""
        wanted = list(dict.fromkeys(hashes))
        if held:
            self.release(wanted)
        return await self._remove_unreferenced(db, wanted)

    async def collect_garbage(self, db: Database, grace_seconds: float = GC_GRACE_SECONDS) -> int:
        """Remove blobs no row names and temporary files (directories' contents included),
        both untouched for ``grace_seconds``. Returns how many files were removed."""
        if self._purges:
            async with db.write() as conn:
                for purge in self._purges:
                    await purge(conn)
        cutoff = time.time() - grace_seconds
        stale_tmp, old_blobs = await asyncio.to_thread(self._scan, cutoff)
        removed = 0
        for path in stale_tmp:
            removed += _unlink(path)
        for start in range(0, len(old_blobs), _GC_BATCH):
            removed += await self._remove_unreferenced(db, old_blobs[start : start + _GC_BATCH])
        return removed

    async def _remove_unreferenced(self, db: Database, hashes: list[str]) -> int:
        """Remove the files of ``hashes`` that no registered referrer's rows name and that
        no upload in progress holds."""
        candidates = [h for h in hashes if not self.held(h)]
        if not candidates:
            return 0
        named: set[str] = set()
        async with db.read() as conn:
            for referrer in self._referrers:
                named |= await referrer(conn, candidates)
        removed = 0
        for sha256 in candidates:
            # Checked again after the query's await; nothing awaits between this and unlink.
            if sha256 not in named and not self.held(sha256):
                removed += _unlink(self.path(sha256))
        return removed

    def _scan(self, cutoff: float) -> tuple[list[Path], list[str]]:
        stale_tmp = [p for p in _files(self.tmp) if _mtime(p) < cutoff]
        old_blobs = []
        for path in _files(self.root):
            if path.parent != self.tmp and _HASH.fullmatch(path.name) and _mtime(path) < cutoff:
                old_blobs.append(path.name)
        return stale_tmp, old_blobs


class BlobWriter:
    """One upload in progress: bytes are buffered, then hashed and written off the loop."""

    def __init__(self, store: BlobStore, limit: int, part: str = "files") -> None:
        self.store = store
        self.limit = limit
        self.part = part
        self.size = 0
        self._hash = hashlib.sha256()
        self._buffer = bytearray()
        fd, name = tempfile.mkstemp(dir=store.tmp, prefix="upload-")
        self._file: IO[bytes] = os.fdopen(fd, "wb")
        self._temp = Path(name)
        self._done = False

    async def write(self, data: bytes | memoryview) -> None:
        if self.size + len(data) > self.limit:
            self.abort()
            raise PayloadTooLarge(
                f"A file may be at most {self.limit} bytes.",
                code="payload_too_large",
                errors={self.part: [f"must be at most {self.limit} bytes each"]},
            )
        self.size += len(data)
        self._buffer += data
        if len(self._buffer) >= FLUSH_BYTES:
            await self._flush()

    async def _flush(self) -> None:
        chunk, self._buffer = bytes(self._buffer), bytearray()
        await asyncio.to_thread(self._write, chunk)

    def _write(self, chunk: bytes) -> None:
        self._hash.update(chunk)
        self._file.write(chunk)

    async def finish(self) -> str:
        """Put the blob in place and hold its hash; the caller releases it (``discard``)."""
        try:
            await self._flush()
            await asyncio.to_thread(self._sync)
        except BaseException:
            self.abort()
            raise
        sha256 = self._hash.hexdigest()
        # Held before it is in place, so a concurrent removal of the same hash backs off.
        self.store.hold(sha256)
        try:
            await asyncio.to_thread(self._place, self.store.path(sha256))
        except BaseException:
            self.store.release([sha256])
            self.abort()
            raise
        self._done = True
        return sha256

    def _sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def _place(self, final: Path) -> None:
        _place(self._temp, final)

    def abort(self) -> None:
        """Drop the temporary file (an upload cut short, refused or failed)."""
        if self._done:
            return
        self._done = True
        self._file.close()
        self._temp.unlink(missing_ok=True)


def _place(source: Path, final: Path) -> None:
    if final.exists():
        # Same content already stored: reuse it, and mark it recently used for the GC.
        os.utime(final)
        source.unlink()
        return
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, final)  # atomic: readers see no blob or a whole one
    _fsync_dir(final.parent)


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(_READ_CHUNK):
            digest.update(chunk)
        os.fsync(file.fileno())
    return digest.hexdigest()


def _files(root: Path) -> Iterator[Path]:
    if not root.is_dir():
        return
    for folder, _dirs, names in os.walk(root):
        for name in names:
            yield Path(folder) / name


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return time.time()  # gone meanwhile: not old


def _unlink(path: Path) -> int:
    try:
        path.unlink()
    except FileNotFoundError:
        return 0
    return 1


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable (POSIX); directories cannot be opened for this elsewhere."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
