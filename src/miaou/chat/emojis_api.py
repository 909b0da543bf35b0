"""REST routes for custom guild emoji (Discord v10 paths) and their images.

An emoji image is served to any signed-in user who knows its id, as Discord's CDN serves
emoji to anyone: a reaction or a message shows emoji of guilds the reader is not in.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Response, delete, get, patch, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from miaou.chat.emojis import EmojiCreate, EmojiPatch, GuildEmoji, unknown_emoji
from miaou.chat.media import IMAGE_TYPES
from miaou.http.auth import node_of, principal
from miaou.http.params import AnyRequest, Who, audit_reason, path_id
from miaou.http.ranges import stored_file

# An emoji's image never changes (a new image is a new emoji); a deleted one may linger in
# caches for this long.
CACHE_CONTROL = "private, max-age=86400"


class EmojisController(Controller):
    path = "/api/v1/guilds/{guild_id:str}/emojis"
    tags = ["emojis"]
    dependencies = {"who": principal}

    @get("/", summary="The guild's custom emoji (members)")
    async def emojis(
        self, request: AnyRequest, who: Who, guild_id: FromPath[str]
    ) -> list[GuildEmoji]:
        return await node_of(request).emojis.all(who.user_id, path_id(guild_id, "guild"))

    @get("/{emoji_id:str}", summary="One custom emoji (members)")
    async def emoji(
        self, request: AnyRequest, who: Who, guild_id: FromPath[str], emoji_id: FromPath[str]
    ) -> GuildEmoji:
        return await node_of(request).emojis.get(
            who.user_id, path_id(guild_id, "guild"), path_id(emoji_id, "emoji")
        )

    @post(
        "/", status_code=HTTP_201_CREATED,
        summary="Create an emoji from a data URI (CREATE_ or MANAGE_GUILD_EXPRESSIONS)",
    )  # fmt: skip
    async def create(
        self, request: AnyRequest, who: Who, guild_id: FromPath[str], data: JSONBody[EmojiCreate]
    ) -> GuildEmoji:
        return await node_of(request).emojis.create(
            who.user_id, path_id(guild_id, "guild"), data, audit_reason(request)
        )

    @patch(
        "/{emoji_id:str}",
        summary="Rename an emoji (MANAGE_GUILD_EXPRESSIONS, or CREATE_ for one's own)",
    )
    async def update(
        self, request: AnyRequest, who: Who, guild_id: FromPath[str], emoji_id: FromPath[str],
        data: JSONBody[EmojiPatch],
    ) -> GuildEmoji:  # fmt: skip
        return await node_of(request).emojis.update(
            who.user_id, path_id(guild_id, "guild"), path_id(emoji_id, "emoji"), data,
            audit_reason(request),
        )  # fmt: skip

    @delete(
        "/{emoji_id:str}", status_code=HTTP_204_NO_CONTENT,
        summary="Delete an emoji (MANAGE_GUILD_EXPRESSIONS, or CREATE_ for one's own)",
    )  # fmt: skip
    async def remove(
        self, request: AnyRequest, who: Who, guild_id: FromPath[str], emoji_id: FromPath[str]
    ) -> None:
        await node_of(request).emojis.delete(
            who.user_id, path_id(guild_id, "guild"), path_id(emoji_id, "emoji"),
            audit_reason(request),
        )  # fmt: skip


class EmojiImagesController(Controller):
    path = "/api/v1/emojis"
    tags = ["emojis"]
    dependencies = {"who": principal}

    @get(
        "/{emoji_id:str}",
        summary="An emoji's image, in its own type (any signed-in user; `.png` etc. ignored)",
    )
    async def image(self, request: AnyRequest, who: Who, emoji_id: FromPath[str]) -> Response[Any]:
        """Discord's CDN names the file ``{id}.{ext}``: an extension is accepted, not used."""
        node = node_of(request)
        emoji = path_id(emoji_id.partition(".")[0], "emoji")
        row = await node.emojis.image(emoji)
        extension = IMAGE_TYPES[row.content_type].lower().replace("jpeg", "jpg")
        return stored_file(
            request,
            node.emojis.blobs.path(row.sha256),
            media_type=row.content_type,
            filename=f"{emoji}.{extension}",
            disposition="inline",
            etag=row.sha256,
            cache_control=CACHE_CONTROL,
            missing=unknown_emoji(),
        )


routes = [EmojisController, EmojiImagesController]
