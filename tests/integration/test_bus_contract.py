"""One contract for every Bus backend, run against MemoryBus and RedisBus; then what only the
Redis backend does: several nodes on one channel, malformed messages, lost connections.

Redis: MIAOU_TEST_REDIS_URL, else redis://127.0.0.1:6379/14. Each test uses its own channel,
so parallel runs do not mix. If Redis is unreachable the redis cases are skipped, unless CI
is set, where that is a failure.

"Exactly once" on Redis is checked with a marker: once a later event from another node has
arrived, any duplicate of an earlier one (Redis delivers a channel's messages in the order
it took them) would have arrived too.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import msgspec
import pytest
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from miaou.bus import Bus, Event, MemoryBus, RedisBus
from miaou.bus.redis import MAGIC
from miaou.errors import PayloadTooLarge, Unavailable

REDIS_URL = os.environ.get("MIAOU_TEST_REDIS_URL") or "redis://127.0.0.1:6379/14"
WAIT = 5.0  # seconds: the bound of every wait


# -- helpers -----------------------------------------------------------------------------


def event(
    n: int, *, stream: str = "guild:1", source: str = "a", payload_blob: str = "", **fields: Any
) -> Event:
    payload: dict[str, Any] = {"n": n, "from": source}
    if payload_blob:
        payload["blob"] = payload_blob
    return Event(type="TEST", stream=stream, payload=payload, **fields)


def sent_by(events: list[Event], source: str) -> list[Event]:
    return [e for e in events if isinstance(e.payload, dict) and e.payload.get("from") == source]


PROBE = "probe:0"  # the stream of the contract's settle markers (Redis)


class Inbox:
    """A handler that records the events it is given (but the contract's settle markers),
    and lets a test wait for some."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._arrived = asyncio.Event()

    def __call__(self, event: Event) -> None:
        if event.stream == PROBE:
            return
        self.events.append(event)
        self._arrived.set()

    async def wait_until(self, predicate: Callable[[list[Event]], bool]) -> None:
        async def wait() -> None:
            while not predicate(self.events):
                self._arrived.clear()
                await self._arrived.wait()

        try:
            await asyncio.wait_for(wait(), WAIT)
        except TimeoutError:
            pytest.fail(f"timed out after {WAIT} s; received {len(self.events)}: {self.events!r}")

    async def wait_for(self, marker: Event) -> None:
        await self.wait_until(lambda events: marker in events)


async def redis_or_skip() -> Redis:
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=5)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        await client.aclose()
        reason = f"Redis unreachable at {REDIS_URL} ({exc!r})"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI is set, so Redis tests must run")
        pytest.skip(f"{reason}; set MIAOU_TEST_REDIS_URL or start Redis to run these")
    return client


@pytest.fixture
async def redis_client() -> AsyncIterator[Redis]:
    client = await redis_or_skip()
    yield client
    await client.aclose()


@pytest.fixture
def channel() -> str:
    return f"miaou:test:bus:{uuid.uuid4().hex}"


NodeFactory = Callable[..., Awaitable[RedisBus]]


@pytest.fixture
async def make_node(redis_client: Redis, channel: str) -> AsyncIterator[NodeFactory]:
    """Start RedisBus "nodes" on the test's channel; all are closed at teardown."""
    buses: list[RedisBus] = []

    async def make(url: str = REDIS_URL, **kwargs: Any) -> RedisBus:
        bus = RedisBus(url, channel=channel, **kwargs)
        buses.append(bus)
        await asyncio.wait_for(bus.start(), WAIT)
        return bus

    yield make
    for bus in buses:
        await asyncio.wait_for(bus.close(), WAIT)


# -- the contract, for every backend -------------------------------------------------------


@dataclass
class Harness:
    bus: Bus
    settle: Callable[[], Awaitable[None]]


