"""Recipients kept between events (hub ``_audience``): a message goes to the recipients of the
last message of its channel, until the subscribers or the rules change, or a timeout ends.

Each test first sends a message, so that the recipients are kept, then changes what decides
them, and checks that the next message follows the change. Steps end with a marker (a message
in ``lobby``, which every member sees; a message changes no rule, so the marker clears
nothing) so that "it did not come" is checked up to a known point.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from chat_fixtures import GuildFixture, Person, add_channel, add_role, create_guild, join, person
from node_marks import NO_RATE_LIMITS

from miaou.chat.permissions import Permission
from miaou.ids import now_ms
from miaou.sdk import GatewayClient
from miaou.server import RunningNode

TIMEOUT = 10.0
VIEW = int(Permission.VIEW_CHANNEL)
_marks = itertools.count()


pytestmark = NO_RATE_LIMITS


class Room:
    """An owner, alice, bob and carol, a moderator (MANAGE_THREADS), in one guild."""

    def __init__(
        self, node: RunningNode, people: dict[str, Person], guild: GuildFixture, lobby: int
    ) -> None:
        self.node, self.people, self.guild, self.lobby = node, people, guild, str(lobby)
        self.gws: dict[str, GatewayClient] = {}

    @property
    def gid(self) -> str:
        return str(self.guild.id)

    @property
    def owner(self) -> Person:
        return self.people["owner"]

    async def open(self, gateways: list[GatewayClient], *who: str) -> None:
        for name in who:
            gw = await self.people[name].client.gateway()
            gateways.append(gw)
            await gw.connect()
            self.gws[name] = gw

    async def messages_until_mark(self) -> dict[str, list[str]]:
        """Post a marker in the lobby; per open session, the messages that came before it."""
        mark = f"mark {next(_marks)}"
        await self.say(self.lobby, mark)
        got: dict[str, list[str]] = {}
        for name, gw in self.gws.items():
            got[name] = []
            while True:
                event = await gw.next_event(timeout=TIMEOUT)
                if event.t != "MESSAGE_CREATE":
                    continue
                if event.d["content"] == mark:
                    break
                got[name].append(event.d["content"])
        return got

    async def say(self, channel: str, text: str) -> None:
        await self.owner.client.send_message(channel, text)


@pytest.fixture
async def room(node: RunningNode, make_client: Any) -> Room:
    people = {name: await person(make_client, name) for name in ("owner", "alice", "bob", "carol")}
    guild = await create_guild(node, people["owner"])
    moderators = await add_role(node, guild.id, int(Permission.MANAGE_THREADS))
    for name in ("alice", "bob"):
        await join(node, guild, people[name])
    await join(node, guild, people["carol"], moderators)
    return Room(node, people, guild, await add_channel(node, guild.id))


async def test_a_rule_change_between_two_messages_decides_the_second_ones_recipients(
    room: Room, gateways: list[GatewayClient]
) -> None:
    await room.open(gateways, "owner", "alice", "bob")
    channel, bob = room.guild.channel, str(room.people["bob"].uid)
    await room.say(channel, "one")
    assert await room.messages_until_mark() == {"owner": ["one"], "alice": ["one"], "bob": ["one"]}

    await room.owner.client.put_overwrite(channel, bob, type=1, deny=VIEW)
    await room.say(channel, "two")
    assert await room.messages_until_mark() == {"owner": ["two"], "alice": ["two"], "bob": []}

    await room.owner.client.delete_overwrite(channel, bob)
    await room.say(channel, "three")
    got = await room.messages_until_mark()
    assert got == {"owner": ["three"], "alice": ["three"], "bob": ["three"]}


async def test_sessions_that_come_and_go_between_two_messages(
    room: Room, gateways: list[GatewayClient]
) -> None:
    await room.open(gateways, "owner", "alice")
    channel = room.guild.channel
    await room.say(channel, "before bob")
    assert await room.messages_until_mark() == {"owner": ["before bob"], "alice": ["before bob"]}

    await room.open(gateways, "bob")
    await room.say(channel, "with bob")
    got = await room.messages_until_mark()
    assert got == {"owner": ["with bob"], "alice": ["with bob"], "bob": ["with bob"]}

    await room.gws.pop("alice").close()
    await room.say(channel, "without alice")
    assert await room.messages_until_mark() == {
        "owner": ["without alice"],
        "bob": ["without alice"],
    }


async def test_the_end_of_a_timeout_changes_the_recipients_without_an_event(
    room: Room, gateways: list[GatewayClient]
) -> None:
    """A moderator sees private threads through MANAGE_THREADS, which a timeout takes away:
    when it ends, no event says so, yet the next message reaches them again."""
    await room.open(gateways, "owner", "carol")
    thread = await room.owner.client.start_thread(room.guild.channel, "private", type=12)
    mod = str(room.people["carol"].uid)
    await room.say(thread["id"], "seen by mod")
    assert (await room.messages_until_mark())["carol"] == ["seen by mod"]

    until = now_ms() + 4_000  # room for the steps below on a loaded machine
    await room.owner.client.update_member(room.gid, mod, communication_disabled_until=until)
    await room.say(thread["id"], "while timed out")
    got = await room.messages_until_mark()
    assert got == {"owner": ["while timed out"], "carol": []}

    await asyncio.sleep(max(0.0, (until - now_ms()) / 1000) + 0.05)
    await room.say(thread["id"], "after the timeout")
    got = await room.messages_until_mark()
    assert got == {"owner": ["after the timeout"], "carol": ["after the timeout"]}
