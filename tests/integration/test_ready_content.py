"""READY says what the REST endpoints say: the user, their guilds (each with the channels
they see and their member object), their DMs and their read states, in one snapshot.

READY takes visibility and member counts from the hub's guild views and reads everything
else in a few queries for all guilds at once; REST computes each from rows. They must agree.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from chat_world import World, build_world
from node_marks import NO_RATE_LIMITS
from sqlalchemy import event

from miaou.accounts.service import Principal
from miaou.chat.permissions import Permission as P
from miaou.gateway.guild_view import GuildView
from miaou.server import RunningNode

pytestmark = NO_RATE_LIMITS


@pytest.fixture
async def world(node: RunningNode) -> AsyncIterator[World]:
    w = await build_world(node.url)
    yield w
    await w.close()


def _by_id(items: list[dict[str, Any]], key: str = "id") -> list[dict[str, Any]]:
    """Sorted by id, overwrites too: neither side promises an order of equal positions."""
    out = []
    for item in sorted(items, key=lambda i: int(i[key])):
        if item.get("permission_overwrites"):
            item = {**item, "permission_overwrites": _by_id(item["permission_overwrites"])}
        out.append(item)
    return out


async def _populate(world: World) -> None:
    gid, general = world.guild["id"], world.general
    owner, ids = world["owner"], world.ids
    secret = await owner.create_channel(gid, "secret")
    await owner.put_overwrite(secret["id"], gid, type=0, deny=int(P.VIEW_CHANNEL))
    mods = await owner.create_channel(gid, "mods")
    await owner.put_overwrite(mods["id"], gid, type=0, deny=int(P.VIEW_CHANNEL))
    await owner.put_overwrite(mods["id"], world.mod_role, type=0, allow=int(P.VIEW_CHANNEL))
    await owner.put_overwrite(mods["id"], ids["member"], type=1, deny=int(P.SEND_MESSAGES))
    await owner.create_channel(gid, "Voice", type=2)
    await owner.update_role(gid, world.mod_role, mentionable=True)
    first = await owner.send_message(general, "hello all")
    await owner.send_message(general, f"hey <@{ids['mod']}>")
    await owner.send_message(general, f"calling <@&{world.mod_role}>")
    await owner.send_message(general, "@everyone meeting")
    await owner.send_message(mods["id"], "mods only")
    await owner.send_message(secret["id"], "nobody reads this")
    await world["mod"].send_message(general, "my own")
    await world["mod"].ack(general, first.id)
    dm = await owner.open_dm(ids["mod"])
    await owner.send_message(dm["id"], f"psst <@{ids['mod']}>")
    await owner.create_group_dm([ids["mod"], ids["member"]], name="trio")
    await world["mod"].create_guild("Second home")


@pytest.mark.parametrize("who", ["owner", "mod", "member"])
async def test_ready_matches_rest(world: World, who: str) -> None:
    await _populate(world)
    client = world[who]
    gw = await client.gateway()
    try:
        await gw.connect()
        ready = gw.ready
    finally:
        await gw.close()
    assert ready is not None
    assert ready["user"] == (await client.request("GET", "/api/v1/users/@me")).json()
    listed = await client.my_guilds()
    assert [g["id"] for g in ready["guilds"]] == [g["id"] for g in listed]
    for guild, rest in zip(ready["guilds"], listed, strict=True):
        # Presences are the gateway's own (test_gateway: READY lists who is online).
        assert {
            k: v for k, v in guild.items() if k not in ("channels", "member", "presences")
        } == rest
        assert _by_id(guild["channels"]) == _by_id(await client.channels(guild["id"]))
        assert guild["member"] == await client.member(guild["id"], world.ids[who])
    assert ready["private_channels"] == await client.my_dms()
    states = await client.read_states()
    assert _by_id(ready["read_states"], "channel_id") == _by_id(states, "channel_id")
    # The counts themselves. #general: four by the owner (mod acked the first), one by mod.
    general = next(s for s in states if s["channel_id"] == world.general)
    expected = {"owner": (1, 0), "mod": (3, 3), "member": (5, 1)}[who]
    assert (general["unread_count"], general["mention_count"]) == expected


async def test_ready_reads_as_many_statements_whatever_the_user_has(
    node: RunningNode, world: World
) -> None:
    """A fixed number of statements: not one per guild, channel, DM or unread channel."""
    await _populate(world)
    await world["member"].send_message(world.general, "one more")  # unread for mod
    reader = node.node.gateway.ready_reader
    engine = node.node.db.engine.sync_engine
    executed: list[str] = []
    reading: list[asyncio.Task[Any] | None] = [None]

    def count(*args: Any) -> None:
        # Only READY's own: the node's sweeper and job runner query the database meanwhile.
        if asyncio.current_task() is reading[0]:
            executed.append(args[2])

    async def statements(who: str) -> int:
        user_id = int(world.ids[who])
        names = await reader.streams(user_id)
        async with node.node.db.read() as conn:
            views = {
                gid: await GuildView.load(conn, gid)
                for gid in (int(n[6:]) for n in names if n.startswith("guild:"))
            }
        executed.clear()
        reading[0] = asyncio.current_task()
        event.listen(engine, "before_cursor_execute", count)
        try:
            principal = Principal(user_id=user_id, session_id=0, is_admin=False)
            ready = await reader.ready(principal, "s", dict.fromkeys(names, 0), views)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert ready["guilds"] and ready["private_channels"]
        return len(executed)

    # member: one guild, a group DM; mod: two guilds, a DM and a group DM, more channels.
    assert await statements("member") == await statements("mod") <= 8
