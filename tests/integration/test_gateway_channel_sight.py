"""Rule changes tell live sessions which channels they gained or lost (docs/gateway.md,
"Channels shown and hidden by a rule change"): a CHANNEL_CREATE / CHANNEL_DELETE made for
each member whose sight changed, right after the rule event, with no position; a RESUME
whose replay holds a rule change names the guild in RESUMED's ``refetch_channels``.

The guild's starting state is written to the database before any session opens (so the
hub's view loads it); every change under test goes through the REST API. Each step ends
with a marker (a GUILD_UPDATE renaming the guild, which every member receives and which
changes no rule), so that "nothing more came" is checked up to a known point.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import pytest
from chat_fixtures import (
    MEMBER,
    GuildFixture,
    Person,
    add_channel,
    add_role,
    create_guild,
    join,
    overwrite,
    person,
)
from node_marks import NO_RATE_LIMITS
from websockets.asyncio.client import connect

from miaou.chat.permissions import Permission
from miaou.sdk import GatewayClient, GatewayEvent
from miaou.server import RunningNode

TIMEOUT = 10.0
VIEW = int(Permission.VIEW_CHANNEL)
_marks = itertools.count()


pytestmark = NO_RATE_LIMITS


class World:
    """An owner; alice, who holds the role ``crew``; bob, who holds nothing. ``secret``
    is hidden from @everyone and open to crew; ``general`` is open to all."""

    def __init__(self, node: RunningNode, owner: Person, alice: Person, bob: Person,
                 guild: GuildFixture, crew: int, secret: int) -> None:  # fmt: skip
        self.node, self.owner, self.alice, self.bob = node, owner, alice, bob
        self.guild, self.crew, self.secret = guild, crew, secret
        self.gws: dict[str, GatewayClient] = {}

    @property
    def gid(self) -> str:
        return str(self.guild.id)

    @property
    def stream(self) -> str:
        return f"guild:{self.guild.id}"

    async def open(self, gateways: list[GatewayClient]) -> None:
        for who in ("owner", "alice", "bob"):
            gw = await getattr(self, who).client.gateway()
            gateways.append(gw)
            await gw.connect()
            self.gws[who] = gw

    async def mark(self) -> dict[str, list[GatewayEvent]]:
        """Rename the guild; per session, what came before that GUILD_UPDATE."""
        name = f"mark {next(_marks)}"
        await self.owner.client.update_guild(self.gid, name=name)
        return {who: await before(gw, name) for who, gw in self.gws.items()}


async def before(gw: GatewayClient, name: str) -> list[GatewayEvent]:
    got = []
    while True:
        event = await gw.next_event(timeout=TIMEOUT)
        if event.t in ("READY", "PRESENCE_UPDATE", "TYPING_START"):
            continue
        if event.t == "GUILD_UPDATE" and event.d.get("name") == name:
            return got
        got.append(event)


def kinds(events: list[GatewayEvent]) -> list[tuple[str, str | None]]:
    """(event, channel id for channel events)."""
    return [(e.t, e.d["id"] if e.t.startswith("CHANNEL_") else None) for e in events]


def derived(events: list[GatewayEvent]) -> list[GatewayEvent]:
    return [e for e in events if e.t in ("CHANNEL_CREATE", "CHANNEL_DELETE")]


@pytest.fixture
async def world(node: RunningNode, make_client: Any) -> World:
    owner = await person(make_client, "owner")
    guild = await create_guild(node, owner)
    crew = await add_role(node, guild.id)
    secret = await add_channel(node, guild.id)
    await overwrite(node, secret, guild.id, deny=VIEW)
    await overwrite(node, secret, crew, allow=VIEW)
    alice = await person(make_client, "alice")
    await join(node, guild, alice, crew)
    bob = await person(make_client, "bob")
    await join(node, guild, bob)
    return World(node, owner, alice, bob, guild, crew, secret)


async def test_a_role_that_an_overwrite_lets_in_shows_and_hides_the_channel(
    world: World, gateways: list[GatewayClient]
) -> None:
    await world.open(gateways)
    secret = str(world.secret)
    assert secret not in {c["id"] for c in world.gws["bob"].ready["guilds"][0]["channels"]}

    await world.owner.client.add_member_role(world.gid, world.bob.id, str(world.crew))
    got = await world.mark()
    assert kinds(got["bob"]) == [("GUILD_MEMBER_UPDATE", None), ("CHANNEL_CREATE", secret)]
    assert kinds(got["alice"]) == kinds(got["owner"]) == [("GUILD_MEMBER_UPDATE", None)]
    (created,) = derived(got["bob"])
    # Made for bob: no position (his client must not take it for a broadcast one).
    assert created.s is None and created.st == world.stream
    assert created.d["guild_id"] == world.gid and created.d["name"] == f"c{secret}"
    overwrites = {o["id"]: o for o in created.d["permission_overwrites"]}
    assert overwrites[str(world.crew)]["allow"] == str(VIEW)
    assert overwrites[world.gid]["deny"] == str(VIEW)
    # The channel is his now, live: its messages come (to all three).
    sent = await world.owner.client.send_message(secret, "crew only")
    for gw in world.gws.values():
        message = await gw.wait_for("MESSAGE_CREATE", timeout=TIMEOUT)
        assert message.d["id"] == sent.id

    await world.owner.client.remove_member_role(world.gid, world.bob.id, str(world.crew))
    got = await world.mark()
    assert kinds(got["bob"]) == [("GUILD_MEMBER_UPDATE", None), ("CHANNEL_DELETE", secret)]
    assert kinds(got["alice"]) == kinds(got["owner"]) == [("GUILD_MEMBER_UPDATE", None)]
    (deleted,) = derived(got["bob"])
    assert deleted.s is None and deleted.st == world.stream
    assert deleted.d["id"] == secret and deleted.d["guild_id"] == world.gid
    assert deleted.d["type"] == 0


async def test_an_overwrite_denying_everyone_hides_the_channel_from_those_without_the_role(
    world: World, gateways: list[GatewayClient]
) -> None:
    lounge = await add_channel(world.node, world.guild.id)
    await overwrite(world.node, lounge, world.crew, allow=VIEW)
    await world.open(gateways)
    channel = str(lounge)

    await world.owner.client.put_overwrite(channel, world.gid, type=0, deny=VIEW)
    got = await world.mark()
    assert kinds(got["bob"]) == [("CHANNEL_UPDATE", channel), ("CHANNEL_DELETE", channel)]
    assert kinds(got["alice"]) == kinds(got["owner"]) == [("CHANNEL_UPDATE", channel)]

    await world.owner.client.delete_overwrite(channel, world.gid)
    got = await world.mark()
    assert kinds(got["bob"]) == [("CHANNEL_UPDATE", channel), ("CHANNEL_CREATE", channel)]
    assert kinds(got["alice"]) == kinds(got["owner"]) == [("CHANNEL_UPDATE", channel)]
    (created,) = derived(got["bob"])
    assert created.s is None
    assert [o["id"] for o in created.d["permission_overwrites"]] == [str(world.crew)]


async def test_everyone_losing_view_channel_hides_every_channel_no_role_opens(
    world: World, gateways: list[GatewayClient]
) -> None:
    await world.open(gateways)
    general = world.guild.channel
    await world.owner.client.update_role(world.gid, world.gid, permissions=MEMBER & ~VIEW)
    got = await world.mark()
    # alice keeps #secret through crew; bob keeps nothing; the owner sees all.
    assert kinds(got["alice"]) == [("GUILD_ROLE_UPDATE", None), ("CHANNEL_DELETE", general)]
    assert kinds(got["bob"]) == [("GUILD_ROLE_UPDATE", None), ("CHANNEL_DELETE", general)]
    assert kinds(got["owner"]) == [("GUILD_ROLE_UPDATE", None)]

    await world.owner.client.update_role(world.gid, world.gid, permissions=MEMBER)
    got = await world.mark()
    assert kinds(got["alice"]) == [("GUILD_ROLE_UPDATE", None), ("CHANNEL_CREATE", general)]
    assert kinds(got["bob"]) == [("GUILD_ROLE_UPDATE", None), ("CHANNEL_CREATE", general)]
    assert kinds(got["owner"]) == [("GUILD_ROLE_UPDATE", None)]


async def test_a_new_owner_gains_and_the_old_one_loses(
    world: World, gateways: list[GatewayClient]
) -> None:
    await world.open(gateways)
    secret = str(world.secret)
    await world.owner.client.transfer_guild(world.gid, world.bob.id)
    name = f"mark {next(_marks)}"
    await world.bob.client.update_guild(world.gid, name=name)
    got = {who: await before(gw, name) for who, gw in world.gws.items()}
    assert ("CHANNEL_CREATE", secret) in kinds(got["bob"])
    assert ("CHANNEL_DELETE", secret) in kinds(got["owner"])
    assert derived(got["alice"]) == []


async def test_changes_that_show_or_hide_nothing_send_nothing_more(
    world: World, gateways: list[GatewayClient]
) -> None:
    await world.open(gateways)
    everyone_bits = MEMBER & ~int(Permission.ADD_REACTIONS)
    await world.owner.client.update_role(world.gid, world.gid, permissions=everyone_bits)
    await world.owner.client.update_member(world.gid, world.bob.id, nick="bobby")
    await world.owner.client.put_overwrite(
        str(world.secret), world.bob.id, type=1, deny=int(Permission.SEND_MESSAGES)
    )
    await world.owner.client.update_channel(world.guild.channel, topic="news")
    await world.owner.client.send_message(world.guild.channel, "hello")
    got = await world.mark()
    for events in got.values():
        assert derived(events) == []
    # Not the CHANNEL_UPDATE of #secret: he does not see it, before or after.
    assert kinds(got["bob"]) == [
        ("GUILD_ROLE_UPDATE", None),
        ("GUILD_MEMBER_UPDATE", None),
        ("CHANNEL_UPDATE", world.guild.channel),
        ("MESSAGE_CREATE", None),
    ]


async def raw_identify(node: RunningNode, token: str) -> dict[str, int]:
    """IDENTIFY on a bare socket, closed at once; READY's positions."""
    async with connect(node.url.replace("http", "ws") + "/gateway") as ws:
        await asyncio.wait_for(ws.recv(), TIMEOUT)  # HELLO
        await ws.send(json.dumps({"op": 2, "d": {"token": token}}))
        ready = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    return ready["d"]["positions"]  # type: ignore[no-any-return]