@pytest.fixture(params=["memory", "redis"])
async def harness(request: pytest.FixtureRequest, channel: str) -> AsyncIterator[Harness]:
    if request.param == "memory":
        memory = MemoryBus()

        async def nothing() -> None:
            return None

        yield Harness(memory, nothing)
        await memory.close()
        return

    await (await redis_or_skip()).aclose()
    # The bus under test, and a second node whose markers tell when the first is settled.
    bus, probe = RedisBus(REDIS_URL, channel=channel), RedisBus(REDIS_URL, channel=channel)
    markers = 0

    async def settle() -> None:
        """Return once whatever the bus would still deliver for earlier publishes is in."""
        nonlocal markers
        markers += 1
        marker = event(markers, stream=PROBE, source="probe")
        arrived = asyncio.Event()
        subscription = bus.subscribe(lambda e: arrived.set() if e == marker else None)
        try:
            await probe.publish([marker])
            await asyncio.wait_for(arrived.wait(), WAIT)
        finally:
            subscription.close()

    try:
        await asyncio.wait_for(bus.start(), WAIT)
        await asyncio.wait_for(probe.start(), WAIT)
        yield Harness(bus, settle)
    finally:
        await asyncio.wait_for(bus.close(), WAIT)
        await asyncio.wait_for(probe.close(), WAIT)


async def test_subscribers_receive_published_events_in_order_once(harness: Harness) -> None:
    inbox = Inbox()
    harness.bus.subscribe(inbox)
    batches = [[event(1)], [event(n) for n in range(2, 7)], [event(7), event(8)]]
    published: list[Event] = []
    for batch in batches:
        await harness.bus.publish(batch)
        published += batch
        # Synchronous: delivered before publish returns, on every backend.
        assert inbox.events == published
    await harness.bus.publish([])
    await harness.settle()
    assert inbox.events == published


async def test_every_subscriber_gets_every_event(harness: Harness) -> None:
    inboxes = [Inbox() for _ in range(3)]
    for inbox in inboxes:
        harness.bus.subscribe(inbox)
    events = [event(n) for n in range(10)]
    await harness.bus.publish(events[:4])
    await harness.bus.publish(events[4:])
    await harness.settle()
    for inbox in inboxes:
        assert inbox.events == events


async def test_closing_a_subscription_stops_its_delivery(harness: Harness) -> None:
    kept, closed = Inbox(), Inbox()
    harness.bus.subscribe(kept)
    subscription = harness.bus.subscribe(closed)

    seen_by_self_closing: list[Event] = []

    def close_after_first(event: Event) -> None:
        seen_by_self_closing.append(event)
        own.close()

    own = harness.bus.subscribe(close_after_first)

    await harness.bus.publish([event(1), event(2)])
    subscription.close()
    subscription.close()  # idempotent
    await harness.bus.publish([event(3)])
    await harness.settle()
    assert kept.events == [event(1), event(2), event(3)]
    assert closed.events == [event(1), event(2)]
    assert seen_by_self_closing == [event(1)]


async def test_a_raising_handler_does_not_stop_the_others(harness: Harness) -> None:
    calls: list[Event] = []

    def broken(event: Event) -> None:
        if event.stream != PROBE:
            calls.append(event)
        raise RuntimeError("handler bug")

    before, after = Inbox(), Inbox()
    harness.bus.subscribe(before)
    harness.bus.subscribe(broken)
    harness.bus.subscribe(after)
    events = [event(n) for n in range(3)]
    with structlog.testing.capture_logs() as logs:
        await harness.bus.publish(events)
    await harness.settle()
    assert calls == events
    assert before.events == events
    assert after.events == events
    failures = [entry for entry in logs if entry["event"] == "bus_handler_failed"]
    assert [entry["event_type"] for entry in failures] == ["TEST"] * 3


