"""A track's media files: which names are served, how they are looked up and answered.

Processing stores every file of one version of a track as a ``track_files`` row naming a
blob: ``master.m3u8``, ``<variant>/index.m3u8``, ``<variant>/init.mp4``,
``<variant>/seg_NNNNN.m4s``, ``progressive.m4a``, ``waveform.json`` and ``waveform.dat``.
Content types come from the name, not the row, so nothing but audio, playlists and
waveforms ever leaves these routes whatever a row says.

Answers are the blob itself (single byte ranges, ETag = the sha256, through
:mod:`miaou.http.ranges`; 304 to an ``If-None-Match`` naming it), or, when
``media_accel_redirect`` is set, an empty answer with the same headers and
``X-Accel-Redirect`` naming the blob, so that nginx sends the bytes (ranges included)
without a Python process copying them.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal
from weakref import WeakKeyDictionary

from litestar import Response
from sqlalchemy import and_, bindparam, or_, select

from miaou.audio.tables import track_files, tracks
from miaou.audio.track_store import unknown_track
from miaou.errors import NotFound
from miaou.http.params import AnyRequest
from miaou.http.ranges import stored_file

if TYPE_CHECKING:
    from miaou.app import Node
    from miaou.db.engine import Database

MASTER = "master.m3u8"
PROGRESSIVE = "progressive.m4a"
WAVEFORM_JSON = "waveform.json"
WAVEFORM_DAT = "waveform.dat"
NAME_MAX = 128  # track_files.name
PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
# What the HLS routes serve: playlists, fMP4 init and segments, and TS/ADTS segments
# should processing ever make them.
HLS_TYPES = {
    ".m3u8": PLAYLIST_TYPE,
    ".mp4": "audio/mp4",
    ".m4s": "audio/mp4",
    ".ts": "video/mp2t",
    ".aac": "audio/aac",
}
TYPES = {
    **HLS_TYPES,
    ".m4a": "audio/mp4",
    ".json": "application/json",
    ".dat": "application/octet-stream",
}
# Audio bytes of one version: never change under a URL that names the version. Playlists
# and waveforms get short lifetimes instead, which bounds how long a track made private
# stays discoverable through a shared cache.
MEDIA_SUFFIXES = (".mp4", ".m4s", ".ts", ".aac", ".m4a")
SHORT_SECONDS = 300
YEAR_SECONDS = 31_536_000
SANDBOX = "default-src 'none'; sandbox"
LOOKUP_TTL_S = 5.0
LOOKUP_CACHE_SIZE = 20_000
# Segments up to this size may be answered by the fast path (fast_media.py).
FAST_MAX_BYTES = 1_048_576
# Seconds, for the lookup cache; tests replace it to move time.
lookup_clock: Callable[[], float] = time.monotonic
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def unknown_file() -> NotFound:
    return NotFound("The track has no such media file.", code="unknown_media_file")


def hls_name(raw: str) -> str:
    """The file name of an HLS route's ``{name:path}`` (which starts with ``/``); anything
    but a playlist or segment name is 404."""
    name = raw.lstrip("/")
    suffix = name[name.rfind(".") :] if "." in name else ""
    if not name or len(name) > NAME_MAX or suffix not in HLS_TYPES or "//" in name:
        raise unknown_file()
    return name


def download_name(name: str) -> str:
    """The file name a browser would save ``name`` as: its last part, in safe characters
    (it goes into a header)."""
    return _UNSAFE.sub("_", name.rpartition("/")[2]) or "media"


def content_type(name: str) -> str:
    return TYPES.get(name[name.rfind(".") :], "application/octet-stream")


def is_media(name: str) -> bool:
    return name.endswith(MEDIA_SUFFIXES)


def cache_control(name: str, *, pinned: bool, seconds_left: int | None) -> str:
    """``seconds_left`` is a signed URL's remaining life (None: a public URL); ``pinned``
    says whether the URL names the version (only then are its bytes immutable)."""
    media = is_media(name)
    if seconds_left is not None:
        return f"private, max-age={max(0, seconds_left)}" + (", immutable" if media else "")
    if pinned and media:
        return f"public, max-age={YEAR_SECONDS}, immutable"
    return f"public, max-age={SHORT_SECONDS}"


# -- lookups (built once: miaou.db.keyed says why) --------------------------------------------
def _public_track() -> tuple[Any, ...]:
    """The track ``track_id`` is public, released (at ``now``) and playable."""
    return (
        tracks.c.id == bindparam("track_id"),
        tracks.c.visibility == "public",
        tracks.c.playable_version.is_not(None),
        or_(tracks.c.release_at.is_(None), tracks.c.release_at <= bindparam("now")),
    )


def _public_file(version: Any) -> Any:
    """The sha256 of a file of a public, released, playable track, outer-joined so that a
    row with a NULL hash means "the track is there, the file is not"."""
    on = and_(
        track_files.c.track_id == tracks.c.id,
        track_files.c.version == version,
        track_files.c.name == bindparam("name"),
    )
    return (
        select(track_files.c.sha256)
        .select_from(tracks.outerjoin(track_files, on))
        .where(*_public_track())
    )


_CURRENT = _public_file(tracks.c.playable_version)
_PINNED = _public_file(bindparam("version"))
# The files among ``names`` of a pinned version of a public track (``refresh_public``).
_PINNED_NAMES = (
    select(track_files.c.name, track_files.c.sha256)
    .select_from(tracks.join(track_files, track_files.c.track_id == tracks.c.id))
    .where(
        *_public_track(),
        track_files.c.version == bindparam("version"),
        track_files.c.name.in_(bindparam("names", expanding=True)),
    )
)
_SIGNED = select(track_files.c.sha256).where(
    track_files.c.track_id == bindparam("track_id"),
    track_files.c.version == bindparam("version"),
    track_files.c.name == bindparam("name"),
)


class _Found:
    """Recent answers of the version-pinned lookups, per database: a listener asks for the
    next segment every few seconds, and a file of a version never changes. An entry lives
    ``LOOKUP_TTL_S``, so a track made private (or deleted) stops being served by pinned
    public URLs within that time. Bounded: the oldest entries go first."""

    def __init__(self) -> None:
        self.entries: OrderedDict[tuple[Any, ...], tuple[float, str]] = OrderedDict()

    def get(self, key: tuple[Any, ...]) -> str | None:
        found = self.entries.get(key)
        if found is None or found[0] < lookup_clock():
            return None
        return found[1]

    def put(self, key: tuple[Any, ...], sha256: str) -> None:
        self.entries[key] = (lookup_clock() + LOOKUP_TTL_S, sha256)
        self.entries.move_to_end(key)
        while len(self.entries) > LOOKUP_CACHE_SIZE:
            self.entries.popitem(last=False)


_found: WeakKeyDictionary[Database, _Found] = WeakKeyDictionary()


def _cache(db: Database) -> _Found:
    cache = _found.get(db)
    if cache is None:
        cache = _found[db] = _Found()
    return cache


def cached_public(db: Database, track_id: int, version: int, name: str) -> str | None:
    """The blob of a pinned public file if a recent lookup found it (``fast_media``)."""
    return _cache(db).get(("public", track_id, version, name))


def public_lookup(db: Database, track_id: int, version: int, name: str) -> tuple[float, str] | None:
    """The cached lookup of a pinned public file, fresh or expired: (when it expires in
    ``lookup_clock`` seconds, the blob). The fast paths read the expiry to have lookups
    asked again (``refresh_public``) before they run out."""
    return _cache(db).entries.get(("public", track_id, version, name))


async def refresh_public(
    db: Database, track_id: int, version: int, names: list[str], now_ms: int
) -> None:
    """Ask the lookups of files of one pinned version again, in one query: the files still
    found get a new lifetime; the others are left to run out."""
    params = {"track_id": track_id, "version": version, "names": names, "now": now_ms}
    async with db.read() as conn:
        rows = (await conn.execute(_PINNED_NAMES, params)).all()
    cache = _cache(db)
    for row in rows:
        cache.put(("public", track_id, version, row.name), str(row.sha256))


async def public_file(
    db: Database, track_id: int, name: str, now_ms: int, version: int | None = None
) -> str:
    """The blob of ``name`` of a public released track: of its current version, or of
    ``version`` (answers for a pinned version are cached a few seconds).
    Raises 404 ``unknown_track`` / ``unknown_media_file``."""
    key = ("public", track_id, version, name)
    if version is not None and (cached := _cache(db).get(key)) is not None:
        return cached
    params: dict[str, Any] = {"track_id": track_id, "name": name, "now": now_ms}
    statement = _CURRENT
    if version is not None:
        statement, params["version"] = _PINNED, version
    async with db.read() as conn:
        row = (await conn.execute(statement, params)).first()
    if row is None:
        raise unknown_track()
    if row.sha256 is None:
        raise unknown_file()
    if version is not None:
        _cache(db).put(key, str(row.sha256))
    return str(row.sha256)


async def granted_file(db: Database, track_id: int, version: int, name: str) -> str:
    """The blob of ``name`` of a version a signed token grants (whatever the track's
    visibility now: the token was issued to someone allowed); cached a few seconds."""
    key = ("granted", track_id, version, name)
    if (cached := _cache(db).get(key)) is not None:
        return cached
    async with db.read() as conn:
        sha256 = (
            await conn.execute(_SIGNED, {"track_id": track_id, "version": version, "name": name})
        ).scalar_one_or_none()
    if sha256 is None:
        raise unknown_file()
    _cache(db).put(key, str(sha256))
    return str(sha256)


# -- answers --------------------------------------------------------------------------------
def has_etag(if_none_match: str | None, sha256: str) -> bool:
    """Whether an ``If-None-Match`` value names the blob (weak comparison, or ``*``)."""
    if not if_none_match:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or f'"{sha256}"' in tags


def accel_prefix(node: Node) -> str:
    """The nginx ``internal`` location mapped to the media directory, or "" (we serve)."""
    return node.settings.media_accel_redirect  # validated: "" or "/.../"


def media_response(
    request: AnyRequest,
    node: Node,
    sha256: str,
    name: str,
    filename: str,
    cache: str,
    *,
    disposition: Literal["inline", "attachment"] = "inline",
    media_type: str | None = None,
) -> Response[Any]:
    """The blob ``sha256`` as the file ``name`` (whose suffix gives the content type unless
    ``media_type`` does), with byte ranges, or handed to nginx in X-Accel-Redirect mode;
    304 when ``If-None-Match`` names it."""
    media_type = media_type or content_type(name)
    if has_etag(request.headers.get("if-none-match"), sha256):
        # The client has these bytes (the ETag is their hash): RFC 9110 13.1.2.
        validators = {"ETag": f'"{sha256}"', "Cache-Control": cache}
        return Response(content=b"", status_code=304, headers=validators)
    prefix = accel_prefix(node)
    if not prefix:
        path = node.blobs.path(sha256)
        return stored_file(
            request,
            path,
            media_type=media_type,
            filename=filename,
            disposition=disposition,
            etag=sha256,  # content-addressed: the strongest validator there is
            cache_control=cache,
            missing=unknown_file(),
        )
    node.blobs.path(sha256)  # raises on anything but a sha256: never a path of our making
    headers = {
        "X-Accel-Redirect": f"{prefix}{sha256[:2]}/{sha256[2:4]}/{sha256}",
        "Cache-Control": cache,
        "ETag": f'"{sha256}"',
        "Content-Disposition": f'{disposition}; filename="{filename}"',
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": SANDBOX,
    }
    return Response(content=b"", media_type=media_type, headers=headers)