async def raw_resume(node: RunningNode, token: str, positions: dict[str, int]) -> list[Any]:
    """RESUME on a bare socket; the dispatches up to RESUMED."""
    async with connect(node.url.replace("http", "ws") + "/gateway") as ws:
        await asyncio.wait_for(ws.recv(), TIMEOUT)  # HELLO
        await ws.send(json.dumps({"op": 6, "d": {"token": token, "positions": positions}}))
        frames = []
        while frames[-1:] == [] or frames[-1].get("t") not in ("RESUMED", None):
            frames.append(json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT)))
        return frames


@pytest.mark.parametrize("source", ["window", "log"])
async def test_a_resume_over_a_rule_change_names_the_guild_to_reread(
    world: World, gateways: list[GatewayClient], source: str
) -> None:
    # The owner stays connected, so the hub keeps following the guild while bob is away.
    owner = await world.owner.client.gateway()
    gateways.append(owner)
    await owner.connect()
    token = world.bob.client.token
    assert token is not None
    away = await raw_identify(world.node, token)
    general = world.guild.channel
    await world.owner.client.put_overwrite(general, world.bob.id, type=1, deny=VIEW)
    sent = await world.owner.client.send_message(str(world.secret), "meanwhile")
    await owner.wait_for("MESSAGE_CREATE", lambda e: e.d["id"] == sent.id, timeout=TIMEOUT)
    if source == "log":
        world.node.node.gateway.hub.streams[world.stream].window.clear()
    frames = await raw_resume(world.node, token, away)
    resumed = frames[-1]
    assert resumed["t"] == "RESUMED"
    assert resumed["d"]["refetch_channels"] == [world.gid]
    # The CHANNEL_UPDATE that hid #general is not replayed to him (he cannot see it now),
    # and no CHANNEL_DELETE was kept for a replay: the client re-reads the channels.
    assert [f["t"] for f in frames[:-1]] == []

    # A replay of events that change no rule names no guild.
    now = dict(away, **resumed["d"]["positions"])
    now[world.stream] = world.node.node.gateway.hub.streams[world.stream].delivered
    await world.owner.client.update_member(world.gid, world.bob.id, nick="still bob")
    frames = await raw_resume(world.node, token, now)
    assert [f["t"] for f in frames] == ["GUILD_MEMBER_UPDATE", "RESUMED"]
    assert frames[-1]["d"]["refetch_channels"] == []
