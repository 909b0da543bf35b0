"""REST routes for members, bans, roles and guild invites (Discord v10 paths)."""

from __future__ import annotations

from litestar import Controller, delete, get, patch, post, put
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from miaou.chat.guild_invites import InvitePreview
from miaou.chat.models import (
    Ban,
    BanCreate,
    Guild,
    Invite,
    InviteCreate,
    Member,
    MemberPatch,
    Role,
    RoleCreate,
    RolePatch,
    RolePosition,
)
from miaou.http.auth import node_of, principal
from miaou.http.params import AnyRequest, Who, audit_reason, path_id
from miaou.ids import parse_id


def _after(raw: str | None) -> int:
    return (parse_id(raw) or 0) if raw else 0


class MembersController(Controller):
    path = "/api/v1/guilds/{guild_id:str}"
    tags = ["members"]
    dependencies = {"who": principal}

    @get("/members", summary="Members, by user id; page with `after`")
    async def members(
        self, request: AnyRequest, who: Who, guild_id: FromPath[str],
        after: FromQuery[str | None] = None, limit: FromQuery[int] = 100,
    ) -> list[Member]:  # fmt: skip
        return await node_of(request).members.page(
            who.user_id, path_id(guild_id, "guild"), after=_after(after), limit=limit
        )

    @get("/members/{user_id:str}", summary="One member")
    async def member(
        self, request: AnyRequest, who: Who, guild_id: FromPath[str], user_id: FromPath[str]
    ) -> Member:
        return await node_of(request).members.get(who.user_id, path_id(guild_id, "guild"), user_id)

    @patch("/members/{user_id:str}", summary="Nickname, roles, timeout (`@me` for oneself)")
    async def update(
        self, request: AnyRequest, who: Who, guild_id: FromPath[str], user_id: FromPath[str],
        data: JSONBody[MemberPatch],
    ) -> Member:  # fmt: skip
        return await node_of(request).members.update(
            who.user_id, path_id(guild_id, "guild"), user_id, data, audit_reason(request)
        )

    @delete("/members/{user_id:str}", status_code=HTTP_204_NO_CONTENT, summary="Kick")
    async def kick(
        self, request: AnyRequest, who: Who, guild_id: FromPath[str], user_id: FromPath[str]
    ) -> None:
        await node_of(request).members.kick(
            who.user_id, path_id(guild_id, "guild"), user_id, audit_reason(request)
        )

    @put(
        "/members/{user_id:str}/roles/{role_id:str}", status_code=HTTP_204_NO_CONTENT,
        summary="Give a member a role",
    )  # fmt: skip
    async def add_role(
        self, request: AnyRequest, who: Who, guild_id: FromPath[str], user_id: FromPath[str],
        role_id: FromPath[str],
    ) -> None:  # fmt: skip
        await node_of(request).members.set_role(
            who.user_id, path_id(guild_id, "guild"), user_id, role_id, True, audit_reason(request)
        )

    @delete(
        "/members/{user_id:str}/roles/{role_id:str}", status_code=HTTP_204_NO_CONTENT,
        summary="Take a role from a member",
    )  # fmt: skip
    async def remove_role(
        self, request: AnyRequest, who: Who, guild_id: FromPath[str], user_id: FromPath[str],
        role_id: FromPath[str],
    ) -> None:  # fmt: skip
        await node_of(request).members.set_role(
            who.user_id, path_id(guild_id, "guild"), user_id, role_id, False, audit_reason(request)
        )

    @get("/bans", summary="Bans (BAN_MEMBERS)")
    async def bans(
        self, request: AnyRequest, who: Who, guild_id: FromPath[str],
        after: FromQuery[str | None] = None, limit: FromQuery[int] = 100,
    ) -> list[Ban]:  # fmt: skip
        return await node_of(request).members.bans(
            who.user_id, path_id(guild_id, "guild"), after=_after(after), limit=limit
        )

    @put("/bans/{user_id:str}", status_code=HTTP_204_NO_CONTENT, summary="Ban (BAN_MEMBERS)")
    async def ban(
        self, request: AnyRequest, who: Who, guild_id: FromPath[str], user_id: FromPath[str],
        data: JSONBody[BanCreate | None] = None,
    ) -> None:  # fmt: skip
        await node_of(request).members.ban(
            who.user_id, path_id(guild_id, "guild"), user_id, data or BanCreate(),
            audit_reason(request),
        )  # fmt: skip

    @delete("/bans/{user_id:str}", status_code=HTTP_204_NO_CONTENT, summary="Unban")
    async def unban(
        self, request: AnyRequest, who: Who, guild_id: FromPath[str], user_id: FromPath[str]
    ) -> None:
        await node_of(request).members.unban(
            who.user_id, path_id(guild_id, "guild"), user_id, audit_reason(request)
        )

    @get("/roles", summary="Roles, lowest first")
    async def roles(self, request: AnyRequest, who: Who, guild_id: FromPath[str]) -> list[Role]:
        return await node_of(request).roles.all(who.user_id, path_id(guild_id, "guild"))

    @post("/roles", status_code=HTTP_201_CREATED, summary="Create a role (MANAGE_ROLES)")
    async def create_role(
        self, request: AnyRequest, who: Who, guild_id: FromPath[str], data: JSONBody[RoleCreate]
    ) -> Role:
        return await node_of(request).roles.create(
            who.user_id, path_id(guild_id, "guild"), data, audit_reason(request)
        )

    @patch("/roles", summary="Move roles (MANAGE_ROLES)")
    async def move_roles(
        self, request: AnyRequest, who: Who, guild_id: FromPath[str],
        data: JSONBody[list[RolePosition]],
    ) -> list[Role]:  # fmt: skip
        return await node_of(request).roles.reorder(who.user_id, path_id(guild_id, "guild"), data)

    @patch("/roles/{role_id:str}", summary="Update a role (MANAGE_ROLES, below you)")
    async def update_role(
        self, request: AnyRequest, who: Who, guild_id: FromPath[str], role_id: FromPath[str],
        data: JSONBody[RolePatch],
    ) -> Role:  # fmt: skip
        return await node_of(request).roles.update(
            who.user_id, path_id(guild_id, "guild"), role_id, data, audit_reason(request)
        )

    @delete("/roles/{role_id:str}", status_code=HTTP_204_NO_CONTENT, summary="Delete a role")
    async def delete_role(
        self, request: AnyRequest, who: Who, guild_id: FromPath[str], role_id: FromPath[str]
    ) -> None:
        await node_of(request).roles.delete(
            who.user_id, path_id(guild_id, "guild"), role_id, audit_reason(request)
        )

    @get("/invites", summary="The guild's invites (MANAGE_GUILD)")
    async def invites(self, request: AnyRequest, who: Who, guild_id: FromPath[str]) -> list[Invite]:
        return await node_of(request).guild_invites.of_guild(
            who.user_id, path_id(guild_id, "guild")
        )


