"""The gateway on a real node: READY, delivery in stream order, permission filtering live,
kicks, typing and presence, resume without loss, invalid sessions, slow consumers, shutdown.

Clients are the SDK's GatewayClient (its own reconnect and RESUME), except where a test needs
to misbehave on the wire, which it does with the ``websockets`` client directly.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from typing import Any

import pytest
from chat_fixtures import (
    GuildFixture,
    Person,
    add_channel,
    create_guild,
    join,
    messages_in,
    person,
)
from node_marks import NO_RATE_LIMITS
from websockets.asyncio.client import ClientConnection, connect

from miaou.bus import log
from miaou.chat.permissions import Permission
from miaou.sdk import ApiError, Client, GatewayAuthError, GatewayClient, GatewayEvent
from miaou.server import RunningNode

TIMEOUT = 10.0


pytestmark = NO_RATE_LIMITS


@pytest.fixture
def live(gateways: list[GatewayClient]) -> Callable[[Client], Any]:
    async def open_(client: Client, **kw: Any) -> GatewayClient:
        gw = await client.gateway(**kw)
        gateways.append(gw)
        await gw.connect()
        return gw

    return open_


def drop(gw: GatewayClient) -> None:
    """Cut the client's TCP connection as a network failure would (no close frame)."""
    conn = gw._conn
    assert conn is not None
    conn.ws.transport.abort()


async def until(gw: GatewayClient, type_: str, **match: Any) -> GatewayEvent:
    def wanted(event: GatewayEvent) -> bool:
        return all(event.d.get(k) == v for k, v in match.items())

    return await gw.wait_for(type_, wanted, timeout=TIMEOUT)


async def raw(node: RunningNode, **kw: Any) -> ClientConnection:
    ws = await connect(node.url.replace("http", "ws") + "/gateway", **kw)
    hello = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    assert hello["op"] == 10
    return ws


@pytest.fixture
async def cast(node: RunningNode, make_client: Any) -> tuple[Person, Person, GuildFixture]:
    owner = await person(make_client, "owner")
    guild = await create_guild(node, owner)
    member = await person(make_client, "member")
    await join(node, guild, member)
    return owner, member, guild


# -- READY and delivery ---------------------------------------------------------------


async def test_gateway_url_and_ready(node: RunningNode, client: Client, live: Any) -> None:
    await client.register("mia", "correct horse battery")
    guild = await client.create_guild("Cats")
    url = (await client.request("GET", "/api/v1/gateway")).json()["url"]
    assert url == f"ws://127.0.0.1:{node.port}/gateway"
    gw = await live(client)
    ready = gw.ready
    assert ready is not None
    assert ready["user"]["username"] == "mia"
    (only,) = ready["guilds"]
    assert only["id"] == guild["id"] and only["member_count"] == 1
    assert "general" in {c["name"] for c in only["channels"]}
    assert only["member"]["user"]["id"] == ready["user"]["id"]
    # The session follows its own stream (GUILD_CREATE was logged there) and the guild's.
    assert ready["positions"][f"user:{ready['user']['id']}"] == 1
    assert ready["positions"][f"guild:{guild['id']}"] == 0


async def test_messages_arrive_once_in_stream_order(cast: Any, live: Any) -> None:
    owner, member, guild = cast
    gw = await live(member.client)
    sent = await asyncio.gather(
        *(owner.client.send_message(guild.channel, f"m{i}") for i in range(30))
    )
    got = await messages_in(gw, 30)
    assert {e.d["id"] for e in got} == {m.id for m in sent}
    positions = [e.s for e in got]
    assert positions == sorted(positions) and len(set(positions)) == 30
    assert all(e.st == f"guild:{guild.id}" for e in got)
    assert gw.duplicates == 0


async def test_hidden_channel_is_filtered_and_overwrites_apply_live(
    node: RunningNode, cast: Any, live: Any
) -> None:
    owner, member, guild = cast
    secret = str(await add_channel(node, guild.id))
    await owner.client.put_overwrite(
        secret, str(guild.id), type=0, deny=str(int(Permission.VIEW_CHANNEL))
    )
    gw = await live(member.client)
    assert secret not in {c["id"] for c in gw.ready["guilds"][0]["channels"]}
    await owner.client.send_message(secret, "not for members")
    visible = await owner.client.send_message(guild.channel, "for everyone")
    (first,) = await messages_in(gw, 1)
    assert first.d["id"] == visible.id  # the secret one, sent before, never came

    await owner.client.delete_overwrite(secret, str(guild.id))
    await until(gw, "CHANNEL_UPDATE", id=secret)
    now_visible = await owner.client.send_message(secret, "open now")
    (second,) = await messages_in(gw, 1)
    assert second.d["id"] == now_visible.id


