"""REST routes for guilds, their channels and audit log, and channels by id (Discord v10)."""

from __future__ import annotations

from litestar import Controller, delete, get, patch, post, put
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from miaou.chat.guilds import read_audit_log
from miaou.chat.models import (
    AuditEntry,
    Channel,
    ChannelCreate,
    ChannelPatch,
    ChannelPosition,
    DMCreate,
    Guild,
    GuildCreate,
    GuildPatch,
    GuildWithChannels,
    OverwriteBody,
    OwnershipTransfer,
)
from miaou.chat.read_states import ReadState
from miaou.http.auth import node_of, principal
from miaou.http.params import AnyRequest, Who, audit_reason, path_id
from miaou.ids import parse_id


class GuildsController(Controller):
    path = "/api/v1/guilds"
    tags = ["guilds"]
    dependencies = {"who": principal}

    @post("/", status_code=HTTP_201_CREATED, summary="Create a guild")
    async def create(
        self, request: AnyRequest, who: Who, data: JSONBody[GuildCreate]
    ) -> GuildWithChannels:
        return await node_of(request).guilds.create(who.user_id, data)

    @get("/{guild_id:str}", summary="A guild I am a member of")
    async def read(self, request: AnyRequest, who: Who, guild_id: FromPath[str]) -> Guild:
        return await node_of(request).guilds.get(who.user_id, path_id(guild_id, "guild"))

    @patch("/{guild_id:str}", summary="Update a guild (MANAGE_GUILD)")
    async def update(
        self, request: AnyRequest, who: Who, guild_id: FromPath[str], data: JSONBody[GuildPatch]
    ) -> Guild:
        return await node_of(request).guilds.update(
            who.user_id, path_id(guild_id, "guild"), data, audit_reason(request)
        )

    @delete("/{guild_id:str}", status_code=HTTP_204_NO_CONTENT, summary="Delete (owner only)")
    async def remove(self, request: AnyRequest, who: Who, guild_id: FromPath[str]) -> None:
        await node_of(request).guilds.delete(who.user_id, path_id(guild_id, "guild"))

    @post("/{guild_id:str}/transfer", summary="Transfer ownership (owner only)")
    async def transfer(
        self,
        request: AnyRequest,
        who: Who,
        guild_id: FromPath[str],
        data: JSONBody[OwnershipTransfer],
    ) -> Guild:
        return await node_of(request).guilds.transfer(who.user_id, path_id(guild_id, "guild"), data)

    @get("/{guild_id:str}/channels", summary="Channels I can see")
    async def channels(
        self, request: AnyRequest, who: Who, guild_id: FromPath[str]
    ) -> list[Channel]:
        return await node_of(request).channels.visible(who.user_id, path_id(guild_id, "guild"))

    @post(
        "/{guild_id:str}/channels", status_code=HTTP_201_CREATED,
        summary="Create a channel (MANAGE_CHANNELS)",
    )  # fmt: skip
    async def create_channel(
        self, request: AnyRequest, who: Who, guild_id: FromPath[str], data: JSONBody[ChannelCreate]
    ) -> Channel:
        return await node_of(request).channels.create(
            who.user_id, path_id(guild_id, "guild"), data, audit_reason(request)
        )

    @patch("/{guild_id:str}/channels", summary="Reorder channels (MANAGE_CHANNELS)")
    async def reorder(
        self,
        request: AnyRequest,
        who: Who,
        guild_id: FromPath[str],
        data: JSONBody[list[ChannelPosition]],
    ) -> list[Channel]:
        return await node_of(request).channels.reorder(
            who.user_id, path_id(guild_id, "guild"), data
        )

    @get("/{guild_id:str}/audit-logs", summary="Audit log (VIEW_AUDIT_LOG), newest first")
    async def audit_log(
        self,
        request: AnyRequest,
        who: Who,
        guild_id: FromPath[str],
        user_id: FromQuery[str | None] = None,
        action_type: FromQuery[int | None] = None,
        before: FromQuery[str | None] = None,
        limit: FromQuery[int] = 50,
    ) -> list[AuditEntry]:
        return await read_audit_log(
            node_of(request).db, who.user_id, path_id(guild_id, "guild"),
            actor_id=parse_id(user_id) if user_id else None, action=action_type,
            before=parse_id(before) if before else None, limit=limit,
        )  # fmt: skip


