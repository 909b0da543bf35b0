"""Streams a session starts following mid-session (a guild joined, a DM opened): nothing
committed after the join is lost, whether the session is live, away, or identifying.

Each test holds one step of the node back (the hub's stream load, or the stream list at
IDENTIFY) at the point where events used to fall through, and commits events there.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from chat_fixtures import (
    ROLE,
    GuildFixture,
    Person,
    add_channel,
    add_role,
    create_guild,
    messages_in,
    overwrite,
    person,
)
from node_marks import NO_RATE_LIMITS
from websockets.asyncio.client import ClientConnection, connect

from miaou.chat.permissions import Permission
from miaou.gateway.hub import Hub
from miaou.sdk import GatewayClient, GatewayEvent
from miaou.server import RunningNode

TIMEOUT = 10.0
VIEW = int(Permission.VIEW_CHANNEL)


pytestmark = NO_RATE_LIMITS


@pytest.fixture
async def cast(node: RunningNode, make_client: Any) -> tuple[Person, Person, GuildFixture, str]:
    """An owner with a guild and an invite code, and someone not yet in it."""
    owner = await person(make_client, "owner")
    guild = await create_guild(node, owner)
    invite = await owner.client.create_guild_invite(guild.channel, max_uses=0)
    newcomer = await person(make_client, "newcomer")
    return owner, newcomer, guild, invite["code"]


async def test_a_guild_joined_live_gets_what_came_while_its_stream_loaded(
    node: RunningNode, cast: Any, gateways: list[GatewayClient]
) -> None:
    owner, newcomer, guild, code = cast
    hub = node.node.gateway.hub
    gw = await newcomer.client.gateway()
    gateways.append(gw)
    await gw.connect()
    # Nobody here follows the guild yet: the join makes the hub load its stream, and the
    # owner's messages commit while that load is held back.
    loading, release = hold_follow(hub, f"guild:{guild.id}")
    await newcomer.client.join(code)
    joined = await gw.wait_for("GUILD_JOIN", timeout=TIMEOUT)
    start = joined.d["follow"]
    assert start["stream"] == f"guild:{guild.id}"
    await asyncio.wait_for(loading.wait(), TIMEOUT)
    early = [await owner.client.send_message(guild.channel, f"early {i}") for i in range(3)]
    release.set()
    late = await owner.client.send_message(guild.channel, "late")
    got = await messages_in(gw, 4)
    assert [e.d["id"] for e in got] == [m.id for m in [*early, late]]
    positions = [e.s for e in got]
    assert positions == sorted(positions) and positions[0] > start["position"]
    assert gw.duplicates == 0


def hold_follow(hub: Hub, name: str) -> tuple[asyncio.Event, asyncio.Event]:
    """Hold the hub's following of stream ``name`` back: (set when held, set to release)."""
    loading, release = asyncio.Event(), asyncio.Event()
    follow = hub.follow

    async def held_follow(names: Any) -> Any:
        if name in list(names):
            loading.set()
            await release.wait()
        return await follow(names)

    hub.follow = held_follow  # type: ignore[method-assign]
    return loading, release


async def until_message(gw: GatewayClient, content: str) -> list[GatewayEvent]:
    """The events before the MESSAGE_CREATE with ``content``, still queued or to come."""
    seen: list[GatewayEvent] = []
    while True:
        event = await gw.next_event(timeout=TIMEOUT)
        if event.t == "MESSAGE_CREATE" and event.d["content"] == content:
            return seen
        seen.append(event)


@pytest.mark.parametrize("owner_online", [False, True], ids=["from the log", "from the window"])
async def test_a_rule_change_before_the_joined_stream_is_followed_shows_and_hides_channels(
    node: RunningNode, cast: Any, gateways: list[GatewayClient], owner_online: bool
) -> None:
    owner, newcomer, guild, code = cast
    # secret: hidden from @everyone, open to crew. The newcomer joins without crew, so
    # GUILD_JOIN lists general only; before their session follows the guild's stream, they
    # get crew (secret shown) and general is closed to @everyone (general hidden).
    secret = await add_channel(node, guild.id)
    crew = await add_role(node, guild.id)
    await overwrite(node, secret, guild.everyone, deny=VIEW)
    await overwrite(node, secret, crew, allow=VIEW)
    if owner_online:  # the hub holds the guild's stream live: the replay is its window's
        owner_gw = await owner.client.gateway()
        gateways.append(owner_gw)
        await owner_gw.connect()
    gw = await newcomer.client.gateway()
    gateways.append(gw)
    await gw.connect()
    loading, release = hold_follow(node.node.gateway.hub, f"guild:{guild.id}")
    await newcomer.client.join(code)
    joined = await gw.wait_for("GUILD_JOIN", timeout=TIMEOUT)
    assert {c["id"] for c in joined.d["channels"]} == {guild.channel}
    await asyncio.wait_for(loading.wait(), TIMEOUT)
    await owner.client.add_member_role(str(guild.id), newcomer.id, str(crew))
    await owner.client.put_overwrite(guild.channel, str(guild.everyone), type=ROLE, deny=VIEW)
    release.set()
    await owner.client.send_message(str(secret), "in secret")
    got = await until_message(gw, "in secret")
    assert [e.t for e in got] == [
        "READY", "GUILD_MEMBER_ADD", "GUILD_MEMBER_UPDATE",  # general's CHANNEL_UPDATE: hidden now
        "CHANNEL_DELETE", "CHANNEL_CREATE",
    ]  # fmt: skip
    hidden, shown = got[-2:]
    assert (hidden.d["id"], hidden.s) == (guild.channel, None)
    assert (shown.d["id"], shown.s) == (str(secret), None)
    assert {o["id"] for o in shown.d["permission_overwrites"]} == {str(guild.everyone), str(crew)}


