"""REST routes for messages, pins and reactions, at Discord v10 paths under ``/api/v1``.

Path ids that are not ids answer 404 (``unknown_channel``, ``unknown_message``, ...), like an
id that names nothing; query ids that are not ids answer 400.
"""

from __future__ import annotations

from litestar import Controller, delete, get, patch, post, put
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT

from miaou.accounts.models import User
from miaou.chat import attachments_api
from miaou.chat.message_models import (
    HISTORY_LIMIT_DEFAULT,
    REACTIONS_LIMIT_DEFAULT,
    Message,
    MessageCreate,
    MessagePatch,
    MessageVersion,
)
from miaou.chat.messages import MessageService
from miaou.chat.reactions import ReactionService
from miaou.http.auth import node_of, principal
from miaou.http.params import AnyRequest, Who, audit_reason, path_id, query_id

MESSAGE = "/{channel_id:str}/messages/{message_id:str}"
REACTION = MESSAGE + "/reactions/{emoji:str}"


def _messages(request: AnyRequest) -> MessageService:
    return node_of(request).messages


def _reactions(request: AnyRequest) -> ReactionService:
    return node_of(request).messages.reactions


class MessagesController(Controller):
    path = "/api/v1/channels"
    tags = ["messages"]
    dependencies = {"who": principal}

    @post(
        "/{channel_id:str}/messages",
        status_code=HTTP_200_OK,  # Discord answers a send with 200
        summary="Send a message (SEND_MESSAGES; SEND_MESSAGES_IN_THREADS in a thread)",
        # A multipart/form-data send (with files) is taken before the JSON body is parsed.
        before_request=attachments_api.multipart_send,
    )
    async def send(
        self,
        request: AnyRequest,
        who: Who,
        channel_id: FromPath[str],
        data: JSONBody[MessageCreate],
    ) -> Message:
        """A `nonce` makes the send idempotent: the same nonce from the same author within
        5 minutes answers with the first message. Slow mode answers 429 `slowmode`.

        With files, send `multipart/form-data` instead: a `payload_json` part holding this
        JSON (`content` may then be empty) and up to 10 file parts `files[0]`..`files[9]`,
        each at most `max_attachment_bytes` (413 `payload_too_large`; 11 files: 400
        `max_attachments`). Needs ATTACH_FILES (403). Types are sniffed from the bytes;
        images (PNG, JPEG, GIF, WEBP) get `width`, `height` and a thumbnail (`proxy_url`)."""
        return await _messages(request).send(who.user_id, path_id(channel_id, "channel"), data)

    @get(
        "/{channel_id:str}/messages",
        summary="Message history, newest first (READ_MESSAGE_HISTORY)",
    )
    async def history(
        self,
        request: AnyRequest,
        who: Who,
        channel_id: FromPath[str],
        before: FromQuery[str | None] = None,
        after: FromQuery[str | None] = None,
        around: FromQuery[str | None] = None,
        limit: FromQuery[int] = HISTORY_LIMIT_DEFAULT,
    ) -> list[Message]:
        """At most one of `before`, `after`, `around`; `limit` 1 to 100."""
        return await _messages(request).history(
            who.user_id,
            path_id(channel_id, "channel"),
            before=query_id(before, "before"),
            after=query_id(after, "after"),
            around=query_id(around, "around"),
            limit=limit,
        )

    @get(MESSAGE, summary="One message (READ_MESSAGE_HISTORY)")
    async def read(
        self, request: AnyRequest, who: Who, channel_id: FromPath[str], message_id: FromPath[str]
    ) -> Message:
        return await _messages(request).get(
            who.user_id, path_id(channel_id, "channel"), path_id(message_id, "message")
        )

    @patch(MESSAGE, summary="Edit my message; the previous content is kept as a version")
    async def edit(
        self,
        request: AnyRequest,
        who: Who,
        channel_id: FromPath[str],
        message_id: FromPath[str],
        data: JSONBody[MessagePatch],
    ) -> Message:
        return await _messages(request).edit(
            who.user_id, path_id(channel_id, "channel"), path_id(message_id, "message"), data
        )

    @delete(
        MESSAGE,
        status_code=HTTP_204_NO_CONTENT,
        summary="Delete a message (mine, or anyone's with MANAGE_MESSAGES)",
    )
    async def remove(
        self, request: AnyRequest, who: Who, channel_id: FromPath[str], message_id: FromPath[str]
    ) -> None:
        await _messages(request).delete(
            who.user_id,
            path_id(channel_id, "channel"),
            path_id(message_id, "message"),
            audit_reason(request),
        )

    @get(MESSAGE + "/versions", summary="Earlier versions of an edited message, oldest first")
    async def versions(
        self, request: AnyRequest, who: Who, channel_id: FromPath[str], message_id: FromPath[str]
    ) -> list[MessageVersion]:
        return await _messages(request).versions(
            who.user_id, path_id(channel_id, "channel"), path_id(message_id, "message")
        )

    # -- pins -----------------------------------------------------------------------------
    @post(
        "/{channel_id:str}/typing",
        status_code=HTTP_204_NO_CONTENT,
        summary="Show that you are typing, for 10 s (SEND_MESSAGES)",
    )
    async def typing(self, request: AnyRequest, who: Who, channel_id: FromPath[str]) -> None:
        """Announces TYPING_START on the gateway; repeats within 5 s announce nothing."""
        await node_of(request).typing.start(who.user_id, path_id(channel_id, "channel"))

    @get("/{channel_id:str}/pins", summary="Pinned messages, last pinned first")
    async def pins(self, request: AnyRequest, who: Who, channel_id: FromPath[str]) -> list[Message]:
        return await _messages(request).pins(who.user_id, path_id(channel_id, "channel"))

    @put(
        "/{channel_id:str}/pins/{message_id:str}",
        status_code=HTTP_204_NO_CONTENT,
        summary="Pin a message (MANAGE_MESSAGES; at most 50 per channel)",
    )
    async def pin(
        self, request: AnyRequest, who: Who, channel_id: FromPath[str], message_id: FromPath[str]
    ) -> None:
        await _messages(request).pin(
            who.user_id,
            path_id(channel_id, "channel"),
            path_id(message_id, "message"),
            audit_reason(request),
        )

    @delete(
        "/{channel_id:str}/pins/{message_id:str}",
        status_code=HTTP_204_NO_CONTENT,
        summary="Unpin a message (MANAGE_MESSAGES)",
    )
    async def unpin(
        self, request: AnyRequest, who: Who, channel_id: FromPath[str], message_id: FromPath[str]
    ) -> None:
        await _messages(request).unpin(
            who.user_id,
            path_id(channel_id, "channel"),
            path_id(message_id, "message"),
            audit_reason(request),
        )

    # -- reactions ------------------------------------------------------------------------
    @put(
        REACTION + "/@me",
        status_code=HTTP_204_NO_CONTENT,
        summary="React (ADD_REACTIONS for an emoji not yet on the message)",
    )
    async def react(
        self,
        request: AnyRequest,
        who: Who,
        channel_id: FromPath[str],
        message_id: FromPath[str],
        emoji: FromPath[str],
    ) -> None:
        """`emoji`: a URL-encoded unicode emoji, or `name:id` for a custom one."""
        await _reactions(request).add(
            who.user_id, path_id(channel_id, "channel"), path_id(message_id, "message"), emoji
        )

    @delete(REACTION + "/@me", status_code=HTTP_204_NO_CONTENT, summary="Remove my reaction")
    async def unreact_mine(
        self,
        request: AnyRequest,
        who: Who,
        channel_id: FromPath[str],
        message_id: FromPath[str],
        emoji: FromPath[str],
    ) -> None:
        await _reactions(request).remove(
            who.user_id,
            path_id(channel_id, "channel"),
            path_id(message_id, "message"),
            emoji,
            who.user_id,
        )

    @delete(
        REACTION + "/{user_id:str}",
        status_code=HTTP_204_NO_CONTENT,
        summary="Remove someone's reaction (MANAGE_MESSAGES)",
    )
    async def unreact(
        self,
        request: AnyRequest,
        who: Who,
        channel_id: FromPath[str],
        message_id: FromPath[str],
        emoji: FromPath[str],
        user_id: FromPath[str],
    ) -> None:
        await _reactions(request).remove(
            who.user_id,
            path_id(channel_id, "channel"),
            path_id(message_id, "message"),
            emoji,
            path_id(user_id, "user"),
        )

    @get(REACTION, summary="Who reacted with an emoji, by user id")
    async def reactors(
        self,
        request: AnyRequest,
        who: Who,
        channel_id: FromPath[str],
        message_id: FromPath[str],
        emoji: FromPath[str],
        after: FromQuery[str | None] = None,
        limit: FromQuery[int] = REACTIONS_LIMIT_DEFAULT,
    ) -> list[User]:
        return await _reactions(request).users(
            who.user_id,
            path_id(channel_id, "channel"),
            path_id(message_id, "message"),
            emoji,
            after=query_id(after, "after"),
            limit=limit,
        )


routes = [MessagesController, *attachments_api.routes]
