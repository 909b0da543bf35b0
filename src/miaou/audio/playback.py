"""Playback over HTTP: HLS playlists and segments, the progressive file with byte ranges,
waveforms, and the URLs the track API hands out for them.

Three URL forms reach the same files (:mod:`miaou.audio.media_files`):

- ``/api/v1/tracks/{id}/hls/...``, ``/stream``, ``/waveform.json|.dat``: the current
  version of a public, released, ready track; anything else is 404 ``unknown_track``.
  The URL does not name a version, so a new upload changes what it serves: every answer
  there is cached for five minutes only.
- ``/api/v1/tracks/{id}/media/{version}/...``: the same public rule, pinned to one
  version. This is what :func:`media_urls` hands out for public tracks: segments and the
  progressive file are then immutable for a year, and a player that fetched the master
  playlist of version 1 never gets segments of version 2 mixed in.
- ``/api/v1/tracks/{id}/media/{version}.{expires}.{signature}/...``: a signed token
  (:func:`miaou.audio.models.media_token`) that grants one version of one track until it
  expires, whatever the track's visibility; the API checked the viewer when it issued it.
  ``private, max-age=<seconds left>``.

The version or token is a path segment, so a playlist's relative URIs (``aac_128/
index.m3u8``, ``init.mp4``, ``seg_00000.m4s``) resolve under it with no rewriting.

Refusals a player can act on: 403 ``media_url_expired`` for a genuine token past its
expiry (fetch the track again for fresh URLs); 404 ``unknown_track`` for a forged or
malformed token, exactly as for a track that is not there.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol
from weakref import WeakKeyDictionary

from litestar import Controller, Response, get
from litestar.params import FromPath

from miaou.audio import media_files as files
from miaou.audio.models import MediaUrls, check_media_token, media_token
from miaou.audio.track_store import unknown_track
from miaou.db.secrets import node_secret
from miaou.errors import Forbidden
from miaou.http.auth import node_of
from miaou.http.params import AnyRequest, path_id
from miaou.ids import now_ms

if TYPE_CHECKING:
    from miaou.app import Node
    from miaou.db.engine import Database

# Unix ms; tests replace it to move time.
clock: Callable[[], int] = now_ms

# Signed expiries are rounded up to this step, so that requests for the same track within
# it get the same URLs, and a player's (and browser's) cache of them stays useful.
EXPIRY_STEP_S = 300
KEY_NAME = "media"
VERSION_MAX = 2**31 - 1  # tracks.version is an INTEGER
# ASCII only and bounded: ``str.isdigit`` takes "²", which ``int`` then refuses.
_SIGNED = re.compile(r"\d{1,10}\.\d{1,12}\.[0-9a-f]{32}", re.ASCII)
_VERSION = re.compile(r"\d{1,10}", re.ASCII)
_keys: WeakKeyDictionary[Database, bytes] = WeakKeyDictionary()


class TrackRef(Protocol):
    """What :func:`media_urls` reads of a track (a ``tracks`` row will do)."""

    @property
    def id(self) -> int: ...
    @property
    def version(self) -> int: ...
    @property
    def visibility(self) -> str: ...
    @property
    def release_at(self) -> int | None: ...


async def signing_key(node: Node) -> bytes:
    """The cluster's media signing key, read once per database handle (it never changes)."""
    key = _keys.get(node.db)
    if key is None:
        key = _keys[node.db] = await node_secret(node.db, KEY_NAME)
    return key


def signed_expiry(now_s: int, seconds: int) -> int:
    """When a URL issued at ``now_s`` expires: at least ``seconds`` later, on a step."""
    return math.ceil((now_s + seconds) / EXPIRY_STEP_S) * EXPIRY_STEP_S


def media_prefix(track_id: int, token: str) -> str:
    return f"/api/v1/tracks/{track_id}/media/{token}"


