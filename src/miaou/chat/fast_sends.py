"""The fast path for JSON message sends: ``POST /api/v1/channels/{id}/messages`` answered in
front of the framework.

Sends are the API's hottest write: every chat client, every bot, the 50 senders of the
sends benchmark. For a send, Litestar's routing, dependency injection, signature model and
response objects cost about as much CPU as the send itself (body, access, statements,
event, answer): measured in ``docs/benchmarks.md`` ("A send in front of the framework").
This ASGI layer sits between the observability middleware (request id, metrics, access
log: all kept) and Litestar, and answers a plain JSON send with the route's own parts, in
the route's order:

1. the per-IP rate limit of the route's group, and the ``X-RateLimit-*`` headers
   (:func:`miaou.http.ratelimit.guard`, the rate-limit middleware's own code);
2. the body, decoded into :class:`MessageCreate` as Litestar decodes it (lax msgspec);
3. the bearer token (``AccountService.authenticate``) and the per-user limit;
4. ``MessageService.send``; the message encoded by Litestar's JSON encoder.

Errors are answered in the API's one shape by :mod:`miaou.http.errors` (a failure of ours
is logged there as the route's would be). What it does not take goes to the route, which
says everything else in its own words: other paths and methods, multipart sends (files), a
body without ``content-length`` or larger than ``max_body_bytes``, and a body that does not
decode (the route words the field errors; nothing has been counted or written by then).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec
from litestar.serialization import encode_json

from miaou.chat.message_models import MessageCreate
from miaou.http.auth import bearer_token_of
from miaou.http.errors import send_error, translate
from miaou.http.params import path_id
from miaou.http.ratelimit import DEFAULT_GROUP, guard
from miaou.types import Message, Receive, Scope, Send

if TYPE_CHECKING:
    from miaou.app import Node

# The route's template, as Litestar names it in metrics and logs.
ROUTE = "/api/v1/channels/{channel_id}/messages"
_PATH = re.compile(r"/api/v1/channels/([^/]+)/messages")
_JSON = [(b"content-type", b"application/json")]
# Litestar's own ASGI types are narrower than ours: any ASGI callable will do.
App = Callable[[Any, Any, Any], Awaitable[None]]


class FastSends:
    def __init__(self, app: App, node: Node) -> None:
        self.app = app
        self.node = node
        #: Sends answered here (tests, and a look at how much traffic takes this path).
        self.answered = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        taken = self._taken(scope)
        if taken is None:
            await self.app(scope, receive, send)
            return
        channel, authorization = taken
        body = await _body(receive)
        if body is None:
            return  # the client went away before its body arrived: nobody to answer
        try:
            data = msgspec.json.decode(body, type=MessageCreate, strict=False)
        except msgspec.MsgspecError:
            await self.app(scope, _replay(body, receive), send)
            return
        scope["path_template"] = ROUTE
        await self._send(scope, send, channel, authorization, data)

    def _taken(self, scope: Scope) -> tuple[str, str] | None:
        """(channel path segment, Authorization header) of a send this path takes, or
        None."""
        if scope["type"] != "http" or scope["method"] != "POST":
            return None
        match = _PATH.fullmatch(scope["path"])
        if match is None:
            return None
        length, authorization = None, b""
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value
            elif name == b"authorization":
                authorization = value
            elif name == b"transfer-encoding" or (
                name == b"content-type" and value[:10].lower() == b"multipart/"
            ):
                return None
        if length is None or not length.isdigit():
            return None
        if int(length) > self.node.settings.max_body_bytes:
            return None
        return match[1], authorization.decode("latin-1")

    async def _send(
        self, scope: Scope, send: Send, channel: str, authorization: str, data: MessageCreate
    ) -> None:
        node = self.node
        try:
            send_limited = await guard(node.rate_limits, scope, DEFAULT_GROUP, send)
        except Exception as exc:  # the limits' store is down (503), as the route says it
            await send_error(translate(exc, ROUTE), send)
            return
        if send_limited is None:
            return  # answered 429
        try:
            who = await node.accounts.authenticate(bearer_token_of(authorization))
            await node.rate_limits.check_user(scope, who.user_id, DEFAULT_GROUP)
            message = await node.messages.send(who.user_id, path_id(channel, "channel"), data)
        except Exception as exc:  # answered in the API's shape; a 5xx is logged
            await send_error(translate(exc, ROUTE), send_limited)
            return
        body = encode_json(message)
        headers = [*_JSON, (b"content-length", b"%d" % len(body))]
        await send_limited({"type": "http.response.start", "status": 200, "headers": headers})
        await send_limited({"type": "http.response.body", "body": body})
        self.answered += 1


async def _body(receive: Receive) -> bytes | None:
    """The whole request body (its length is bounded by the caller), or None on a
    disconnect."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the route the body already read, then the client's own."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        message: dict[str, Any] = {"type": "http.request", "body": body, "more_body": False}
        return message

    return replay
