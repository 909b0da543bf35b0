"""A guild populated through the API: the cast of the authorisation matrix.

owner   created the guild
admin   has a role with ADMINISTRATOR
mod     has a "mod" role: KICK, BAN, MANAGE_ROLES, MANAGE_CHANNELS, MANAGE_MESSAGES,
        MANAGE_NICKNAMES, MODERATE_MEMBERS, VIEW_AUDIT_LOG, MANAGE_GUILD
member  a plain member (@everyone only)
outsider  never joined
banned  joined, then was banned
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from miaou.chat.permissions import Permission as P
from miaou.sdk import ApiError, Client

PASSWORD = "correct horse battery"
MOD_PERMISSIONS = (
    P.KICK_MEMBERS | P.BAN_MEMBERS | P.MANAGE_ROLES | P.MANAGE_CHANNELS | P.MANAGE_MESSAGES
    | P.MANAGE_NICKNAMES | P.MODERATE_MEMBERS | P.VIEW_AUDIT_LOG | P.MANAGE_GUILD
    | P.VIEW_CHANNEL | P.SEND_MESSAGES
)  # fmt: skip


@dataclass
class World:
    url: str
    clients: dict[str, Client] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    guild: dict = field(default_factory=dict)
    general: str = ""
    mod_role: str = ""
    admin_role: str = ""

    def __getitem__(self, name: str) -> Client:
        return self.clients[name]

    async def close(self) -> None:
        for client in self.clients.values():
            await client.close()


async def build_world(url: str) -> World:
    world = World(url)
    for name in ("owner", "admin", "mod", "member", "outsider", "banned"):
        client = Client(url, rate_limit_retries=0)
        world.clients[name] = client
        world.ids[name] = (await client.register(f"{name}-user", PASSWORD)).user.id
    owner = world["owner"]
    world.guild = await owner.create_guild("The Cattery")
    gid = world.guild["id"]
    world.general = next(c["id"] for c in world.guild["channels"] if c["name"] == "general")
    invite = await owner.create_guild_invite(world.general, max_uses=0)
    for name in ("admin", "mod", "member", "banned"):
        await world[name].join(invite["code"])
    world.admin_role = (await owner.create_role(gid, "admin", permissions=int(P.ADMINISTRATOR)))[
        "id"
    ]
    world.mod_role = (await owner.create_role(gid, "mod", permissions=int(MOD_PERMISSIONS)))["id"]
    # The admin role sits above mod, so admin outranks mod in the hierarchy.
    await owner.move_roles(gid, [{"id": world.admin_role, "position": 2},
                                 {"id": world.mod_role, "position": 1}])  # fmt: skip
    await owner.add_member_role(gid, world.ids["admin"], world.admin_role)
    await owner.add_member_role(gid, world.ids["mod"], world.mod_role)
    await owner.ban(gid, world.ids["banned"], reason="test")
    return world


async def expect(status: int, code: str | None, call: Any) -> None:
    """``call`` fails with this status (and error code, unless None)."""
    with pytest.raises(ApiError) as error:
        await call
    assert error.value.status == status, error.value
    if code is not None:
        assert error.value.code == code, error.value