async def test_a_kicked_member_gets_the_removal_and_nothing_after(cast: Any, live: Any) -> None:
    owner, member, guild = cast
    watcher = await live(owner.client)
    gw = await live(member.client)
    await owner.client.kick(str(guild.id), member.id)
    removal = await until(gw, "GUILD_MEMBER_REMOVE")
    assert removal.d["user"]["id"] == member.id
    after = await owner.client.send_message(guild.channel, "after the kick")
    await until(watcher, "MESSAGE_CREATE", id=after.id)
    with pytest.raises(TimeoutError):
        await gw.wait_for("MESSAGE_CREATE", timeout=0.3)


async def test_typing_is_ephemeral_throttled_and_gated(
    node: RunningNode, cast: Any, live: Any, make_client: Any
) -> None:
    owner, member, guild = cast
    gw = await live(owner.client)
    outsider = await person(make_client, "outsider")
    watcher = await live(outsider.client)
    for _ in range(3):
        response = await member.client.request("POST", f"/api/v1/channels/{guild.channel}/typing")
        assert response.status_code == 204
    typing = await until(gw, "TYPING_START", user_id=member.id)
    assert typing.s is None and typing.d["channel_id"] == guild.channel
    with pytest.raises(TimeoutError):  # the repeats within 5 s announced nothing
        await gw.wait_for("TYPING_START", timeout=0.3)
    with pytest.raises(TimeoutError):  # not a member: nothing
        await watcher.wait_for("TYPING_START", timeout=0.1)
    with pytest.raises(ApiError) as refused:
        await outsider.client.request("POST", f"/api/v1/channels/{guild.channel}/typing")
    assert refused.value.status == 404


async def test_presence_online_then_offline(cast: Any, live: Any) -> None:
    owner, member, guild = cast
    gw = await live(owner.client)
    other = await live(member.client)

    def of_member(status: str) -> Callable[[GatewayEvent], bool]:
        return lambda e: e.d["user"]["id"] == member.id and e.d["status"] == status

    online = await gw.wait_for("PRESENCE_UPDATE", of_member("online"), timeout=TIMEOUT)
    assert online.s is None and online.d["guild_id"] == str(guild.id)
    await other.send_presence("dnd")
    await gw.wait_for("PRESENCE_UPDATE", of_member("dnd"), timeout=TIMEOUT)
    await other.close()
    await gw.wait_for("PRESENCE_UPDATE", of_member("offline"), timeout=TIMEOUT)


def shown(gw: GatewayClient) -> dict[str, str]:
    """READY's presences of the session's one guild: user id -> status."""
    assert gw.ready is not None
    (guild,) = gw.ready["guilds"]
    return {p["user"]["id"]: p["status"] for p in guild["presences"]}


async def test_ready_lists_who_is_online_in_each_guild(
    node: RunningNode, cast: Any, live: Any, make_client: Any
) -> None:
    owner, member, guild = cast
    hidden = await person(make_client, "hidden")
    await join(node, guild, hidden)
    other = await live(member.client, presence="dnd")
    await live(hidden.client, presence="invisible")
    gw = await live(owner.client)
    assert shown(gw) == {member.id: "dnd"}
    await other.send_presence("idle")
    await gw.wait_for("PRESENCE_UPDATE", lambda e: e.d["status"] == "idle", timeout=TIMEOUT)
    # The owner's first session is online now, and listed like anyone's.
    assert shown(await live(owner.client)) == {member.id: "idle", owner.id: "online"}
    await other.close()
    await gw.wait_for("PRESENCE_UPDATE", lambda e: e.d["status"] == "offline", timeout=TIMEOUT)
    assert shown(await live(owner.client)) == {owner.id: "online"}


async def test_a_bad_token_is_refused_with_4004(node: RunningNode, client: Client) -> None:
    gw = GatewayClient(node.url.replace("http", "ws") + "/gateway", "mia_" + "x" * 40)
    with pytest.raises(GatewayAuthError):
        await gw.connect()
    await gw.close()


# -- resume -----------------------------------------------------------------------------


async def test_resume_replays_what_was_missed_once_in_order(cast: Any, live: Any) -> None:
    owner, member, guild = cast
    gw = await live(member.client)
    watcher = await live(owner.client)
    drop(gw)
    sent = [await owner.client.send_message(guild.channel, f"while away {i}") for i in range(10)]
    await until(watcher, "MESSAGE_CREATE", id=sent[-1].id)
    await gw.wait_for("RESUMED", timeout=TIMEOUT)  # taken out of the queue, the rest stays
    assert gw.reconnects == 1
    got = await messages_in(gw, 10)  # replayed before RESUMED, or live after it
    assert [e.d["id"] for e in got] == [m.id for m in sent]
    assert gw.duplicates == 0