class InvitesController(Controller):
    path = "/api/v1"
    tags = ["invites"]
    dependencies = {"who": principal}

    @post(
        "/channels/{channel_id:str}/invites", status_code=HTTP_201_CREATED,
        summary="Create an invite to a channel (CREATE_INSTANT_INVITE)",
    )  # fmt: skip
    async def create(
        self, request: AnyRequest, who: Who, channel_id: FromPath[str],
        data: JSONBody[InviteCreate | None] = None,
    ) -> Invite:  # fmt: skip
        return await node_of(request).guild_invites.create(
            who.user_id, path_id(channel_id, "channel"), data or InviteCreate(),
            audit_reason(request),
        )  # fmt: skip

    @get("/invites/{code:str}", summary="What an invite leads to")
    async def preview(self, request: AnyRequest, who: Who, code: FromPath[str]) -> InvitePreview:
        return await node_of(request).guild_invites.preview(code)

    @post("/invites/{code:str}", status_code=HTTP_200_OK, summary="Join through an invite")
    async def accept(self, request: AnyRequest, who: Who, code: FromPath[str]) -> Guild:
        return await node_of(request).guild_invites.accept(who.user_id, code)

    @delete("/invites/{code:str}", status_code=HTTP_204_NO_CONTENT, summary="Revoke an invite")
    async def revoke(self, request: AnyRequest, who: Who, code: FromPath[str]) -> None:
        await node_of(request).guild_invites.delete(who.user_id, code, audit_reason(request))

    @delete(
        "/users/@me/guilds/{guild_id:str}", status_code=HTTP_204_NO_CONTENT,
        summary="Leave a guild",
    )  # fmt: skip
    async def leave(self, request: AnyRequest, who: Who, guild_id: FromPath[str]) -> None:
        await node_of(request).members.leave(who.user_id, path_id(guild_id, "guild"))


routes = [MembersController, InvitesController]
