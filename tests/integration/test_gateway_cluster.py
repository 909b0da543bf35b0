"""Two nodes on one PostgreSQL database and one Redis: clients on node A and node B converse,
and see every message at the same position, in the same order.

Runs where PostgreSQL and Redis are configured (always in CI: tests/conftest.py insists).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
from chat_fixtures import messages_in
from redis.asyncio import Redis

from miaou.sdk import Client

REDIS_URL = os.environ.get("MIAOU_TEST_REDIS_URL", "")
PASSWORD = "correct horse battery"
TIMEOUT = 10.0

pytestmark = [
    pytest.mark.database_kinds("postgres"),
    pytest.mark.skipif(not REDIS_URL, reason="needs MIAOU_TEST_REDIS_URL (set in CI)"),
]


@pytest.fixture
async def pair(start_node: Any) -> tuple[Any, Any]:
    shared = {
        "redis_url": REDIS_URL,
        "redis_namespace": f"test-{secrets.token_hex(6)}",
        "ratelimit": {"enabled": False},
    }
    return await start_node(**shared), await start_node(**shared)


@pytest.fixture
async def closing() -> AsyncIterator[list[Any]]:
    things: list[Any] = []
    yield things
    await asyncio.gather(*(t.close() for t in things))


async def alice_and_bob(
    pair: tuple[Any, Any], closing: list[Any], name: str
) -> tuple[Client, Client, str]:
    """Alice (on node A) owns a guild; Bob registered and joined it through node B.
    Returns both clients and the guild's #general id."""
    a, b = pair
    alice, bob = Client(a.url), Client(b.url)
    closing += [alice, bob]
    await alice.register("alice", PASSWORD)
    await bob.register("bob", PASSWORD)
    guild = await alice.create_guild(name)
    general = next(c for c in await alice.channels(guild["id"]) if c["name"] == "general")
    await bob.join((await alice.create_guild_invite(general["id"]))["code"])
    return alice, bob, str(general["id"])


async def test_clients_on_two_nodes_converse_in_one_order(
    pair: tuple[Any, Any], closing: list[Any]
) -> None:
    alice, bob, general_id = await alice_and_bob(pair, closing, "Across")

    on_a = await alice.gateway()
    on_b = await bob.gateway()
    closing += [on_a, on_b]
    await on_a.connect()
    await on_b.connect()

    hello = await alice.send_message(general_id, "hello from A")
    reply = await bob.send_message(general_id, "hello from B")
    # Each sees both, its own included, in the order they were sent, at the same positions.
    seen_a, seen_b = await asyncio.gather(messages_in(on_a, 2), messages_in(on_b, 2))
    assert [e.d["id"] for e in seen_a] == [hello.id, reply.id]
    assert [(e.s, e.d["id"]) for e in seen_b] == [(e.s, e.d["id"]) for e in seen_a]

    # Both talk at once, each through their own node: both see one order, one position each.
    sends = [alice.send_message(general_id, f"a{i}") for i in range(20)]
    sends += [bob.send_message(general_id, f"b{i}") for i in range(20)]
    sent = await asyncio.gather(*sends)
    got_a, got_b = await asyncio.gather(messages_in(on_a, 40), messages_in(on_b, 40))
    assert {e.d["id"] for e in got_a} == {m.id for m in sent}
    assert [(e.s, e.d["id"]) for e in got_a] == [(e.s, e.d["id"]) for e in got_b]
    positions = [e.s or 0 for e in got_a]
    assert positions == sorted(positions) and len(set(positions)) == 40
    assert on_a.duplicates == on_b.duplicates == 0