async def test_resume_from_the_log_when_the_window_is_gone(
    node: RunningNode, cast: Any, live: Any
) -> None:
    owner, member, guild = cast
    gw = await live(member.client, max_backoff=0.5)
    # Nobody else follows the guild here: once the member is gone the process forgets the
    # stream and its window, so the replay must come from the database.
    gw_positions = gw.positions
    drop(gw)
    sent = [await owner.client.send_message(guild.channel, f"logged {i}") for i in range(5)]
    got = await messages_in(gw, 5)
    assert [e.d["id"] for e in got] == [m.id for m in sent]
    assert got[0].s == gw_positions[f"guild:{guild.id}"] + 1


async def test_resume_past_retention_is_an_invalid_session(node: RunningNode, cast: Any) -> None:
    owner, member, guild = cast
    for i in range(3):
        await owner.client.send_message(guild.channel, f"old {i}")
    async with node.node.db.write() as conn:
        await log.prune(conn, before_ms=2**62)
    ws = await raw(node)
    positions = {f"guild:{guild.id}": 0}
    await ws.send(
        json.dumps({"op": 6, "d": {"token": member.client.token, "positions": positions}})
    )
    answer = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    assert answer["op"] == 9 and answer["d"] is False
    # The same connection may IDENTIFY afresh.
    await ws.send(json.dumps({"op": 2, "d": {"token": member.client.token}}))
    ready = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    assert ready["t"] == "READY"
    await ws.close()


async def test_sdk_reports_an_invalidated_session(node: RunningNode, cast: Any, live: Any) -> None:
    owner, member, guild = cast
    gw = await live(member.client, min_backoff=1.0, max_backoff=1.0)
    drop(gw)  # the client waits 0.5-1 s before it reconnects
    await owner.client.send_message(guild.channel, "missed, then pruned away")
    # Past retention: the log is pruned and this process's window no longer reaches back.
    async with node.node.db.write() as conn:
        await log.prune(conn, before_ms=2**62)
    node.node.gateway.hub.streams[f"guild:{guild.id}"].window.clear()
    invalidated = await gw.wait_for("SESSION_INVALIDATED", timeout=TIMEOUT)
    assert invalidated.d["reason"] == "invalid_session"
    after = await owner.client.send_message(guild.channel, "after")
    await until(gw, "MESSAGE_CREATE", id=after.id)


# -- misbehaving clients and shutdown ---------------------------------------------------------


async def test_a_slow_consumer_is_cut_off_while_others_keep_up(
    start_node: Callable[..., Any], make_client: Any, live: Any
) -> None:
    node = await start_node(ratelimit={"enabled": False}, gateway_send_buffer_bytes=65_536)
    here = lambda: make_client(node.url)  # noqa: E731
    owner = await person(here, "owner")
    guild = await create_guild(node, owner)
    slow_person = await person(here, "slow")
    await join(node, guild, slow_person)
    quick = await live(owner.client)
    # A reader that stops reading: tiny receive buffer, websockets' own queue of one frame.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", node.port))
    slow = await raw(node, sock=sock, max_queue=1)
    await slow.send(json.dumps({"op": 2, "d": {"token": slow_person.client.token}}))
    text = "x" * 3900
    sent: list[str] = []
    for _ in range(30):
        batch = await asyncio.gather(
            *(owner.client.send_message(guild.channel, text) for _ in range(50))
        )
        sent += [m.id for m in batch]
        if node.node.gateway.slow_consumers:
            break
    assert node.node.gateway.slow_consumers == 1
    got = await messages_in(quick, len(sent))
    assert {e.d["id"] for e in got} == set(sent)
    # The slow one, reading at last, finds its connection closed with 4010 (or cut).
    with pytest.raises(Exception) as closed:
        while True:
            await asyncio.wait_for(slow.recv(), TIMEOUT)
    code = getattr(getattr(closed.value, "rcvd", None), "code", None)
    assert code in (4010, None)


async def test_shutdown_asks_clients_to_reconnect(
    start_node: Callable[..., Any], make_client: Any
) -> None:
    node = await start_node()
    who = await person(lambda: make_client(node.url), "mia")
    ws = await raw(node)
    await ws.send(json.dumps({"op": 2, "d": {"token": who.client.token}}))
    assert json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))["t"] == "READY"
    stopping = asyncio.create_task(node.stop())
    frames = []
    with pytest.raises(Exception):  # noqa: B017 - ConnectionClosed once done
        while True:
            frames.append(json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT)))
    assert frames[-1]["op"] == 7
    assert ws.close_code == 1001
    await asyncio.wait_for(stopping, TIMEOUT)


