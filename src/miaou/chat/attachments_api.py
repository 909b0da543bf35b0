"""Attachments over HTTP: the multipart form of a send, and serving the files.

A send with files is ``POST /api/v1/channels/{id}/messages`` as ``multipart/form-data``
(Discord's shape). It is taken by :func:`multipart_send`, the send route's
``before_request`` hook, so the JSON form of that route (its parsing, its 1 MiB limit, its
OpenAPI schema) stays exactly as it is. The hook reads the raw body itself
(:mod:`miaou.chat.uploads`), because Litestar would parse the whole form first, under one
route-wide limit, spooled outside the media store.

Files are served only to those who can view the channel and read its history, with 404 for
everyone else (as for the channel itself) and once the message is deleted. Nothing is
rendered inline unless it is a verified raster image, audio or video: HTML, SVG and the rest
download as attachments, with ``nosniff`` and a sandboxing CSP besides.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
import structlog
from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.exceptions import ValidationException
from litestar.params import FromPath

from miaou.accounts.service import Principal
from miaou.chat.access import channel_access
from miaou.chat.attachment_rows import find_attachment
from miaou.chat.media import IMAGE_TYPES
from miaou.chat.message_models import Message, MessageCreateWithFiles
from miaou.chat.permissions import Permission
from miaou.chat.uploads import PAYLOAD_PART, Upload, UploadReader
from miaou.errors import InvalidInput, NotFound
from miaou.http.auth import node_of, principal, provide_principal
from miaou.http.params import path_id
from miaou.http.ranges import stored_file

if TYPE_CHECKING:
    from sqlalchemy.engine import Row

    from miaou.app import Node

AnyRequest = Request[Any, Any, Any]
Who = NamedDependency[Principal]
CACHE_CONTROL = "private, max-age=3600"
log = structlog.get_logger("miaou.attachments")


def unknown_attachment() -> NotFound:
    return NotFound("No such attachment.", code="unknown_attachment")


# -- sending ------------------------------------------------------------------------------
async def multipart_send(request: AnyRequest) -> Message | None:
    """Take a multipart send; ``None`` lets any other body through to the JSON handler."""
    if not _may_be_multipart(request):
        return None
    media_type, options = _content_type(request)
    if media_type != "multipart/form-data":
        return None
    boundary = options.get("boundary")
    if not boundary:
        raise InvalidInput("multipart/form-data needs a boundary.")
    node = node_of(request)
    who = await provide_principal(request)
    channel_id = path_id(request.path_params["channel_id"], "channel")
    # Refused before a byte is read: an outsider or a member without ATTACH_FILES cannot
    # make the node store anything. (So the form is for sends with files: a member without
    # ATTACH_FILES sends text as JSON.)
    async with node.db.read() as conn:
        access = await channel_access(conn, channel_id, who.user_id, node.messages.clock())
        access.require(Permission.ATTACH_FILES)
    service = node.messages
    reader = UploadReader(service.media, node.settings)
    upload = Upload()
    sent: Message | None = None
    try:
        upload = await reader.read(request.receive, boundary, request.content_length)
        sent = await service.send(who.user_id, channel_id, _payload(upload.payload), upload.files)
    finally:
        await _settle(node, reader, upload, sent)
    return sent


def _may_be_multipart(request: AnyRequest) -> bool:
    """A quick look at the raw header before Litestar parses it (most sends are JSON, and
    the parse costs more than the rest of this hook)."""
    for name, value in request.scope["headers"]:
        if name == b"content-type":
            return value[:10].lower() == b"multipart/"
    return False


def _content_type(request: AnyRequest) -> tuple[str, dict[str, str]]:
    media_type, options = request.content_type
    return media_type.lower(), options


def _payload(raw: bytes | None) -> MessageCreateWithFiles:
    if raw is None:
        return MessageCreateWithFiles()
    try:
        return msgspec.json.decode(raw, type=MessageCreateWithFiles)
    except msgspec.ValidationError as exc:
        # The JSON route's errors come through this exception: same shape for both forms.
        raise ValidationException(extra=[{"message": str(exc)}]) from None
    except msgspec.DecodeError:
        raise InvalidInput(
            "payload_json is not valid JSON.", errors={PAYLOAD_PART: ["is not valid JSON"]}
        ) from None


async def _settle(node: Node, reader: UploadReader, upload: Upload, sent: Message | None) -> None:
    """Release the upload's blobs; remove them unless the new message names them (it does
    not if the send failed, or a nonce answered with an earlier message)."""
    blobs = node.messages.blobs
    first = str(upload.files[0].id) if upload.files else None
    if sent is not None and first is not None and any(a.id == first for a in sent.attachments):
        blobs.release(reader.held)
        return
    try:
        await blobs.discard(node.db, reader.held)
    except Exception:  # the send's own outcome matters more; collect_garbage() retries
        log.exception("attachment_discard_failed")


# -- serving ------------------------------------------------------------------------------
def _inline(content_type: str) -> bool:
    return content_type in IMAGE_TYPES or content_type.startswith(("audio/", "video/"))


class AttachmentsController(Controller):
    path = "/api/v1/channels"
    tags = ["messages"]
    dependencies = {"who": principal}

    @get(
        "/{channel_id:str}/attachments/{attachment_id:str}/thumbnail",
        summary="An image attachment's thumbnail, WEBP, at most 400 px (READ_MESSAGE_HISTORY)",
    )
    async def thumbnail(
        self, request: AnyRequest, who: Who, channel_id: FromPath[str], attachment_id: FromPath[str]
    ) -> Response[Any]:
        row = await _readable(node_of(request), who, channel_id, attachment_id)
        if row.thumbnail_sha256 is None:
            raise unknown_attachment()
        stem = row.filename.rpartition(".")[0] or row.filename
        return _file(request, row.thumbnail_sha256, "image/webp", f"{stem}.webp")

    @get(
        "/{channel_id:str}/attachments/{attachment_id:str}/{filename:str}",
        summary="Download an attachment (READ_MESSAGE_HISTORY); single byte ranges served",
    )
    async def download(
        self,
        request: AnyRequest,
        who: Who,
        channel_id: FromPath[str],
        attachment_id: FromPath[str],
        filename: FromPath[str],
    ) -> Response[Any]:
        """The file is found by id; the name in the path is for the browser's save dialog."""
        row = await _readable(node_of(request), who, channel_id, attachment_id)
        return _file(request, row.sha256, row.content_type, row.filename)


async def _readable(
    node: Node, who: Principal, channel_text: str, attachment_text: str
) -> Row[Any]:
    channel_id = path_id(channel_text, "channel")
    attachment_id = path_id(attachment_text, "attachment")
    async with node.db.read() as conn:
        access = await channel_access(conn, channel_id, who.user_id, node.messages.clock())
        if not access.has(Permission.READ_MESSAGE_HISTORY):
            raise unknown_attachment()
        row = await find_attachment(conn, channel_id, attachment_id)
    if row is None:
        raise unknown_attachment()
    return row


def _file(request: AnyRequest, sha256: str, content_type: str, filename: str) -> Response[Any]:
    return stored_file(
        request,
        node_of(request).messages.blobs.path(sha256),
        media_type=content_type,
        filename=filename,
        disposition="inline" if _inline(content_type) else "attachment",
        etag=sha256,  # content-addressed: the hash is the strongest validator there is
        cache_control=CACHE_CONTROL,
        missing=unknown_attachment(),
    )


routes = [AttachmentsController]