async def media_urls(node: Node, track: TrackRef, *, now: int | None = None) -> MediaUrls:
    """Where a viewer the rules let in plays ``track`` (which must be ready) from.

    Public released tracks get unsigned URLs pinned to the current version; everything
    else (unlisted, private, or scheduled and seen by its owner) signed ones, expiring
    after ``media_url_seconds``."""
    now = clock() if now is None else now
    released = track.release_at is None or track.release_at <= now
    if track.visibility == "public" and released:
        token, expires_at = str(track.version), None
    else:
        expires_s = signed_expiry(now // 1000, node.settings.media_url_seconds)
        token = media_token(await signing_key(node), track.id, track.version, expires_s)
        expires_at = expires_s * 1000
    prefix = media_prefix(track.id, token)
    return MediaUrls(
        hls=f"{prefix}/hls/{files.MASTER}",
        stream=f"{prefix}/stream",
        waveform_json=f"{prefix}/{files.WAVEFORM_JSON}",
        waveform_dat=f"{prefix}/{files.WAVEFORM_DAT}",
        expires_at=expires_at,
    )


def url_maker(node: Node) -> Callable[[TrackRef], Awaitable[MediaUrls]]:
    """What the track service calls for a ready track a viewer may play:
    ``node.tracks.media_urls = playback.url_maker(node)``."""
    return functools.partial(media_urls, node)


def media_url_expired() -> Forbidden:
    return Forbidden(
        "This media URL has expired; fetch the track again for fresh URLs.",
        code="media_url_expired",
    )


# -- serving --------------------------------------------------------------------------------
async def _unsigned(
    request: AnyRequest, track_text: str, name: str, filename: str | None = None
) -> Response[Any]:
    node = node_of(request)
    track_id = path_id(track_text, "track")
    sha256 = await files.public_file(node.db, track_id, name, clock())
    cache = files.cache_control(name, pinned=False, seconds_left=None)
    return files.media_response(
        request, node, sha256, name, filename or files.download_name(name), cache
    )


async def _tokened(
    request: AnyRequest, track_text: str, token: str, name: str, filename: str | None = None
) -> Response[Any]:
    node = node_of(request)
    track_id = path_id(track_text, "track")
    now = clock()
    seconds_left: int | None = None
    if _VERSION.fullmatch(token):  # a public track, pinned to a version
        version = int(token)
        if version > VERSION_MAX:
            raise unknown_track()
        sha256 = await files.public_file(node.db, track_id, name, now, version)
    elif _SIGNED.fullmatch(token):
        key = await signing_key(node)
        granted = check_media_token(key, track_id, token, now // 1000)
        if granted is None:
            # Expiry is checked before the signature: with no expiry, is it genuine?
            if check_media_token(key, track_id, token, 0) is not None:
                raise media_url_expired()
            raise unknown_track()
        version = granted
        seconds_left = int(token.split(".")[1]) - now // 1000
        sha256 = await files.granted_file(node.db, track_id, version, name)
    else:
        raise unknown_track()
    cache = files.cache_control(name, pinned=True, seconds_left=seconds_left)
    return files.media_response(
        request, node, sha256, name, filename or files.download_name(name), cache
    )


def _progressive_name(track_id: str) -> str:
    return f"{track_id}.m4a" if track_id.isascii() and track_id.isdigit() else "track.m4a"


class PlaybackController(Controller):
    """No authentication: what a URL reaches is decided by its form (see the module)."""

    path = "/api/v1/tracks/{track_id:str}"
    tags = ["playback"]

    @get("/hls/{name:path}", summary="HLS playlist or segment of a public released track")
    async def hls(
        self, request: AnyRequest, track_id: FromPath[str], name: FromPath[str]
    ) -> Response[Any]:
        return await _unsigned(request, track_id, files.hls_name(name))

    @get("/stream", summary="Progressive audio (AAC in MP4) of a public track; byte ranges")
    async def stream(self, request: AnyRequest, track_id: FromPath[str]) -> Response[Any]:
        return await _unsigned(request, track_id, files.PROGRESSIVE, _progressive_name(track_id))

    @get("/waveform.json", summary="Waveform peaks (peaks.js JSON) of a public track")
    async def waveform_json(self, request: AnyRequest, track_id: FromPath[str]) -> Response[Any]:
        return await _unsigned(request, track_id, files.WAVEFORM_JSON)

    @get("/waveform.dat", summary="Waveform peaks (audiowaveform binary) of a public track")
    async def waveform_dat(self, request: AnyRequest, track_id: FromPath[str]) -> Response[Any]:
        return await _unsigned(request, track_id, files.WAVEFORM_DAT)

    @get("/media/{token:str}/hls/{name:path}", summary="HLS file through a media URL")
    async def media_hls(
        self, request: AnyRequest, track_id: FromPath[str], token: FromPath[str],
        name: FromPath[str],
    ) -> Response[Any]:  # fmt: skip
        return await _tokened(request, track_id, token, files.hls_name(name))

    @get("/media/{token:str}/stream", summary="Progressive audio through a media URL")
    async def media_stream(
        self, request: AnyRequest, track_id: FromPath[str], token: FromPath[str]
    ) -> Response[Any]:
        return await _tokened(
            request, track_id, token, files.PROGRESSIVE, _progressive_name(track_id)
        )

    @get("/media/{token:str}/waveform.json", summary="Waveform JSON through a media URL")
    async def media_waveform_json(
        self, request: AnyRequest, track_id: FromPath[str], token: FromPath[str]
    ) -> Response[Any]:
        return await _tokened(request, track_id, token, files.WAVEFORM_JSON)

    @get("/media/{token:str}/waveform.dat", summary="Waveform binary through a media URL")
    async def media_waveform_dat(
        self, request: AnyRequest, track_id: FromPath[str], token: FromPath[str]
    ) -> Response[Any]:
        return await _tokened(request, track_id, token, files.WAVEFORM_DAT)


routes = [PlaybackController]
