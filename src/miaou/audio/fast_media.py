"""The fast path for HLS listeners: repeat requests for segments of public tracks.

A listener asks for the next ~6 s segment every ~6 s, thousands of listeners at once: the
same few URLs, ``/api/v1/tracks/{id}/media/{version}/hls/{variant}/{segment}``, whose
bytes never change. Once the full route has answered one (which checks the track is
public, released and ready, and caches which blob it is, ``media_files``), this ASGI
layer in front of the framework answers the next ones from that cache: one per-IP rate
check, one read of the file, two sends, a metrics sample; no routing, no middleware
stack, no log line (as a web server's access log is off for media). Measured in
``bench/bench_segments.py``.

Anything else goes through untouched: other paths, signed URLs, range or conditional
requests, a lookup not in the cache (the full route then fills it), X-Accel-Redirect
mode, a rate-limited client (the full route answers 429 with its headers).
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from miaou.audio import media_files
from miaou.errors import RateLimited
from miaou.types import ASGIApp

if TYPE_CHECKING:
    from miaou.app import Node

ROUTE = "/api/v1/tracks/{track_id}/media/{token}/hls/{name}"
_SEGMENT = re.compile(
    r"/api/v1/tracks/(\d{1,19})/media/(\d{1,10})/hls/([A-Za-z0-9_]{1,32}/[A-Za-z0-9_.-]{1,64})",
    re.ASCII,
)
_PASS_HEADERS = (b"range", b"if-range", b"if-none-match", b"if-modified-since")


def _read(path: Path) -> bytes:
    with path.open("rb") as file:
        return file.read(media_files.FAST_MAX_BYTES + 1)


class FastSegments:
    def __init__(self, app: ASGIApp, node: Node) -> None:
        self.app = app
        self.node = node

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or not await self._answer(scope, send)
        ):
            await self.app(scope, receive, send)

    async def _answer(self, scope: Any, send: Any) -> bool:
        """Serve the request from the cache; False (nothing sent) to let the route do it."""
        match = _SEGMENT.fullmatch(scope["path"])
        if match is None or media_files.accel_prefix(self.node):
            return False
        if any(name in _PASS_HEADERS for name, _ in scope["headers"]):
            return False
        track_id, version, name = int(match[1]), int(match[2]), match[3]
        if not media_files.is_media(name):
            return False
        sha256 = media_files.cached_public(self.node.db, track_id, version, name)
        if sha256 is None:
            return False
        try:
            await self.node.rate_limits.check_ip(scope, "api")
        except RateLimited:
            return False
        start = time.perf_counter()
        try:
            body = await asyncio.to_thread(_read, self.node.blobs.path(sha256))
        except OSError:
            return False  # gone meanwhile: the route says so properly
        if len(body) > media_files.FAST_MAX_BYTES:
            return False
        headers = [
            (b"content-type", media_files.content_type(name).encode()),
            (b"content-length", str(len(body)).encode()),
            (b"etag", f'"{sha256}"'.encode()),
            (
                b"cache-control",
                media_files.cache_control(name, pinned=True, seconds_left=None).encode(),
            ),
            (b"accept-ranges", b"bytes"),
            (
                b"content-disposition",
                f'inline; filename="{media_files.download_name(name)}"'.encode(),
            ),
            (b"x-content-type-options", b"nosniff"),
            (b"content-security-policy", media_files.SANDBOX.encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        self.node.metrics.observe_request("GET", ROUTE, 200, time.perf_counter() - start)
        return True