async def test_event_fields_reach_subscribers_unchanged(harness: Harness) -> None:
    inbox = Inbox()
    harness.bus.subscribe(inbox)
    events = [
        Event(
            type="MESSAGE_CREATE",
            stream="guild:42",
            payload={"id": 2**62, "content": "héllo 🐱", "tags": [1, "two", None], "ok": True},
            origin="node-7",
            position=1234,
        ),
        Event(type="TYPING_START", stream="channel:9", payload={"user_id": 3}),
    ]
    await harness.bus.publish(events)
    await harness.settle()
    assert inbox.events == events
    assert inbox.events[1].origin == "local"
    assert inbox.events[1].position is None


# -- Redis only: several nodes ---------------------------------------------------------------


async def test_two_nodes_see_each_others_events_in_order_exactly_once(
    make_node: NodeFactory,
) -> None:
    a, b = await make_node(), await make_node()
    inbox_a, inbox_b = Inbox(), Inbox()
    a.subscribe(inbox_a)
    b.subscribe(inbox_b)

    from_a = [
        [event(0, source="a")],
        [event(n, source="a", stream=f"guild:{n % 7}") for n in range(1, 1001)],
        [event(n, source="a") for n in range(1001, 1006)],
    ]
    from_b = [[event(n, source="b")] for n in range(3)]
    for batch_a, batch_b in zip(from_a, from_b, strict=True):
        await a.publish(batch_a)
        await b.publish(batch_b)
    flat_a = [e for batch in from_a for e in batch]
    flat_b = [e for batch in from_b for e in batch]

    # Markers last: when each node has the other's, nothing earlier can still come.
    marker_a, marker_b = event(-1, source="a"), event(-1, source="b")
    await a.publish([marker_a])
    await b.publish([marker_b])
    await inbox_a.wait_for(marker_b)
    await inbox_b.wait_for(marker_a)

    for inbox in (inbox_a, inbox_b):
        assert sent_by(inbox.events, "a") == [*flat_a, marker_a]
        assert sent_by(inbox.events, "b") == [*flat_b, marker_b]
        assert len(inbox.events) == len(flat_a) + len(flat_b) + 2


async def test_a_node_does_not_get_its_own_events_back(make_node: NodeFactory) -> None:
    a, b = await make_node(), await make_node()
    inbox = Inbox()
    a.subscribe(inbox)
    await a.publish([event(1, source="a"), event(2, source="a")])
    assert inbox.events == [event(1, source="a"), event(2, source="a")]  # locally, at once
    # Redis echoes a's message to a's own subscription before b's later one: had a not
    # skipped it, its events would be in twice by the time b's marker is.
    marker = event(-1, source="b")
    await b.publish([marker])
    await inbox.wait_for(marker)
    assert inbox.events == [event(1, source="a"), event(2, source="a"), marker]


async def test_fields_round_trip_between_nodes(make_node: NodeFactory) -> None:
    class Payload(msgspec.Struct):
        id: int
        content: str
        embeds: list[dict[str, Any]]

    a, b = await make_node(), await make_node()
    inbox = Inbox()
    b.subscribe(inbox)
    events = [
        Event(
            type="MESSAGE_CREATE",
            stream="guild:42",
            payload={
                "id": 2**62,
                "content": "héllo 🐱",
                "tags": [1, "two", None, 1.5, False],
                "nested": {"a": {"b": []}},
            },
            origin="node-7",
            position=1234,
        ),
        Event(type="TYPING_START", stream="channel:9", payload={"user_id": 3}),
        Event(type="RAW", stream="user:1", payload="just a string", position=1),
        Event(type="N", stream="user:1", payload=17, position=2),
        Event(
            type="MESSAGE_UPDATE",
            stream="guild:42",
            payload=Payload(id=5, content="x", embeds=[{"k": "v"}]),
            position=1235,
        ),
    ]
    await a.publish(events)
    await inbox.wait_until(lambda got: len(got) >= len(events))
    expected = [
        *events[:4],
        # A Struct payload arrives as builtins.
        msgspec.structs.replace(
            events[4], payload={"id": 5, "content": "x", "embeds": [{"k": "v"}]}
        ),
    ]
    assert inbox.events == expected
    assert inbox.events[1].origin == "local"
    assert inbox.events[1].position is None