class MeController(Controller):
    path = "/api/v1/users/@me"
    tags = ["guilds"]
    dependencies = {"who": principal}

    @get("/guilds", summary="The guilds I am a member of")
    async def guilds(self, request: AnyRequest, who: Who) -> list[Guild]:
        return await node_of(request).guilds.mine(who.user_id)

    @get("/read-states", summary="Read position, unread and mention counts of every channel")
    async def read_states(self, request: AnyRequest, who: Who) -> list[ReadState]:
        return await node_of(request).read_states.summary(who.user_id)

    @get("/channels", summary="My DMs and group DMs")
    async def dms(self, request: AnyRequest, who: Who) -> list[Channel]:
        return await node_of(request).dms.mine(who.user_id)

    @post("/channels", status_code=HTTP_200_OK, summary="Open a DM or create a group DM")
    async def open_dm(self, request: AnyRequest, who: Who, data: JSONBody[DMCreate]) -> Channel:
        return await node_of(request).dms.open(who.user_id, data)


class ChannelsController(Controller):
    path = "/api/v1/channels"
    tags = ["channels"]
    dependencies = {"who": principal}

    @get("/{channel_id:str}", summary="A channel I can see")
    async def read(self, request: AnyRequest, who: Who, channel_id: FromPath[str]) -> Channel:
        return await node_of(request).channels.get(who.user_id, path_id(channel_id, "channel"))

    @patch("/{channel_id:str}", summary="Update a channel (MANAGE_CHANNELS)")
    async def update(
        self,
        request: AnyRequest,
        who: Who,
        channel_id: FromPath[str],
        data: JSONBody[ChannelPatch],
    ) -> Channel:
        return await node_of(request).channels.update(
            who.user_id, path_id(channel_id, "channel"), data, audit_reason(request)
        )

    @delete("/{channel_id:str}", status_code=HTTP_200_OK, summary="Delete a channel")
    async def remove(self, request: AnyRequest, who: Who, channel_id: FromPath[str]) -> Channel:
        return await node_of(request).channels.delete(
            who.user_id, path_id(channel_id, "channel"), audit_reason(request)
        )

    @post(
        "/{channel_id:str}/messages/{message_id:str}/ack", status_code=HTTP_204_NO_CONTENT,
        summary="Mark the channel read up to this message",
    )  # fmt: skip
    async def ack(
        self, request: AnyRequest, who: Who, channel_id: FromPath[str], message_id: FromPath[str]
    ) -> None:
        await node_of(request).read_states.ack(
            who.user_id, path_id(channel_id, "channel"), message_id
        )

    @put(
        "/{channel_id:str}/permissions/{target_id:str}", status_code=HTTP_204_NO_CONTENT,
        summary="Set a permission overwrite (MANAGE_ROLES)",
    )  # fmt: skip
    async def put_overwrite(
        self,
        request: AnyRequest,
        who: Who,
        channel_id: FromPath[str],
        target_id: FromPath[str],
        data: JSONBody[OverwriteBody],
    ) -> None:
        body = OverwriteBody(id=target_id, type=data.type, allow=data.allow, deny=data.deny)
        await node_of(request).channels.put_overwrite(
            who.user_id, path_id(channel_id, "channel"), body, audit_reason(request)
        )

    @delete(
        "/{channel_id:str}/permissions/{target_id:str}", status_code=HTTP_204_NO_CONTENT,
        summary="Remove a permission overwrite (MANAGE_ROLES)",
    )  # fmt: skip
    async def delete_overwrite(
        self, request: AnyRequest, who: Who, channel_id: FromPath[str], target_id: FromPath[str]
    ) -> None:
        await node_of(request).channels.delete_overwrite(
            who.user_id, path_id(channel_id, "channel"), target_id, audit_reason(request)
        )


routes = [GuildsController, MeController, ChannelsController]
