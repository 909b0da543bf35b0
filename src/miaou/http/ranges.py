"""Serving a file with HTTP byte ranges (RFC 9110 section 14), which Litestar's ``File``
does not do: players seek in audio and video, and downloads resume.

One range per request, the case clients use. A request for several ranges gets the whole
file, which the RFC allows; a range that starts past the end gets 416; a malformed
``Range`` header, or an ``If-Range`` that does not match the file's ETag, is ignored and
the whole file is sent.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import structlog
from litestar import Request, Response
from litestar.datastructures import ETag
from litestar.response import File, Stream

from miaou.errors import MiaouError
from miaou.http.errors import error_response

log = structlog.get_logger("miaou.http")

CHUNK = 256 * 1024
# Files up to this size are read whole in one go (see file_response).
INLINE_MAX = CHUNK
_RANGE = re.compile(r"bytes=(\d{0,19})-(\d{0,19})")


class RangeNotSatisfiable(MiaouError):
    status = 416
    code = "range_not_satisfiable"
    default_message = "The requested range is not within the file."


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(first, last)`` (inclusive) of a single range, or None for the whole file."""
    match = _RANGE.fullmatch((header or "").strip())
    if match is None or match[1] == match[2] == "":
        return None
    if match[1] == "":  # "bytes=-N": the last N bytes
        suffix = int(match[2])
        if suffix == 0:
            raise RangeNotSatisfiable()
        return max(0, size - suffix), size - 1
    first = int(match[1])
    if match[2] and int(match[2]) < first:
        return None  # malformed: ignored
    if first >= size:
        raise RangeNotSatisfiable()
    last = int(match[2]) if match[2] else size - 1
    return first, min(last, size - 1)


def _read_all(path: Path, size: int) -> bytes:
    with path.open("rb") as file:
        return file.read(size)


async def _whole(path: Path, size: int) -> AsyncIterator[bytes]:
    yield await asyncio.to_thread(_read_all, path, size)


async def _read(path: Path, first: int, last: int) -> AsyncIterator[bytes]:
    with path.open("rb") as file:  # opening a file is quick; the reads go to a thread
        await asyncio.to_thread(file.seek, first)
        left = last - first + 1
        while left > 0:
            chunk = await asyncio.to_thread(file.read, min(CHUNK, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk


def _disposition(kind: str, filename: str) -> str:
    quoted = quote(filename)
    if quoted == filename:
        return f'{kind}; filename="{filename}"'
    return f"{kind}; filename*=utf-8''{quoted}"


def file_response(
    request: Request[Any, Any, Any],
    path: Path,
    stat: os.stat_result,
    *,
    media_type: str,
    filename: str,
    disposition: Literal["inline", "attachment"],
    etag: str,
    headers: dict[str, str],
) -> Response[Any]:
    """The whole file (``File``), or the one range asked for (206, streamed)."""
    headers = {**headers, "Accept-Ranges": "bytes"}
    wanted = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if if_range is not None and if_range.strip() != f'"{etag}"':
        wanted = None  # the client's copy is of another version: send it all
    try:
        span = byte_range(wanted, stat.st_size) if wanted else None
    except RangeNotSatisfiable as exc:
        # RFC 9110 15.5.17: say how long the file is, so a player can ask again.
        return error_response(exc, {"Content-Range": f"bytes */{stat.st_size}"})
    if span is None and stat.st_size <= INLINE_MAX:
        # Small files (segments, thumbnails) in one thread hand-off: ``File`` makes four
        # (open, stat, read, close), each a wake-up of the event loop.
        headers.update(
            {
                "Content-Length": str(stat.st_size),
                "Content-Disposition": _disposition(disposition, filename),
                "ETag": f'"{etag}"',
            }
        )
        return Stream(_whole(path, stat.st_size), media_type=media_type, headers=headers)
    if span is None:
        return File(
            path,
            stat_result=stat,
            filename=filename,
            media_type=media_type,
            content_disposition_type=disposition,
            etag=ETag(value=etag),
            headers=headers,
        )
    first, last = span
    headers.update(
        {
            "Content-Range": f"bytes {first}-{last}/{stat.st_size}",
            "Content-Length": str(last - first + 1),
            "Content-Disposition": _disposition(disposition, filename),
            "ETag": f'"{etag}"',
        }
    )
    return Stream(_read(path, first, last), status_code=206, media_type=media_type, headers=headers)


def stored_file(
    request: Request[Any, Any, Any],
    path: Path,
    *,
    media_type: str,
    filename: str,
    disposition: Literal["inline", "attachment"],
    etag: str,
    cache_control: str,
    missing: MiaouError,
) -> Response[Any]:
    """A user-supplied file from the media store, hardened: ``missing`` (a 404) if the
    file is gone, which a row naming it makes a bug (or a hand-cleaned media directory)."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        log.error("stored_file_missing", path=str(path))
        raise missing from None
    return file_response(
        request, path, stat, media_type=media_type, filename=filename,
        disposition=disposition, etag=etag,
        headers={
            "Cache-Control": cache_control,
            "X-Content-Type-Options": "nosniff",
            # Should a browser still open it as a document, it runs nothing and loads nothing.
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )  # fmt: skip
