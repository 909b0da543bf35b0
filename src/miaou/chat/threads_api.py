"""REST routes for threads and forum posts (Discord v10 paths)."""

from __future__ import annotations

from litestar import Controller, delete, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from miaou.chat.models import Channel
from miaou.chat.threads import ThreadCreate, ThreadMember
from miaou.http.auth import node_of, principal
from miaou.http.params import AnyRequest, Who, path_id
from miaou.ids import parse_id


class ThreadsController(Controller):
    path = "/api/v1/channels/{channel_id:str}"
    tags = ["threads"]
    dependencies = {"who": principal}

    @post(
        "/messages/{message_id:str}/threads", status_code=HTTP_201_CREATED,
        summary="Start a thread from a message",
    )  # fmt: skip
    async def from_message(
        self, request: AnyRequest, who: Who, channel_id: FromPath[str], message_id: FromPath[str],
        data: JSONBody[ThreadCreate],
    ) -> Channel:  # fmt: skip
        return await node_of(request).threads.create(
            who.user_id, path_id(channel_id, "channel"), data, from_message=message_id
        )

    @post("/threads", status_code=HTTP_201_CREATED, summary="Start a thread or a forum post")
    async def standalone(
        self, request: AnyRequest, who: Who, channel_id: FromPath[str],
        data: JSONBody[ThreadCreate],
    ) -> Channel:  # fmt: skip
        return await node_of(request).threads.create(
            who.user_id, path_id(channel_id, "channel"), data
        )

    @get("/threads", summary="Threads of a channel, newest first")
    async def threads(
        self, request: AnyRequest, who: Who, channel_id: FromPath[str],
        archived: FromQuery[bool] = False, before: FromQuery[str | None] = None,
        limit: FromQuery[int] = 50,
    ) -> list[Channel]:  # fmt: skip
        return await node_of(request).threads.in_channel(
            who.user_id, path_id(channel_id, "channel"), archived=archived,
            before=parse_id(before) if before else None, limit=limit,
        )  # fmt: skip

    @get("/thread-members", summary="Members of a thread")
    async def members(
        self, request: AnyRequest, who: Who, channel_id: FromPath[str]
    ) -> list[ThreadMember]:
        return await node_of(request).threads.members(who.user_id, path_id(channel_id, "channel"))

    @put("/thread-members/{user_id:str}", status_code=HTTP_204_NO_CONTENT, summary="Join / add")
    async def join(
        self, request: AnyRequest, who: Who, channel_id: FromPath[str], user_id: FromPath[str]
    ) -> None:
        await node_of(request).threads.join(who.user_id, path_id(channel_id, "channel"), user_id)

    @delete(
        "/thread-members/{user_id:str}", status_code=HTTP_204_NO_CONTENT,
        summary="Leave / remove (MANAGE_THREADS for others)",
    )  # fmt: skip
    async def leave(
        self, request: AnyRequest, who: Who, channel_id: FromPath[str], user_id: FromPath[str]
    ) -> None:
        await node_of(request).threads.leave(who.user_id, path_id(channel_id, "channel"), user_id)


routes = [ThreadsController]
