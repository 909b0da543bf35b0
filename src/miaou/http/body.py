"""A request body read straight from the ASGI stream, for uploads parsed as they arrive
(multipart forms of attachments and tracks) rather than buffered by the framework."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from miaou.errors import InvalidInput, PayloadTooLarge
from miaou.storage.blobs import BlobWriter

# Litestar's receive is typed with its own event types; only "type", "body", "more_body"
# are read here.
Receive = Callable[[], Awaitable[Any]]


async def body_chunks(
    receive: Receive, limit: int, too_large: Callable[[], PayloadTooLarge]
) -> AsyncIterator[bytes]:
    """The body's chunks as they come; ``too_large()`` is raised once more than ``limit``
    bytes arrived, InvalidInput if the client goes away."""
    received = 0
    while True:
        message: Any = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidInput(
                "Invalid multipart body: the client disconnected.",
                errors={"body": ["the client disconnected"]},
            )
        body: bytes = message.get("body", b"")
        if body:
            received += len(body)
            if received > limit:
                raise too_large()
            yield body
        if not message.get("more_body", False):
            return


async def drain(stream: AsyncIterator[bytes]) -> None:
    """Read (and drop) the rest of a refused upload, bounded by its cap, so the client gets
    our answer rather than a connection reset in the middle of its upload."""
    try:
        async for _ in stream:
            pass
    except (PayloadTooLarge, InvalidInput):
        pass  # past the cap, or gone: answer now, the connection will close


@dataclass
class FormPart:
    """One part of a multipart form being read: a file streaming into the blob store
    (``writer``), or a small field gathered in memory up to ``limit`` bytes."""

    name: str
    filename: str | None = None
    writer: BlobWriter | None = None
    data: bytearray = field(default_factory=bytearray)
    limit: int = 0
