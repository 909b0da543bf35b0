"""SDK calls for guilds, channels, roles, members, bans, invites and custom emoji.

Answers are the node's JSON as dicts (ids are strings). ``reason`` goes to the audit log
through Discord's ``X-Audit-Log-Reason`` header.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

import httpx

JSON = dict[str, Any]


def audit_header(reason: str | None) -> dict[str, str] | None:
    """The header carrying ``reason``, URL-encoded (any text survives a header)."""
    return {"x-audit-log-reason": quote(reason, safe="")} if reason else None


class ChatCalls:
    """Mixed into :class:`miaou.sdk.Client`."""

    async def request(
        self, method: str, path: str, *, json: Any = None,
        params: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:  # fmt: skip
        raise NotImplementedError  # provided by Client

    async def _json(self, method: str, path: str, **kw: Any) -> Any:
        response = await self.request(method, path, **kw)
        return response.json() if response.content else None

    # -- guilds -----------------------------------------------------------------------------
    async def create_guild(self, name: str, **fields: Any) -> Any:
        return await self._json("POST", "/api/v1/guilds", json={"name": name, **fields})

    async def guild(self, guild_id: str) -> Any:
        return await self._json("GET", f"/api/v1/guilds/{guild_id}")

    async def my_guilds(self) -> Any:
        return await self._json("GET", "/api/v1/users/@me/guilds")

    async def update_guild(self, guild_id: str, *, reason: str | None = None, **fields: Any) -> Any:
        return await self._json(
            "PATCH", f"/api/v1/guilds/{guild_id}", json=fields, headers=audit_header(reason)
        )

    async def delete_guild(self, guild_id: str) -> None:
        await self._json("DELETE", f"/api/v1/guilds/{guild_id}")

    async def transfer_guild(self, guild_id: str, owner_id: str) -> Any:
        return await self._json(
            "POST", f"/api/v1/guilds/{guild_id}/transfer", json={"owner_id": owner_id}
        )

    async def audit_log(self, guild_id: str, **params: Any) -> Any:
        return await self._json("GET", f"/api/v1/guilds/{guild_id}/audit-logs", params=params)

    # -- channels ---------------------------------------------------------------------------
    async def channels(self, guild_id: str) -> Any:
        return await self._json("GET", f"/api/v1/guilds/{guild_id}/channels")

    async def create_channel(
        self, guild_id: str, name: str, *, reason: str | None = None, **fields: Any
    ) -> Any:
        return await self._json(
            "POST", f"/api/v1/guilds/{guild_id}/channels", json={"name": name, **fields},
            headers=audit_header(reason),
        )  # fmt: skip

    async def channel(self, channel_id: str) -> Any:
        return await self._json("GET", f"/api/v1/channels/{channel_id}")

    async def update_channel(self, channel_id: str, **fields: Any) -> Any:
        return await self._json("PATCH", f"/api/v1/channels/{channel_id}", json=fields)

    async def delete_channel(self, channel_id: str) -> Any:
        return await self._json("DELETE", f"/api/v1/channels/{channel_id}")

    async def reorder_channels(self, guild_id: str, moves: list[JSON]) -> Any:
        return await self._json("PATCH", f"/api/v1/guilds/{guild_id}/channels", json=moves)

    async def put_overwrite(
        self, channel_id: str, target_id: str, *, type: int, allow: int = 0, deny: int = 0
    ) -> None:
        await self._json(
            "PUT", f"/api/v1/channels/{channel_id}/permissions/{target_id}",
            json={"id": target_id, "type": type, "allow": str(allow), "deny": str(deny)},
        )  # fmt: skip

    async def delete_overwrite(self, channel_id: str, target_id: str) -> None:
        await self._json("DELETE", f"/api/v1/channels/{channel_id}/permissions/{target_id}")

    # -- roles ------------------------------------------------------------------------------
    async def roles(self, guild_id: str) -> Any:
        return await self._json("GET", f"/api/v1/guilds/{guild_id}/roles")

    async def create_role(self, guild_id: str, name: str, *, permissions: int = 0,
                          **fields: Any) -> Any:  # fmt: skip
        body = {"name": name, "permissions": str(permissions), **fields}
        return await self._json("POST", f"/api/v1/guilds/{guild_id}/roles", json=body)

    async def update_role(self, guild_id: str, role_id: str, **fields: Any) -> Any:
        if "permissions" in fields:
            fields["permissions"] = str(fields["permissions"])
        return await self._json("PATCH", f"/api/v1/guilds/{guild_id}/roles/{role_id}", json=fields)

    async def delete_role(self, guild_id: str, role_id: str) -> None:
        await self._json("DELETE", f"/api/v1/guilds/{guild_id}/roles/{role_id}")

    async def move_roles(self, guild_id: str, moves: list[JSON]) -> Any:
        return await self._json("PATCH", f"/api/v1/guilds/{guild_id}/roles", json=moves)

    # -- members ----------------------------------------------------------------------------
    async def members(self, guild_id: str, **params: Any) -> Any:
        return await self._json("GET", f"/api/v1/guilds/{guild_id}/members", params=params)

    async def member(self, guild_id: str, user_id: str) -> Any:
        return await self._json("GET", f"/api/v1/guilds/{guild_id}/members/{user_id}")

    async def update_member(self, guild_id: str, user_id: str, **fields: Any) -> Any:
        return await self._json(
            "PATCH", f"/api/v1/guilds/{guild_id}/members/{user_id}", json=fields
        )

    async def add_member_role(self, guild_id: str, user_id: str, role_id: str) -> None:
        await self._json("PUT", f"/api/v1/guilds/{guild_id}/members/{user_id}/roles/{role_id}")

    async def remove_member_role(self, guild_id: str, user_id: str, role_id: str) -> None:
        await self._json("DELETE", f"/api/v1/guilds/{guild_id}/members/{user_id}/roles/{role_id}")

    async def kick(self, guild_id: str, user_id: str, *, reason: str | None = None) -> None:
        await self._json(
            "DELETE", f"/api/v1/guilds/{guild_id}/members/{user_id}", headers=audit_header(reason)
        )

    async def ban(self, guild_id: str, user_id: str, *, reason: str | None = None,
                  delete_message_seconds: int = 0) -> None:  # fmt: skip
        await self._json(
            "PUT", f"/api/v1/guilds/{guild_id}/bans/{user_id}",
            json={"reason": reason, "delete_message_seconds": delete_message_seconds},
        )  # fmt: skip

    async def unban(self, guild_id: str, user_id: str) -> None:
        await self._json("DELETE", f"/api/v1/guilds/{guild_id}/bans/{user_id}")

    async def bans(self, guild_id: str) -> Any:
        return await self._json("GET", f"/api/v1/guilds/{guild_id}/bans")

    async def leave_guild(self, guild_id: str) -> None:
        await self._json("DELETE", f"/api/v1/users/@me/guilds/{guild_id}")

    # -- direct messages ----------------------------------------------------------------------
    async def open_dm(self, user_id: str) -> Any:
        return await self._json(
            "POST", "/api/v1/users/@me/channels", json={"recipient_id": user_id}
        )

    async def create_group_dm(self, user_ids: list[str], name: str | None = None) -> Any:
        body = {"recipient_ids": user_ids, "name": name}
        return await self._json("POST", "/api/v1/users/@me/channels", json=body)

    async def my_dms(self) -> Any:
        return await self._json("GET", "/api/v1/users/@me/channels")

    # -- threads ----------------------------------------------------------------------------
    async def start_thread(
        self, channel_id: str, name: str, *, message_id: str | None = None, **fields: Any
    ) -> Any:
        path = f"/api/v1/channels/{channel_id}/threads"
        if message_id is not None:
            path = f"/api/v1/channels/{channel_id}/messages/{message_id}/threads"
        return await self._json("POST", path, json={"name": name, **fields})

    async def threads(self, channel_id: str, **params: Any) -> Any:
        return await self._json("GET", f"/api/v1/channels/{channel_id}/threads", params=params)

    async def thread_members(self, thread_id: str) -> Any:
        return await self._json("GET", f"/api/v1/channels/{thread_id}/thread-members")

    async def join_thread(self, thread_id: str, user_id: str = "@me") -> None:
        await self._json("PUT", f"/api/v1/channels/{thread_id}/thread-members/{user_id}")

    async def leave_thread(self, thread_id: str, user_id: str = "@me") -> None:
        await self._json("DELETE", f"/api/v1/channels/{thread_id}/thread-members/{user_id}")

    # -- read state -------------------------------------------------------------------------
    async def ack(self, channel_id: str, message_id: str) -> None:
        await self._json("POST", f"/api/v1/channels/{channel_id}/messages/{message_id}/ack")

    async def read_states(self) -> Any:
        return await self._json("GET", "/api/v1/users/@me/read-states")

    # -- invites ----------------------------------------------------------------------------
    async def create_guild_invite(self, channel_id: str, **fields: Any) -> Any:
        return await self._json("POST", f"/api/v1/channels/{channel_id}/invites", json=fields)

    async def guild_invites(self, guild_id: str) -> Any:
        return await self._json("GET", f"/api/v1/guilds/{guild_id}/invites")

    async def invite_preview(self, code: str) -> Any:
        return await self._json("GET", f"/api/v1/invites/{code}")

    async def join(self, code: str) -> Any:
        return await self._json("POST", f"/api/v1/invites/{code}")

    async def revoke_guild_invite(self, code: str) -> None:
        await self._json("DELETE", f"/api/v1/invites/{code}")

    # -- emoji ------------------------------------------------------------------------------
    async def emojis(self, guild_id: str) -> Any:
        return await self._json("GET", f"/api/v1/guilds/{guild_id}/emojis")

    async def emoji(self, guild_id: str, emoji_id: str) -> Any:
        return await self._json("GET", f"/api/v1/guilds/{guild_id}/emojis/{emoji_id}")

    async def create_emoji(
        self, guild_id: str, name: str, image: bytes | str, *, content_type: str = "image/png",
        reason: str | None = None, **fields: Any,
    ) -> Any:  # fmt: skip
        """``image`` is a data URI, or bytes made into one (the node sniffs the real type)."""
        if isinstance(image, bytes):
            image = f"data:{content_type};base64,{base64.b64encode(image).decode()}"
        return await self._json(
            "POST", f"/api/v1/guilds/{guild_id}/emojis",
            json={"name": name, "image": image, **fields}, headers=audit_header(reason),
        )  # fmt: skip

    async def edit_emoji(
        self, guild_id: str, emoji_id: str, *, reason: str | None = None, **fields: Any
    ) -> Any:
        return await self._json(
            "PATCH", f"/api/v1/guilds/{guild_id}/emojis/{emoji_id}", json=fields,
            headers=audit_header(reason),
        )  # fmt: skip

    async def delete_emoji(
        self, guild_id: str, emoji_id: str, *, reason: str | None = None
    ) -> None:
        await self._json(
            "DELETE", f"/api/v1/guilds/{guild_id}/emojis/{emoji_id}", headers=audit_header(reason)
        )

    async def emoji_image(self, emoji_id: str) -> httpx.Response:
        """The image as the node serves it (bytes in ``.content``, type in the headers)."""
        return await self.request("GET", f"/api/v1/emojis/{emoji_id}")