async def test_metrics_count_connections_and_deliveries(
    node: RunningNode, cast: Any, live: Any
) -> None:
    owner, member, guild = cast

    async def figures() -> dict[str, float]:
        text = (await owner.client.request("GET", "/metrics")).text
        return {
            line.split()[0]: float(line.split()[1])
            for line in text.splitlines()
            if line.startswith("miaou_gateway_")
        }

    before = await figures()
    assert before["miaou_gateway_connections"] == 0
    gw = await live(member.client)
    await live(owner.client)
    sent = await owner.client.send_message(guild.channel, "counted")
    await until(gw, "MESSAGE_CREATE", id=sent.id)
    after = await figures()
    assert after["miaou_gateway_connections"] == 2
    assert after["miaou_gateway_sessions_started_total"] == 2
    assert after["miaou_gateway_deliveries_total"] >= before["miaou_gateway_deliveries_total"] + 2


async def test_temporary_members_leave_when_their_last_session_ends(
    node: RunningNode, client: Client, make_client: Any, live: Any
) -> None:
    await client.register("host", "correct horse battery")
    guild = await client.create_guild("Drop-in")
    general = next(c for c in await client.channels(guild["id"]) if c["name"] == "general")
    invite = await client.create_guild_invite(general["id"], temporary=True, max_uses=0)
    visitor, keeper = make_client(), make_client()
    await visitor.register("visitor", "correct horse battery")
    await keeper.register("keeper", "correct horse battery")
    await visitor.join(invite["code"])
    await keeper.join(invite["code"])
    role = await client.create_role(guild["id"], "regular")
    keeper_id = (await keeper.me()).id
    await client.add_member_role(guild["id"], keeper_id, role["id"])  # a role: stays

    host = await live(client)
    first, second = await live(visitor), await live(visitor)
    kept = await live(keeper)
    await first.close()
    with pytest.raises(TimeoutError):  # another session is still open: still a member
        await host.wait_for("GUILD_MEMBER_REMOVE", timeout=0.3)
    await second.close()
    await kept.close()
    removal = await until(host, "GUILD_MEMBER_REMOVE")
    assert removal.d["user"]["id"] == (await visitor.me()).id
    ids = {m["user"]["id"] for m in await client.members(guild["id"])}
    assert keeper_id in ids and removal.d["user"]["id"] not in ids


async def test_going_offline_without_temporary_memberships_writes_nothing(
    node: RunningNode, cast: Any, live: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every user whose last session ends is checked for temporary memberships; a write
    transaction each (SQLite's one write lock) would hold up sends when many leave."""
    _owner, member, _guild = cast
    gw = await live(member.client)
    db, gateway = node.node.db, node.node.gateway
    writes, write = [], db.write
    monkeypatch.setattr(db, "write", lambda: writes.append(1) or write())
    checked, offline = asyncio.Event(), gateway.on_offline
    assert offline is not None

    async def observed(user_id: int) -> object:
        try:
            return await offline(user_id)
        finally:
            checked.set()

    monkeypatch.setattr(gateway, "on_offline", observed)
    await gw.close()
    await asyncio.wait_for(checked.wait(), TIMEOUT)
    assert writes == []


async def test_no_presence_in_large_guilds_nor_for_invisible_arrivals(
    cast: Any, live: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from miaou.gateway import sessions

    owner, member, _guild = cast
    gw = await live(owner.client)

    def of_member(e: GatewayEvent) -> bool:
        return bool(e.d["user"]["id"] == member.id)

    hidden = await live(member.client, presence="invisible")
    with pytest.raises(TimeoutError):  # shown offline from the start: nothing to say
        await gw.wait_for("PRESENCE_UPDATE", of_member, timeout=0.3)
    await hidden.close()
    with pytest.raises(TimeoutError):  # and nothing when they leave either
        await gw.wait_for("PRESENCE_UPDATE", of_member, timeout=0.3)

    monkeypatch.setattr(sessions, "LARGE_GUILD", 1)  # this two-member guild is now large
    await live(member.client)
    with pytest.raises(TimeoutError):
        await gw.wait_for("PRESENCE_UPDATE", of_member, timeout=0.3)
    monkeypatch.setattr(sessions, "LARGE_GUILD", 250)
    await live(member.client, presence="idle")  # counted once more: not a first arrival
    other_guild_member = await live(member.client)
    await other_guild_member.send_presence("dnd")  # a change is announced again
    assert (await gw.wait_for("PRESENCE_UPDATE", of_member, timeout=TIMEOUT)).d["status"] == "dnd"
