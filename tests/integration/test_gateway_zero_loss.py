"""Zero loss: 20 clients in a channel, senders publishing all along, clients cut off at
random and resuming; every acknowledged message reaches every client exactly once, in order.

Bounded: a fixed number of sends and of cuts, every wait with a timeout.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from chat_fixtures import create_guild, join, person
from node_marks import NO_RATE_LIMITS

from miaou.sdk import GatewayClient, GatewayEvent

LISTENERS = 20
SENDERS = 3
SENDS_EACH = 40
CUTS = 40
CUT_EVERY = 0.03


pytestmark = NO_RATE_LIMITS


def cut(gw: GatewayClient) -> bool:
    conn = gw._conn
    if conn is None:
        return False
    conn.ws.transport.abort()
    return True


class Inbox:
    """One client's messages of the channel; ``complete`` is set once it holds ``expected``."""

    def __init__(self) -> None:
        self.events: list[GatewayEvent] = []
        self.expected: set[str] | None = None
        self.complete = asyncio.Event()

    def check(self) -> None:
        if self.expected is not None and {e.d["id"] for e in self.events} >= self.expected:
            self.complete.set()

    async def collect(self, gw: GatewayClient, channel: str) -> None:
        async for event in gw.events():
            if event.t == "MESSAGE_CREATE" and event.d["channel_id"] == channel:
                self.events.append(event)
                self.check()


async def test_every_acknowledged_message_reaches_every_client_once_in_order(
    node: Any, make_client: Any
) -> None:
    owner = await person(make_client, "owner")
    guild = await create_guild(node, owner)
    senders = [await person(make_client, f"sender{i}") for i in range(SENDERS)]
    listeners = [await person(make_client, f"listener{i}") for i in range(LISTENERS)]
    for who in [*senders, *listeners]:
        await join(node, guild, who)

    gateways: list[GatewayClient] = []
    inboxes = [Inbox() for _ in listeners]
    for who in listeners:
        gw = await who.client.gateway(max_backoff=0.3)
        await gw.connect()
        gateways.append(gw)
    collectors = [
        asyncio.create_task(inbox.collect(gw, guild.channel))
        for gw, inbox in zip(gateways, inboxes, strict=True)
    ]
    acked: list[str] = []

    async def send_all(who: Any, n: int) -> None:
        for i in range(n):
            message = await who.client.send_message(guild.channel, f"{who.id} {i}")
            acked.append(message.id)

    async def chaos() -> int:
        rng = random.Random(2026)
        cuts = 0
        while cuts < CUTS:
            await asyncio.sleep(CUT_EVERY)
            cuts += cut(rng.choice(gateways))
        return cuts

    try:
        sending = asyncio.gather(*(send_all(s, SENDS_EACH) for s in senders))
        cuts = await asyncio.wait_for(chaos(), 30)
        await asyncio.wait_for(sending, 60)
        expected = set(acked)
        assert len(expected) == SENDERS * SENDS_EACH
        for inbox in inboxes:
            inbox.expected = expected
            inbox.check()
        await asyncio.wait_for(asyncio.gather(*(i.complete.wait() for i in inboxes)), 30)
    finally:
        for task in collectors:
            task.cancel()
        await asyncio.gather(*(gw.close() for gw in gateways))

    assert cuts == CUTS
    assert sum(gw.reconnects for gw in gateways) >= CUTS // 2
    for gw, inbox in zip(gateways, inboxes, strict=True):
        into = inbox.events
        ids = [e.d["id"] for e in into]
        assert len(ids) == len(set(ids)) == len(expected)  # exactly once
        assert set(ids) == expected
        positions = [e.s or 0 for e in into]
        assert positions == sorted(positions)  # in stream order
        assert gw.duplicates == 0  # the node itself never sent one twice
        assert gw.dropped == 0
