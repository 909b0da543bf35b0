"""The authorisation matrix: for each endpoint, what owner / admin / moderator / member /
outsider / banned user get. Each cell runs against a fresh target made by the owner, so a
destructive success in one cell cannot change the next one.

Expected statuses are the documented ones: 404 where the caller must not learn that the
thing exists (non-members, hidden channels), 403 where they can see it but lack the right.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from chat_world import World, build_world

from miaou.sdk import ApiError

ROLES = ("outsider", "banned", "member", "mod", "admin", "owner")
Call = Callable[[World, str], Awaitable[Any]]


def outcome(**statuses: int) -> dict[str, int]:
    """Statuses by role; roles not named succeed (2xx)."""
    return {role: statuses.get(role, 200) for role in ROLES}


NON_MEMBERS_404 = {"outsider": 404, "banned": 404}


async def _channel(w: World) -> str:
    return (await w["owner"].create_channel(w.guild["id"], "target"))["id"]


async def _message(w: World) -> tuple[str, str]:
    message = await w["owner"].send_message(w.general, "target message")
    return w.general, message.id


async def _role(w: World) -> str:
    return (await w["owner"].create_role(w.guild["id"], "low"))["id"]


async def _invite(w: World) -> str:
    return (await w["owner"].create_guild_invite(w.general))["code"]


async def _fresh_member(w: World) -> str:
    """A new plain member to act on."""
    from miaou.sdk import Client

    client = Client(w.url, rate_limit_retries=0)
    name = f"target-{len(w.clients)}"
    user_id = (await client.register(name, "correct horse battery")).user.id
    await client.join(await _invite(w))
    w.clients[name] = client
    return user_id


async def _kick(w: World, who: str) -> None:
    await w[who].kick(w.guild["id"], await _fresh_member(w))


async def _ban(w: World, who: str) -> None:
    await w[who].ban(w.guild["id"], await _fresh_member(w))


async def _delete_channel(w: World, who: str) -> None:
    await w[who].delete_channel(await _channel(w))


async def _delete_message(w: World, who: str) -> None:
    channel, message = await _message(w)
    await w[who].delete_message(channel, message)


async def _pin(w: World, who: str) -> None:
    channel, message = await _message(w)
    await w[who].pin_message(channel, message)


async def _update_role(w: World, who: str) -> None:
    await w[who].update_role(w.guild["id"], await _role(w), name="renamed")


async def _revoke_invite(w: World, who: str) -> None:
    await w[who].revoke_guild_invite(await _invite(w))


async def _send(w: World, who: str) -> None:
    await w[who].send_message(w.general, "hello")


async def _react(w: World, who: str) -> None:
    channel, message = await _message(w)
    await w[who].add_reaction(channel, message, "👍")


async def _history(w: World, who: str) -> None:
    await w[who].messages(w.general)


# A 1x1 PNG.
_PNG = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQ"
    "DwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


async def _emoji(w: World) -> str:
    return (await w["owner"].create_emoji(w.guild["id"], "target", _PNG))["id"]


async def _create_emoji(w: World, who: str) -> None:
    await w[who].create_emoji(w.guild["id"], "new_emoji", _PNG)


async def _rename_emoji(w: World, who: str) -> None:
    await w[who].edit_emoji(w.guild["id"], await _emoji(w), name="renamed")


async def _delete_emoji(w: World, who: str) -> None:
    await w[who].delete_emoji(w.guild["id"], await _emoji(w))


async def _emoji_image(w: World, who: str) -> None:
    await w[who].emoji_image(await _emoji(w))


MATRIX: list[tuple[str, Call, dict[str, int]]] = [
    ("read guild", lambda w, who: w[who].guild(w.guild["id"]), outcome(**NON_MEMBERS_404)),
    ("update guild", lambda w, who: w[who].update_guild(w.guild["id"], description="x"),
     outcome(**NON_MEMBERS_404, member=403)),
    ("audit log", lambda w, who: w[who].audit_log(w.guild["id"]),
     outcome(**NON_MEMBERS_404, member=403)),
    ("list channels", lambda w, who: w[who].channels(w.guild["id"]), outcome(**NON_MEMBERS_404)),
    ("create channel", lambda w, who: w[who].create_channel(w.guild["id"], "new"),
     outcome(**NON_MEMBERS_404, member=403)),
    ("delete channel", _delete_channel, outcome(**NON_MEMBERS_404, member=403)),
    ("create role", lambda w, who: w[who].create_role(w.guild["id"], "r"),
     outcome(**NON_MEMBERS_404, member=403)),
    ("update role", _update_role, outcome(**NON_MEMBERS_404, member=403)),
    ("list members", lambda w, who: w[who].members(w.guild["id"]), outcome(**NON_MEMBERS_404)),
    ("kick", _kick, outcome(**NON_MEMBERS_404, member=403)),
    ("ban", _ban, outcome(**NON_MEMBERS_404, member=403)),
    ("list bans", lambda w, who: w[who].bans(w.guild["id"]),
     outcome(**NON_MEMBERS_404, member=403)),
    ("list invites", lambda w, who: w[who].guild_invites(w.guild["id"]),
     outcome(**NON_MEMBERS_404, member=403)),
    ("create invite", lambda w, who: w[who].create_guild_invite(w.general),
     outcome(**NON_MEMBERS_404)),
    ("revoke invite", _revoke_invite, outcome(**NON_MEMBERS_404, member=403)),
    ("send message", _send, outcome(**NON_MEMBERS_404)),
    ("read history", _history, outcome(**NON_MEMBERS_404)),
    ("react", _react, outcome(**NON_MEMBERS_404)),
    ("delete someone's message", _delete_message, outcome(**NON_MEMBERS_404, member=403)),
    ("pin", _pin, outcome(**NON_MEMBERS_404, member=403)),
    ("search messages", lambda w, who: w[who].request(
        "GET", f"/api/v1/guilds/{w.guild['id']}/messages/search", params={"content": "target"}),
     outcome(**NON_MEMBERS_404)),
    ("list emoji", lambda w, who: w[who].emojis(w.guild["id"]), outcome(**NON_MEMBERS_404)),
    # The mod has MANAGE_GUILD, which does not cover expressions.
    ("create emoji", _create_emoji, outcome(**NON_MEMBERS_404, member=403, mod=403)),
    ("rename emoji", _rename_emoji, outcome(**NON_MEMBERS_404, member=403, mod=403)),
    ("delete emoji", _delete_emoji, outcome(**NON_MEMBERS_404, member=403, mod=403)),
    ("emoji image", _emoji_image, outcome()),  # served to anyone signed in, as Discord's CDN
    ("delete guild", lambda w, who: w[who].delete_guild(w.guild["id"]) if who != "owner"
     else w[who].guild(w.guild["id"]),  # the owner's success is tested elsewhere
     outcome(**NON_MEMBERS_404, member=403, mod=403, admin=403)),
]  # fmt: skip


@pytest.fixture
async def world(start_node) -> World:
    # Each cell registers people; the per-IP registration limit is not what is tested here.
    node = await start_node(ratelimit={"enabled": False})
    w = await build_world(node.url)
    yield w
    await w.close()


@pytest.mark.parametrize(("name", "call", "expected"), MATRIX, ids=[m[0] for m in MATRIX])
async def test_matrix(world: World, name: str, call: Call, expected: dict[str, int]) -> None:
    got: dict[str, int] = {}
    for role in ROLES:
        try:
            await call(world, role)
            got[role] = 200
        except ApiError as error:
            got[role] = error.status
    assert got == expected, name
