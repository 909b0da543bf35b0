"""The fast paths for HLS listeners: repeat requests for segments of public tracks.

A listener asks for the next ~6 s segment every ~6 s, thousands of listeners at once: the
same few URLs, ``/api/v1/tracks/{id}/media/{version}/hls/{variant}/{segment}``, whose
bytes never change. Once the full route has answered one (which checks the track is
public, released and playable, and caches which blob it is for a few seconds,
``media_files``), the next ones are answered from that lookup cache, in two tiers:

- below ASGI, in uvicorn's HTTP protocol (:mod:`miaou.audio.segment_protocol`), when the
  answer is already built in memory (:mod:`miaou.audio.segment_cache`): one write;
- otherwise by this ASGI layer in front of the framework, which reads the file, answers,
  and keeps the answer in memory for the protocol: one per-IP rate check, one read (shared
  by concurrent requests for the file), two sends, a metrics sample.

Neither routes, runs the middleware stack or logs a line (as a web server's access log is
off for media); their answers have the route's headers but the per-request ones
(``X-Request-ID``, ``X-RateLimit-*``). Lookups are kept fresh under steady traffic by
:mod:`miaou.audio.lookup_refresh`. After a quiet spell, when listeners come back together,
only the first request for a file takes the route: the others for that file wait for its
lookup here, rather than each taking the route (which would pile up a query, a file read
and the framework per request, and slow the first down in turn). Measured in
``bench/bench_segments.py``.

Anything else goes through untouched: other paths, signed URLs, range or conditional
requests, a file or track the lookup does not find (the route answers 404),
X-Accel-Redirect mode, a rate-limited client (the route answers 429 with its headers).
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from miaou.audio import media_files, segment_cache
from miaou.audio.lookup_refresh import refresher
from miaou.errors import RateLimited
from miaou.types import ASGIApp

if TYPE_CHECKING:
    from miaou.app import Node

ROUTE = "/api/v1/tracks/{track_id}/media/{token}/hls/{name}"
# Track id, version (a signed token has dots: never here), variant/file.
SEGMENT_PATH = (
    r"/api/v1/tracks/(\d{1,19})/media/(\d{1,10})/hls/([A-Za-z0-9_]{1,32}/[A-Za-z0-9_.-]{1,64})"
)
_SEGMENT = re.compile(SEGMENT_PATH, re.ASCII)
# Requests carrying one of these take the full route: ranges and validators (206, 304),
# preconditions, a body.
PASS_HEADERS = frozenset(
    {
        b"range",
        b"if-range",
        b"if-none-match",
        b"if-modified-since",
        b"if-match",
        b"if-unmodified-since",
        b"content-length",
        b"transfer-encoding",
        b"expect",
    }
)
# How long a request waits for the route's lookup of the same file before taking the
# route itself.
LEAD_WAIT_S = 5.0

File = tuple[int, int, str]  # track id, version, name


def _read(path: Path) -> bytes:
    with path.open("rb") as file:
        return file.read(media_files.FAST_MAX_BYTES + 1)


class FastSegments:
    def __init__(self, app: ASGIApp, node: Node) -> None:
        self.app = app
        self.node = node
        self.answers = segment_cache.of(node)
        self.lookups = refresher(node)
        # Files whose first request is with the route: later ones wait for its lookup.
        self.leading: dict[File, asyncio.Event] = {}
        # Answers being read from their files: concurrent requests share the read.
        self.reading: dict[tuple[str, str], asyncio.Task[segment_cache.Answer | None]] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        file = self._file(scope)
        if file is None:
            await self.app(scope, receive, send)
            return
        waited = file in self.leading
        if await self._answer(file, scope, send):
            return
        if waited or file in self.leading or self.lookups.lookup(*file) is not None:
            await self.app(scope, receive, send)  # 404, 429, a file gone: the route says
            return
        done = self.leading[file] = asyncio.Event()
        try:
            await self.app(scope, receive, send)
        finally:
            del self.leading[file]
            done.set()

    def _file(self, scope: Any) -> File | None:
        """The file a request may be answered here, or None."""
        if scope["type"] != "http" or scope["method"] != "GET":
            return None
        match = _SEGMENT.fullmatch(scope["path"])
        if match is None or media_files.accel_prefix(self.node):
            return None
        if any(name in PASS_HEADERS for name, _ in scope["headers"]):
            return None
        if not media_files.is_media(match[3]):
            return None
        return int(match[1]), int(match[2]), match[3]

    async def _answer(self, file: File, scope: Any, send: Any) -> bool:
        """Serve the request from the caches; False (nothing sent) to let the route do it."""
        sha256 = self.lookups.lookup(*file)
        if sha256 is None and (leader := self.leading.get(file)) is not None:
            try:
                await asyncio.wait_for(leader.wait(), LEAD_WAIT_S)
            except TimeoutError:
                return False
            sha256 = self.lookups.lookup(*file)
        if sha256 is None:
            return False
        try:
            await self.node.rate_limits.check_ip(scope, "api")
        except RateLimited:
            return False
        start = time.perf_counter()
        name = file[2]
        answer = self.answers.get(sha256, name) or await self._read_answer(sha256, name)
        if answer is None:
            return False  # gone meanwhile, or too large: the route says so properly
        await send({"type": "http.response.start", "status": 200, "headers": answer.headers})
        await send({"type": "http.response.body", "body": answer.body})
        self.node.metrics.observe_request("GET", ROUTE, 200, time.perf_counter() - start)
        return True

    async def _read_answer(self, sha256: str, name: str) -> segment_cache.Answer | None:
        key = (sha256, name)
        reading = self.reading.get(key)
        if reading is None:
            reading = self.reading[key] = asyncio.ensure_future(self._build(sha256, name))
            reading.add_done_callback(lambda _: self.reading.pop(key, None))
        return await asyncio.shield(reading)

    async def _build(self, sha256: str, name: str) -> segment_cache.Answer | None:
        try:
            body = await asyncio.to_thread(_read, self.node.blobs.path(sha256))
        except OSError:
            return None
        if len(body) > media_files.FAST_MAX_BYTES:
            return None
        answer = segment_cache.Answer(sha256, name, body)
        self.answers.put(sha256, name, answer)
        return answer