async def test_a_node_cut_from_redis_catches_up_from_the_log(
    pair: tuple[Any, Any], closing: list[Any]
) -> None:
    _, b = pair
    alice, bob, general_id = await alice_and_bob(pair, closing, "Cut")
    on_b = await bob.gateway()
    closing.append(on_b)
    await on_b.connect()

    resynced = asyncio.Event()
    hub = b.node.gateway.hub
    original = hub.resync

    def spy() -> None:
        original()
        resynced.set()

    b.node.bus.on_reconnect = spy
    # Cut node B's pub/sub link (its bus names its connections); B reconnects, but what A
    # published meanwhile is lost to pub/sub and must come from the stream log.
    admin = Redis.from_url(REDIS_URL)
    try:
        name = f"miaou-bus:{b.node.bus.node_id}"
        links = [c for c in await admin.client_list(_type="pubsub") if c["name"] == name]
        assert links
        for link in links:
            await admin.client_kill_filter(_id=link["id"])
        sent = [await alice.send_message(general_id, f"during {i}") for i in range(5)]
    finally:
        await admin.aclose()
    await asyncio.wait_for(resynced.wait(), TIMEOUT)
    got = await messages_in(on_b, 5)
    assert [e.d["id"] for e in got] == [m.id for m in sent]
    assert on_b.duplicates == 0


async def test_presence_is_offline_only_after_the_last_session_on_any_node(
    pair: tuple[Any, Any], closing: list[Any]
) -> None:
    a, b = pair
    alice, bob_a, bob_b = Client(a.url), Client(a.url), Client(b.url)
    closing += [alice, bob_a, bob_b]
    await alice.register("alice", PASSWORD)
    await bob_a.register("bob", PASSWORD)
    bob_b.token = bob_a.token
    guild = await alice.create_guild("Presence")
    general = next(c for c in await alice.channels(guild["id"]) if c["name"] == "general")
    await bob_a.join((await alice.create_guild_invite(general["id"]))["code"])
    bob_id = (await bob_a.me()).id

    watcher = await alice.gateway()
    closing.append(watcher)
    await watcher.connect()
    on_a, on_b = await bob_a.gateway(), await bob_b.gateway()
    await on_a.connect()
    await on_b.connect()

    def bob(status: str) -> Any:
        return lambda e: e.d["user"]["id"] == bob_id and e.d["status"] == status

    await watcher.wait_for("PRESENCE_UPDATE", bob("online"), timeout=TIMEOUT)
    await on_a.close()  # bob is still connected to node B
    with pytest.raises(TimeoutError):
        await watcher.wait_for("PRESENCE_UPDATE", bob("offline"), timeout=0.5)
    await on_b.close()
    await watcher.wait_for("PRESENCE_UPDATE", bob("offline"), timeout=TIMEOUT)


async def test_a_crashed_instance_does_not_keep_users_online() -> None:
    from miaou.gateway.presence import RedisPresence

    namespace = f"test-{secrets.token_hex(6)}"
    crashed, alive = RedisPresence(REDIS_URL, namespace), RedisPresence(REDIS_URL, namespace)
    await crashed.start()
    await alive.start()
    try:
        assert await crashed.arrive(7) is True
        assert await alive.arrive(7) is False  # online through the other instance already
        assert await alive.leave(7) is False
        # The first instance dies without leaving: its liveness key expires.
        await crashed.redis.delete(crashed._alive_key(crashed.instance))
        assert await alive.arrive(7) is True
        assert await alive.leave(7) is True
    finally:
        await crashed.close()
        await alive.close()


async def test_thousands_of_sessions_ending_at_once_all_count() -> None:
    """A restart or a network cut ends every session of a process together: each presence
    change waits for a Redis connection rather than failing (redis-py's default pool
    refuses a command past 100 connections in use)."""
    from miaou.gateway.presence import RedisPresence

    presence = RedisPresence(REDIS_URL, f"test-{secrets.token_hex(6)}")
    await presence.start()
    users = range(1, 1001)
    try:
        assert all(await asyncio.gather(*(presence.arrive(u) for u in users)))
        assert all(await asyncio.gather(*(presence.leave(u) for u in users)))
    finally:
        await presence.close()
