"""``GET /api/v1/node``: what a client needs to know about a node before signing in.

Public (no token): a registration form asks it whether accounts are open, need an invite
code or are closed, and shows the node's limits before a user runs into them.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, get

from miaou import __version__
from miaou.chat.message_models import CONTENT_MAX
from miaou.config import MAX_ATTACHMENTS, RegistrationMode
from miaou.http.auth import node_of


class NodeLimits(msgspec.Struct, kw_only=True):
    message_characters: int
    attachments_per_message: int
    attachment_bytes: int
    track_bytes: int
    track_seconds: int


class NodeInfo(msgspec.Struct, kw_only=True):
    version: str
    #: ``open``: anyone may register; ``invite``: with a registration invite code
    #: (``invite_code``); ``closed``: accounts are made by an administrator.
    registration: RegistrationMode
    limits: NodeLimits


@get("/api/v1/node", tags=["operations"], summary="The node: version, registration, limits")
async def node_info(request: Request[Any, Any, Any]) -> NodeInfo:
    settings = node_of(request).settings
    return NodeInfo(
        version=__version__,
        registration=settings.registration,
        limits=NodeLimits(
            message_characters=CONTENT_MAX,
            attachments_per_message=MAX_ATTACHMENTS,
            attachment_bytes=settings.max_attachment_bytes,
            track_bytes=settings.max_track_bytes,
            track_seconds=settings.max_track_seconds,
        ),
    )


routes = [node_info]