async def test_concurrent_publishes_reach_other_nodes_in_publish_order(
    make_node: NodeFactory,
) -> None:
    a, b = await make_node(), await make_node()
    local, remote = Inbox(), Inbox()
    a.subscribe(local)
    b.subscribe(remote)
    await asyncio.gather(
        *(a.publish([event(n, source="a"), event(-n, source="a")]) for n in range(1, 201))
    )
    await remote.wait_until(lambda got: len(got) >= 400)
    assert len(local.events) == 400
    assert remote.events == local.events


async def test_malformed_messages_are_logged_and_skipped(
    make_node: NodeFactory, redis_client: Redis, channel: str
) -> None:
    a, b = await make_node(), await make_node()
    inbox = Inbox()
    a.subscribe(inbox)
    garbage = [
        b"not a bus message",
        b"",
        MAGIC + b"\xff",  # node id longer than the message
        MAGIC + b"\x01x" + b"\xc1",  # not msgpack
        MAGIC + b"\x01x" + msgspec.msgpack.encode([{"type": 1}]),  # not events
        MAGIC + b"\x01x" + msgspec.msgpack.encode({"type": "T"}),  # not a list
    ]
    with structlog.testing.capture_logs() as logs:
        for raw in garbage:
            await redis_client.publish(channel, raw)
        marker = event(-1, source="b")
        await b.publish([marker])
        await inbox.wait_for(marker)
    assert inbox.events == [marker]
    skipped = [
        entry
        for entry in logs
        if entry["event"] == "bus_message_malformed" and entry["node_id"] == a.node_id
    ]
    assert len(skipped) == len(garbage)
    assert a.connected

    # Still listening.
    later = event(1, source="b")
    await b.publish([later])
    await inbox.wait_for(later)
    assert inbox.events == [marker, later]


async def test_a_batch_over_the_bound_is_refused_before_anything_is_sent(
    make_node: NodeFactory,
) -> None:
    a, b = await make_node(max_batch_bytes=4096), await make_node()
    local, remote = Inbox(), Inbox()
    a.subscribe(local)
    b.subscribe(remote)
    big = Event(type="BIG", stream="guild:1", payload={"from": "a", "blob": "x" * 10_000})
    with pytest.raises(PayloadTooLarge, match="4096"):
        await a.publish([event(1, source="a"), big])
    assert local.events == []
    small = event(2, source="a")
    await a.publish([small])
    await remote.wait_for(small)
    assert remote.events == [small]
    assert local.events == [small]


# -- Redis only: lifecycle -----------------------------------------------------------------


async def test_publish_needs_a_started_open_bus(redis_client: Redis, channel: str) -> None:
    bus = RedisBus(REDIS_URL, channel=channel)
    inbox = Inbox()
    bus.subscribe(inbox)
    with pytest.raises(RuntimeError, match="before start"):
        await bus.publish([event(1)])
    await asyncio.wait_for(bus.start(), WAIT)
    await asyncio.wait_for(bus.start(), WAIT)  # idempotent
    assert bus.connected
    await bus.publish([event(2)])
    await asyncio.wait_for(bus.close(), WAIT)
    await asyncio.wait_for(bus.close(), WAIT)  # idempotent
    assert not bus.connected
    with pytest.raises(RuntimeError, match="closed"):
        await bus.publish([event(3)])
    with pytest.raises(RuntimeError, match="closed"):
        await bus.start()
    assert inbox.events == [event(2)]
    # Closing unsubscribed: nobody of this test listens on the channel any more.
    assert await redis_client.publish(channel, b"anyone?") == 0


async def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="node_id"):
        RedisBus(REDIS_URL, node_id="has space")
    with pytest.raises(ValueError, match="max_batch_bytes"):
        RedisBus(REDIS_URL, max_batch_bytes=10)