async def test_a_join_with_no_rule_change_before_its_stream_is_followed_gets_no_channel_frames(
    node: RunningNode, cast: Any, gateways: list[GatewayClient]
) -> None:
    owner, newcomer, guild, code = cast
    gw = await newcomer.client.gateway()
    gateways.append(gw)
    await gw.connect()
    loading, release = hold_follow(node.node.gateway.hub, f"guild:{guild.id}")
    await newcomer.client.join(code)
    await asyncio.wait_for(loading.wait(), TIMEOUT)
    await owner.client.update_guild(str(guild.id), name="renamed")  # watched, changes no sight
    release.set()
    await owner.client.send_message(guild.channel, "after")
    got = await until_message(gw, "after")
    assert [e.t for e in got] == ["READY", "GUILD_JOIN", "GUILD_MEMBER_ADD", "GUILD_UPDATE"]


async def resume_raw(node: RunningNode, token: str, positions: dict[str, int]) -> list[Any]:
    """RESUME on a bare socket; the dispatches up to RESUMED."""
    async with connect(node.url.replace("http", "ws") + "/gateway") as ws:
        await asyncio.wait_for(ws.recv(), TIMEOUT)  # HELLO
        await ws.send(json.dumps({"op": 6, "d": {"token": token, "positions": positions}}))
        frames = []
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
            frames.append(frame)
            if frame.get("t") in ("RESUMED", None):
                return frames


async def identify_raw(node: RunningNode, token: str) -> tuple[ClientConnection, Any]:
    ws = await connect(node.url.replace("http", "ws") + "/gateway")
    await asyncio.wait_for(ws.recv(), TIMEOUT)  # HELLO
    await ws.send(json.dumps({"op": 2, "d": {"token": token}}))
    ready = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    assert ready["t"] == "READY"
    return ws, ready["d"]


async def test_a_resume_replays_a_guild_joined_while_away(node: RunningNode, cast: Any) -> None:
    owner, newcomer, guild, code = cast
    ws, ready = await identify_raw(node, newcomer.client.token)
    await ws.close()
    assert f"guild:{guild.id}" not in ready["positions"]
    await newcomer.client.join(code)
    sent = [await owner.client.send_message(guild.channel, f"meanwhile {i}") for i in range(3)]
    # The client never saw the GUILD_JOIN: its positions name only its own stream.
    frames = await resume_raw(node, newcomer.client.token, ready["positions"])
    assert frames[-1]["t"] == "RESUMED"
    kinds = [(f["t"], f["st"]) for f in frames[:-1]]
    assert kinds[0] == ("GUILD_JOIN", f"user:{newcomer.id}")
    messages = [f["d"]["id"] for f in frames if f["t"] == "MESSAGE_CREATE"]
    assert messages == [m.id for m in sent]
    guild_positions = [f["s"] for f in frames if f["st"] == f"guild:{guild.id}"]
    assert guild_positions == sorted(set(guild_positions))
    assert guild_positions[0] == frames[0]["d"]["follow"]["position"] + 1  # nothing skipped


async def test_a_guild_joined_while_identifying_is_followed(
    node: RunningNode, cast: Any, gateways: list[GatewayClient]
) -> None:
    owner, newcomer, guild, code = cast
    reader = node.node.gateway.ready_reader
    streams = reader.streams
    calls = 0

    async def join_after_listing(user_id: int) -> list[str]:
        # The join commits after the list was read and before the session subscribes.
        nonlocal calls
        calls += 1
        names = await streams(user_id)
        if calls == 1:
            await newcomer.client.join(code)
        return names

    reader.streams = join_after_listing  # type: ignore[method-assign]
    gw = await newcomer.client.gateway()
    gateways.append(gw)
    await gw.connect()
    assert gw.ready is not None
    assert str(guild.id) in {g["id"] for g in gw.ready["guilds"]}
    assert f"guild:{guild.id}" in gw.ready["positions"]
    sent = await owner.client.send_message(guild.channel, "welcome")
    (got,) = await messages_in(gw, 1)
    assert got.d["id"] == sent.id
