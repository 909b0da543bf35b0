"""Read state: acknowledgements only move forward; unread and mention counts per channel."""

from __future__ import annotations

import pytest
from chat_world import World
from sqlalchemy import update

from miaou import ids
from miaou.chat.permissions import Permission as P
from miaou.chat.read_states import COUNT_CAP
from miaou.chat.tables import channels, messages
from miaou.sdk import ApiError


def state_of(states: list[dict], channel_id: str) -> dict:
    return next(s for s in states if s["channel_id"] == channel_id)


async def test_unread_and_mentions_then_ack(world: World) -> None:
    gid, general = world.guild["id"], world.general
    owner, member = world["owner"], world["member"]
    first = await owner.send_message(general, "hello all")
    await owner.send_message(general, f"hey <@{world.ids['member']}>, look")
    await owner.send_message(general, f"ping for <@{world.ids['mod']}> only")
    await member.send_message(general, "my own message is never unread for me")
    state = state_of(await member.read_states(), general)
    assert (state["unread_count"], state["mention_count"]) == (3, 1)
    assert state["guild_id"] == gid and state["last_read_id"] == "0"

    await member.ack(general, first.id)
    state = state_of(await member.read_states(), general)
    assert (state["unread_count"], state["mention_count"], state["last_read_id"]) == (
        2, 1, first.id,
    )  # fmt: skip
    last = await owner.send_message(general, "@everyone meeting")  # owner may mention all
    assert last.mention_everyone
    assert state_of(await member.read_states(), general)["mention_count"] == 2
    await member.ack(general, last.id)
    await member.ack(general, first.id)  # a late, older ack changes nothing
    state = state_of(await member.read_states(), general)
    assert (state["unread_count"], state["last_read_id"]) == (0, last.id)


async def test_role_mentions_count_for_role_members(world: World) -> None:
    gid, general = world.guild["id"], world.general
    await world["owner"].update_role(gid, world.mod_role, mentionable=True)
    await world["member"].send_message(general, f"calling <@&{world.mod_role}>")
    assert state_of(await world["mod"].read_states(), general)["mention_count"] == 1
    assert state_of(await world["admin"].read_states(), general)["mention_count"] == 0


async def test_read_states_cover_only_visible_channels(world: World) -> None:
    gid = world.guild["id"]
    secret = await world["owner"].create_channel(gid, "secret")
    await world["owner"].put_overwrite(secret["id"], gid, type=0, deny=int(P.VIEW_CHANNEL))
    member_channels = {s["channel_id"] for s in await world["member"].read_states()}
    owner_channels = {s["channel_id"] for s in await world["owner"].read_states()}
    assert secret["id"] not in member_channels and secret["id"] in owner_channels
    with pytest.raises(ApiError) as hidden:
        await world["member"].ack(secret["id"], secret["id"])
    assert hidden.value.status == 404


async def test_dm_read_state(make_client) -> None:
    alice, bob = make_client(), make_client()
    await alice.register("rs-alice", "correct horse battery")
    b = (await bob.register("rs-bob", "correct horse battery")).user.id
    dm = await alice.open_dm(b)
    await alice.send_message(dm["id"], "psst")
    state = state_of(await bob.read_states(), dm["id"])
    assert state["unread_count"] == 1 and state["guild_id"] is None


async def test_counts_look_at_the_newest_unread_messages_only(world: World, node) -> None:
    """A busy channel the member never reads costs at most COUNT_CAP rows to count: the
    unread count stops there, and a mention older than the newest COUNT_CAP unread
    messages is not counted. (The messages are written with SQL: a thousand sends through
    the API would be slow.)"""
    general, guild_id = int(world.general), int(world.guild["id"])
    owner_id, member_id = int(world.ids["owner"]), int(world.ids["member"])

    def row(content: str, mentions: list[int]) -> dict:
        return {
            "id": ids.new_id(), "channel_id": general, "guild_id": guild_id,
            "author_id": owner_id, "content": content, "mentions": mentions,
            "mention_roles": [], "mention_channels": [],
        }  # fmt: skip

    rows = [row("the oldest: a mention", [member_id])]
    rows += [row(f"noise {i}", []) for i in range(COUNT_CAP)]
    async with node.node.db.write() as conn:
        await conn.execute(messages.insert(), rows)
        await conn.execute(
            update(channels).where(channels.c.id == general).values(last_message_id=rows[-1]["id"])
        )
    state = state_of(await world["member"].read_states(), world.general)
    assert (state["unread_count"], state["mention_count"]) == (COUNT_CAP, 0)
    await world["owner"].send_message(world.general, f"now <@{member_id}>")
    state = state_of(await world["member"].read_states(), world.general)
    assert (state["unread_count"], state["mention_count"]) == (COUNT_CAP, 1)