async def test_starting_against_an_unreachable_redis_raises_unavailable() -> None:
    bus = RedisBus("redis://127.0.0.1:1/0", connect_timeout=1.0)
    try:
        with pytest.raises(Unavailable):
            await asyncio.wait_for(bus.start(), WAIT)
        assert not bus.connected
        with pytest.raises(RuntimeError, match="before start"):
            await bus.publish([event(1)])
    finally:
        await asyncio.wait_for(bus.close(), WAIT)


# -- Redis only: lost connections ----------------------------------------------------------


class Proxy:
    """A TCP relay to the test Redis that can be stopped (Redis down) and started again on
    the same port, or frozen (its open connections go silent, as in a network partition)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "redis" or parts.hostname is None:
            pytest.skip(f"the proxy relays redis:// over TCP only, not {parts.scheme}://")
        self._parts = parts
        self._upstream = (parts.hostname, parts.port or 6379)
        self._server: asyncio.Server | None = None
        self._port = 0
        self._connections: dict[asyncio.Task[None], list[asyncio.StreamWriter]] = {}
        # The tasks themselves, not their id(): a new task may reuse a dead one's id.
        self._frozen: set[asyncio.Task[None]] = set()
        self._freeze_new = False

    @property
    def url(self) -> str:
        userinfo = self._parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@" if userinfo else ""
        return urlunsplit(self._parts._replace(netloc=f"{netloc}127.0.0.1:{self._port}"))

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self._port)
        self._port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task, writers in list(self._connections.items()):
            for writer in writers:
                writer.close()
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    def freeze(self, *, new_ones_too: bool = False) -> None:
        """Open connections go silent (and, with ``new_ones_too``, later ones)."""
        self._frozen.update(self._connections)
        self._freeze_new = new_ones_too

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            writer.close()
            return
        self._connections[task] = [writer, up_writer]
        if self._freeze_new:
            self._frozen.add(task)
        try:
            await asyncio.gather(
                self._pump(task, reader, up_writer), self._pump(task, up_reader, writer)
            )
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            self._connections.pop(task, None)
            for w in (writer, up_writer):
                w.close()

    async def _pump(
        self, task: asyncio.Task[None], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while data := await reader.read(65536):
            if task in self._frozen:
                continue  # a black hole
            writer.write(data)
            await writer.drain()
        writer.close()


@pytest.fixture
async def proxy(redis_client: Redis) -> AsyncIterator[Proxy]:
    relay = Proxy(REDIS_URL)
    await relay.start()
    yield relay
    if relay._server is not None:
        await relay.stop()


def reconnect_signal(bus: RedisBus) -> asyncio.Event:
    reconnected = asyncio.Event()
    bus.on_reconnect = reconnected.set
    return reconnected


async def wait_set(flag: asyncio.Event, what: str) -> None:
    try:
        await asyncio.wait_for(flag.wait(), WAIT)
    except TimeoutError:
        pytest.fail(f"timed out after {WAIT} s waiting for {what}")


async def test_the_listener_survives_a_killed_connection(
    make_node: NodeFactory, redis_client: Redis
) -> None:
    a, b = await make_node(), await make_node()
    reconnected = reconnect_signal(a)
    inbox = Inbox()
    a.subscribe(inbox)

    # Only this test's node: CLIENT KILL TYPE pubsub would also cut parallel runs' nodes.
    name = f"miaou-bus:{a.node_id}"
    ours = [c for c in await redis_client.client_list(_type="pubsub") if c["name"] == name]
    assert len(ours) == 1
    with structlog.testing.capture_logs() as logs:
        await redis_client.client_kill_filter(_id=ours[0]["id"])
        await wait_set(reconnected, "on_reconnect")
    assert [e["event"] for e in logs if e["event"].startswith("bus_")] == [
        "bus_disconnected",
        "bus_reconnected",
    ]
    assert a.connected

    later = event(1, source="b")
    await b.publish([later])
    await inbox.wait_for(later)
    assert inbox.events == [later]
    await a.publish([event(2, source="a")])  # and a still publishes


async def test_redis_down_then_back(make_node: NodeFactory, proxy: Proxy) -> None:
    a = await make_node(proxy.url, connect_timeout=0.5, socket_timeout=1.0)
    b = await make_node()
    reconnected = reconnect_signal(a)
    inbox_a, inbox_b = Inbox(), Inbox()
    a.subscribe(inbox_a)
    b.subscribe(inbox_b)

    with structlog.testing.capture_logs() as logs:
        await proxy.stop()
        lost = event(1, source="a")
        with pytest.raises(Unavailable):
            await asyncio.wait_for(a.publish([lost]), WAIT)
        assert inbox_a.events == [lost]  # committed events still reach local subscribers

        await asyncio.sleep(0.5)  # a few failed attempts: 0.1 + 0.2 s, then 0.4 s
        assert not reconnected.is_set()
        assert not a.connected
        await proxy.start()
        await wait_set(reconnected, "on_reconnect")
    names = [e["event"] for e in logs if e["event"].startswith("bus_")]
    assert names[0] == "bus_disconnected"
    assert "bus_reconnect_failed" in names
    assert names[-1] == "bus_reconnected"

    from_b, from_a = event(2, source="b"), event(3, source="a")
    await b.publish([from_b])
    await inbox_a.wait_for(from_b)
    await a.publish([from_a])
    await inbox_b.wait_for(from_a)
    assert sent_by(inbox_b.events, "a") == [from_a]  # the lost one stays lost (the log has it)
    assert inbox_a.events == [lost, from_b, from_a]


async def test_a_silent_connection_is_given_up_and_replaced(
    make_node: NodeFactory, proxy: Proxy
) -> None:
    a = await make_node(proxy.url, ping_interval=0.2)
    b = await make_node()
    reconnected = reconnect_signal(a)
    inbox = Inbox()
    a.subscribe(inbox)

    proxy.freeze()  # no error, just silence: only the PING without reply tells
    await wait_set(reconnected, "on_reconnect after a PING went unanswered")

    later = event(1, source="b")
    await b.publish([later])
    await inbox.wait_for(later)
    assert inbox.events == [later]


async def test_close_fails_what_is_still_waiting_for_redis(
    make_node: NodeFactory, proxy: Proxy
) -> None:
    a = await make_node(proxy.url, socket_timeout=30.0)
    proxy.freeze(new_ones_too=True)  # the publish hangs: Redis never answers
    publishing = asyncio.create_task(a.publish([event(1)]))
    await asyncio.sleep(0.1)
    assert not publishing.done()
    await asyncio.wait_for(a.close(), WAIT)
    with pytest.raises(Unavailable, match="closed"):
        await asyncio.wait_for(publishing, WAIT)
    await proxy.stop()


async def test_publish_fails_fast_once_too_much_waits_for_redis(
    make_node: NodeFactory, proxy: Proxy
) -> None:
    a = await make_node(proxy.url, max_batch_bytes=1024, max_pending_bytes=2048)
    inbox = Inbox()
    a.subscribe(inbox)
    proxy.freeze(new_ones_too=True)  # nothing reaches Redis any more
    blob = "x" * 800  # about 900 bytes a batch: two fit in 2048, not three
    waiting = [asyncio.create_task(a.publish([event(n, payload_blob=blob)])) for n in range(2)]
    await asyncio.sleep(0.1)
    assert not any(task.done() for task in waiting)
    with pytest.raises(Unavailable, match="backed up"):
        await asyncio.wait_for(a.publish([event(2, payload_blob=blob)]), WAIT)
    assert [e.payload["n"] for e in inbox.events] == [0, 1]  # the refused one: not delivered
    await asyncio.wait_for(a.close(), WAIT)
    for task in waiting:
        with pytest.raises(Unavailable):
            await asyncio.wait_for(task, WAIT)
    await proxy.stop()
