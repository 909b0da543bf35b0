"""Serving the web client: ``index.html`` for the client's own routes, files under ``/static``.

There is no build step: the files in ``static/`` are what the browser gets. They are read
from the package on first use and kept in memory until their modification time or size
changes (so an edited file is served at once, without a restart). Each has its SHA-256 as
ETag and ``Cache-Control: no-cache``: browsers keep them and revalidate (their names carry
no content hash to make a longer cache safe).

Every response here (files, ``304``, ``404``) carries a strict Content-Security-Policy, so
the client can run no inline script or style and load nothing from elsewhere. These routes
are left out of the OpenAPI schema and of rate limiting (a page load fetches a dozen
modules). The client's routes are listed one by one, not caught all, so nothing under
``/api``, ``/gateway``, ``/healthz``, ``/readyz`` or ``/metrics`` can be shadowed.
"""

from __future__ import annotations

import hashlib
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
from litestar import Request, Response, get
from litestar.params import FromPath
from litestar.status_codes import HTTP_200_OK, HTTP_304_NOT_MODIFIED, HTTP_404_NOT_FOUND

STATIC_DIR = Path(__file__).parent / "static"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "media-src 'self' blob:; connect-src 'self' ws: wss:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
CACHE_CONTROL = "no-cache"
# Only these kinds of file are served; anything else in the folder is not. (Litestar adds
# "; charset=utf-8" to text/* types itself.)
MEDIA_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".woff2": "font/woff2",
}
WEB = {"rate_limit": None}


@dataclass(frozen=True)
class StaticFile:
    stamp: tuple[int, int]  # modification time (ns) and size when read
    body: bytes
    etag: str
    media_type: str


class StaticFiles:
    """The files of one folder, by relative path; never a path outside it."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._cache: dict[str, StaticFile] = {}

    def find(self, relative: str) -> StaticFile | None:
        parts = relative.strip("/").split("/")
        if not relative or any(not p or p.startswith(".") or "\\" in p for p in parts):
            return None  # empty segments, "." and "..", hidden files
        media_type = MEDIA_TYPES.get(Path(parts[-1]).suffix.lower())
        if media_type is None:
            return None
        path = self.root.joinpath(*parts)
        try:
            info = path.stat()
        except OSError:
            return None
        if not stat.S_ISREG(info.st_mode) or not path.resolve().is_relative_to(self.root):
            return None
        key = "/".join(parts)
        stamp = (info.st_mtime_ns, info.st_size)
        cached = self._cache.get(key)
        if cached is not None and cached.stamp == stamp:
            return cached
        try:
            body = path.read_bytes()
        except OSError:
            return None
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        found = StaticFile(stamp, body, etag, media_type)
        self._cache[key] = found
        return found


files = StaticFiles(STATIC_DIR)


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


def _serve(request: Request[Any, Any, Any], relative: str) -> Response[bytes]:
    found = files.find(relative)
    if found is None:
        body = msgspec.json.encode({"code": "not_found", "message": "No such file.", "errors": {}})
        return Response(
            body,
            status_code=HTTP_404_NOT_FOUND,
            media_type="application/json",
            headers={**SECURITY_HEADERS, "Cache-Control": "no-store"},
        )
    headers = {**SECURITY_HEADERS, "Cache-Control": CACHE_CONTROL, "ETag": found.etag}
    if _matches(request.headers.get("if-none-match"), found.etag):
        return Response(b"", status_code=HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(
        found.body, status_code=HTTP_200_OK, media_type=found.media_type, headers=headers
    )


@get("/static/{path:path}", include_in_schema=False, opt=WEB)
async def static_file(request: Request[Any, Any, Any], path: FromPath[str]) -> Response[bytes]:
    return _serve(request, path)


@get(["/", "/login", "/register"], include_in_schema=False, opt=WEB)
async def client_page(request: Request[Any, Any, Any]) -> Response[bytes]:
    return _serve(request, "index.html")


@get("/channels/{rest:path}", include_in_schema=False, opt=WEB)
async def channel_page(request: Request[Any, Any, Any], rest: FromPath[str]) -> Response[bytes]:
    """``/channels/{guild}/{channel}[/{message}]`` and ``/channels/@me``: client routes."""
    return _serve(request, "index.html")


@get("/invite/{code:str}", include_in_schema=False, opt=WEB)
async def invite_page(request: Request[Any, Any, Any], code: FromPath[str]) -> Response[bytes]:
    return _serve(request, "index.html")


@get(["/tracks", "/tracks/{track:str}"], include_in_schema=False, opt=WEB)
async def tracks_page(
    request: Request[Any, Any, Any], track: FromPath[str | None] = None
) -> Response[bytes]:
    """``/tracks`` (the feed), ``/tracks/upload`` and ``/tracks/{id}``: client routes."""
    return _serve(request, "index.html")


routes = [static_file, client_page, channel_page, invite_page, tracks_page]
